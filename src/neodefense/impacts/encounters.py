"""Propagate virtual asteroids and record their close approaches, in chunks, on Dask or here.

:func:`propagate_chunk` is the unit of work sent to a Dask worker: numpy arrays in (the samples'
parameters), a numpy structured array out (one row per approach), the ephemeris opened once per
worker process by :func:`neodefense.dynamics.ephemeris.assist_ephem` (see
:mod:`neodefense.compute`). Each virtual asteroid is integrated by
:func:`neodefense.dynamics.propagator.close_approaches` (one REBOUND simulation per asteroid);
its approaches after the first impact are dropped (the trajectory beyond it means nothing).
A virtual asteroid whose integration fails is reported in ``failed`` (never silently lost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from neodefense.dynamics import ephemeris
from neodefense.dynamics.nongrav import NONGRAV_NAMES, NonGrav
from neodefense.dynamics.propagator import close_approaches
from neodefense.impacts.bplane import RADIUS_KM

__all__ = ["APPROACH_DTYPE", "body_and_sun_states", "nongrav_from_params", "propagate_chunk",
           "propagate_virtual_asteroids"]

#: one close approach of one virtual asteroid
APPROACH_DTYPE = np.dtype([
    ("va", "i8"), ("body", "U8"), ("time_tdb_jd", "f8"), ("dist_km", "f8"),
    ("obj", "f8", (6,)), ("body_state", "f8", (6,)), ("sun_state", "f8", (6,)),
])


def nongrav_from_params(values: np.ndarray, names: Sequence[str], fitted: bool = False
                        ) -> NonGrav | None:
    """The :class:`NonGrav` of a sample's non-grav parameters ``values`` named ``names`` (None
    without any); ``fitted``: ask the propagator for their partials too."""
    if not names:
        return None
    kw = {name: float(v) for name, v in zip(names, values, strict=True) if name in NONGRAV_NAMES}
    return NonGrav(**kw, fitted=tuple(names) if fitted else ())


def body_and_sun_states(body: str, tdb_jd: float) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric [x, y, z, vx, vy, vz] (au, au/day) of ``body`` and of the Sun (DE440)."""
    bp, bv = ephemeris.body_barycentric_state(body, tdb_jd)
    sp, sv = ephemeris.body_barycentric_state("sun", tdb_jd)
    return np.concatenate([bp[0], bv[0]]), np.concatenate([sp[0], sv[0]])


def propagate_chunk(epoch_tdb_jd: float, params: np.ndarray, indices: np.ndarray,
                    until_tdb_jd: float, bodies: Sequence[str], radius_au: Mapping[str, float],
                    nongrav_names: Sequence[str] = ()) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Close approaches of the virtual asteroids ``params`` (n, 6 + k) from the epoch to
    ``until_tdb_jd``. ``indices`` (n,) label them in the result. Returns ``(approaches
    (APPROACH_DTYPE), failed [(index, message)])``."""
    rows: list[tuple[Any, ...]] = []
    failed: list[tuple[int, str]] = []
    for label, p in zip(np.asarray(indices).tolist(), np.asarray(params, dtype=float), strict=True):
        try:
            found = close_approaches(epoch_tdb_jd, p[:6], until_tdb_jd, bodies=tuple(bodies),
                                     radius_au=dict(radius_au),
                                     nongrav=nongrav_from_params(p[6:], nongrav_names),
                                     stop_inside_km={b: RADIUS_KM[b] for b in bodies})
        except (RuntimeError, ValueError) as exc:
            failed.append((int(label), f"{type(exc).__name__}: {exc}"))
            continue
        # the integration stops just past an impact: the last approach is then the impact
        for ca in found:
            body_state, sun_state = body_and_sun_states(ca.body, ca.time_tdb_jd)
            obj = body_state + np.concatenate([ca.rel_position_au, ca.rel_velocity_au_per_day])
            rows.append((label, ca.body, ca.time_tdb_jd, ca.distance_km, obj, body_state,
                         sun_state))
    return np.array(rows, dtype=APPROACH_DTYPE), failed


def propagate_virtual_asteroids(epoch_tdb_jd: float, params: np.ndarray, until_tdb_jd: float,
                                bodies: Sequence[str], radius_au: Mapping[str, float],
                                nongrav_names: Sequence[str] = (), client: Any = None,
                                chunk_size: int | None = None,
                                progress: Callable[[int], None] | None = None
                                ) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """All virtual asteroids' approaches (sorted by asteroid, then time) and failures.

    ``client``: a Dask client (chunks of ``chunk_size`` asteroids spread over its workers; default
    ~4 chunks per worker, at most 50 asteroids each) or None (this process, in order).
    ``progress(k)`` is called with the number of asteroids finished after each chunk.
    """
    params = np.asarray(params, dtype=float)
    n = params.shape[0]
    if n == 0:
        return np.zeros(0, dtype=APPROACH_DTYPE), []
    if chunk_size is None:
        workers = 1
        if client is not None:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunk_size = int(min(50, max(1, np.ceil(n / (4 * workers)))))
    starts = range(0, n, chunk_size)
    args = (until_tdb_jd, tuple(bodies), dict(radius_au), tuple(nongrav_names))
    parts: list[np.ndarray] = []
    failed: list[tuple[int, str]] = []
    if client is None:
        for s in starts:
            idx = np.arange(s, min(s + chunk_size, n))
            rows, bad = propagate_chunk(epoch_tdb_jd, params[idx], idx, *args)
            parts.append(rows)
            failed += bad
            if progress is not None:
                progress(idx.size)
    else:
        from distributed import as_completed

        futures = {}
        for s in starts:
            idx = np.arange(s, min(s + chunk_size, n))
            fut = client.submit(propagate_chunk, epoch_tdb_jd, params[idx], idx, *args, pure=False)
            futures[fut] = idx.size
        for fut in as_completed(list(futures)):
            rows, bad = fut.result()
            parts.append(rows)
            failed += bad
            if progress is not None:
                progress(futures[fut])
            fut.release()
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=APPROACH_DTYPE)
    out = out[np.lexsort((out["time_tdb_jd"], out["va"]))]
    return out, sorted(failed)

