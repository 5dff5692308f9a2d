"""3D-Shapes-style scenes ray-cast on demand from their factors.

An object standing on the floor of a room, seen by a perspective camera, with
the factor grid of DeepMind's 3D Shapes (Burgess & Kim, 2018): 10 floor hues x
10 wall hues x 10 object hues x 8 scales x 4 shapes x 15 orientations = 480,000
images. Nothing is stored: each call ray-casts the distinct (scale, shape,
orientation) geometries it is asked for, vectorised over the batch, and colours
every image with its three hues.

The scene, in world units with y up: the floor is the plane y = 0, the room
has a back wall (z = -3.5) and a right wall (x = 3), and the object stands on
the floor at the origin. A directional light fixed in the room shades every
surface (ambient + Lambertian) and casts the object's shadow on the floor;
floor and walls darken softly towards the room's creases for depth. The
orientation factor orbits the camera about the vertical axis through the
object, so the room corner moves across the image, the cube and the capsule
show other faces and lengths, and the lit side of the sphere and cylinder
turns: every shape changes with it.
"""

from __future__ import annotations

import numpy as np

from sparse_shared_jax.data import _render
from sparse_shared_jax.data.ground_truth import GroundTruthDataset

_IMAGE_SIZE = 64
_HUES = np.arange(10) / 10.0  # floor, wall and object hues, [0, 1)
_SCALES = np.linspace(0.75, 1.25, 8)
_SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
_ORIENTATIONS_DEG = np.linspace(-30.0, 30.0, 15)

# Camera: looks at a point above the object from `_CAMERA_DISTANCE` away,
# `_CAMERA_ELEVATION_DEG` above the horizon, orbiting with the orientation.
_CAMERA_TARGET = np.array([0.0, 0.55, 0.0])
_CAMERA_DISTANCE = 6.0
_CAMERA_ELEVATION_DEG = 20.0
_FIELD_OF_VIEW_DEG = 40.0  # vertical and horizontal (square image)

# Room walls: the planes z = _BACK_WALL_Z and x = _SIDE_WALL_X.
_BACK_WALL_Z = -3.5
_SIDE_WALL_X = 3.0

# Lighting: unit direction towards the light, ambient level, and the depth of
# the darkening of floor and walls near the room's creases.
_LIGHT = np.array([-0.6, 0.7, 0.4]) / np.linalg.norm([-0.6, 0.7, 0.4])
_AMBIENT = 0.45
_CREASE_DARKENING = 0.3
_CREASE_WIDTH = 0.6

_Vec = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y, z components


