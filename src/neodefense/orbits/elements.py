"""Orbital element conversions: Cartesian states ↔ Keplerian / cometary elements, frames, covariance.

Frames and units
----------------
* Elements are **heliocentric ecliptic J2000** (JPL's "ecliptic and mean equinox of J2000": the ICRF
  axes rotated by the obliquity 84381.448″, :mod:`neodefense.constants`), like JPL SBDB and ESA
  NEOCC elements. States are positions in au and velocities in au/day; epochs and ``tp`` are TDB
  Julian dates (one float each).
* ``mu`` (a float) defaults to the Sun's GM of DE440 (``GM_SUN_AU3_PER_DAY2``), which JPL's
  DE440/DE441-based solutions use; solutions fitted with DE424/DE430 or older (e.g. Bennu #118)
  used k² = 0.01720209895², 5e-12 relative larger — pass that to reproduce their M ↔ tp to the
  last digits. The Sun's barycentric state comes from DE440
  (:func:`neodefense.dynamics.ephemeris.body_barycentric_state`).

Precision
---------
* ``tp_tdb_jd`` as one float resolves 4.7e-10 day near JD 2.46e6: cometary elements reproduce a
  state to |v|·2.3e-10 day (~1e-11 relative for a NEO). Keplerian elements (M) round-trip states
  to ~1e-13 relative for e ≲ 0.99; as e → 1, M becomes tiny and loses digits — use cometary.

Element sets (column order of the arrays)
-----------------------------------------
* ``ELEMENT_NAMES`` — the output set: ``a_au, e, i_deg, node_deg, argperi_deg, M_deg, q_au,
  tp_tdb_jd`` (8 columns; only 6 are independent).
* ``COMETARY_NAMES`` — ``q_au, e, i_deg, node_deg, argperi_deg, tp_tdb_jd``: valid for every
  conic (ellipse, parabola, hyperbola); this is the set inverse conversions use by default.
* ``KEPLERIAN_NAMES`` — ``a_au, e, i_deg, node_deg, argperi_deg, M_deg``: ellipses and hyperbolas.

Conventions
-----------
* Ellipses (e < 1): ``M_deg`` in [0, 360); ``tp_tdb_jd`` is the perihelion passage *nearest* the
  epoch (eccentric anomaly in (-180°, 180°]), as JPL SBDB gives it.
* Hyperbolas (e > 1): ``a_au`` < 0 and ``M_deg`` is the hyperbolic mean anomaly
  N = e·sinh F − F (radians converted to degrees, negative before perihelion), so that
  ``M = n (t − tp)`` with n = sqrt(mu / |a|³) holds for both kinds.
* Parabolas (e == 1 exactly): ``a_au`` = +inf and ``M_deg`` = NaN; use the cometary set.
* Time since perihelion is computed with the universal anomaly s and Stumpff functions
  (t − tp = q·s + mu·e·s³·c3(β s²), β = mu(1 − e)/q), which has no cancellation near e = 1
  (unlike E − e·sin E), so near-parabolic orbits keep full precision.
* e = 0 (eccentricity vector shorter than ``E_TINY``): ``argperi_deg`` = 0 and anomalies count from
  the ascending node. i = 0 or 180° (sin i < ``SIN_I_TINY``): ``node_deg`` = 0 and ``argperi_deg``
  counts from the x axis (for i = 180°, in the retrograde sense). Near (not at) these
  singularities the angles are ill-conditioned but still a consistent representation: the round
  trip state → elements → state is exact to rounding.
* Covariances are propagated with Jacobians computed by the complex-step method (exact to
  rounding, no step-size tuning): every routine here accepts complex arrays for that purpose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from neodefense.constants import ECLIPTIC_TO_ICRF, GM_SUN_AU3_PER_DAY2, ICRF_TO_ECLIPTIC

__all__ = [
    "COMETARY_NAMES",
    "ELEMENT_NAMES",
    "E_TINY",
    "KEPLERIAN_NAMES",
    "SIN_I_TINY",
    "barycentric_icrf_to_elements",
    "cartesian_to_cometary",
    "cartesian_to_keplerian",
    "cometary_to_cartesian",
    "complex_step_jacobian",
    "ecliptic_to_equatorial",
    "element_sigmas",
    "elements_to_barycentric_icrf",
    "equatorial_to_ecliptic",
    "keplerian_to_cartesian",
    "two_body_propagate",
    "kepler_propagate",
]

ELEMENT_NAMES = ("a_au", "e", "i_deg", "node_deg", "argperi_deg", "M_deg", "q_au", "tp_tdb_jd")
COMETARY_NAMES = ("q_au", "e", "i_deg", "node_deg", "argperi_deg", "tp_tdb_jd")
KEPLERIAN_NAMES = ("a_au", "e", "i_deg", "node_deg", "argperi_deg", "M_deg")
#: columns of COMETARY_NAMES / KEPLERIAN_NAMES inside ELEMENT_NAMES
_COMETARY_IN_ELEMENTS = (6, 1, 2, 3, 4, 7)
_KEPLERIAN_IN_ELEMENTS = (0, 1, 2, 3, 4, 5)

#: below this eccentricity the orbit is treated as circular (argperi = 0)
E_TINY = 1e-15
#: below this sin(i) the orbit is treated as equatorial (node = 0)
SIN_I_TINY = 1e-15

_DEG = 180.0 / math.pi
_RAD = math.pi / 180.0
_TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------------------------
# complex-step-safe helpers (real inputs give real outputs)
# --------------------------------------------------------------------------------------------
def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1)


def _norm(a: np.ndarray) -> np.ndarray:
    return np.sqrt(_dot(a, a))


def _atan2(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """arctan2 that carries a complex-step perturbation (first order) in the imaginary part."""
    if not (np.iscomplexobj(y) or np.iscomplexobj(x)):
        return np.arctan2(y, x)
    y = np.asarray(y, dtype=complex)
    x = np.asarray(x, dtype=complex)
    yr, xr = y.real, x.real
    den = xr * xr + yr * yr
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(den > 0, (xr * y.imag - yr * x.imag) / np.where(den > 0, den, 1.0), 0.0)
    return np.arctan2(yr, xr) + 1j * d


def _wrap(angle: np.ndarray, low: float) -> np.ndarray:
    """Wrap angles (rad) into [low, low + 2π) by whole turns chosen on the real part."""
    turns = np.floor((np.real(angle) - low) / _TWO_PI)
    return angle - _TWO_PI * turns


def _wrap_deg(angle: np.ndarray) -> np.ndarray:
    """Wrap angles (deg) into [0, 360) (a tiny negative angle must not round to 360.0)."""
    out = angle - 360.0 * np.floor(np.real(angle) / 360.0)
    return np.where(np.real(out) >= 360.0, out - 360.0, out)


def _stumpff(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stumpff functions c0..c3 of z (series for |z| < 1, closed forms elsewhere)."""
    z = np.asarray(z)
    zr = np.real(z)
    small = np.abs(zr) < 1.0
    pos = zr >= 1.0
    neg = zr <= -1.0
    dtype = complex if np.iscomplexobj(z) else float
    c0 = np.empty(z.shape, dtype)
    c1 = np.empty(z.shape, dtype)
    c2 = np.empty(z.shape, dtype)
    c3 = np.empty(z.shape, dtype)
    if small.any():
        zs = z[small]
        # c_k(z) = sum_j (-z)^j / (2j + k)!, terms to j = 9: remainder < 1/21! ≈ 2e-20
        c2s = np.zeros_like(zs)
        c3s = np.zeros_like(zs)
        for j in range(9, -1, -1):
            c2s = c2s * (-zs) + 1.0 / math.factorial(2 * j + 2)
            c3s = c3s * (-zs) + 1.0 / math.factorial(2 * j + 3)
        c2[small] = c2s
        c3[small] = c3s
        c0[small] = 1.0 - zs * c2s
        c1[small] = 1.0 - zs * c3s
    if pos.any():
        x = np.sqrt(z[pos])
        c0[pos] = np.cos(x)
        c1[pos] = np.sin(x) / x
        c2[pos] = (1.0 - np.cos(x)) / z[pos]
        c3[pos] = (x - np.sin(x)) / (z[pos] * x)
    if neg.any():
        x = np.sqrt(-z[neg])
        c0[neg] = np.cosh(x)
        c1[neg] = np.sinh(x) / x
        c2[neg] = (np.cosh(x) - 1.0) / (-z[neg])
        c3[neg] = (np.sinh(x) - x) / (-z[neg] * x)
    return c0, c1, c2, c3


