"""Optical observation model: light time, topocentric astrometric RA/Dec, partials, residuals.

The one light-time routine of neodefense. Everything is barycentric ICRF (au, au/day) with times
as TDB Julian dates (one float: 40 µs resolution, ≤ 1.2 m of motion at 30 km/s).

Definitions
-----------
* **Light time** (down-leg): the object's emission time t_e = t − τ solves
  c·τ = |r_obj(t − τ) − r_obs(t)| (Newtonian), iterated from τ = 0 until the last step
  |Δτ| < 1e-10 day (three or four calls of ``state_at``: each iteration shrinks the error by
  ~|v|/c ≈ 1e-4, so the returned τ is good to ~1e-14 day; the last state is moved by −v·Δτ to the
  final emission time rather than evaluated again). With
  ``shapiro=True`` the Sun's Shapiro delay (2 GM☉/c³)·ln[(r_e + r_o + ρ)/(r_e + r_o − ρ)] is added
  (≤ ~60 µs for NEOs, i.e. metres of motion: negligible for optical astrometry; it is there for
  radar-grade work and off by default).
* **Astrometric RA/Dec** (JPL Horizons' "astrometric RA & DEC", quantity 1): the direction from the
  observer at t to the object at t − τ, in the ICRF, *without* stellar aberration, precession or
  nutation, directly comparable with star-catalogue-reduced astrometry. Horizons does not apply
  the Sun's gravitational deflection to astrometric positions: tested against Horizons' own values
  at 1,536 observation times (``tests/test_observation_model.py``), without deflection we agree to
  ≤ 0.041 mas, with it the differences reach 5.5 mas. ``deflection=False`` is therefore the
  default; ``deflection=True`` applies the Sun's deflection (``erfa.ld``, Klioner 2003) for users
  who want it.
* **Partials** for the least-squares design matrix: ∂(α·cos δ, δ)/∂r, (N, 2, 3) in rad/au, with r
  the object's barycentric position at emission as a function of time (what a state-transition
  matrix maps). The light-time correction is included to first order: a shift δr moves the
  emission time by δτ = ρ̂·δr / (c + ρ̂·v), so ∂ρ/∂r = I − v ρ̂ᵀ / (c + ρ̂·v) (v = object velocity at
  emission). Deflection is ignored in the partials (a 1e-8 relative effect).
* **Residuals**: observed − computed in arcsec, RA residual multiplied by cos(Dec computed) (the
  same factor as the partials), RA difference wrapped into [−180°, 180°).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import erfa
import numpy as np
from numpy.typing import ArrayLike

from neodefense.constants import ARCSEC_PER_RAD, C_AU_PER_DAY, GM_SUN_AU3_PER_DAY2

__all__ = [
    "Astrometry",
    "LightTime",
    "StateFunction",
    "astrometric_radec",
    "light_time_positions",
    "radec_from_vectors",
    "radec_partials",
    "residuals_arcsec",
    "shapiro_delay_days",
]

#: ``state_at(times_tdb_jd (N,)) -> (N, 6)`` barycentric ICRF states (au, au/day) of the object
StateFunction = Callable[[np.ndarray], np.ndarray]

#: convergence of the light-time iteration, days (8.6 µs)
LIGHT_TIME_TOL_DAYS = 1e-10
_MAX_ITER = 12


class LightTime(NamedTuple):
    emit_time_tdb_jd: np.ndarray  # (N,)
    object_bary_at_emit: np.ndarray  # (N, 3) au
    light_time_days: np.ndarray  # (N,)


class Astrometry(NamedTuple):
    ra_deg: np.ndarray  # (N,) [0, 360)
    dec_deg: np.ndarray  # (N,)
    partials: np.ndarray  # (N, 2, 3): ∂(α cos δ, δ)/∂(object position at emission), rad/au
    emit_time_tdb_jd: np.ndarray  # (N,)
    light_time_days: np.ndarray  # (N,)
    object_state_at_emit: np.ndarray  # (N, 6) barycentric ICRF au, au/day


def _sun_position(times_tdb_jd: np.ndarray) -> np.ndarray:
    from neodefense.dynamics.ephemeris import body_barycentric_state

    return body_barycentric_state("sun", times_tdb_jd)[0]


def shapiro_delay_days(object_bary_au: ArrayLike, observer_bary_au: ArrayLike,
                       sun_bary_au: ArrayLike) -> np.ndarray:
    """Shapiro delay of the Sun's field, days: (2 GM☉/c³)·ln[(r_e + r_o + ρ)/(r_e + r_o − ρ)]."""
    obj = np.asarray(object_bary_au, dtype=float)
    obs = np.asarray(observer_bary_au, dtype=float)
    sun = np.asarray(sun_bary_au, dtype=float)
    r_e = np.linalg.norm(obj - sun, axis=-1)
    r_o = np.linalg.norm(obs - sun, axis=-1)
    rho = np.linalg.norm(obj - obs, axis=-1)
    return 2.0 * GM_SUN_AU3_PER_DAY2 / C_AU_PER_DAY**3 * np.log((r_e + r_o + rho)
                                                                 / (r_e + r_o - rho))


