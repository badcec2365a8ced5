"""mmbench: multimodal representation learning benchmarks with ground-truth latents.

Example:
    >>> import mmbench
    >>> mmbench.list_datasets()
    ['numerical/clica', 'numerical/misalignment', 'numerical/multiview']
    >>> ds = mmbench.load("numerical/misalignment/joint", split="train")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["MMBenchError", "Replace", "__version__", "builder", "evaluate", "list_datasets", "load"]

from mmbench.api import builder, list_datasets, load
from mmbench.core.config import Replace
from mmbench.errors import MMBenchError


def __getattr__(name: str) -> Any:  # heavy, optional parts are imported on first use
    if name == "evaluate":
        from mmbench.harness.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'mmbench' has no attribute {name!r}")