def _as_states(state: ArrayLike) -> np.ndarray:
    s = np.asarray(state)
    if not np.iscomplexobj(s):
        s = s.astype(float)
    s = np.atleast_2d(s)
    if s.shape[-1] != 6:
        raise ValueError(f"states must have 6 columns (x y z vx vy vz), got shape {s.shape}")
    return s


def _as_rows(values: ArrayLike, ncol: int, what: str) -> np.ndarray:
    a = np.asarray(values)
    if not np.iscomplexobj(a):
        a = a.astype(float)
    a = np.atleast_2d(a)
    if a.shape[-1] < ncol:
        raise ValueError(f"{what} must have at least {ncol} columns, got shape {a.shape}")
    return a


def _epochs(epoch_tdb_jd: ArrayLike, n: int) -> np.ndarray:
    t = np.asarray(epoch_tdb_jd)
    if not np.iscomplexobj(t):
        t = t.astype(float)
    return np.broadcast_to(t, (n,)) if t.ndim == 0 else t.reshape(n)


# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------
def _rotate(vec: ArrayLike, matrix: np.ndarray) -> np.ndarray:
    v = np.asarray(vec)
    if not np.iscomplexobj(v):
        v = v.astype(float)
    if v.shape[-1] == 3:
        return v @ matrix.T
    if v.shape[-1] == 6:
        return np.concatenate([v[..., :3] @ matrix.T, v[..., 3:] @ matrix.T], axis=-1)
    raise ValueError(f"vectors must have 3 or 6 components on the last axis, got {v.shape}")


