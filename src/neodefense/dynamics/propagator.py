"""The one propagator of neodefense: ASSIST + REBOUND (IAS15) on DE440.

Conventions (inputs and outputs): barycentric ICRF (equatorial J2000 axes, origin the
solar-system barycentre) Cartesian states ``[x, y, z, vx, vy, vz]`` in au and au/day; times are
TDB Julian dates (optionally two-part: ``jd = jd1 + jd2``).

Force model (ASSIST, ``assist.Extras`` defaults kept on purpose): Sun, planets, Moon and Pluto
from DE440 and the 16 most massive main-belt asteroids from DE441 (``sb441-n16``) as point
masses; the Earth's zonal harmonics J2, J3, J4 and the Sun's J2; Einstein–Infeld–Hoffmann
relativistic terms; Marsden non-gravitational accelerations (:mod:`.nongrav`). The variational
equations (state-transition matrix, ∂/∂A_i) are ASSIST's analytic ones for all of these.

Settings chosen here (measured on Apophis JPL #220 and Bennu JPL #118; see
``tests/test_propagator.py`` and ``benchmarks/bench_propagator.py``):

* ``gr_eih_sources = 11`` — EIH relativity from the Sun *and* the planets, Moon and Pluto (ASSIST's
  default is the Sun only). STACK-NOTES: Apophis through 2029 is 13.5 km off JPL with the
  default and 28 m with 11.
* ``ri_ias15.adaptive_mode = 2`` (the PRS23 step criterion of Pham, Rein & Spiegel 2024, REBOUND's
  own default). ASSIST switches IAS15 to the legacy "global" criterion (mode 1), which on these
  orbits keeps the step pinned at ``min_dt``: Apophis 2025→2029 takes 1,508 steps at 1e-3 d
  instead of 232 (same 2029 distance to 0.1 m), and with ``min_dt = 0`` over 200,000 (the "700×
  slower" of STACK-NOTES). Those many small steps also cost accuracy (most likely round-off in
  the time, |t| ~ 1e4 d from ``jd_ref``): Apophis 10 years on (past 2029) differs from a
  tight-tolerance (epsilon 1e-12) run by 12 km with mode 1 and min_dt 1e-3 d, 2,000 km with
  1e-4 d, and 0.3 km in mode 2.
* ``ri_ias15.epsilon = 1e-10`` (REBOUND default 1e-9): Bennu over 100 years, through its close
  Earth approaches, changes by 1.1 km against 1e-12 instead of 60 km, for ~15 % more time.
* ``ri_ias15.min_dt = 1e-6`` day (0.09 s): never reached by orbits that stay outside the Earth
  (at 15 km/s the smallest step is 62 s for a pass at 2 Earth radii, 24 s at 1, 7 s at 0.5),
  but it keeps IAS15 from stalling on a trajectory through a body's centre (a virtual impactor
  aimed at the geocentre), where the step would otherwise shrink without bound.
* Output times: ``Extras.integrate_or_interpolate`` (IAS15's own dense output inside the last
  step) instead of stopping the integrator at every observation time; near the ends of DE440 the
  integrator lands exactly on the last times instead (an overshooting step past the end of the
  file crashes ASSIST).

One REBOUND simulation per object (a shared simulation follows the hardest particle's step) and
the ephemeris opened once per process (:func:`neodefense.dynamics.ephemeris.assist_ephem`). Inputs
and outputs are numpy arrays and small dataclasses: send them to Dask workers, never a
``rebound.Simulation`` or ``assist.Ephem``.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from neodefense.dynamics.ephemeris import (
    assist_ephem,
    check_de440_coverage,
    de440_coverage_tdb_jd,
)
from neodefense.dynamics.nongrav import NonGrav

__all__ = [
    "GR_EIH_SOURCES",
    "IAS15_ADAPTIVE_MODE",
    "IAS15_EPSILON",
    "IAS15_MIN_DT_DAY",
    "CloseApproach",
    "NonGrav",
    "Propagation",
    "close_approaches",
    "propagate",
]

#: EIH general relativity from the Sun, planets, Moon and Pluto (ASSIST default: 1 = Sun only)
GR_EIH_SOURCES = 11
#: IAS15 step-size criterion: 2 = PRS23 (Pham, Rein & Spiegel 2024)
IAS15_ADAPTIVE_MODE = 2
#: IAS15 precision parameter
IAS15_EPSILON = 1e-10
#: smallest IAS15 step (days): a guard against stalling at a body's centre, not an accuracy knob
IAS15_MIN_DT_DAY = 1e-6
#: first trial step (days); IAS15 adapts it after the first step
_INITIAL_DT_DAY = 1e-3
#: within this many days of the DE440 ends, land exactly on output times (no overshooting step)
_EDGE_GUARD_DAY = 3650.0

#: stand-in for A = 0 when partials are wanted (see _new_simulation)
_TINY_A_AU_PER_DAY2 = 1e-200

#: ASSIST body index by lower-case name (Sun, planets, Moon, Pluto have velocities in ASSIST)
_ASSIST_BODIES: dict[str, int] = {
    "sun": 0, "mercury": 1, "venus": 2, "earth": 3, "moon": 4, "mars": 5, "jupiter": 6,
    "saturn": 7, "uranus": 8, "neptune": 9, "pluto": 10,
}


@dataclass(frozen=True)
class Propagation:
    """Result of :func:`propagate`, in the order of the requested times.

    ``states_au`` (T, 6): barycentric ICRF [x, y, z, vx, vy, vz] in au, au/day.
    ``stm`` (T, 6, 6): ∂state(t)/∂state(epoch) (row = output component, column = epoch
    component), or ``None`` without ``stm=True``.
    ``nongrav_partials`` (T, 6, k): ∂state(t)/∂A_i for ``nongrav_names`` (the ``fitted`` tuple of
    the :class:`NonGrav`), in (au, au/day) per (au/day²); ``None`` without ``stm=True``.
    """

    times_tdb_jd: np.ndarray
    states_au: np.ndarray
    stm: np.ndarray | None = None
    nongrav_partials: np.ndarray | None = None
    nongrav_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class CloseApproach:
    """A local minimum of the distance to a body, below the requested radius.

    ``time_tdb_jd``: TDB Julian date of the minimum (root of the radial velocity, to < 0.01 s).
    ``distance_au``: centre-to-centre distance at that time.
    ``rel_position_au``, ``rel_velocity_au_per_day``: object minus body, ICRF axes (inputs for
    b-plane coordinates).
    """

    body: str
    time_tdb_jd: float
    distance_au: float
    rel_position_au: np.ndarray
    rel_velocity_au_per_day: np.ndarray

    @property
    def distance_km(self) -> float:
        from neodefense.dynamics.ephemeris import AU_KM

        return self.distance_au * AU_KM

    @property
    def speed_km_s(self) -> float:
        """Relative speed at the minimum (km/s)."""
        from neodefense.dynamics.ephemeris import AU_KM

        return float(np.linalg.norm(self.rel_velocity_au_per_day)) * AU_KM / 86_400.0


# ---------------------------------------------------------------------------------------------
# simulation set-up


def _validate_state(state_au: np.ndarray | Sequence[float]) -> np.ndarray:
    state = np.asarray(state_au, dtype=float)
    if state.shape != (6,):
        raise ValueError(f"state_au must have shape (6,) [x, y, z, vx, vy, vz], got {state.shape}")
    if not np.all(np.isfinite(state)):
        raise ValueError(f"state_au must be finite, got {state.tolist()}")
    if np.linalg.norm(state[:3]) == 0.0:
        raise ValueError("state_au is at the solar-system barycentre (zero position)")
    return state


def _new_simulation(t_rel: float, state: np.ndarray, nongrav: NonGrav | None, *,
                    stm: bool = False, direction: float = 1.0):
    """A REBOUND simulation with ASSIST attached, one test particle at ``state`` (time ``t_rel``,
    days from ``jd_ref``). With ``stm``: 6 first-order variations (unit initial vectors) and one
    per fitted non-grav parameter (zero initial vector, unit parameter variation)."""
    import assist
    import rebound

    ephem = assist_ephem()
    sim = rebound.Simulation()
    extras = assist.Extras(sim, ephem)  # sets units, IAS15, forces; keeps itself alive on sim
    extras.gr_eih_sources = GR_EIH_SOURCES
    ng = nongrav if nongrav is not None else NonGrav()
    extras.alpha = float(ng.alpha)
    extras.r0 = float(ng.r0_au)
    extras.nm = float(ng.m)
    extras.nn = float(ng.n)
    extras.nk = float(ng.k)

    sim.add(x=state[0], y=state[1], z=state[2], vx=state[3], vy=state[4], vz=state[5])
    sim.t = t_rel
    sim.ri_ias15.adaptive_mode = IAS15_ADAPTIVE_MODE
    sim.ri_ias15.epsilon = IAS15_EPSILON
    sim.ri_ias15.min_dt = IAS15_MIN_DT_DAY
    sim.dt = direction * _INITIAL_DT_DAY

    params = [*ng.values]
    if stm and ng.fitted and not any(params):
        # ASSIST skips the non-gravitational term, variational part included, for a particle
        # whose A1 = A2 = A3 = 0, which would zero the partials. A 1e-200 au/day² acceleration
        # keeps the term alive and changes nothing (well above the subnormal range).
        params[ng.fitted_indices()[0]] = _TINY_A_AU_PER_DAY2
    if stm:
        for j in range(6):
            var = sim.add_variation(order=1, testparticle=0)
            p = var.particles[0]
            setattr(p, ("x", "y", "z", "vx", "vy", "vz")[j], 1.0)
            params += [0.0, 0.0, 0.0]
        for i in ng.fitted_indices():
            sim.add_variation(order=1, testparticle=0)  # zero initial vector
            unit = [0.0, 0.0, 0.0]
            unit[i] = 1.0
            params += unit
    # ASSIST reads A1..A3 of particle j at 3*j and of variation v at 3*(N_real + v)
    extras.particle_params = np.asarray(params, dtype=float)
    return sim, extras


@functools.cache
def _particle_stride() -> int:
    """Doubles per ``struct reb_particle``, after checking that x, y, z, vx, vy, vz come first."""
    import rebound

    names = [f[0] for f in rebound.Particle._fields_[:6]]
    size = ctypes.sizeof(rebound.Particle)
    if names != ["x", "y", "z", "vx", "vy", "vz"] or size % 8:
        raise RuntimeError(f"unexpected rebound.Particle layout: {names}, {size} bytes")
    return size // 8


def _particle_data(sim) -> np.ndarray:
    """(N, 6) [x, y, z, vx, vy, vz] of every particle of ``sim``, variational ones included.

    ``Simulation.serialize_particle_data`` copies only the real particles; this reads the C
    particle array (``struct reb_particle`` starts with those six doubles) and copies it. The
    pointer is read afresh on each call: REBOUND reallocates and ASSIST swaps the array.
    """
    n, stride = sim.N, _particle_stride()
    ptr = ctypes.cast(sim._particles, ctypes.POINTER(ctypes.c_double))
    return np.ctypeslib.as_array(ptr, shape=(n * stride,)).reshape(n, stride)[:, :6].copy()


def _split_jd(jd1: np.ndarray | float, jd2: np.ndarray | float, jd_ref: float) -> np.ndarray:
    """Days from ``jd_ref`` of two-part Julian dates, subtracting the large parts first."""
    return (np.asarray(jd1, dtype=float) - jd_ref) + np.asarray(jd2, dtype=float)


def _near_de440_edge(tdb_jd: float) -> bool:
    start, end = de440_coverage_tdb_jd()
    return tdb_jd < start + _EDGE_GUARD_DAY or tdb_jd > end - _EDGE_GUARD_DAY


def _integrate_one_direction(t0_rel: float, state: np.ndarray, t_rel: np.ndarray,
                             nongrav: NonGrav | None, stm: bool, direction: float,
                             land_exactly: bool) -> np.ndarray:
    """Particle data (n, 1 + n_var, 6) at ``t_rel`` (sorted along ``direction``)."""
    sim, extras = _new_simulation(t0_rel, state, nongrav, stm=stm, direction=direction)
    out = np.empty((t_rel.size, sim.N, 6))
    if land_exactly:
        sim.exact_finish_time = 1
    for i, t in enumerate(t_rel):
        if land_exactly:
            sim.integrate(float(t))
        else:
            extras.integrate_or_interpolate(float(t))
        out[i] = _particle_data(sim)
    if not np.all(np.isfinite(out[:, 0, :])):
        raise RuntimeError("ASSIST returned non-finite states (integration failed)")
    return out


# ---------------------------------------------------------------------------------------------
# public API


def propagate(
    epoch_tdb_jd: float,
    state_au: np.ndarray | Sequence[float],
    times_tdb_jd: np.ndarray | Sequence[float] | float,
    nongrav: NonGrav | None = None,
    stm: bool = False,
    *,
    epoch_tdb_jd2: float = 0.0,
    times_tdb_jd2: np.ndarray | Sequence[float] | float = 0.0,
) -> Propagation:
    """Propagate one object from ``epoch_tdb_jd`` to ``times_tdb_jd`` (either side of the epoch).

    ``state_au``: barycentric ICRF [x, y, z, vx, vy, vz] (au, au/day) at the epoch.
    ``times_tdb_jd``: (T,) TDB Julian dates in any order, duplicates allowed; results come back
    in the same order. Times after the epoch are integrated forward and times before it backward,
    each from the epoch (two simulations). ``epoch_tdb_jd2`` / ``times_tdb_jd2``: optional second
    parts of two-part Julian dates (a single float JD rounds to ~40 µs, ~1 m for the Earth).
    ``nongrav``: Marsden A1/A2/A3 (default: none).
    ``stm``: also integrate the variational equations: ``Propagation.stm`` (T, 6, 6) and
    ``Propagation.nongrav_partials`` (T, 6, k) for ``nongrav.fitted`` (k may be 0). Costs ~2.5×.

    Raises ``ValueError`` for malformed input or any time outside DE440 (checked before ASSIST
    runs: ASSIST crashes the process past the end of the file).
    """
    state = _validate_state(state_au)
    jd1 = np.atleast_1d(np.asarray(times_tdb_jd, dtype=float))
    if jd1.ndim != 1:
        raise ValueError(f"times_tdb_jd must be one-dimensional, got shape {jd1.shape}")
    jd2 = np.broadcast_to(np.asarray(times_tdb_jd2, dtype=float), jd1.shape)
    if not (np.all(np.isfinite(jd1)) and np.all(np.isfinite(jd2))):
        raise ValueError("times_tdb_jd must be finite")
    if not (np.isfinite(epoch_tdb_jd) and np.isfinite(epoch_tdb_jd2)):
        raise ValueError(f"epoch_tdb_jd must be finite, got {epoch_tdb_jd!r}")
    check_de440_coverage(epoch_tdb_jd, epoch_tdb_jd2, what="epoch")
    check_de440_coverage(jd1, jd2, what="output time")

    ephem = assist_ephem()
    t0_rel = float(_split_jd(epoch_tdb_jd, epoch_tdb_jd2, ephem.jd_ref))
    t_rel = _split_jd(jd1, jd2, ephem.jd_ref)
    names = nongrav.fitted if (stm and nongrav is not None) else ()
    n_var = (6 + len(names)) if stm else 0

    data = np.empty((t_rel.size, 1 + n_var, 6))
    for direction in (1.0, -1.0):
        mask = (t_rel >= t0_rel) if direction > 0 else (t_rel < t0_rel)
        idx = np.nonzero(mask)[0]
        if idx.size == 0:
            continue
        idx = idx[np.argsort(direction * t_rel[idx], kind="stable")]
        last_jd = float(jd1[idx[-1]] + jd2[idx[-1]])
        data[idx] = _integrate_one_direction(
            t0_rel, state, t_rel[idx], nongrav, stm, direction,
            land_exactly=_near_de440_edge(last_jd),
        )

    times_out = jd1 + jd2
    states = data[:, 0, :].copy()
    if not stm:
        return Propagation(times_tdb_jd=times_out, states_au=states)
    # variation j holds column j of the STM: d state(t) / d state_j(epoch)
    stm_arr = np.transpose(data[:, 1:7, :], (0, 2, 1)).copy()
    partials = np.transpose(data[:, 7:, :], (0, 2, 1)).copy()
    return Propagation(times_tdb_jd=times_out, states_au=states, stm=stm_arr,
                       nongrav_partials=partials, nongrav_names=tuple(names))


def close_approaches(
    epoch_tdb_jd: float,
    state_au: np.ndarray | Sequence[float],
    until_tdb_jd: float,
    bodies: Sequence[str] = ("earth", "moon"),
    radius_au: Mapping[str, float] | None = None,
    nongrav: NonGrav | None = None,
    stop_inside_km: Mapping[str, float] | None = None,
) -> list[CloseApproach]:
    """Close approaches to ``bodies`` between the epoch and ``until_tdb_jd`` (either direction).

    The object is integrated step by step (same force model and settings as :func:`propagate`,
    last step shortened to end on ``until_tdb_jd``); at each step end the distance and radial
    velocity relative to each body (ASSIST's DE440 states) are evaluated. Where the radial
    velocity turns from negative to positive inside a step that can come within the body's radius,
    the minimum is refined by Brent's method on the radial velocity, each evaluation integrating
    from the start of that step (time to < 0.01 s). Minima at the ends of the interval (distance
    still decreasing there) are not reported. Result sorted by time.

    ``bodies``: names among sun, mercury, venus, earth, moon, mars, jupiter, saturn, uranus,
    neptune, pluto. ``radius_au``: report minima closer than this per body (default earth 0.05,
    moon 0.01; other bodies need an entry). ``stop_inside_km``: per body (among ``bodies``), a
    radius; once the object is inside it (an impact) the integration stops just past the minimum
    distance, so an impacting orbit is not carried through the planet for the rest of the span
    (the last approach reported is the impact).
    """
    from scipy.optimize import brentq

    state = _validate_state(state_au)
    radius = {"earth": 0.05, "moon": 0.01}
    if radius_au is not None:
        radius.update({str(k).lower(): float(v) for k, v in radius_au.items()})
    body_ids: dict[str, int] = {}
    for name in bodies:
        key = str(name).strip().lower()
        if key not in _ASSIST_BODIES:
            raise ValueError(f"unknown body {name!r}; choose from {sorted(_ASSIST_BODIES)}")
        if key not in radius:
            raise ValueError(f"no radius_au given for body {name!r}")
        body_ids[key] = _ASSIST_BODIES[key]
    if not (np.isfinite(epoch_tdb_jd) and np.isfinite(until_tdb_jd)):
        raise ValueError("epoch_tdb_jd and until_tdb_jd must be finite")
    check_de440_coverage(epoch_tdb_jd, what="epoch")
    check_de440_coverage(until_tdb_jd, what="until time")

    ephem = assist_ephem()
    t0 = float(epoch_tdb_jd) - ephem.jd_ref
    t_end = float(until_tdb_jd) - ephem.jd_ref
    if t_end == t0:
        return []
    direction = 1.0 if t_end > t0 else -1.0

    # 1. step through [t0, t_end], recording the state at every step end
    sim, _extras = _new_simulation(t0, state, nongrav, stm=False, direction=direction)
    times = [t0]
    states = [state.copy()]
    stop = {}
    for name, r_km in (stop_inside_km or {}).items():
        key = str(name).lower()
        if key not in body_ids:
            raise ValueError(f"stop_inside_km body {name!r} is not among bodies")
        from neodefense.dynamics.ephemeris import AU_KM

        stop[body_ids[key]] = float(r_km) / AU_KM
    inside: set[int] = set()  # bodies the object has entered
    while direction * (t_end - sim.t) > 0.0:
        if direction * (sim.t + sim.dt - t_end) > 0.0:
            sim.dt = t_end - sim.t  # shorten the last step: never past until (or DE440)
        sim.steps(1)
        times.append(sim.t)
        states.append(_particle_data(sim)[0])
        for body_id, r_stop in stop.items():
            p = ephem.get_particle(body_id, sim.t)
            rel = states[-1] - np.array([p.x, p.y, p.z, p.vx, p.vy, p.vz])
            if np.dot(rel[:3], rel[:3]) < r_stop * r_stop:
                inside.add(body_id)
            if body_id in inside and direction * np.dot(rel[:3], rel[3:]) > 0.0:
                break  # past the minimum distance to the body it entered
        else:
            continue
        if len(times) >= 3:
            # one more step: the minimum lies in the last step, keep a step past it
            if direction * (t_end - sim.t) > 0.0:
                if direction * (sim.t + sim.dt - t_end) > 0.0:
                    sim.dt = t_end - sim.t
                sim.steps(1)
                times.append(sim.t)
                states.append(_particle_data(sim)[0])
            break
    t_steps = np.asarray(times)
    x_steps = np.asarray(states)
    if direction < 0:
        t_steps, x_steps = t_steps[::-1], x_steps[::-1]

    def body_state(body_id: int, t: float) -> np.ndarray:
        p = ephem.get_particle(body_id, t)
        return np.array([p.x, p.y, p.z, p.vx, p.vy, p.vz])

    def object_state(i_start: int, t: float) -> np.ndarray:
        """State at ``t`` integrated from recorded step end ``i_start`` (exact finish)."""
        if t == t_steps[i_start]:
            return x_steps[i_start]
        s, _ = _new_simulation(float(t_steps[i_start]), x_steps[i_start], nongrav,
                               direction=np.sign(t - t_steps[i_start]))
        s.dt = t - t_steps[i_start]
        s.exact_finish_time = 1
        s.integrate(float(t))
        p = s.particles[0]
        return np.array([p.x, p.y, p.z, p.vx, p.vy, p.vz])

    found: list[CloseApproach] = []
    for name, body_id in body_ids.items():
        rel = x_steps - np.array([body_state(body_id, float(t)) for t in t_steps])
        dist = np.linalg.norm(rel[:, :3], axis=1)
        speed = np.linalg.norm(rel[:, 3:], axis=1)
        rdot = np.einsum("ij,ij->i", rel[:, :3], rel[:, 3:])
        dt = np.diff(t_steps)
        candidates = np.nonzero((rdot[:-1] < 0.0) & (rdot[1:] >= 0.0))[0]
        for i in candidates:
            # the minimum inside the step cannot be closer than this (straight-line bound)
            bound = min(dist[i], dist[i + 1]) - max(speed[i], speed[i + 1]) * dt[i]
            if bound > radius[name]:
                continue

            def radial_velocity(t: float, i: int = i, body_id: int = body_id) -> float:
                r = object_state(i, t) - body_state(body_id, t)
                return float(np.dot(r[:3], r[3:]))

            a, b = float(t_steps[i]), float(t_steps[i + 1])
            if radial_velocity(b) < 0.0:  # sign lost at the step end by re-integration
                t_min = b
            else:
                t_min = brentq(radial_velocity, a, b, xtol=1e-7, rtol=4 * np.finfo(float).eps)
            r = object_state(i, t_min) - body_state(body_id, t_min)
            d = float(np.linalg.norm(r[:3]))
            if d < radius[name]:
                found.append(CloseApproach(
                    body=name, time_tdb_jd=float(t_min + ephem.jd_ref), distance_au=d,
                    rel_position_au=r[:3].copy(), rel_velocity_au_per_day=r[3:].copy(),
                ))
    found.sort(key=lambda c: c.time_tdb_jd)
    return found
