"""The 3DIdent scene as data: what a batch of scenes is and where everything sits in the world.

The scene is the one of the Multimodal3DIdent generator (research note §1.5, read from its
``generate_images.py`` and ``.blend`` scene), in Blender's coordinates (z up, metres):

* **camera** at ``(8, 0, 8)`` looking at the origin (track-to, world z up), 35 mm lens on a 50 mm
  sensor: a 71.1° horizontal field of view; image-right is +y, image-up is towards −x;
* **object**: one mesh, normalised to a bounding box of largest side 2 and scaled by 1.5, at
  ``(3·y − 3, 3·x − 3, 0)`` for positions ``x, y ∈ {0, 1, 2}`` (x drives Blender-y: left/centre/
  right; y drives Blender-x: top/mid/bottom), rotated by the Euler angles ``u·π − π/2`` (XYZ);
  colour ``colorsys.hsv_to_rgb(hue, 1, 1)``;
* **spotlight** on a semicircle at ``(4 sin θ, 4 cos θ, 6 + size)``, ``θ = u·π − π/2``, aimed at
  the object, cone 35° with a 0.1 blend; colour ``colorsys.hsv_to_rgb((u − 0.5)/2, 0.8, 1)``;
* **background**: a ground plane at ``z = −size`` (``size``: the object's largest dimension)
  coloured ``colorsys.hsv_to_rgb((u − 0.5)/2, 0.6, 1)``.

All inputs are the latents in ``[0, 1]`` (positions in ``{0, 1, 2}``, or any real in ``[0, 2]``);
every function here is vectorised over the batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError
from mmbench.rendering.colors import hsv_to_rgb

__all__ = [
    "CAMERA",
    "GROUND",
    "OBJECT_SCALE",
    "SCENE_FIELDS",
    "Camera",
    "SceneBatch",
    "euler_xyz",
]

#: Scale applied to the normalised mesh (largest bounding-box side 2 → 3 scene units).
OBJECT_SCALE = 1.5
SPOT_RADIUS = 4.0
SPOT_HEIGHT = 6.0
SPOT_CONE = math.radians(35.0)  # Blender's spot_size: the full cone angle
SPOT_BLEND = 0.1
POSITION_STEP = 3.0  # latent position 0/1/2 → −3/0/3 scene units
#: Height of the ground plane: minus the object's largest dimension (every normalised mesh: 3).
GROUND = -2.0 * OBJECT_SCALE

#: The columns of a scene batch, in order (see :class:`SceneBatch`).
SCENE_FIELDS = ("shape", "x", "y", "alpha", "beta", "gamma", "object_hue", "spot_pos", "spot_hue", "background_hue")


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at ``target`` with world z up (Blender's track-to constraint).

    Attributes:
        position: the camera centre.
        target: the point it looks at.
        lens_mm, sensor_mm: focal length and sensor width (Blender's sensor fit AUTO on square images).
    """

    position: tuple[float, float, float] = (8.0, 0.0, 8.0)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lens_mm: float = 35.0
    sensor_mm: float = 50.0

    def basis(self) -> np.ndarray:
        """Rows ``right, up, forward`` (unit vectors, world coordinates)."""
        forward = np.subtract(self.target, self.position).astype(np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return np.stack([right, up, forward])

    def focal(self, size: int) -> float:
        """Focal length in pixels of a ``size × size`` image."""
        return size * self.lens_mm / self.sensor_mm

    @property
    def fov_degrees(self) -> float:
        return math.degrees(2 * math.atan(self.sensor_mm / (2 * self.lens_mm)))


CAMERA = Camera()


def euler_xyz(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)`` of Blender's XYZ Euler angles ``(n, 3)`` (R = Rz·Ry·Rx)."""
    a = np.asarray(angles, dtype=np.float64)
    cx, cy, cz = np.cos(a).T
    sx, sy, sz = np.sin(a).T
    r = np.empty((len(a), 3, 3))
    r[:, 0, 0] = cy * cz
    r[:, 0, 1] = sx * sy * cz - cx * sz
    r[:, 0, 2] = cx * sy * cz + sx * sz
    r[:, 1, 0] = cy * sz
    r[:, 1, 1] = sx * sy * sz + cx * cz
    r[:, 1, 2] = cx * sy * sz - sx * cz
    r[:, 2, 0] = -sy
    r[:, 2, 1] = sx * cy
    r[:, 2, 2] = cx * cy
    return r


@dataclasses.dataclass(frozen=True, eq=False)
class SceneBatch:
    """``n`` scenes, one array per parameter (the latents that drive the renderer).

    Args:
        shape: mesh index of each scene (int, into the renderer's mesh set).
        x, y: object position; ``{0, 1, 2}`` = left/centre/right and top/mid/bottom (reals in
            ``[0, 2]`` interpolate).
        alpha, beta, gamma: rotations in ``[0, 1]`` (Euler angle ``u·π − π/2``).
        object_hue: object hue in ``[0, 1]``.
        spot_pos: spotlight position on its semicircle, ``[0, 1]``.
        spot_hue, background_hue: in ``[0, 1]``, mapped as the reference renderer does.

    Example:
        >>> scenes = SceneBatch.from_latents({"shape": np.array([0]), "x": np.array([1]), ...})
    """

    shape: np.ndarray
    x: np.ndarray
    y: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    object_hue: np.ndarray
    spot_pos: np.ndarray
    spot_hue: np.ndarray
    background_hue: np.ndarray

    def __post_init__(self) -> None:
        n = None
        for f in SCENE_FIELDS:
            arr = np.asarray(getattr(self, f))
            if arr.ndim != 1:
                raise InvalidConfigError(f"Scene parameter {f!r} must be a 1-D array (one value per scene), got shape {arr.shape}.")
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise InvalidConfigError(f"Scene parameter {f!r} has {len(arr)} values, expected {n} (as {SCENE_FIELDS[0]!r}).")
            if f == "shape":
                if arr.dtype.kind not in "iu":
                    raise InvalidConfigError(f"Scene parameter 'shape' must hold integer mesh indices, got dtype {arr.dtype}.")
                arr = arr.astype(np.int64)
            else:
                if arr.dtype.kind not in "iuf" or (arr.size and not np.isfinite(arr).all()):
                    raise InvalidConfigError(f"Scene parameter {f!r} must hold finite numbers, got dtype {arr.dtype}.")
                arr = arr.astype(np.float64)
                low, high = (0.0, 2.0) if f in ("x", "y") else (0.0, 1.0)
                if arr.size and (arr.min() < low or arr.max() > high):
                    raise InvalidConfigError(
                        f"Scene parameter {f!r} must lie in [{low:g}, {high:g}], got values in [{arr.min():g}, {arr.max():g}]."
                    )
            object.__setattr__(self, f, arr)

    @classmethod
    def from_latents(cls, latents: Mapping[str, Any], columns: Mapping[str, str] | None = None) -> SceneBatch:
        """A batch from a latent table; ``columns`` maps scene field → latent column (default: same name)."""
        columns = dict(columns or {})
        missing = [columns.get(f, f) for f in SCENE_FIELDS if columns.get(f, f) not in latents]
        if missing:
            raise InvalidConfigError(
                f"The scene renderer needs the latent columns {missing}, which are missing; it has {sorted(latents)}. "
                f"Scene fields: {list(SCENE_FIELDS)} (map them to your columns with columns=...)."
            )
        return cls(**{f: np.asarray(latents[columns.get(f, f)]) for f in SCENE_FIELDS})

    def __len__(self) -> int:
        return len(self.shape)

    def take(self, index: Any) -> SceneBatch:
        return SceneBatch(**{f: getattr(self, f)[index] for f in SCENE_FIELDS})

    # ---------------------------------------------------------------- world quantities
    def object_position(self) -> np.ndarray:
        """``(n, 3)``: Blender ``(3·y − 3, 3·x − 3, 0)``."""
        return np.stack([POSITION_STEP * (self.y - 1), POSITION_STEP * (self.x - 1), np.zeros(len(self))], axis=1)

    def euler_angles(self) -> np.ndarray:
        """``(n, 3)`` Blender XYZ Euler angles ``u·π − π/2`` of the rotation latents."""
        return np.stack([self.alpha, self.beta, self.gamma], axis=1) * math.pi - math.pi / 2

    def rotation(self) -> np.ndarray:
        """``(n, 3, 3)`` object rotations from the Euler angles ``u·π − π/2``."""
        return euler_xyz(self.euler_angles())

    def spot_position(self, size: np.ndarray) -> np.ndarray:
        """``(n, 3)``: ``(4 sin θ, 4 cos θ, 6 + size)`` with ``θ = u·π − π/2``."""
        theta = self.spot_pos * math.pi - math.pi / 2
        return np.stack([SPOT_RADIUS * np.sin(theta), SPOT_RADIUS * np.cos(theta), SPOT_HEIGHT + size], axis=1)

    def object_rgb(self) -> np.ndarray:
        return hsv_to_rgb(self.object_hue, 1.0, 1.0)

    def spot_rgb(self) -> np.ndarray:
        """The reference's ``colorsys.hsv_to_rgb((u − 0.5)/2, 0.8, 1)``: components may leave ``[0, 1]``."""
        return hsv_to_rgb((self.spot_hue - 0.5) / 2, 0.8, 1.0)

    def background_rgb(self) -> np.ndarray:
        """The reference's ``colorsys.hsv_to_rgb((u − 0.5)/2, 0.6, 1)``: components may leave ``[0, 1]``."""
        return hsv_to_rgb((self.background_hue - 0.5) / 2, 0.6, 1.0)