def equatorial_to_ecliptic(vec: ArrayLike) -> np.ndarray:
    """ICRF (equatorial) → ecliptic J2000: positions (..., 3) or states (..., 6)."""
    return _rotate(vec, ICRF_TO_ECLIPTIC)


def ecliptic_to_equatorial(vec: ArrayLike) -> np.ndarray:
    """Ecliptic J2000 → ICRF (equatorial): positions (..., 3) or states (..., 6)."""
    return _rotate(vec, ECLIPTIC_TO_ICRF)


# --------------------------------------------------------------------------------------------
# core: state <-> (q, e, i, node, argperi, time since perihelion)
# --------------------------------------------------------------------------------------------
def _universal_anomaly(q, e, nu, rdotv, mu):
    """Universal anomaly s of a state with true anomaly ν and r·v (|ν| < π; |ν| < ν∞ if e > 1).

    Ellipse: from ν through tan(E/2) = k·tan(ν/2), k = sqrt((1 − e)/(1 + e)), as
    s = 2·sqrt(q/(mu(1 + e)))·atan(k·D)/k, D = tan(ν/2) (well conditioned, also near e = 0 where
    it keeps s consistent with the argument of perihelion). Parabola and hyperbola: from
    r·v = mu·e·s·c1(βs²), i.e. sinh F = r·v·sqrt(−β)/(mu e), s = F/sqrt(−β) (well conditioned far
    out on the asymptote, where tanh(F/2) → 1 would lose digits).
    """
    er = np.real(e)
    ell = er < 1.0
    s = np.empty_like(nu)
    if ell.any():
        qe, ee = q[ell], e[ell]
        d = np.tan(0.5 * nu[ell])
        k = np.sqrt((1.0 - ee) / (1.0 + ee))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.real(k) > 0, np.arctan(k * d) / np.where(np.real(k) > 0, k, 1.0),
                             d)
        s[ell] = 2.0 * np.sqrt(qe / (mu * (1.0 + ee))) * ratio
    if (~ell).any():
        qh, eh = q[~ell], e[~ell]
        sqrt_mb = np.sqrt(mu * (eh - 1.0) / qh)  # sqrt(−β)
        base = rdotv[~ell] / (mu * eh)
        x = base * sqrt_mb
        xr = np.real(x)
        tiny = np.abs(xr) < 1e-8
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(tiny, 1.0 - x * x / 6.0, np.arcsinh(x) / np.where(tiny, 1.0, x))
        s[~ell] = base * ratio
    return s


