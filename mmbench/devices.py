"""One device rule for every command and API: :func:`resolve_device`; and :func:`torch_threads`.

``"auto"`` (or ``None``) is CUDA when torch sees a GPU, else the CPU. An explicit device that this
machine cannot provide (``"cuda"`` without CUDA, ``"cuda:3"`` with two GPUs, ``"mps"`` off Apple
silicon) is one clear :class:`~mmbench.errors.InvalidConfigError`, raised before any work starts,
never a raw torch ``RuntimeError`` halfway through a run.

Example:
    >>> resolve_device("auto")
    device(type='cpu')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mmbench.errors import InvalidConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_HELP", "resolve_device", "torch_threads"]

@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op CPU threads to ``n`` for the block (``None``: leave them), then restore them.

    Tiny steps (probe MLPs, small CNNs) gain nothing from several threads and slow down many
    times when the cores are shared (oversubscription); long trainings choose their own.
    """
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


#: The help text of every ``--device`` option (one wording everywhere).
DEVICE_HELP = "torch device: auto (default: CUDA when available, else CPU), cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` that ``device`` names on this machine.

    Args:
        device: ``"auto"``/``None`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"``, ``"mps"``, or a ``torch.device``.

    Raises:
        InvalidConfigError: the name is not a device, or this machine does not have it (the
            message says what it has and to use ``auto`` or ``cpu``).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str | torch.device):
        raise InvalidConfigError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {device!r} ({type(device).__name__}).")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidConfigError(f"Invalid device {str(device)!r}: use auto, cpu, cuda or cuda:N.") from None
    _check_available(dev, requested=str(device))
    return dev


def _check_available(dev: Any, *, requested: str) -> None:
    import torch

    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise InvalidConfigError(
                f"device {requested!r} was requested, but CUDA is not available on this machine ({why}). "
                "Use --device auto (device='auto'), which falls back to the CPU, or --device cpu."
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise InvalidConfigError(
                f"device {requested!r} was requested, but this machine has {count} CUDA device(s): cuda:0"
                f"{f' … cuda:{count - 1}' if count > 1 else ''}."
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidConfigError(f"device {requested!r} was requested, but MPS (Apple GPU) is not available here. Use auto or cpu.")
    elif dev.type != "cpu":
        raise InvalidConfigError(f"Unsupported device {requested!r}: mmbench runs on auto, cpu, cuda, cuda:N or mps.")
