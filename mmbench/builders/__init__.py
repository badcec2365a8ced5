"""Dataset builders, registered by name (imported lazily on first use)."""

from __future__ import annotations

from mmbench.errors import DatasetNotFoundError
from mmbench.registry import Registry

__all__ = ["DATASETS"]

DATASETS: Registry = Registry("dataset", error=DatasetNotFoundError)
DATASETS.register("numerical/multiview", "mmbench.builders.numerical:MultiviewBuilder")
DATASETS.register("numerical/misalignment", "mmbench.builders.numerical:MisalignmentBuilder")
DATASETS.register("numerical/clica", "mmbench.builders.numerical:ClicaBuilder")
DATASETS.register("polymnist", "mmbench.builders.polymnist:PolyMNISTBuilder")
DATASETS.register("translated_polymnist", "mmbench.builders.polymnist:TranslatedPolyMNISTBuilder")
DATASETS.register("multimodal3dident", "mmbench.builders.multimodal3dident:Multimodal3DIdentBuilder")
DATASETS.register("causal3dident_text", "mmbench.builders.causal3dident:Causal3DIdentTextBuilder")
DATASETS.register("mpi3d_complex_text", "mmbench.builders.mpi3d:MPI3DComplexTextBuilder")