def _state_to_cometary_dt(state: np.ndarray, mu: float):
    """(q, e, i, node, argperi, Δt = t − tp) in radians/days from heliocentric states (N, 6)."""
    r = state[:, :3]
    v = state[:, 3:]
    rn = _norm(r)
    h = np.cross(r, v)
    hn = _norm(h)
    hxy = np.sqrt(h[:, 0] ** 2 + h[:, 1] ** 2)
    inc = _atan2(hxy, h[:, 2])
    equatorial = np.real(hxy) <= SIN_I_TINY * np.real(hn)
    safe_hxy = np.where(equatorial, 1.0, hxy)
    zeros = np.zeros_like(hxy)
    ones = np.ones_like(hxy)
    n_hat = np.stack([np.where(equatorial, ones, -h[:, 1] / safe_hxy),
                      np.where(equatorial, zeros, h[:, 0] / safe_hxy), zeros], axis=-1)
    h_hat = h / hn[:, None]
    m_hat = np.cross(h_hat, n_hat)
    node = _atan2(n_hat[:, 1], n_hat[:, 0])
    e_vec = ((_dot(v, v) - mu / rn)[:, None] * r - _dot(r, v)[:, None] * v) / mu
    ecc = _norm(e_vec)
    circular = np.real(ecc) <= E_TINY
    argperi = np.where(circular, 0.0, _atan2(_dot(e_vec, m_hat), _dot(e_vec, n_hat)))
    arglat = _atan2(_dot(r, m_hat), _dot(r, n_hat))
    nu = _wrap(arglat - argperi, -math.pi)
    q = hn * hn / (mu * (1.0 + ecc))
    s = _universal_anomaly(q, ecc, nu, _dot(r, v), mu)
    beta = mu * (1.0 - ecc) / q
    _, _, _, c3 = _stumpff(beta * s * s)
    dt = q * s + mu * ecc * s**3 * c3
    return q, ecc, inc, node, argperi, dt


def _solve_universal(q, e, dt, mu):
    """Universal anomaly s with q·s + mu·e·s³·c3(βs²) = Δt (Laguerre steps inside a bracket)."""
    beta = mu * (1.0 - e) / q
    br = np.real(beta)
    dtr = np.real(dt)
    # |f'(s)| = r ≥ q  ⇒  |s| ≤ |Δt| / q ; for an ellipse also |s| ≤ π / sqrt(β)
    bound = np.abs(dtr) / np.real(q) * (1.0 + 1e-12) + 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        ell_bound = np.where(br > 0, math.pi / np.sqrt(np.where(br > 0, br, 1.0)), np.inf)
    bound = np.minimum(bound, ell_bound * (1.0 + 1e-12))
    # hyperbola: e sinh F − F ≥ (e − 1) sinh F  ⇒  |F| ≤ asinh(|N| / (e − 1)), s = F / sqrt(−β)
    hyp = br < 0
    if hyp.any():
        nb = np.where(hyp, -br, 1.0)
        mean_abs = nb**1.5 / mu * np.abs(dtr)
        em1 = np.where(hyp, np.real(e) - 1.0, 1.0)
        f_bound = np.arcsinh(mean_abs / em1) / np.sqrt(nb)
        bound = np.where(hyp, np.minimum(bound, f_bound * (1.0 + 1e-12) + 1e-300), bound)
    lo = -bound.copy()
    hi = bound.copy()
    s = np.clip(dtr / np.real(q), lo, hi).astype(dt.dtype)
    n = 5.0
    done = np.zeros(s.shape, bool)
    for _ in range(200):
        z = beta * s * s
        _, c1, c2, c3 = _stumpff(z)
        f = q * s + mu * e * s**3 * c3 - dt
        fp = q + mu * e * s * s * c2
        fpp = mu * e * s * c1
        fr = np.real(f)
        lo = np.where(fr < 0, np.maximum(lo, np.real(s)), lo)
        hi = np.where(fr > 0, np.minimum(hi, np.real(s)), hi)
        disc = (n - 1.0) ** 2 * fp * fp - n * (n - 1.0) * f * fpp
        root = np.sqrt(np.where(np.real(disc) > 0, disc, 0.0))
        step = n * f / (fp + root)  # fp > 0
        s_new = s - step
        outside = (np.real(s_new) <= lo) | (np.real(s_new) >= hi)
        s_new = np.where(outside, (0.5 * (lo + hi)).astype(s.dtype), s_new)
        newly = np.abs(np.real(s_new - s)) <= 4e-16 * np.maximum(np.abs(np.real(s_new)), 1e-300)
        s = np.where(done, s, s_new)
        done |= newly | (hi - lo <= 4e-16 * np.maximum(np.abs(hi), np.abs(lo)))
        if done.all():
            break
    else:  # pragma: no cover - guarded by the bracket; kept as a clear failure
        raise RuntimeError("universal Kepler equation did not converge")
    for _ in range(2):  # Newton polish (also settles a complex-step perturbation)
        _, _, c2, c3 = _stumpff(beta * s * s)
        s = s - (q * s + mu * e * s**3 * c3 - dt) / (q + mu * e * s * s * c2)
    return s