def _light_time(obs_time_tdb_jd: ArrayLike, observer_bary_au: ArrayLike, state_at: StateFunction,
                shapiro: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.atleast_1d(np.asarray(obs_time_tdb_jd, dtype=float))
    obs = np.atleast_2d(np.asarray(observer_bary_au, dtype=float))
    if obs.shape != (t.size, 3):
        raise ValueError(f"observer_bary_au must be ({t.size}, 3), got {obs.shape}")
    sun = _sun_position(t) if shapiro else None
    tau = np.zeros(t.size)
    for _ in range(_MAX_ITER):
        state = np.asarray(state_at(t - tau), dtype=float).reshape(t.size, 6)
        rho = np.linalg.norm(state[:, :3] - obs, axis=-1)
        new_tau = rho / C_AU_PER_DAY
        if shapiro:
            new_tau = new_tau + shapiro_delay_days(state[:, :3], obs, sun)
        step = new_tau - tau
        tau = new_tau
        if np.all(np.abs(step) < LIGHT_TIME_TOL_DAYS):
            break
    else:
        raise RuntimeError(f"light-time iteration did not converge in {_MAX_ITER} steps "
                           f"(max |Δτ| = {float(np.abs(step).max()):.3g} day)")
    # the last state was evaluated at t − (τ − step), |step| < 1e-10 day: move it to t − τ to
    # first order (the neglected ½·a·step² is < 1e-20 au) instead of calling state_at again
    state = state.copy()
    state[:, :3] -= state[:, 3:] * step[:, None]
    return t - tau, state, tau


def light_time_positions(obs_time_tdb_jd: ArrayLike, observer_bary_au: ArrayLike,
                         state_at: StateFunction, shapiro: bool = False) -> LightTime:
    """Down-leg light time to an observer at barycentric ``observer_bary_au`` (N, 3) at times t.

    ``state_at(times)`` returns (N, 6) barycentric ICRF states of the object at the given TDB JDs
    (the caller supplies it: the force-model propagator, a two-body model, an interpolant).
    Returns ``LightTime(emit_time_tdb_jd, object_bary_at_emit (N, 3), light_time_days)``,
    converged to < 1e-10 day. ``shapiro`` adds the Sun's Shapiro delay (module docstring).
    """
    emit, state, tau = _light_time(obs_time_tdb_jd, observer_bary_au, state_at, shapiro)
    return LightTime(emit, state[:, :3], tau)


def radec_from_vectors(vec: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec (degrees) of ICRF direction vectors (N, 3)."""
    v = np.atleast_2d(np.asarray(vec, dtype=float))
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arctan2(v[:, 2], np.hypot(v[:, 0], v[:, 1])))
    return ra, dec


def radec_partials(rho_au: ArrayLike, object_vel_au_per_day: ArrayLike | None = None
                   ) -> np.ndarray:
    """∂(α·cos δ, δ)/∂r (N, 2, 3), rad/au, for topocentric vectors ``rho_au`` (N, 3).

    With ``object_vel_au_per_day`` (N, 3) (object velocity at emission) the first-order light-time
    term is included: ∂ρ/∂r = I − v ρ̂ᵀ / (c + ρ̂·v). Without it, this is ∂/∂ρ.
    """
    rho = np.atleast_2d(np.asarray(rho_au, dtype=float))
    dist = np.linalg.norm(rho, axis=-1)
    x, y, z = rho[:, 0], rho[:, 1], rho[:, 2]
    rxy = np.hypot(x, y)
    ca, sa = x / rxy, y / rxy
    cd, sd = rxy / dist, z / dist
    zero = np.zeros_like(x)
    d_ra = np.stack([-sa, ca, zero], axis=-1) / dist[:, None]
    d_dec = np.stack([-sd * ca, -sd * sa, cd], axis=-1) / dist[:, None]
    part = np.stack([d_ra, d_dec], axis=1)
    if object_vel_au_per_day is None:
        return part
    v = np.atleast_2d(np.asarray(object_vel_au_per_day, dtype=float))
    u = rho / dist[:, None]
    denom = C_AU_PER_DAY + np.sum(u * v, axis=-1)
    # part @ (I − v uᵀ/denom) = part − (part @ v) uᵀ / denom
    pv = np.einsum("nij,nj->ni", part, v)
    return part - pv[:, :, None] * u[:, None, :] / denom[:, None, None]


def astrometric_radec(obs_time_tdb_jd: ArrayLike, observer_bary_au: ArrayLike,
                      state_at: StateFunction, deflection: bool = False,
                      shapiro: bool = False) -> Astrometry:
    """Topocentric astrometric RA/Dec (ICRF, degrees) of an object seen from an observer.

    ``obs_time_tdb_jd`` (N,), ``observer_bary_au`` (N, 3) barycentric ICRF observer positions at
    those times (e.g. from :func:`neodefense.observatories.positions.observer_states`),
    ``state_at``: see :func:`light_time_positions`. Matches JPL Horizons' astrometric RA/Dec with
    the defaults (no deflection; module docstring). Returns :class:`Astrometry` (RA/Dec, partials
    ∂(α cos δ, δ)/∂(object position at emission), emission times, light times, states).
    """
    emit, state, tau = _light_time(obs_time_tdb_jd, observer_bary_au, state_at, shapiro)
    obs = np.atleast_2d(np.asarray(observer_bary_au, dtype=float))
    rho = state[:, :3] - obs
    direction = rho / np.linalg.norm(rho, axis=-1)[:, None]
    if deflection:
        sun = _sun_position(np.atleast_1d(np.asarray(obs_time_tdb_jd, dtype=float)))
        sun_obj = state[:, :3] - sun
        sun_obs = obs - sun
        em = np.linalg.norm(sun_obs, axis=-1)
        q = sun_obj / np.linalg.norm(sun_obj, axis=-1)[:, None]
        e = sun_obs / em[:, None]
        # limiter as in eraLdsun: φ²/2 = 1e-6 / max(em², 1)
        dlim = 1e-6 / np.maximum(em * em, 1.0)
        direction = erfa.ld(1.0, direction, q, e, em, dlim)
    ra, dec = radec_from_vectors(direction)
    partials = radec_partials(rho, state[:, 3:])
    return Astrometry(ra, dec, partials, emit, tau, state)


def residuals_arcsec(ra_obs_deg: ArrayLike, dec_obs_deg: ArrayLike, ra_calc_deg: ArrayLike,
                     dec_calc_deg: ArrayLike) -> np.ndarray:
    """Observed − computed (N, 2) in arcsec: [ΔRA·cos(Dec_calc), ΔDec], ΔRA wrapped at 0/360°."""
    ra_o = np.atleast_1d(np.asarray(ra_obs_deg, dtype=float))
    dec_o = np.atleast_1d(np.asarray(dec_obs_deg, dtype=float))
    ra_c = np.atleast_1d(np.asarray(ra_calc_deg, dtype=float))
    dec_c = np.atleast_1d(np.asarray(dec_calc_deg, dtype=float))
    dra = (ra_o - ra_c + 180.0) % 360.0 - 180.0
    dra_rad = np.radians(dra) * np.cos(np.radians(dec_c))
    ddec_rad = np.radians(dec_o - dec_c)
    return np.stack([dra_rad, ddec_rad], axis=-1) * ARCSEC_PER_RAD