class SyntheticShapes3D(GroundTruthDataset):
    """3D-Shapes-style scenes, float32 [64, 64, 3] in [0, 1].

    Factors (index grid -> natural value returned by `factor_values`):

    * ``floor_hue``, ``wall_hue``, ``object_hue`` (10 each): ``k / 10``, the
      hue of a fully saturated colour (0 red, 1/3 green, 2/3 blue).
    * ``scale`` (8): ``linspace(0.75, 1.25, 8)``, the object's size.
    * ``shape`` (4): cube, cylinder, sphere, capsule (a pill lying along the
      room's x axis) -> 0, 1, 2, 3.
    * ``orientation`` (15): ``linspace(-30, 30, 15)`` degrees, the camera's
      azimuth about the object, positive towards the right wall (equivalently
      the scene turned the opposite way about the vertical axis). It moves the
      room corner, turns the cube and capsule, and turns the lit side of every
      shape, the sphere and cylinder included.

    Args:
      antialias: sub-pixels per pixel along each axis; each pixel averages
        antialias x antialias rays (1: one ray per pixel, aliased edges).
    """

    factor_names = (
        "floor_hue",
        "wall_hue",
        "object_hue",
        "scale",
        "shape",
        "orientation",
    )
    factor_sizes = (
        len(_HUES),
        len(_HUES),
        len(_HUES),
        len(_SCALES),
        len(_SHAPE_NAMES),
        len(_ORIENTATIONS_DEG),
    )
    observation_shape = (_IMAGE_SIZE, _IMAGE_SIZE, 3)

    def __init__(self, antialias: int = 2):
        if antialias < 1:
            raise ValueError(f"antialias must be >= 1; got {antialias}.")
        self.antialias = antialias
        self._grid = _render.subpixel_centres(_IMAGE_SIZE, antialias)
        self._window = _object_window()
        # The shading maps of every geometry (scale, shape, orientation),
        # ray-cast the first time a geometry is asked for: 480 x 48 KiB.
        num_geometries = int(np.prod(self.factor_sizes[3:]))
        self._shading = np.zeros((num_geometries, 3, _IMAGE_SIZE**2), np.float32)
        self._cast = np.zeros(num_geometries, bool)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Natural values: three hues in [0, 1), scale, shape id, angle (deg).

        Args:
          factors: int [num, 6] indices.

        Returns:
          float64 [num, 6].
        """
        factors = _render.check_factor_indices(
            factors, self.factor_names, self.factor_sizes
        )
        return np.concatenate(
            [
                _HUES[factors[:, :3]],
                _SCALES[factors[:, 3:4]],
                factors[:, 4:5].astype(np.float64),
                _ORIENTATIONS_DEG[factors[:, 5:6]],
            ],
            axis=1,
        )

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Renders scenes: int [num, 6] -> float32 [num, 64, 64, 3].

        Raises:
          ValueError: if `factors` is not [num, 6] or an index is out of range.
        """
        factors = _render.check_factor_indices(
            factors, self.factor_names, self.factor_sizes
        )
        # Geometry depends on (scale, shape, orientation) only: ray-cast each
        # geometry once per dataset object, then colour every image.
        geometry = np.ravel_multi_index(factors[:, 3:].T, self.factor_sizes[3:])
        self._cast_missing(geometry)
        shading = self._shading[geometry]  # [num, 3 regions, pixels]
        colours = _render.hue_to_rgb(_HUES[factors[:, :3]])  # [num, 3 regions, rgb]
        images = np.matmul(shading.transpose(0, 2, 1), colours)  # [num, pixels, rgb]
        return images.reshape(len(factors), *self.observation_shape)

    def _cast_missing(self, geometry: np.ndarray) -> None:
        """Ray-casts the geometries (flat indices) not cast before.

        A geometry's maps do not depend on which others are cast with it, so
        the images are the same whatever was rendered before.
        """
        missing = np.unique(geometry[~self._cast[geometry]])
        if missing.size == 0:
            return
        scale, shape, orientation = np.unravel_index(missing, self.factor_sizes[3:])
        maps = self._shading_maps(_SCALES[scale], shape, orientation)
        self._shading[missing] = maps.reshape(len(missing), 3, _IMAGE_SIZE**2)
        self._cast[missing] = True

    def _shading_maps(
        self, scale: np.ndarray, shape: np.ndarray, orientation: np.ndarray
    ) -> np.ndarray:
        """Per-pixel light reaching the camera from the floor, walls and object.

        The room is ray-cast once per distinct orientation; the object and its
        shadow once per geometry, inside the window that can contain them.

        Args:
          scale: float [n] object scales.
          shape: int [n] shape ids.
          orientation: int [n] orientation indices.

        Returns:
          float32 [n, 3, 64, 64]: for the regions floor, wall and object, and
          each pixel, the mean over the pixel's rays of (ray ends on the
          region) * (shading there). An image is these maps times the
          regions' colours.
        """
        views, view_of = np.unique(orientation, return_inverse=True)
        azimuth = np.deg2rad(_ORIENTATIONS_DEG[views])
        origin, direction = _camera_rays(azimuth, self._grid)
        floor, wall = _room_shading(origin, direction)  # [views, s, s] each
        maps = np.zeros((len(scale), 3, _IMAGE_SIZE, _IMAGE_SIZE), np.float32)
        maps[:, 0] = _render.downsample(floor, self.antialias)[view_of]
        maps[:, 1] = _render.downsample(wall, self.antialias)[view_of]

        # Inside the window that can show the object or its shadow, ray-cast
        # them and recompose the three maps.
        rows, cols = (
            slice(w.start * self.antialias, w.stop * self.antialias)
            for w in self._window
        )  # in sub-pixels
        floor_point = _floor_points(origin, direction)
        on_object, object_shade, in_shadow = _cast_objects(
            tuple(o[view_of] for o in origin),
            tuple(d[:, rows, cols][view_of] for d in direction),
            tuple(p[:, rows, cols][view_of] for p in floor_point),
            scale.astype(np.float32),
            shape,
        )  # [n, window rows, window cols] each
        floor = floor[:, rows, cols][view_of]
        floor = np.where(in_shadow, floor * (_AMBIENT / _FLOOR_LIGHT), floor)
        wall = wall[:, rows, cols][view_of]
        visible = ~on_object
        for region, shading in enumerate(
            [floor * visible, wall * visible, object_shade]
        ):
            maps[:, region, self._window[0], self._window[1]] = _render.downsample(
                shading, self.antialias
            )
        return maps