def _cometary_dt_to_state(q, e, inc, node, argperi, dt, mu):
    """Heliocentric states (N, 6) from (q, e, i, node, argperi) in radians and Δt = t − tp."""
    er = np.real(e)
    beta = mu * (1.0 - e) / q
    ell = er < 1.0
    if ell.any():  # reduce Δt to within half a period of perihelion
        with np.errstate(invalid="ignore", divide="ignore"):
            period = _TWO_PI * mu / np.where(ell, beta, 1.0) ** 1.5  # 2π/n, n = β^1.5/mu
        dt = np.where(ell, dt - period * np.round(np.real(dt) / np.real(period)), dt)
    s = _solve_universal(q, e, dt, mu)
    c0, c1, c2, _ = _stumpff(beta * s * s)
    r = q + mu * e * s * s * c2
    p = np.sqrt(mu * q * (1.0 + e))
    x = q - mu * s * s * c2
    y = p * s * c1
    vx = -mu * s * c1 / r
    vy = p * c0 / r
    cO, sO = np.cos(node), np.sin(node)
    cw, sw = np.cos(argperi), np.sin(argperi)
    ci, si = np.cos(inc), np.sin(inc)
    P = np.stack([cO * cw - sO * sw * ci, sO * cw + cO * sw * ci, sw * si], axis=-1)
    Q = np.stack([-cO * sw - sO * cw * ci, -sO * sw + cO * cw * ci, cw * si], axis=-1)
    pos = x[:, None] * P + y[:, None] * Q
    vel = vx[:, None] * P + vy[:, None] * Q
    return np.concatenate([pos, vel], axis=-1)


def _mean_motion(a: np.ndarray, mu: float) -> np.ndarray:
    """n = sqrt(mu / |a|³) (rad/day); |a| taken by the sign of the real part (complex-step safe)."""
    sign = np.where(np.real(a) < 0, -1.0, 1.0)
    return np.sqrt(mu / (sign * a) ** 3)


# --------------------------------------------------------------------------------------------
# public conversions
# --------------------------------------------------------------------------------------------
def cartesian_to_cometary(state_helio_ecl_au: ArrayLike, epoch_tdb_jd: ArrayLike,
                          mu: float = GM_SUN_AU3_PER_DAY2) -> np.ndarray:
    """Heliocentric ecliptic states (N, 6) at ``epoch_tdb_jd`` → cometary elements (N, 6).

    Columns ``COMETARY_NAMES``: q_au, e, i_deg, node_deg, argperi_deg, tp_tdb_jd. Every conic.
    """
    state = _as_states(state_helio_ecl_au)
    epoch = _epochs(epoch_tdb_jd, state.shape[0])
    q, e, inc, node, argperi, dt = _state_to_cometary_dt(state, mu)
    return np.stack([q, e, inc * _DEG, _wrap_deg(node * _DEG), _wrap_deg(argperi * _DEG),
                     epoch - dt], axis=-1)


def cometary_to_cartesian(cometary: ArrayLike, epoch_tdb_jd: ArrayLike,
                          mu: float = GM_SUN_AU3_PER_DAY2) -> np.ndarray:
    """Cometary elements (N, 6) [q_au, e, i_deg, node_deg, argperi_deg, tp_tdb_jd] → heliocentric
    ecliptic states (N, 6) at ``epoch_tdb_jd`` (scalar or (N,)). Every conic, e = 1 included."""
    c = _as_rows(cometary, 6, "cometary elements")
    epoch = _epochs(epoch_tdb_jd, c.shape[0])
    q, e = c[:, 0], c[:, 1]
    if np.any(np.real(q) <= 0) or np.any(np.real(e) < 0):
        raise ValueError("cometary elements need q_au > 0 and e >= 0")
    return _cometary_dt_to_state(q, e, c[:, 2] * _RAD, c[:, 3] * _RAD, c[:, 4] * _RAD,
                                 epoch - c[:, 5], mu)


