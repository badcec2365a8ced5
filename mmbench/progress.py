"""Progress of long work: bars on a terminal, one plain line per finished unit everywhere.

The library never prints. Long operations (builds, training, evaluation, reproduce) show a
``tqdm`` bar when ``progress=True``, or when ``progress=None`` and stderr is a terminal; and they
log one line per finished unit (a suite entry, a training run) to the ``mmbench.progress``
logger at INFO level. The ``mmbench`` command shows those lines on stderr (:func:`line_handler`)
even without ``-v``, so a run under ``nohup``, ``--quiet`` or a job scheduler still says how far
it got; a Python user sees them with ``logging.basicConfig(level=logging.INFO)``.

Example:
    >>> bar = progress_bar(120, desc="evaluate", unit="fit", progress=None)
    >>> report("entry %s done in %.1f s", "multiview", 12.3)
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["LOGGER_NAME", "eta_text", "line_handler", "progress_bar", "report", "show_bars"]

LOGGER_NAME = "mmbench.progress"
_logger = logging.getLogger(LOGGER_NAME)


def show_bars(progress: bool | None) -> bool:
    """Whether to draw bars: ``progress`` if given, else whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def progress_bar(total: float | None, *, desc: str = "", unit: str = "it", progress: bool | None = None, **kwargs: Any) -> Any:
    """A ``tqdm`` bar (disabled unless :func:`show_bars`) with an ETA."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not show_bars(progress), dynamic_ncols=True, **kwargs)


def report(message: str, *args: Any, topic: str | None = None) -> None:
    """Log one progress line (a finished entry, run, resumed checkpoint) to ``mmbench.progress``,
    or to its child ``mmbench.progress.<topic>`` (finer lines a caller may silence on their own)."""
    (logging.getLogger(f"{LOGGER_NAME}.{topic}") if topic else _logger).info(message, *args)


def eta_text(elapsed: float, done: float, total: float) -> str:
    """``"about 3 min left"`` from the fraction done so far (``""`` before any progress)."""
    if done <= 0 or total <= done:
        return ""
    left = elapsed * (total - done) / done
    if left < 90:
        return f"about {left:.0f} s left"
    if left < 5400:
        return f"about {left / 60:.0f} min left"
    return f"about {left / 3600:.1f} h left"


class _TqdmLineHandler(logging.Handler):
    """Writes records through ``tqdm.write``, so lines appear above an active bar, not inside it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def line_handler() -> logging.Handler:
    """The handler the ``mmbench`` command attaches to ``mmbench.progress``: bare lines on stderr."""
    handler = _TqdmLineHandler(level=logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