def _cast_objects(
    origin: _Vec,
    direction: _Vec,
    floor_point: _Vec,
    scale: np.ndarray,
    shape: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-casts each object and the shadow it casts on the floor.

    Args:
      origin: camera centres, components [n, 1, 1].
      direction: ray directions, components [n, h, w].
      floor_point: where each ray meets the floor plane, components [n, h, w].
      scale: float32 [n] object scales.
      shape: int [n] shape ids.

    Returns:
      (on_object, shade, in_shadow), each [n, h, w]: whether the ray ends on
      the object, the object's shading there (0 elsewhere), and whether its
      floor point is in the object's shadow.
    """
    scale = scale[:, None, None]
    on_object = np.zeros(direction[0].shape, bool)
    shade = np.zeros(direction[0].shape, np.float32)
    in_shadow = np.zeros(direction[0].shape, bool)
    light = tuple(np.float32(c) for c in _LIGHT)
    for shape_id, (distance_to, normal_at) in enumerate(_PRIMITIVES):
        rows = np.flatnonzero(shape == shape_id)
        if rows.size == 0:
            continue
        ray_origin = tuple(o[rows] for o in origin)
        ray_direction = tuple(d[rows] for d in direction)
        t = distance_to(ray_origin, ray_direction, scale[rows])
        hit = np.isfinite(t)
        t = np.where(hit, t, 0.0)
        point = _point_at(ray_origin, ray_direction, t)
        on_object[rows] = hit
        shade[rows] = np.where(hit, _lambert(normal_at(point, scale[rows])), 0.0)
        shadow_origin = tuple(p[rows] for p in floor_point)
        in_shadow[rows] = np.isfinite(distance_to(shadow_origin, light, scale[rows]))
    return on_object, shade, in_shadow


def _dot(a: _Vec, b: _Vec) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _point_at(origin: _Vec, direction: _Vec, t: np.ndarray) -> _Vec:
    """Points origin + t * direction along rays."""
    return tuple(o + t * d for o, d in zip(origin, direction, strict=True))


def _lambert(normal: _Vec) -> np.ndarray:
    """Ambient plus diffuse shading of unit normals under the room's light."""
    cosine = _dot(normal, tuple(float(c) for c in _LIGHT))
    return _AMBIENT + (1.0 - _AMBIENT) * np.maximum(cosine, 0.0)


# Shading of the floor (normal +y), back wall (+z) and side wall (-x).
_FLOOR_LIGHT = float(_lambert((0.0, 1.0, 0.0)))
_BACK_WALL_LIGHT = float(_lambert((0.0, 0.0, 1.0)))
_SIDE_WALL_LIGHT = float(_lambert((-1.0, 0.0, 0.0)))


def _camera_frames(azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and orientations of cameras orbiting the object.

    Args:
      azimuth: float [n] camera azimuths in radians (0 faces the back wall).

    Returns:
      (position [n, 3], axes [n, 3, 3]): axes[:, 0] points right in the image,
      axes[:, 1] up, axes[:, 2] forwards (the viewing direction); unit vectors.
    """
    elevation = np.deg2rad(_CAMERA_ELEVATION_DEG)
    backwards = np.stack(
        [
            np.sin(azimuth) * np.cos(elevation),
            np.full_like(azimuth, np.sin(elevation)),
            np.cos(azimuth) * np.cos(elevation),
        ],
        axis=1,
    )  # [n, 3], from the target to the camera
    right = np.stack(
        [np.cos(azimuth), np.zeros_like(azimuth), -np.sin(azimuth)], axis=1
    )
    up = np.cross(right, -backwards)
    position = _CAMERA_TARGET + _CAMERA_DISTANCE * backwards
    return position, np.stack([right, up, -backwards], axis=1)


def _camera_rays(azimuth: np.ndarray, grid: np.ndarray) -> tuple[_Vec, _Vec]:
    """Rays through every sub-pixel of cameras orbiting the object.

    Args:
      azimuth: float [n] camera azimuths in radians.
      grid: float32 [s] sub-pixel centres in [0, 1] along each image axis.

    Returns:
      (origin, direction): origin components float32 [n, 1, 1] (the camera
      centres), direction components float32 [n, s, s] (not normalised),
      indexed [camera, row, column].
    """
    position, axes = _camera_frames(azimuth)
    right, up, forward = np.moveaxis(axes, 1, 0)  # [n, 3] each
    screen = (2.0 * grid - 1.0) * np.tan(np.deg2rad(_FIELD_OF_VIEW_DEG) / 2)
    across, down = screen[None, None, :], screen[None, :, None]
    origin = tuple(position[:, k, None, None].astype(np.float32) for k in range(3))
    direction = tuple(
        (
            forward[:, k, None, None]
            + across * right[:, k, None, None]
            - down * up[:, k, None, None]
        ).astype(np.float32)
        for k in range(3)
    )
    return origin, direction


def _object_window() -> tuple[slice, slice]:
    """Pixel rows and columns that can show the object or its shadow.

    Projects a box holding the largest object of any shape, and that box's
    shadow on the floor, through every camera, and bounds the result.

    Returns:
      (rows, cols): pixel slices of the image, one pixel of margin included.
    """
    radius = _OBJECT_BOUND_RADIUS * _SCALES.max()
    height = _OBJECT_BOUND_HEIGHT * _SCALES.max()
    corners = np.array(
        [
            [x, y, z]
            for x in (-radius, radius)
            for y in (0, height)
            for z in (-radius, radius)
        ]
    )  # [8, 3]
    shadow_shift = -height * _LIGHT / _LIGHT[1]  # top of the box -> floor
    shadow = corners[corners[:, 1] == 0] + shadow_shift * [1, 0, 1]
    points = np.concatenate([corners, shadow])  # [12, 3]
    position, axes = _camera_frames(np.deg2rad(_ORIENTATIONS_DEG))
    camera = np.einsum("vij,vpj->vpi", axes, points[None] - position[:, None])
    tan = np.tan(np.deg2rad(_FIELD_OF_VIEW_DEG) / 2)
    col = (1.0 + camera[..., 0] / (camera[..., 2] * tan)) / 2 * _IMAGE_SIZE
    row = (1.0 - camera[..., 1] / (camera[..., 2] * tan)) / 2 * _IMAGE_SIZE

    def bounds(pixel: np.ndarray) -> slice:
        low = max(int(np.floor(pixel.min())) - 1, 0)
        return slice(low, min(int(np.ceil(pixel.max())) + 1, _IMAGE_SIZE))

    return bounds(row), bounds(col)


def _floor_points(origin: _Vec, direction: _Vec) -> _Vec:
    """Where each ray meets the floor plane y = 0 (garbage for rising rays)."""
    with np.errstate(divide="ignore"):
        t = np.where(direction[1] < 0, -origin[1] / direction[1], 0.0)
    return _point_at(origin, direction, t)


def _room_shading(origin: _Vec, direction: _Vec) -> tuple[np.ndarray, np.ndarray]:
    """Shading of the floor and walls each ray meets, ignoring the object.

    Args:
      origin, direction: camera rays, components [n, 1, 1] and [n, s, s].

    Returns:
      (floor, wall): float32 [n, s, s] each, the shading where the ray ends on
      that region and 0 elsewhere.
    """
    ox, oy, oz = origin
    dx, dy, dz = direction
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dy < 0, -oy / dy, np.inf)
        t_back = np.where(dz < 0, (_BACK_WALL_Z - oz) / dz, np.inf)
        t_side = np.where(dx > 0, (_SIDE_WALL_X - ox) / dx, np.inf)
    t_wall = np.minimum(t_back, t_side)
    on_floor = t_floor < t_wall
    on_back = ~on_floor & (t_back <= t_side)

    t_floor = np.where(on_floor, t_floor, 0.0)
    floor_x, floor_z = ox + t_floor * dx, oz + t_floor * dz
    floor_crease = np.minimum(_SIDE_WALL_X - floor_x, floor_z - _BACK_WALL_Z)
    floor = _FLOOR_LIGHT * _crease_darkening(floor_crease)

    t_wall = np.where(on_floor, 0.0, t_wall)
    wall_x, wall_y, wall_z = ox + t_wall * dx, oy + t_wall * dy, oz + t_wall * dz
    back_crease = np.minimum(wall_y, _SIDE_WALL_X - wall_x)
    side_crease = np.minimum(wall_y, wall_z - _BACK_WALL_Z)
    back = _BACK_WALL_LIGHT * _crease_darkening(back_crease)
    side = _SIDE_WALL_LIGHT * _crease_darkening(side_crease)
    wall = np.where(on_back, back, side)
    zero = np.float32(0.0)
    return np.where(on_floor, floor, zero), np.where(on_floor, zero, wall)


def _crease_darkening(distance: np.ndarray) -> np.ndarray:
    """Soft darkening of room surfaces within about _CREASE_WIDTH of a crease."""
    distance = np.maximum(distance, 0.0)
    return 1.0 - _CREASE_DARKENING * np.exp(-distance / _CREASE_WIDTH)


# Object primitives, sized by the scale s [n, 1, 1], all standing on the floor
# at the origin. Each has a `*_distance(origin, direction, s)` returning the ray
# parameter t of the first hit in front of the origin (inf on a miss), and a
# `*_normal(point, s)` returning the unit outward normal at a surface point.
_CUBE_HALF_SIDE = 0.55
_CYLINDER_RADIUS, _CYLINDER_HEIGHT = 0.55, 1.1
_SPHERE_RADIUS = 0.6
_CAPSULE_RADIUS, _CAPSULE_HALF_LENGTH = 0.4, 0.55
# Every shape at s = 1 fits in |x|, |z| <= radius, 0 <= y <= height.
_OBJECT_BOUND_RADIUS = max(
    _CUBE_HALF_SIDE,
    _CYLINDER_RADIUS,
    _SPHERE_RADIUS,
    _CAPSULE_HALF_LENGTH + _CAPSULE_RADIUS,
)
_OBJECT_BOUND_HEIGHT = max(
    2.0 * _CUBE_HALF_SIDE,
    _CYLINDER_HEIGHT,
    2.0 * _SPHERE_RADIUS,
    2.0 * _CAPSULE_RADIUS,
)


def _cube_distance(origin: _Vec, direction: _Vec, s: np.ndarray) -> np.ndarray:
    """Slab test against the box [-a, a] x [0, 2a] x [-a, a], a = half side."""
    half = _CUBE_HALF_SIDE * s
    bounds = ((-half, half), (0.0 * half, 2.0 * half), (-half, half))
    near, far = -np.inf, np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        for o, d, (low, high) in zip(origin, direction, bounds, strict=True):
            t_low, t_high = (low - o) / d, (high - o) / d
            near = np.maximum(near, np.minimum(t_low, t_high))
            far = np.minimum(far, np.maximum(t_low, t_high))
    return np.where((near <= far) & (near > 0), near, np.inf)


def _cube_normal(point: _Vec, s: np.ndarray) -> _Vec:
    half = _CUBE_HALF_SIDE * s
    x, y, z = point[0] / half, point[1] / half - 1.0, point[2] / half  # [-1, 1]^3
    face_x = (np.abs(x) >= np.abs(y)) & (np.abs(x) >= np.abs(z))
    face_y = ~face_x & (np.abs(y) >= np.abs(z))
    face_z = ~face_x & ~face_y
    return face_x * np.sign(x), face_y * np.sign(y), face_z * np.sign(z)


def _first_root(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Smaller root of a t^2 + b t + c = 0 (a > 0) if real and positive, else inf."""
    discriminant = b * b - 4.0 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(discriminant, 0.0))) / (2.0 * a)
    return np.where((discriminant >= 0) & (t > 0), t, np.inf)