def cartesian_to_keplerian(state_helio_ecl_au: ArrayLike, epoch_tdb_jd: ArrayLike,
                           mu: float = GM_SUN_AU3_PER_DAY2) -> np.ndarray:
    """Heliocentric ecliptic J2000 states (N, 6) at ``epoch_tdb_jd`` → elements (N, 8).

    Columns ``ELEMENT_NAMES``: a_au, e, i_deg, node_deg, argperi_deg, M_deg, q_au, tp_tdb_jd
    (conventions for e ≥ 1, e = 0 and i = 0 in the module docstring). The epoch is needed for
    ``tp``. Like poliastro's ``Orbit.from_vectors``, vectorized over N; accepts complex input
    (complex-step differentiation).
    """
    state = _as_states(state_helio_ecl_au)
    epoch = _epochs(epoch_tdb_jd, state.shape[0])
    q, e, inc, node, argperi, dt = _state_to_cometary_dt(state, mu)
    parabolic = np.real(e) == 1.0
    one_minus_e = np.where(parabolic, 1.0, 1.0 - e)
    a = np.where(parabolic, np.inf, q / one_minus_e)
    mean = np.where(parabolic, np.nan, _mean_motion(np.where(parabolic, 1.0, a), mu) * dt)
    mean_deg = np.where(np.real(e) < 1.0, _wrap_deg(mean * _DEG), mean * _DEG)
    return np.stack([a, e, inc * _DEG, _wrap_deg(node * _DEG), _wrap_deg(argperi * _DEG),
                     mean_deg, q, epoch - dt], axis=-1)


def keplerian_to_cartesian(elements: ArrayLike, mu: float = GM_SUN_AU3_PER_DAY2) -> np.ndarray:
    """Keplerian elements → heliocentric ecliptic J2000 states (N, 6) at the elements' epoch.

    ``elements``: (N, 6) ``KEPLERIAN_NAMES`` [a_au, e, i_deg, node_deg, argperi_deg, M_deg] or
    (N, 8) ``ELEMENT_NAMES`` (only those six columns are used). Ellipses (a > 0, e < 1) and
    hyperbolas (a < 0, e > 1, M = hyperbolic mean anomaly); a parabola needs
    :func:`cometary_to_cartesian`.
    """
    el = _as_rows(elements, 6, "Keplerian elements")
    a, e = el[:, 0], el[:, 1]
    ar, er = np.real(a), np.real(e)
    ok = ((er < 1) & (ar > 0)) | ((er > 1) & (ar < 0))
    if not np.all(ok):
        raise ValueError("Keplerian elements need a > 0 with 0 <= e < 1, or a < 0 with e > 1 "
                         "(use cometary_to_cartesian for parabolas)")
    q = a * (1.0 - e)
    dt = el[:, 5] * _RAD / _mean_motion(a, mu)
    return _cometary_dt_to_state(q, e, el[:, 2] * _RAD, el[:, 3] * _RAD, el[:, 4] * _RAD, dt, mu)


def two_body_propagate(state_helio_ecl_au: ArrayLike, epoch_tdb_jd: ArrayLike,
                       target_tdb_jd: ArrayLike, mu: float = GM_SUN_AU3_PER_DAY2) -> np.ndarray:
    """Kepler (two-body) motion of heliocentric states from ``epoch_tdb_jd`` to ``target_tdb_jd``
    (:func:`kepler_propagate` on (N, 6) states).

    An analytic convenience (initial orbits, short light-time hops), not the force-model
    propagator. The frame only needs to be inertial and Sun-centred (ecliptic or ICRF alike).
    """
    state = _as_states(state_helio_ecl_au)
    n = state.shape[0]
    dt = _epochs(target_tdb_jd, n) - _epochs(epoch_tdb_jd, n)
    r, v = kepler_propagate(state[:, :3].real, state[:, 3:].real, dt.real, mu)
    return np.concatenate([r, v], axis=1)


