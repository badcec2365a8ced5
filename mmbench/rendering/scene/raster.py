"""The ``raster`` backend: a batched z-buffer triangle rasteriser with spotlight shading, in torch.

No dependency beyond torch, no per-pixel or per-triangle Python loop: a whole batch of scenes is
rasterised at once (on CPU, or any torch device).

1. **Geometry.** Each scene's mesh is rotated, scaled and placed (:class:`SceneBatch`); all
   triangles of the batch are projected by the pinhole camera.
2. **Coverage.** Every triangle enumerates the pixel centres of its screen bounding box (a ragged
   expansion with ``repeat_interleave``); edge functions keep those inside it.
3. **Visibility.** A per-pixel ``scatter_reduce(amin)`` over one int64 key per candidate —
   quantised depth in the high bits, triangle id in the low bits — leaves the nearest triangle of
   every pixel in one pass (a z-buffer with no sort).
4. **Shading.** Perspective-correct interpolation of position and normal of the winning triangle;
   the ground plane behind the object is intersected analytically per pixel (the object always
   lies above it). Both are lit by the same model: a dim grey sky light from above plus the
   coloured spotlight (Cycles' cone with its smooth blend, Lambertian), with the object's shadow
   from the spotlight (a shadow map rasterised by the same code from the light).

What it does not do (Cycles does): global illumination (the reference renders with
``max_bounces = 0`` anyway), soft shadows, the rubber material's specular lobe, denoising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmbench.errors import InvalidConfigError
from mmbench.rendering.scene.meshes import Mesh
from mmbench.rendering.scene.scene import (
    CAMERA,
    GROUND,
    SPOT_BLEND,
    SPOT_CONE,
    Camera,
    SceneBatch,
)

__all__ = ["PackedMeshes", "RasterBackend", "rasterize"]

_EMPTY = torch.iinfo(torch.int64).max
_DEPTH_BITS = 31
_DEPTH_RANGE = 64.0  # scene units; depths are quantised over [0, 64)
#: Lighting constants (linear RGB). Tuned by eye against the reference renders: a dim sky term
#: so that unlit parts stay visible, and a spotlight strong enough to tint what it hits.
SKY = 0.32
SKY_TOP = 0.18  # extra sky light on surfaces facing up
SPOT = 1.05
SHADOW_MAP = 128  # texels of the spotlight's shadow map (per side)
SHADOW_BIAS = 0.04  # scene units


class PackedMeshes:
    """A mesh set concatenated into flat tensors (the rasteriser's input), normalised and scaled.

    Every mesh is centred on its bounding box and scaled so that its largest side is
    ``2 × OBJECT_SCALE`` (= 3 scene units, the reference's object scale 1.5 on unit meshes);
    a native mesh (the ``original`` set) keeps its own origin and size (:meth:`Mesh.scene_vertices`).
    ``sizes`` holds each mesh's largest dimension (its spotlight's height above the base).
    """

    def __init__(self, meshes: Sequence[Mesh], *, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        verts, norms, faces, v_off, f_off = [], [], [], [0], [0]
        for mesh in meshes:
            v = mesh.scene_vertices()
            verts.append(v)
            norms.append(mesh.normalized().vertex_normals())
            faces.append(mesh.faces.astype(np.int64) + v_off[-1])
            v_off.append(v_off[-1] + len(v))
            f_off.append(f_off[-1] + len(mesh.faces))
        self.vertices = torch.as_tensor(np.concatenate(verts), dtype=torch.float32, device=device)
        self.normals = torch.as_tensor(np.concatenate(norms), dtype=torch.float32, device=device)
        self.faces = torch.as_tensor(np.concatenate(faces), dtype=torch.int64, device=device)
        self.vertex_offsets = torch.as_tensor(v_off, dtype=torch.int64, device=device)
        self.face_offsets = torch.as_tensor(f_off, dtype=torch.int64, device=device)
        self.sizes = np.array([mesh.scene_size() for mesh in meshes])
        self.device = device

    def __len__(self) -> int:
        return len(self.face_offsets) - 1


def _ranges(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """Concatenated ``arange(starts[k], starts[k] + counts[k])`` and, for each element, its ``k``."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=counts.device) - first[owner]
    return starts[owner] + local, owner


def rasterize(xy: Tensor, inv_z: Tensor, image: Tensor, num_images: int, height: int, width: int) -> Tensor:
    """The nearest triangle at every pixel centre (``-1`` where none), flat over ``(image, row, col)``.

    Args:
        xy: ``(T, 3, 2)`` screen coordinates of each triangle's vertices (pixels; centres at ``k + ½``).
        inv_z: ``(T, 3)`` inverse camera depth of the vertices (> 0: in front of the camera).
        image: ``(T,)`` the image each triangle belongs to.
        num_images, height, width: the output size.

    Returns:
        ``(num_images · height · width,)`` int64 triangle indices.
    """
    x, y = xy[..., 0], xy[..., 1]
    x0 = torch.ceil(x.amin(1) - 0.5).clamp(0, width).long()
    x1 = torch.floor(x.amax(1) - 0.5).clamp(-1, width - 1).long()
    y0 = torch.ceil(y.amin(1) - 0.5).clamp(0, height).long()
    y1 = torch.floor(y.amax(1) - 0.5).clamp(-1, height - 1).long()
    w = (x1 - x0 + 1).clamp(min=0)
    h = (y1 - y0 + 1).clamp(min=0)
    area = _area(x, y)
    keep = torch.nonzero((w > 0) & (h > 0) & (area.abs() > 1e-9) & (inv_z > 0).all(1)).squeeze(1)
    out = torch.full((num_images * height * width,), _EMPTY, dtype=torch.int64, device=xy.device)
    if len(keep) == 0:
        return torch.full_like(out, -1)
    w, h = w[keep], h[keep]
    local, owner = _ranges(torch.zeros_like(w), w * h)
    tri = keep[owner]
    px = x0[tri] + local % w[owner]
    py = y0[tri] + local // w[owner]
    lam = _barycentric(x[tri], y[tri], px.float() + 0.5, py.float() + 0.5, area[tri])
    inside = (lam >= 0).all(1)
    tri, px, py, lam = tri[inside], px[inside], py[inside], lam[inside]
    depth = 1.0 / (lam * inv_z[tri]).sum(1)  # depth interpolates as 1/z in screen space
    q = (depth.clamp(0, _DEPTH_RANGE) * ((2**_DEPTH_BITS - 1) / _DEPTH_RANGE)).long()
    key = (q << 32) | tri
    out.scatter_reduce_(0, (image[tri] * height + py) * width + px, key, reduce="amin")
    return torch.where(out == _EMPTY, -1, out & 0xFFFFFFFF)


def _barycentric(x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, area: Tensor) -> Tensor:
    """Screen-space barycentric coordinates ``(N, 3)`` of points ``(cx, cy)`` in triangles ``(x, y)``."""
    l0 = (x[:, 1] - cx) * (y[:, 2] - cy) - (x[:, 2] - cx) * (y[:, 1] - cy)
    l1 = (x[:, 2] - cx) * (y[:, 0] - cy) - (x[:, 0] - cx) * (y[:, 2] - cy)
    l2 = (x[:, 0] - cx) * (y[:, 1] - cy) - (x[:, 1] - cx) * (y[:, 0] - cy)
    return torch.stack([l0, l1, l2], 1) / area[:, None]


class _View:
    """A pinhole view for the rasteriser: world → (pixel x, pixel y, depth)."""

    def __init__(self, origin: Tensor, basis: Tensor, focal: float, size: int) -> None:
        self.origin = origin  # (B, 3) or (3,)
        self.basis = basis  # (B, 3, 3) or (3, 3): rows right, up, forward
        self.focal = focal
        self.size = size

    def project(self, points: Tensor, owner: Tensor) -> tuple[Tensor, Tensor]:
        """Pixel coordinates ``(N, 2)`` and inverse depth ``(N,)`` of world ``points`` of images ``owner``."""
        origin = self.origin[owner] if self.origin.ndim == 2 else self.origin
        rel = points - origin
        if self.basis.ndim == 3:
            cam = torch.einsum("nij,nj->ni", self.basis[owner], rel)
        else:
            cam = rel @ self.basis.T
        inv_z = 1.0 / cam[:, 2].clamp(min=1e-6)
        half = self.size / 2
        px = half + self.focal * cam[:, 0] * inv_z
        py = half - self.focal * cam[:, 1] * inv_z
        return torch.stack([px, py], 1), torch.where(cam[:, 2] > 1e-6, inv_z, -1.0)


class RasterBackend:
    """Renders :class:`SceneBatch` es with the rasteriser (see the module docstring).

    Args:
        meshes: the mesh set (index = the scene's ``shape``).
        size: output images are ``size × size``.
        antialias: supersampling factor (renders at ``antialias · size`` and averages).
        shadows: the object's shadow from the spotlight.
        device: torch device.
        chunk: scenes rasterised at once (bounds the memory of the per-pixel buffers).

    Example:
        >>> backend = RasterBackend(list(load_mesh_set("tiny").values()), size=64)
        >>> images = backend.render(scenes)       # (n, 64, 64, 3) uint8
    """

    def __init__(
        self,
        meshes: Sequence[Mesh],
        *,
        size: int,
        antialias: int = 1,
        shadows: bool = True,
        device: torch.device | str = "cpu",
        chunk: int = 32,
        camera: Camera = CAMERA,
    ) -> None:
        self.packed = PackedMeshes(meshes, device=device)
        self.size = int(size)
        self.antialias = int(antialias)
        self.shadows = bool(shadows)
        self.device = torch.device(device)
        self.chunk = int(chunk)
        self.camera = camera
        self.resolution = self.size * self.antialias
        rays = _pixel_rays(camera, self.resolution, self.device)
        origin = torch.as_tensor(camera.position, dtype=torch.float32, device=self.device)
        # Every pixel ray meets the ground plane z = GROUND (the camera looks down at it), at the
        # same point in every image: computed once.
        self._ground = origin + ((GROUND - origin[2]) / rays[:, 2])[:, None] * rays
        self._rays = rays
        self._srgb = _srgb_table(self.device)

    def render(self, scenes: SceneBatch) -> np.ndarray:
        """``(n, size, size, 3)`` uint8 images of ``scenes``."""
        if len(scenes) and (scenes.shape.min() < 0 or scenes.shape.max() >= len(self.packed)):
            raise InvalidConfigError(
                f"Scene shape indices must be in [0, {len(self.packed) - 1}] (the mesh set has {len(self.packed)} "
                f"meshes), got values in [{scenes.shape.min()}, {scenes.shape.max()}]."
            )
        out = np.empty((len(scenes), self.size, self.size, 3), dtype=np.uint8)
        with torch.inference_mode():
            for start in range(0, len(scenes), self.chunk):
                part = scenes.take(slice(start, start + self.chunk))
                out[start : start + len(part)] = self._render_chunk(part).cpu().numpy()
        return out

    # ------------------------------------------------------------------ one chunk
    def _render_chunk(self, scenes: SceneBatch) -> Tensor:
        n, res = len(scenes), self.resolution
        geo = _Geometry(self.packed, scenes, self.device)
        cam = self.camera
        view = _View(geo.t(cam.position), geo.t(cam.basis()), cam.focal(res), res)
        xy, inv_z = view.project(geo.world, geo.vowner)
        winner = rasterize(xy[geo.tri], inv_z[geo.tri], geo.fowner, n, res, res)
        shadow = _ShadowMap(geo) if self.shadows else None
        spot = _ground_spot_factor(geo, self._ground, shadow)  # (n, P): the ground everywhere
        bg = geo.t(np.clip(scenes.background_rgb(), 0.0, 1.0))
        color = torch.addcmul(((SKY + SKY_TOP) * bg)[:, None, :], spot[..., None], (SPOT * bg * geo.spot_rgb)[:, None, :])
        on = torch.nonzero(winner >= 0).squeeze(1)
        if len(on):
            color.view(-1, 3)[on] = self._object_colors(geo, on, winner[on], xy, inv_z, shadow)
        if self.antialias > 1:
            k = self.antialias
            color = color.view(n, res // k, k, res // k, k, 3).mean((2, 4))
        idx = color.mul_(len(self._srgb) - 1).add_(0.5).clamp_(0, len(self._srgb) - 1).long()
        return self._srgb[idx].view(n, self.size, self.size, 3)

    def _object_colors(self, geo: _Geometry, on: Tensor, win: Tensor, xy: Tensor, inv_z: Tensor,
                       shadow: _ShadowMap | None) -> Tensor:
        """Linear RGB of the object's pixels ``on`` (flat indices) covered by triangles ``win``."""
        res = self.resolution
        corners = geo.tri[win]  # (P, 3) vertex ids
        local = on % (res * res)
        x, y = xy[corners][..., 0], xy[corners][..., 1]
        lam = _barycentric(x, y, (local % res).float() + 0.5, (local // res).float() + 0.5, _area(x, y)) * inv_z[corners]
        lam = lam / lam.sum(1, keepdim=True)  # perspective-correct weights
        point = (lam[..., None] * geo.world[corners]).sum(1)
        normal = torch.nn.functional.normalize((lam[..., None] * geo.normals[corners]).sum(1), dim=1)
        ray = self._rays[local]
        normal = torch.where((normal * ray).sum(1, keepdim=True) > 0, -normal, normal)  # light the side we see
        img = on // (res * res)
        spot = _spot_factor(geo, point, normal, shadow, img)
        sky = SKY + SKY_TOP * normal[:, 2].clamp(min=0)
        albedo = geo.object_rgb[img]
        return albedo * (sky[:, None] + SPOT * spot[:, None] * geo.spot_rgb[img])


class _Geometry:
    """The batch's triangles in world space: vertices, normals, faces and who owns what."""

    def __init__(self, packed: PackedMeshes, scenes: SceneBatch, device: torch.device) -> None:
        self.device = device
        pk = packed
        shape = torch.as_tensor(scenes.shape, device=device)
        start, stop = pk.vertex_offsets[shape], pk.vertex_offsets[shape + 1]
        verts, self.vowner = _ranges(start, stop - start)
        rot = self.t(scenes.rotation())[self.vowner]
        self.position = self.t(scenes.object_position())
        self.world = torch.einsum("nij,nj->ni", rot, pk.vertices[verts]) + self.position[self.vowner]
        self.normals = torch.einsum("nij,nj->ni", rot, pk.normals[verts])
        fstart, fstop = pk.face_offsets[shape], pk.face_offsets[shape + 1]
        faces, self.fowner = _ranges(fstart, fstop - fstart)
        first = torch.cumsum(stop - start, 0) - (stop - start)  # each image's first vertex in `world`
        self.tri = pk.faces[faces] + (first - start)[self.fowner, None]
        self.spot = self.t(scenes.spot_position(pk.sizes[scenes.shape]))
        self.axis = torch.nn.functional.normalize(self.position - self.spot, dim=1)  # the spot tracks the object
        self.spot_rgb = self.t(np.clip(scenes.spot_rgb(), 0.0, None))
        self.object_rgb = self.t(scenes.object_rgb())
        self.n = len(scenes)

    def t(self, a: Any) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=self.device)


def _cone(cos_axis: Tensor) -> Tensor:
    """Cycles' spot cone: 0 outside ``spot_size/2``, a smoothstep over the outer ``blend`` of ``1 − cos``."""
    cos_half = math.cos(SPOT_CONE / 2)
    s = ((cos_axis - cos_half) / ((1 - cos_half) * SPOT_BLEND)).clamp_(0, 1)
    return s * s * (3 - 2 * s)


def _spot_factor(geo: _Geometry, point: Tensor, normal: Tensor, shadow: _ShadowMap | None, img: Tensor) -> Tensor:
    """Spotlight irradiance factor (cone · Lambert · visibility) at ``point`` ``(P, 3)`` of images ``img``."""
    d = geo.spot[img] - point
    dist = d.norm(dim=-1).clamp(min=1e-6)
    lit = _cone(-(d * geo.axis[img]).sum(-1) / dist) * ((d * normal).sum(-1) / dist).clamp(min=0)
    if shadow is not None:
        where = torch.nonzero(lit > 0).squeeze(1)
        lit[where] *= shadow.visible(point[where], normal[where], img[where])
    return lit


def _ground_spot_factor(geo: _Geometry, ground: Tensor, shadow: _ShadowMap | None) -> Tensor:
    """:func:`_spot_factor` of the ground points ``(P, 3)`` (the same in every image) ``(n, P)``.

    Written per coordinate on ``(n, P)`` arrays: the ground is every pixel of every image, the
    largest array of the renderer, and its normal is +z.
    """
    s, a = geo.spot, geo.axis
    dx = s[:, 0:1] - ground[:, 0]
    dy = s[:, 1:2] - ground[:, 1]
    dz = s[:, 2:3] - ground[:, 2]
    inv = torch.rsqrt(dx * dx + dy * dy + dz * dz)
    lit = _cone(-(dx * a[:, 0:1] + dy * a[:, 1:2] + dz * a[:, 2:3]) * inv) * (dz * inv)
    if shadow is not None:
        flat = lit.view(-1)
        where = torch.nonzero(flat > 0).squeeze(1)
        p = ground[where % len(ground)]
        up = torch.zeros_like(p)
        up[:, 2] = 1.0
        flat[where] *= shadow.visible(p, up, where // len(ground))
    return lit


class _ShadowMap:
    """Depth of the object seen from the spotlight (one map per image), for shadow tests."""

    def __init__(self, geo: _Geometry) -> None:
        dev = geo.device
        z = torch.tensor([0.0, 0.0, 1.0], device=dev).expand_as(geo.axis)
        right = torch.nn.functional.normalize(torch.cross(geo.axis, z, dim=1), dim=1)
        up = torch.cross(right, geo.axis, dim=1)
        focal = SHADOW_MAP / 2 / math.tan(SPOT_CONE / 2 * 1.15)
        self.view = _View(geo.spot, torch.stack([right, up, geo.axis], 1), focal, SHADOW_MAP)
        xy, inv_z = self.view.project(geo.world, geo.vowner)
        winner = rasterize(xy[geo.tri], inv_z[geo.tri], geo.fowner, geo.n, SHADOW_MAP, SHADOW_MAP)
        self.depth = torch.full(winner.shape, math.inf, device=dev)
        hit = torch.nonzero(winner >= 0).squeeze(1)
        corners = geo.tri[winner[hit]]
        texel = hit % (SHADOW_MAP * SHADOW_MAP)
        x, y = xy[corners][..., 0], xy[corners][..., 1]
        lam = _barycentric(x, y, (texel % SHADOW_MAP).float() + 0.5, (texel // SHADOW_MAP).float() + 0.5, _area(x, y))
        self.depth[hit] = 1.0 / (lam * inv_z[corners]).sum(1)

    def visible(self, point: Tensor, normal: Tensor, img: Tensor) -> Tensor:
        """1 where the spotlight sees ``point`` (of image ``img``), 0 where the object hides it."""
        pxy, inv_z = self.view.project(point + SHADOW_BIAS * normal, img)
        tx, ty = pxy[:, 0].floor().long(), pxy[:, 1].floor().long()
        inside = (tx >= 0) & (tx < SHADOW_MAP) & (ty >= 0) & (ty < SHADOW_MAP) & (inv_z > 0)
        idx = (img * SHADOW_MAP + ty.clamp(0, SHADOW_MAP - 1)) * SHADOW_MAP + tx.clamp(0, SHADOW_MAP - 1)
        shadowed = inside & (self.depth[idx] < 1.0 / inv_z.clamp(min=1e-6) - SHADOW_BIAS)
        return (~shadowed).float()


def _area(x: Tensor, y: Tensor) -> Tensor:
    """Twice the signed screen area of triangles with vertex coordinates ``x``, ``y`` ``(N, 3)``."""
    return (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])


def _pixel_rays(camera: Camera, res: int, device: torch.device) -> Tensor:
    """``(res·res, 3)`` unit world directions through the pixel centres, row-major."""
    basis = torch.as_tensor(camera.basis(), dtype=torch.float32, device=device)
    f = camera.focal(res)
    c = torch.arange(res, dtype=torch.float32, device=device) + 0.5 - res / 2
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    d = torch.stack([xx / f, -yy / f, torch.ones_like(xx)], -1).view(-1, 3)
    return torch.nn.functional.normalize(d @ basis, dim=1)


def _srgb_table(device: torch.device, steps: int = 4096) -> Tensor:
    """Linear [0, 1] (in ``steps`` levels) → sRGB-encoded uint8: a lookup instead of a power per pixel."""
    c = torch.linspace(0, 1, steps, dtype=torch.float64)
    s = torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=1e-12) ** (1 / 2.4) - 0.055)
    return (s * 255 + 0.5).to(torch.uint8).to(device)