def _sphere_hit(origin: _Vec, direction: _Vec, centre: _Vec, radius) -> np.ndarray:
    """Ray parameter of the first hit with a sphere, inf on a miss."""
    offset = tuple(o - c for o, c in zip(origin, centre, strict=True))
    a = _dot(direction, direction)
    b = 2.0 * _dot(offset, direction)
    c = _dot(offset, offset) - radius * radius
    return _first_root(a, b, c)


def _cylinder_distance(origin: _Vec, direction: _Vec, s: np.ndarray) -> np.ndarray:
    """Upright cylinder: the side between y = 0 and y = h, and the top cap."""
    radius, height = _CYLINDER_RADIUS * s, _CYLINDER_HEIGHT * s
    (ox, oy, oz), (dx, dy, dz) = origin, direction
    t_side = _first_root(
        dx * dx + dz * dz, 2.0 * (ox * dx + oz * dz), ox * ox + oz * oz - radius**2
    )
    y_side = oy + np.where(np.isfinite(t_side), t_side, 0.0) * dy
    t_side = np.where((y_side >= 0) & (y_side <= height), t_side, np.inf)
    with np.errstate(divide="ignore"):
        t_cap = (height - oy) / dy
    cap_x, cap_z = ox + t_cap * dx, oz + t_cap * dz
    on_cap = (t_cap > 0) & (cap_x * cap_x + cap_z * cap_z <= radius * radius)
    return np.minimum(t_side, np.where(on_cap, t_cap, np.inf))