def kepler_propagate(r0_au: np.ndarray, v0_au_per_day: np.ndarray, dt_day: np.ndarray,
                     mu: float = GM_SUN_AU3_PER_DAY2, max_iter: int = 60
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Two-body propagation of states by ``dt_day`` (universal variables, any conic).

    ``r0_au``, ``v0_au_per_day``: (..., 3); ``dt_day``: (...); all broadcast together (e.g. states
    (K, 1, 3) with times (K or 1, M) give (K, M, 3)). Returns ``(r_au, v_au_per_day)``.
    Kepler's equation in the universal anomaly χ is solved with the Laguerre-Conway iteration
    (robust for elliptic, parabolic and hyperbolic orbits); converges to ~1e-15 relative.
    """
    r0 = np.asarray(r0_au, dtype=float)
    v0 = np.asarray(v0_au_per_day, dtype=float)
    dt = np.asarray(dt_day, dtype=float)
    shape = np.broadcast_shapes(r0.shape[:-1], v0.shape[:-1], dt.shape)
    r0 = np.broadcast_to(r0, shape + (3,)).reshape(-1, 3)
    v0 = np.broadcast_to(v0, shape + (3,)).reshape(-1, 3)
    dt = np.broadcast_to(dt, shape).reshape(-1)

    sqmu = np.sqrt(mu)
    r0n = np.linalg.norm(r0, axis=-1)
    v0sq = np.einsum("ij,ij->i", v0, v0)
    rv = np.einsum("ij,ij->i", r0, v0) / sqmu
    alpha = 2.0 / r0n - v0sq / mu  # 1/a
    one_m_ar = 1.0 - alpha * r0n

    # initial guess (Vallado): elliptic √μ α Δt; hyperbolic logarithmic; else Δt √μ / r0
    chi = sqmu * dt / r0n
    ell = alpha > 1e-9
    chi[ell] = sqmu * dt[ell] * alpha[ell]
    hyp = alpha < -1e-9
    if hyp.any():
        a = 1.0 / alpha[hyp]
        sgn = np.sign(dt[hyp])
        num = -2.0 * mu * alpha[hyp] * dt[hyp]
        den = rv[hyp] * sqmu + sgn * np.sqrt(-mu * a) * one_m_ar[hyp]
        with np.errstate(invalid="ignore", divide="ignore"):
            guess = sgn * np.sqrt(-a) * np.log(num / den)
        ok = np.isfinite(guess)
        chi_h = chi[hyp]
        chi_h[ok] = guess[ok]
        chi[hyp] = chi_h

    active = np.abs(dt) > 0
    chi[~active] = 0.0
    n_lag = 5.0
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        x = chi[idx]
        al = alpha[idx]
        z = al * x * x
        _, _, c, s = _stumpff(z)
        x2 = x * x
        f = rv[idx] * x2 * c + one_m_ar[idx] * x2 * x * s + r0n[idx] * x - sqmu * dt[idx]
        fp = rv[idx] * x * (1.0 - z * s) + one_m_ar[idx] * x2 * c + r0n[idx]
        fpp = rv[idx] * (1.0 - z * c) + one_m_ar[idx] * x * (1.0 - z * s)
        disc = np.sqrt(np.abs((n_lag - 1.0) ** 2 * fp * fp - n_lag * (n_lag - 1.0) * f * fpp))
        denom = fp + np.copysign(disc, fp)
        delta = n_lag * f / denom
        chi[idx] = x - delta
        done = np.abs(delta) <= 1e-14 * np.maximum(np.abs(x), 1e-3)
        active[idx[done | ~np.isfinite(delta)]] = False

    z = alpha * chi * chi
    _, _, c, s = _stumpff(z)
    chi2 = chi * chi
    f = 1.0 - chi2 * c / r0n
    g = dt - chi2 * chi * s / sqmu
    r = f[:, None] * r0 + g[:, None] * v0
    rn = np.linalg.norm(r, axis=-1)
    fdot = sqmu / (rn * r0n) * chi * (z * s - 1.0)
    gdot = 1.0 - chi2 * c / rn
    v = fdot[:, None] * r0 + gdot[:, None] * v0
    return r.reshape(shape + (3,)), v.reshape(shape + (3,))


# --------------------------------------------------------------------------------------------
# covariance and the barycentric ICRF <-> elements conversions
# --------------------------------------------------------------------------------------------
def complex_step_jacobian(func: Callable[[np.ndarray], np.ndarray], x: ArrayLike,
                          h: float = 1e-30) -> np.ndarray:
    """Jacobian (N, m, n) of a row-wise, complex-safe ``func``: (N, n) → (N, m) at ``x``.

    Complex step: ∂f/∂x_j = Im f(x + i h e_j) / h, exact to rounding for analytic ``func``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    cols = []
    for j in range(x.shape[1]):
        xc = x.astype(complex)
        xc[:, j] += 1j * h
        cols.append(np.imag(func(xc)) / h)
    return np.stack(cols, axis=-1)


def element_sigmas(covariance: ArrayLike) -> np.ndarray:
    """1σ uncertainties: square roots of the diagonal of (N, m, m) covariances → (N, m)."""
    c = np.asarray(covariance, dtype=float)
    return np.sqrt(np.diagonal(c, axis1=-2, axis2=-1))


def _sun_state(epoch: np.ndarray) -> np.ndarray:
    from neodefense.dynamics.ephemeris import body_barycentric_state

    pos, vel = body_barycentric_state("sun", epoch)
    return np.concatenate([pos, vel], axis=-1)


def _as_covariances(covariance: ArrayLike, n: int, size: int) -> np.ndarray:
    c = np.asarray(covariance, dtype=float)
    if c.shape[-2:] != (size, size):
        raise ValueError(f"covariance must be ({size}, {size}) or (N, {size}, {size}), "
                         f"got {c.shape}")
    return np.broadcast_to(c, (n, size, size))


def barycentric_icrf_to_elements(
    epoch_tdb_jd: ArrayLike,
    state_bary_icrf_au: ArrayLike,
    covariance: ArrayLike | None = None,
    mu: float = GM_SUN_AU3_PER_DAY2,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Barycentric ICRF states (N, 6) → heliocentric ecliptic J2000 elements (N, 8).

    Subtracts the Sun's DE440 barycentric state at the epoch, rotates to the ecliptic and calls
    :func:`cartesian_to_keplerian`. With ``covariance`` ((6, 6) or (N, 6, 6), au and au/day of the
    barycentric ICRF state) also returns the (N, 8, 8) covariance of ``ELEMENT_NAMES`` (angles in
    degrees; rank 6), J C Jᵀ with the complex-step Jacobian; :func:`element_sigmas` gives 1σ.
    Returns ``(elements, covariance_or_None)``.
    """
    state = _as_states(state_bary_icrf_au)
    n = state.shape[0]
    epoch = _epochs(epoch_tdb_jd, n).astype(float)
    sun = _sun_state(epoch)

    def convert(s: np.ndarray) -> np.ndarray:
        return cartesian_to_keplerian(equatorial_to_ecliptic(s - sun), epoch, mu)

    elements = convert(state)
    if covariance is None:
        return elements, None
    cov = _as_covariances(covariance, n, 6)
    jac = complex_step_jacobian(convert, state)
    return elements, jac @ cov @ np.swapaxes(jac, -1, -2)


def elements_to_barycentric_icrf(
    epoch_tdb_jd: ArrayLike,
    elements: ArrayLike,
    covariance: ArrayLike | None = None,
    parameterization: Literal["cometary", "keplerian"] = "cometary",
    mu: float = GM_SUN_AU3_PER_DAY2,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Heliocentric ecliptic J2000 elements (N, 8) at ``epoch_tdb_jd`` → barycentric ICRF states.

    ``parameterization`` picks the six independent columns used: "cometary" (q, e, i, node,
    argperi, tp; every conic — the default) or "keplerian" (a, e, i, node, argperi, M); the
    other two columns are ignored. ``covariance``: (N, 8, 8) in ``ELEMENT_NAMES`` order (as
    :func:`barycentric_icrf_to_elements` returns it; the 6×6 block of the chosen columns is
    used) or (N, 6, 6) already in the chosen set's order. Returns ``(state (N, 6),
    covariance (N, 6, 6) or None)`` (au, au/day).
    """
    el = _as_rows(elements, 8, "elements").astype(float)
    n = el.shape[0]
    epoch = _epochs(epoch_tdb_jd, n).astype(float)
    sun = _sun_state(epoch)
    if parameterization == "cometary":
        cols = list(_COMETARY_IN_ELEMENTS)

        def convert(x: np.ndarray) -> np.ndarray:
            return ecliptic_to_equatorial(cometary_to_cartesian(x, epoch, mu)) + sun
    elif parameterization == "keplerian":
        cols = list(_KEPLERIAN_IN_ELEMENTS)

        def convert(x: np.ndarray) -> np.ndarray:
            return ecliptic_to_equatorial(keplerian_to_cartesian(x, mu)) + sun
    else:
        raise ValueError(f"parameterization must be 'cometary' or 'keplerian', "
                         f"not {parameterization!r}")
    x = el[:, cols]
    state = convert(x)
    if covariance is None:
        return state, None
    c = np.asarray(covariance, dtype=float)
    if c.shape[-2:] == (8, 8):
        c = _as_covariances(c, n, 8)[:, cols][:, :, cols]
    cov = _as_covariances(c, n, 6)
    jac = complex_step_jacobian(convert, x)
    return state, jac @ cov @ np.swapaxes(jac, -1, -2)