def _cylinder_normal(point: _Vec, s: np.ndarray) -> _Vec:
    radius, height = _CYLINDER_RADIUS * s, _CYLINDER_HEIGHT * s
    x, y, z = point
    radial = np.sqrt(x * x + z * z)
    on_cap = np.abs(y - height) / height < np.abs(radial - radius) / radius
    scale = np.where(on_cap, 0.0, 1.0 / np.maximum(radial, 1e-6))
    return x * scale, on_cap.astype(np.float32), z * scale


def _sphere_distance(origin: _Vec, direction: _Vec, s: np.ndarray) -> np.ndarray:
    radius = _SPHERE_RADIUS * s
    return _sphere_hit(origin, direction, (0.0, radius, 0.0), radius)


def _sphere_normal(point: _Vec, s: np.ndarray) -> _Vec:
    radius = _SPHERE_RADIUS * s
    return point[0] / radius, (point[1] - radius) / radius, point[2] / radius


def _capsule_distance(origin: _Vec, direction: _Vec, s: np.ndarray) -> np.ndarray:
    """Capsule lying along x: a cylinder of half-length l and two end spheres."""
    radius, half_length = _CAPSULE_RADIUS * s, _CAPSULE_HALF_LENGTH * s
    (ox, oy, oz), (dx, dy, dz) = origin, direction
    oy = oy - radius  # relative to the axis y = radius
    t_side = _first_root(
        dy * dy + dz * dz, 2.0 * (oy * dy + oz * dz), oy * oy + oz * oz - radius**2
    )
    x_side = ox + np.where(np.isfinite(t_side), t_side, 0.0) * dx
    t_side = np.where(np.abs(x_side) <= half_length, t_side, np.inf)
    t_ends = [
        _sphere_hit(origin, direction, (end, radius, 0.0), radius)
        for end in (-half_length, half_length)
    ]
    return np.minimum(t_side, np.minimum(*t_ends))


def _capsule_normal(point: _Vec, s: np.ndarray) -> _Vec:
    radius, half_length = _CAPSULE_RADIUS * s, _CAPSULE_HALF_LENGTH * s
    x, y, z = point
    axis_x = np.clip(x, -half_length, half_length)  # nearest point on the axis
    return (x - axis_x) / radius, (y - radius) / radius, z / radius


_PRIMITIVES = (
    (_cube_distance, _cube_normal),
    (_cylinder_distance, _cylinder_normal),
    (_sphere_distance, _sphere_normal),
    (_capsule_distance, _capsule_normal),
)
