"""Systematic ranging over the admissible region, for arcs too short for Gauss (JPL Scout-like).

A tracklet (two or more observations, often minutes apart) fixes the *attributable* — direction
(α, δ) and angular rates (α̇, δ̇) at a reference time — but not the topocentric range ρ and range
rate ρ̇. Ranging scans (ρ, ρ̇) systematically: every grid point plus the attributable is a full
heliocentric state; its χ² against all observations under two-body motion gives a relative
likelihood, and the weighted samples describe what the object may be (Milani et al. 2004,
Celest. Mech. 90, 57 — admissible region; Farnocchia et al. 2015, Icarus 258, 18 — Scout).

Conventions
-----------
* Frames and units as :mod:`neodefense.orbits.iod`: heliocentric ICRF, au, au/day, TDB Julian
  dates (float or two-part), astrometric RA/Dec in degrees, residuals in arcsec (RA·cos Dec).
* Attributable: ``ra_rate_deg_per_day`` is dα/dt (*not* multiplied by cos δ).
* Admissible region (at the reference time, for each ρ): heliocentric two-body energy < 0 (bound
  orbits; ρ̇ then lies in an interval solved in closed form) and — unless
  ``allow_earth_bound`` — not an Earth satellite: geocentric energy < 0 inside the Earth's sphere
  of influence (0.0062 au = 925 000 km) is excluded, as is a geocentric distance below the Earth's
  radius + 100 km.
* Grid: ρ log-spaced from ``rho_min_au`` (1e-4 au = 15 000 km) to ``rho_max_au`` (5 au);
  ρ̇ uniform inside each admissible interval (cell centres). The grid density — uniform in log ρ,
  uniform over the admissible ρ̇ interval at each ρ — is the implicit prior.
* Refinement (default): at fixed (ρ, ρ̇), the four attributable angles and rates are adjusted by
  damped Gauss-Newton to minimise the χ² of all observations (Milani's "manifold of
  variations"), with light times frozen at their first evaluation and recomputed at the end.
* Weights: exp(-(χ² - χ²_min)/2), normalised to sum 1 (subtracting χ²_min only avoids
  underflow).
* Zoom: when the likelihood collapses onto a few grid points (effective sample size
  1/Σw² < ``min_effective_samples``, e.g. a multi-night arc), the samples no longer resolve it and
  the valley of best range rate is followed instead: at each range row a 5-parameter fit
  (attributable + ρ̇) gives ρ̇*(ρ), χ²*(ρ) and σ_ρ̇(ρ); the range interval shrinks to the rows with
  Δχ² < ``zoom_delta_chi2`` (plus one row each side) until at least 8 rows resolve it, and the
  final grid spans ρ̇* ± sqrt(``zoom_delta_chi2``)·σ_ρ̇ at each of ``n_rho`` rows. The likelihood
  then dominates the (grid) prior.
* Summary statistics (:meth:`RangingResult.summary`): most likely and weighted-quantile ranges,
  NEO probability (q < 1.3 au), Earth MOID per sample (:func:`moid_au`) and geocentric distance
  at the epoch, for imminent-impactor triage.
* Two-body motion only (Sun): for objects deep in the Earth's gravity well (≲ 0.01 au) over
  more than a few hours the geocentric acceleration is not modelled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from neodefense.constants import ARCSEC_PER_RAD, GM_SUN_AU3_PER_DAY2
from neodefense.dynamics import ephemeris
from neodefense.orbits import elements, iod

__all__ = [
    "EARTH_SOI_AU",
    "NEO_Q_AU",
    "Attributable",
    "RangingResult",
    "fit_attributable",
    "admissible_rhodot_bounds",
    "attributable_states",
    "systematic_ranging",
    "ranging_from_batch",
    "moid_au",
]

#: GM of the Earth (DE440, 398 600.435507 km³/s²) in au³/day²
_GM_EARTH_AU3_PER_DAY2 = 398600.435507 * 86400.0**2 / ephemeris.AU_KM**3
#: radius of the Earth's sphere of influence, a (m⊕/m☉)^(2/5) = 0.00619 au (925 000 km)
EARTH_SOI_AU = (_GM_EARTH_AU3_PER_DAY2 / GM_SUN_AU3_PER_DAY2) ** 0.4
#: the perihelion distance that defines a near-Earth object
NEO_Q_AU = 1.3
_EARTH_RADIUS_AU = 6378.137 / ephemeris.AU_KM
_ATMOSPHERE_AU = 100.0 / ephemeris.AU_KM


# ==============================================================================================
# attributable
# ==============================================================================================
@dataclasses.dataclass(slots=True)
class Attributable:
    """Direction and angular rates of a tracklet at ``epoch_tdb_jd``, with the observer there.

    ``covariance`` (4, 4) is the formal covariance of (ra_deg, dec_deg, ra_rate_deg_per_day,
    dec_rate_deg_per_day) from the weighted fit. The observer's heliocentric position and
    velocity at the epoch come from a polynomial fit of the observer positions of the tracklet
    (same degree as the angles), which also handles space-based observers whose velocity is
    not reported.
    """

    epoch_tdb_jd: float
    ra_deg: float
    dec_deg: float
    ra_rate_deg_per_day: float
    dec_rate_deg_per_day: float
    covariance: np.ndarray
    rms_arcsec: float
    n_obs: int
    arc_days: float
    degree: int
    observer_helio_au: np.ndarray
    observer_helio_vel_au_per_day: np.ndarray

    @property
    def vector(self) -> np.ndarray:
        """(α, δ, α̇, δ̇) in radians and radians/day."""
        return np.radians([self.ra_deg, self.dec_deg, self.ra_rate_deg_per_day,
                           self.dec_rate_deg_per_day])

    @property
    def motion_deg_per_day(self) -> float:
        """Total apparent motion sqrt((α̇ cos δ)² + δ̇²)."""
        return float(np.hypot(self.ra_rate_deg_per_day * np.cos(np.radians(self.dec_deg)),
                              self.dec_rate_deg_per_day))


def _sigmas(sigma_arcsec: float | np.ndarray, n: int) -> np.ndarray:
    """(n, 2) per-observation 1σ of (RA·cos δ, Dec) in arcsec from a scalar, (n,) or (n, 2)."""
    s = np.asarray(sigma_arcsec, dtype=float)
    if s.ndim == 0:
        s = np.full((n, 2), float(s))
    elif s.shape == (n,):
        s = np.column_stack([s, s])
    if s.shape != (n, 2) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"sigma_arcsec must be positive: scalar, ({n},) or ({n}, 2)")
    return s


def fit_attributable(times_tdb_jd: iod.TimesLike, ra_deg: np.ndarray, dec_deg: np.ndarray,
                     observer_helio_au: np.ndarray, sigma_arcsec: float | np.ndarray = 1.0,
                     epoch_tdb_jd: float | None = None, degree: int | None = None
                     ) -> Attributable:
    """Weighted polynomial fit of RA and Dec against time: the attributable at the epoch.

    ``degree`` defaults to 2 with four or more observations at three or more distinct times (the
    curvature then stays out of the rates), else 1. The epoch defaults to the mean observation
    time. RA is unwrapped across 0/360°. Needs ≥ 2 distinct times.
    """
    ref, t = iod.as_days(times_tdb_jd)
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    obs = np.asarray(observer_helio_au, dtype=float)
    n = t.size
    if ra.shape != (n,) or dec.shape != (n,) or obs.shape != (n, 3):
        raise ValueError("times, ra, dec (N,) and observer positions (N, 3) must agree")
    n_times = len(np.unique(np.round(t / 1e-7)))
    if n_times < 2:
        raise ValueError(f"an attributable needs observations at 2 or more distinct times "
                         f"(got {n} observation(s) at {n_times} time(s))")
    sig = _sigmas(sigma_arcsec, n)
    t0 = float(np.mean(t)) if epoch_tdb_jd is None else float(epoch_tdb_jd) - ref
    if degree is None:
        degree = 2 if (n >= 4 and n_times >= 3) else 1
    degree = int(min(degree, n_times - 1))
    dt = t - t0
    ra_u = ra[0] + ((ra - ra[0] + 180.0) % 360.0 - 180.0)
    design = np.vander(dt, degree + 1, increasing=True)  # 1, dt, dt², ...
    cosd = np.cos(np.radians(dec))
    sig_ra_deg = sig[:, 0] / 3600.0 / np.maximum(cosd, 1e-6)
    sig_dec_deg = sig[:, 1] / 3600.0

    def wfit(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = design / s[:, None]
        coef, *_ = np.linalg.lstsq(a, y / s, rcond=None)
        cov = np.linalg.pinv(a.T @ a)
        return coef, cov, y - design @ coef

    c_ra, cov_ra, res_ra = wfit(ra_u, sig_ra_deg)
    c_dec, cov_dec, res_dec = wfit(dec, sig_dec_deg)
    cov = np.zeros((4, 4))
    cov[np.ix_([0, 2], [0, 2])] = cov_ra[:2, :2]
    cov[np.ix_([1, 3], [1, 3])] = cov_dec[:2, :2]
    rms = float(np.sqrt(np.mean(np.concatenate([res_ra * cosd, res_dec]) ** 2)) * 3600.0)
    # observer position and velocity at the epoch, from the same kind of fit
    obs_coef, *_ = np.linalg.lstsq(design, obs, rcond=None)
    return Attributable(
        epoch_tdb_jd=ref + t0, ra_deg=float(c_ra[0] % 360.0), dec_deg=float(c_dec[0]),
        ra_rate_deg_per_day=float(c_ra[1]), dec_rate_deg_per_day=float(c_dec[1]),
        covariance=cov, rms_arcsec=rms, n_obs=n, arc_days=float(np.ptp(t)), degree=degree,
        observer_helio_au=obs_coef[0], observer_helio_vel_au_per_day=obs_coef[1])


# ==============================================================================================
# attributable + (ρ, ρ̇) -> state
# ==============================================================================================
def _basis(alpha: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line of sight and its derivatives ∂/∂α (divided by cos δ) and ∂/∂δ, each (..., 3)."""
    ca, sa, cd, sd = np.cos(alpha), np.sin(alpha), np.cos(delta), np.sin(delta)
    los = np.stack([cd * ca, cd * sa, sd], axis=-1)
    e_a = np.stack([-sa, ca, np.zeros_like(ca)], axis=-1)
    e_d = np.stack([-sd * ca, -sd * sa, cd], axis=-1)
    return los, e_a, e_d


def attributable_states(att_rad: np.ndarray, rho_au: np.ndarray, rhodot_au_per_day: np.ndarray,
                        observer_helio_au: np.ndarray, observer_helio_vel_au_per_day: np.ndarray
                        ) -> np.ndarray:
    """Heliocentric states (K, 6) from attributables (K, 4) [α, δ, α̇, δ̇ in rad, rad/day] (or
    one (4,)) and topocentric range (K,) au, range rate (K,) au/day:
    r = R + ρ L, v = Ṙ + ρ̇ L + ρ (α̇ cos δ ê_α + δ̇ ê_δ)."""
    att = np.broadcast_to(np.asarray(att_rad, dtype=float),
                          np.broadcast_shapes(np.shape(att_rad), np.shape(rho_au) + (4,)))
    rho = np.asarray(rho_au, dtype=float)[..., None]
    rhodot = np.asarray(rhodot_au_per_day, dtype=float)[..., None]
    los, e_a, e_d = _basis(att[..., 0], att[..., 1])
    ldot = att[..., 2:3] * np.cos(att[..., 1:2]) * e_a + att[..., 3:4] * e_d
    r = observer_helio_au + rho * los
    v = observer_helio_vel_au_per_day + rhodot * los + rho * ldot
    return np.concatenate([r, v], axis=-1)


def admissible_rhodot_bounds(att: Attributable, rho_au: np.ndarray,
                             mu: float = GM_SUN_AU3_PER_DAY2) -> tuple[np.ndarray, np.ndarray]:
    """Range-rate interval (au/day) of bound heliocentric orbits at each range (NaN if none).

    |v|² = |W + ρ̇ L|² with W = Ṙ + ρ L̇, so E < 0 ⇔ ρ̇² + 2(W·L) ρ̇ + |W|² - 2μ/|r| < 0.
    """
    rho = np.asarray(rho_au, dtype=float)
    los, e_a, e_d = _basis(*np.radians([att.ra_deg, att.dec_deg]))
    ldot = (np.radians(att.ra_rate_deg_per_day) * np.cos(np.radians(att.dec_deg)) * e_a
            + np.radians(att.dec_rate_deg_per_day) * e_d)
    r = att.observer_helio_au + rho[:, None] * los
    w = att.observer_helio_vel_au_per_day + rho[:, None] * ldot
    wl = w @ los
    disc = wl * wl - np.einsum("ij,ij->i", w, w) + 2.0 * mu / np.linalg.norm(r, axis=-1)
    root = np.sqrt(np.where(disc > 0, disc, np.nan))
    return -wl - root, -wl + root


# ==============================================================================================
# χ² of samples
# ==============================================================================================
@dataclasses.dataclass(slots=True)
class _Obs:
    """Observations on one day count (``t`` days since ``ref``), with everything a fit needs."""

    ref: float
    t: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    sig: np.ndarray  # (M, 2) arcsec
    obs_helio: np.ndarray  # (M, 3)
    obs_bary: np.ndarray
    sun_bary: np.ndarray
    sun_vel: np.ndarray


def _chi2_lighttime(states: np.ndarray, epoch_day: float, o: _Obs, mu: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """χ² (K,) of states at ``epoch_day`` with the project's light-time routine; light times."""
    ra_c, dec_c, tau = iod.two_body_astrometry(states, o.ref + epoch_day, o.ref + o.t,
                                               o.obs_bary, o.sun_bary, o.sun_vel, mu)
    from neodefense.orbits.observation_model import residuals_arcsec

    res = residuals_arcsec(o.ra, o.dec, ra_c, dec_c) / o.sig
    return np.sum(res**2, axis=(-1, -2)), tau


def _residuals_fixed_tau(states: np.ndarray, epoch_day: float, o: _Obs, tau: np.ndarray,
                         mu: float) -> np.ndarray:
    """Normalised residuals (K, M, 2) with light times ``tau`` (K, M) held fixed (fast path)."""
    dt = o.t[None, :] - tau - epoch_day
    r, _ = iod.kepler_propagate(states[:, None, :3], states[:, None, 3:], dt, mu)
    topo = r + (o.sun_bary - tau[..., None] * o.sun_vel) - o.obs_bary
    ra_c = np.arctan2(topo[..., 1], topo[..., 0])
    dec_c = np.arctan2(topo[..., 2], np.hypot(topo[..., 0], topo[..., 1]))
    dra = (np.radians(o.ra) - ra_c + np.pi) % (2.0 * np.pi) - np.pi
    res = np.stack([dra * np.cos(dec_c), np.radians(o.dec) - dec_c], axis=-1) * ARCSEC_PER_RAD
    return res / o.sig


def _refine(p0: np.ndarray, rho: np.ndarray, rhodot: np.ndarray, att: Attributable,
            epoch_day: float, o: _Obs, tau: np.ndarray, mu: float, iterations: int,
            free_rhodot: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Damped Gauss-Newton (Levenberg-Marquardt) per sample at fixed ρ.

    Parameters (α, δ, α̇, δ̇) in rad, rad/day — plus ρ̇ (au/day) when ``free_rhodot`` — start at
    ``p0`` (K, 4) and ``rhodot`` (K,); light times ``tau`` (K, M) stay fixed. Returns
    ``(attributables (K, 4), rhodot (K,), chi2 (K,), sigma_rhodot (K,))``; ``sigma_rhodot`` is
    the formal 1σ of ρ̇ (Δχ² = 1) when it is free, else NaN.
    """
    R, Rdot = att.observer_helio_au, att.observer_helio_vel_au_per_day
    npar = 5 if free_rhodot else 4
    p = np.column_stack([p0, rhodot]) if free_rhodot else np.array(p0, dtype=float, copy=True)

    def resid(par: np.ndarray) -> np.ndarray:
        rd = par[:, 4] if free_rhodot else rhodot
        st = attributable_states(par[:, :4], rho, rd, R, Rdot)
        return _residuals_fixed_tau(st, epoch_day, o, tau, mu).reshape(len(rho), -1)

    # finite-difference steps: 1e-8 rad (2 mas) in angle, 1e-7 rad/day in rate, 1e-8 au/day
    steps = np.array([1e-8, 1e-8, 1e-7, 1e-7, 1e-8])[:npar]
    r = resid(p)
    chi2 = np.sum(r * r, axis=1)
    lam = np.full(len(rho), 1e-3)
    normal = None
    for it in range(iterations + (1 if free_rhodot else 0)):
        jac = np.empty(r.shape + (npar,))
        for j in range(npar):
            dp = p.copy()
            dp[:, j] += steps[j]
            jac[..., j] = (resid(dp) - r) / steps[j]
        normal = np.einsum("kmi,kmj->kij", jac, jac)
        if it == iterations:  # final pass only for the covariance at the solution
            break
        grad = np.einsum("kmi,km->ki", jac, r)
        diag = np.einsum("kii->ki", normal)
        damped = normal + (lam[:, None] * np.maximum(diag, 1e-30))[:, :, None] * np.eye(npar)
        step = -(np.linalg.pinv(damped) @ grad[..., None])[..., 0]
        trial = p + step
        r_new = resid(trial)
        chi2_new = np.sum(r_new * r_new, axis=1)
        better = np.isfinite(chi2_new) & (chi2_new < chi2)
        p[better] = trial[better]
        r[better] = r_new[better]
        chi2[better] = chi2_new[better]
        lam = np.where(better, np.maximum(lam * 0.1, 1e-9), np.minimum(lam * 10.0, 1e9))
    sigma = np.full(len(rho), np.nan)
    if free_rhodot and normal is not None:
        cov = np.linalg.pinv(normal)
        sigma = np.sqrt(np.abs(cov[:, 4, 4]))
    rd = p[:, 4] if free_rhodot else np.asarray(rhodot, dtype=float)
    return p[:, :4], rd, chi2, sigma


# ==============================================================================================
# MOID
# ==============================================================================================
def _perifocal(q: np.ndarray, e: np.ndarray, inc: np.ndarray, node: np.ndarray,
               argp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Semi-axes a, b (K,) and perifocal unit vectors P, Q (K, 3) of ellipses (angles in rad)."""
    a = q / (1.0 - e)
    b = a * np.sqrt(1.0 - e * e)
    cO, sO, cw, sw, ci, si = (np.cos(node), np.sin(node), np.cos(argp), np.sin(argp),
                              np.cos(inc), np.sin(inc))
    P = np.stack([cO * cw - sO * sw * ci, sO * cw + cO * sw * ci, sw * si], axis=-1)
    Q = np.stack([-cO * sw - sO * cw * ci, -sO * sw + cO * cw * ci, cw * si], axis=-1)
    return a, b, P, Q


def _ellipse_points(a: np.ndarray, b: np.ndarray, e: np.ndarray, P: np.ndarray, Q: np.ndarray,
                    ecc_anom: np.ndarray) -> np.ndarray:
    """Positions (K, n, 3) at eccentric anomalies (K, n) on K ellipses (a, b, e (K,); P, Q (K, 3))."""
    x = a[:, None] * (np.cos(ecc_anom) - e[:, None])
    y = b[:, None] * np.sin(ecc_anom)
    return x[..., None] * P[:, None, :] + y[..., None] * Q[:, None, :]


def moid_au(states_helio_au: np.ndarray, epoch_tdb_jd: float,
            reference_helio_au: np.ndarray | None = None, n_coarse: int = 72,
            n_candidates: int = 2, chunk: int = 512, mu: float = GM_SUN_AU3_PER_DAY2
            ) -> np.ndarray:
    """Minimum orbit intersection distance (au) of heliocentric states with the Earth's orbit.

    The Earth's orbit is the osculating heliocentric ellipse of the geocentre at the epoch
    (DE440), as JPL's SBDB uses (Apophis #220 and Bennu #118 reproduced to < 1 km; the Earth-Moon
    barycentre's ellipse would differ by ~40 000 km), unless ``reference_helio_au`` (6,) gives
    another. Both ellipses are sampled at ``n_coarse`` eccentric anomalies; the
    ``n_candidates`` best local minima (over the object's anomaly) are refined by a 3×3 pattern
    search in both anomalies (move to the best neighbour, halve the step when the centre is
    best) down to 1e-9 rad. Vectorised over K states; NaN for unbound (e ≥ 1) states.
    """
    st = np.atleast_2d(np.asarray(states_helio_au, dtype=float))
    k = st.shape[0]
    if reference_helio_au is None:
        earth_r, earth_v = _earth_helio(epoch_tdb_jd)
        reference_helio_au = np.concatenate([earth_r, earth_v])
    ref_el = elements.cartesian_to_cometary(np.asarray(reference_helio_au)[None, :],
                                            epoch_tdb_jd, mu)
    el = elements.cartesian_to_cometary(st, epoch_tdb_jd, mu)
    out = np.full(k, np.nan)
    bound = el[:, 1] < 1.0
    if not bound.any():
        return out
    ra_, rb, rP, rQ = _perifocal(ref_el[:, 0], ref_el[:, 1], *np.radians(ref_el[:, 2:5].T))
    re_ = ref_el[:, 1]
    grid = np.linspace(0.0, 2.0 * np.pi, n_coarse, endpoint=False)
    earth_pts = _ellipse_points(ra_, rb, re_, rP, rQ, grid[None, :])[0]  # (n, 3)
    e2 = np.sum(earth_pts**2, axis=1)
    offsets = np.array([-1.0, 0.0, 1.0])
    du, dv = (g.ravel() for g in np.meshgrid(offsets, offsets, indexing="ij"))
    centre = len(du) // 2
    idx_all = np.flatnonzero(bound)
    for start in range(0, len(idx_all), chunk):
        idx = idx_all[start:start + chunk]
        c = len(idx)
        e = el[idx, 1]
        a, b, P, Q = _perifocal(el[idx, 0], e, *np.radians(el[idx, 2:5].T))
        pts = _ellipse_points(a, b, e, P, Q, np.broadcast_to(grid, (c, n_coarse)))
        d2 = (np.sum(pts**2, axis=2)[:, :, None] + e2[None, None, :]
              - 2.0 * pts @ earth_pts.T)  # (c, n_obj, n_earth)
        j_best = np.argmin(d2, axis=2)
        prof = np.take_along_axis(d2, j_best[..., None], axis=2)[..., 0]
        is_min = (prof <= np.roll(prof, 1, axis=1)) & (prof <= np.roll(prof, -1, axis=1))
        masked = np.where(is_min, prof, np.inf)
        ranked = np.argsort(masked, axis=1)[:, :n_candidates]
        best = np.full(c, np.inf)
        rows = np.arange(c)
        for cand in range(ranked.shape[1]):
            i0 = ranked[:, cand]
            valid = np.isfinite(masked[rows, i0])
            u = grid[i0]
            v = grid[j_best[rows, i0]]
            h = np.full(c, 2.0 * np.pi / n_coarse)
            cur = np.full(c, np.inf)
            for _ in range(300):
                uu = u[:, None] + h[:, None] * du[None, :]
                vv = v[:, None] + h[:, None] * dv[None, :]
                p_obj = _ellipse_points(a, b, e, P, Q, uu)
                p_ref = _ellipse_points(ra_, rb, re_, rP, rQ, vv.reshape(1, -1)).reshape(c, -1, 3)
                dd = np.sum((p_obj - p_ref) ** 2, axis=-1)
                j = np.argmin(dd, axis=1)
                u, v, cur = uu[rows, j], vv[rows, j], dd[rows, j]
                h = np.where(j == centre, 0.5 * h, h)
                if np.all(h <= 1e-9):
                    break
            best = np.where(valid, np.minimum(best, cur), best)
        out[idx] = np.sqrt(np.maximum(best, 0.0))
    return out


# ==============================================================================================
# result and driver
# ==============================================================================================
@dataclasses.dataclass(slots=True)
class RangingResult:
    """Samples of the admissible region with their χ² and normalised weights.

    Arrays have one entry per admissible sample: ``rho_au``, ``rhodot_au_per_day`` (the grid),
    ``states_au`` (K, 6) heliocentric ICRF at ``epoch_tdb_jd``, ``chi2``, ``weights`` (sum 1),
    ``q_au`` perihelion distance, ``moid_au`` (Earth MOID; NaN unless computed),
    ``earth_distance_au`` (geocentric distance at the epoch). ``ok`` False (with ``message``) when
    nothing is admissible.
    """

    ok: bool
    message: str
    epoch_tdb_jd: float
    attributable: Attributable | None
    n_obs: int
    rho_au: np.ndarray
    rhodot_au_per_day: np.ndarray
    states_au: np.ndarray
    chi2: np.ndarray
    weights: np.ndarray
    q_au: np.ndarray
    earth_distance_au: np.ndarray
    moid_au: np.ndarray
    zoomed: int = 0  #: how many times the grid was re-laid over the likely region

    def __len__(self) -> int:
        return len(self.chi2)

    def probability(self, mask: np.ndarray) -> float:
        """Total weight of the samples selected by a boolean mask."""
        return float(np.sum(self.weights[np.asarray(mask, dtype=bool)]))

    def weighted_quantile(self, values: np.ndarray, q: float | np.ndarray) -> np.ndarray:
        """Quantile(s) of ``values`` (K,) under the sample weights."""
        order = np.argsort(values)
        cdf = np.cumsum(self.weights[order])
        cdf /= cdf[-1]
        return np.interp(q, cdf, np.asarray(values)[order])

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.chi2))

    @property
    def most_likely_range_au(self) -> float:
        """ρ of the minimum-χ² sample."""
        return float(self.rho_au[self.best_index])

    @property
    def neo_probability(self) -> float:
        """Probability that q < 1.3 au."""
        return self.probability(self.q_au < NEO_Q_AU)

    @property
    def effective_samples(self) -> float:
        """1 / Σ w²: how many samples carry the weight."""
        return float(1.0 / np.sum(self.weights**2)) if len(self) else 0.0

    def summary(self) -> dict[str, float | int | bool | str]:
        """Scalar statistics: ranges, NEO probability, MOID and Earth-distance probabilities."""
        if not len(self):
            return {"ok": self.ok, "message": self.message, "n_samples": 0}
        lo, med, hi = self.weighted_quantile(self.rho_au, [0.025, 0.5, 0.975])
        out: dict[str, float | int | bool | str] = {
            "ok": self.ok, "message": self.message, "n_samples": len(self),
            "n_obs": self.n_obs, "epoch_tdb_jd": self.epoch_tdb_jd,
            "effective_samples": self.effective_samples, "chi2_min": float(self.chi2.min()),
            "rho_most_likely_au": self.most_likely_range_au, "rho_median_au": float(med),
            "rho_2.5_au": float(lo), "rho_97.5_au": float(hi),
            "neo_probability": self.neo_probability,
            "p_earth_distance_lt_0.01_au": self.probability(self.earth_distance_au < 0.01),
        }
        if np.any(np.isfinite(self.moid_au)):
            moid = np.where(np.isfinite(self.moid_au), self.moid_au, np.inf)
            out["p_moid_lt_0.05_au"] = self.probability(moid < 0.05)
            out["moid_median_au"] = float(self.weighted_quantile(moid, 0.5))
        return out


def _earth_helio(epoch_tdb_jd: float) -> tuple[np.ndarray, np.ndarray]:
    e, ev = ephemeris.earth_barycentric_state(epoch_tdb_jd)
    s, sv = ephemeris.body_barycentric_state("sun", epoch_tdb_jd)
    return e[0] - s[0], ev[0] - sv[0]


def _grid(att: Attributable, rho_lo: float, rho_hi: float, n_rho: int, n_rhodot: int,
          rhodot_box: tuple[float, float] | None, mu: float) -> tuple[np.ndarray, np.ndarray]:
    rho = np.geomspace(rho_lo, rho_hi, n_rho)
    lo, hi = admissible_rhodot_bounds(att, rho, mu)
    if rhodot_box is not None:
        lo = np.maximum(lo, rhodot_box[0])
        hi = np.minimum(hi, rhodot_box[1])
    ok = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    frac = (np.arange(n_rhodot) + 0.5) / n_rhodot
    rr = np.repeat(rho[ok], n_rhodot)
    rd = (lo[ok][:, None] + (hi - lo)[ok][:, None] * frac[None, :]).ravel()
    return rr, rd


def _admissible(states: np.ndarray, earth_r: np.ndarray, earth_v: np.ndarray,
                allow_earth_bound: bool, mu: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.linalg.norm(states[:, :3], axis=1)
    energy = 0.5 * np.sum(states[:, 3:] ** 2, axis=1) - mu / r
    geo = states[:, :3] - earth_r
    d_geo = np.linalg.norm(geo, axis=1)
    ok = (energy < 0) & (d_geo > _EARTH_RADIUS_AU + _ATMOSPHERE_AU)
    if not allow_earth_bound:
        e_geo = (0.5 * np.sum((states[:, 3:] - earth_v) ** 2, axis=1)
                 - _GM_EARTH_AU3_PER_DAY2 / d_geo)
        ok &= ~((d_geo < EARTH_SOI_AU) & (e_geo < 0))
    return ok, d_geo


def systematic_ranging(times_tdb_jd: iod.TimesLike, ra_deg: np.ndarray, dec_deg: np.ndarray,
                       observer_bary_au: np.ndarray, sun_bary_au: np.ndarray, *,
                       sun_bary_vel_au_per_day: np.ndarray | None = None,
                       sigma_arcsec: float | np.ndarray = 1.0,
                       tracklet: np.ndarray | None = None, epoch_tdb_jd: float | None = None,
                       rho_min_au: float = 1e-4, rho_max_au: float = 5.0, n_rho: int = 60,
                       n_rhodot: int = 30, refine: bool = True, refine_iterations: int = 4,
                       allow_earth_bound: bool = False, zoom: bool = True,
                       min_effective_samples: float = 30.0, zoom_delta_chi2: float = 30.0,
                       max_zoom_rounds: int = 6,
                       compute_moid: bool = True, mu: float = GM_SUN_AU3_PER_DAY2
                       ) -> RangingResult:
    """Systematic ranging of a short arc (see the module docstring for every convention).

    Inputs as :func:`neodefense.orbits.iod.initial_orbit`: N observation times (TDB JD, float or
    two-part), astrometric RA/Dec (deg), barycentric ICRF observer and Sun positions (N, 3) au
    (Sun velocity from DE440 unless given), per-observation 1σ ``sigma_arcsec`` (scalar, (N,) or
    (N, 2) for RA·cos δ and Dec). The attributable is fitted to the ``tracklet`` rows (default:
    all); χ² uses all N observations. Grid ``n_rho`` × ``n_rhodot`` (moderate by default: the
    two-body propagation is vectorised over grid points × observations).
    """
    ref, t = iod.as_days(times_tdb_jd)
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    obs_bary = np.asarray(observer_bary_au, dtype=float)
    sun = np.asarray(sun_bary_au, dtype=float)
    n = t.size
    if ra.shape != (n,) or dec.shape != (n,) or obs_bary.shape != (n, 3) or sun.shape != (n, 3):
        raise ValueError("times, ra, dec (N,) and observer/sun positions (N, 3) must agree")
    if sun_bary_vel_au_per_day is None:
        sun_vel = ephemeris.body_barycentric_state("sun", ref + t)[1]
    else:
        sun_vel = np.asarray(sun_bary_vel_au_per_day, dtype=float)
    sig = _sigmas(sigma_arcsec, n)
    obs_helio = obs_bary - sun
    o = _Obs(ref, t, ra, dec, sig, obs_helio, obs_bary, sun, sun_vel)

    trk = np.arange(n) if tracklet is None else np.asarray(tracklet)
    att = fit_attributable(ref + t[trk], ra[trk], dec[trk], obs_helio[trk], sig[trk],
                           epoch_tdb_jd)
    epoch = att.epoch_tdb_jd
    epoch_day = epoch - ref
    earth_r, earth_v = _earth_helio(epoch)
    empty = np.zeros(0)

    def fail(msg: str) -> RangingResult:
        return RangingResult(False, msg, epoch, att, n, empty, empty, np.zeros((0, 6)), empty,
                             empty, empty, empty, empty)

    R, Rdot = att.observer_helio_au, att.observer_helio_vel_au_per_day

    def evaluate(rho: np.ndarray, rhodot: np.ndarray, p0: np.ndarray | None = None
                 ) -> tuple[np.ndarray, ...]:
        """Admissible samples of a grid, refined: (rho, rhodot, states, chi2, attributables)."""
        att_k = np.array(np.broadcast_to(att.vector if p0 is None else p0, (len(rho), 4)))
        states = attributable_states(att_k, rho, rhodot, R, Rdot)
        ok, _ = _admissible(states, earth_r, earth_v, allow_earth_bound, mu)
        rho, rhodot, states, att_k = rho[ok], rhodot[ok], states[ok], att_k[ok]
        if not len(rho):
            return rho, rhodot, states, empty, att_k
        chi2, tau = _chi2_lighttime(states, epoch_day, o, mu)
        if refine:
            att_k, _, _, _ = _refine(att_k, rho, rhodot, att, epoch_day, o, tau, mu,
                                     refine_iterations)
            states = attributable_states(att_k, rho, rhodot, R, Rdot)
            ok, _ = _admissible(states, earth_r, earth_v, allow_earth_bound, mu)
            rho, rhodot, states, att_k = rho[ok], rhodot[ok], states[ok], att_k[ok]
            chi2 = _chi2_lighttime(states, epoch_day, o, mu)[0] if len(rho) else empty
        finite = np.isfinite(chi2)
        return rho[finite], rhodot[finite], states[finite], chi2[finite], att_k[finite]

    def profile(rho_rows: np.ndarray, rhodot0: np.ndarray, p0: np.ndarray
                ) -> tuple[np.ndarray, ...]:
        """Best ρ̇ at each range (5-parameter fit): (ρ̇*, χ²*, σ_ρ̇, attributables)."""
        states = attributable_states(p0, rho_rows, rhodot0, R, Rdot)
        _, tau = _chi2_lighttime(states, epoch_day, o, mu)
        p, rd, chi2, sig_rd = _refine(p0, rho_rows, rhodot0, att, epoch_day, o, tau, mu,
                                      max(refine_iterations, 8), free_rhodot=True)
        return rd, chi2, sig_rd, p

    rho, rhodot = _grid(att, rho_min_au, rho_max_au, n_rho, n_rhodot, None, mu)
    if not len(rho):
        return fail(f"empty admissible region for ranges {rho_min_au}-{rho_max_au} au "
                    "(no bound orbit fits the attributable)")
    rho, rhodot, states, chi2, p_k = evaluate(rho, rhodot)
    if not len(rho):
        return fail("no admissible sample: every grid point is unbound or an Earth satellite")

    # Zoom: when the likelihood sits on a few grid points (several nights), follow the valley
    # of best ρ̇ at each range (5-parameter fits along ρ), narrow the range interval to where
    # Δχ² < zoom_delta_chi2, and lay the final grid across the valley (ρ̇* ± k σ_ρ̇).
    zoomed = 0
    w = np.exp(-0.5 * (chi2 - chi2.min()))
    if zoom and np.sum(w) ** 2 / np.sum(w**2) < min_effective_samples:
        rows = np.unique(rho)
        best_in_row = np.array([np.flatnonzero(rho == r_)[np.argmin(chi2[rho == r_])]
                                for r_ in rows])
        rd0, p0 = rhodot[best_in_row], p_k[best_in_row]
        k_sigma = float(np.sqrt(zoom_delta_chi2))
        for _ in range(max_zoom_rounds):
            rd_star, chi2_star, sig_rd, p_star = profile(rows, rd0, p0)
            good = np.isfinite(chi2_star)
            if not good.any():
                break
            rows, rd_star, chi2_star, sig_rd, p_star = (x[good] for x in
                                                         (rows, rd_star, chi2_star, sig_rd,
                                                          p_star))
            sel = chi2_star - chi2_star.min() < zoom_delta_chi2
            lrow = np.log(rows)
            step_l = np.median(np.diff(lrow)) if len(rows) > 1 else 0.1
            lo_l = max(lrow[sel].min() - step_l, np.log(rho_min_au))
            hi_l = min(lrow[sel].max() + step_l, np.log(rho_max_au))
            new_rows = np.exp(np.linspace(lo_l, hi_l, n_rho))
            order = np.argsort(lrow)
            rd0 = np.interp(np.log(new_rows), lrow[order], rd_star[order])
            nearest = np.abs(np.log(new_rows)[:, None] - lrow[None, :]).argmin(axis=1)
            p0 = p_star[nearest]
            resolved = np.count_nonzero(sel) >= 8
            rows = new_rows
            zoomed += 1
            if resolved:
                break
        # the final grid: each range row across its valley, inside the admissible interval
        rd_c, _, sg, p_c = profile(rows, rd0, p0)
        lo_b, hi_b = admissible_rhodot_bounds(att, rows, mu)
        lo = np.maximum(rd_c - k_sigma * sg, lo_b)
        hi = np.minimum(rd_c + k_sigma * sg, hi_b)
        okr = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
        frac = (np.arange(n_rhodot) + 0.5) / n_rhodot
        g_rho = np.repeat(rows[okr], n_rhodot)
        g_rd = (lo[okr][:, None] + (hi - lo)[okr][:, None] * frac[None, :]).ravel()
        g_p = np.repeat(p_c[okr], n_rhodot, axis=0)
        if len(g_rho):
            res2 = evaluate(g_rho, g_rd, g_p)
            if len(res2[0]) and res2[3].min() <= chi2.min():
                rho, rhodot, states, chi2, p_k = res2
            else:
                zoomed = 0

    w = np.exp(-0.5 * (chi2 - chi2.min()))
    w /= w.sum()
    q = elements.cartesian_to_cometary(states, epoch, mu)[:, 0]
    d_geo = np.linalg.norm(states[:, :3] - earth_r, axis=1)
    moid = np.full(len(rho), np.nan)
    if compute_moid:  # skip samples that carry no weight
        heavy = w > 1e-12 * w.max()
        moid[heavy] = moid_au(states[heavy], epoch, mu=mu)
    msg = (f"{len(rho)} admissible samples"
           f"{f' (grid zoomed {zoomed}x)' if zoomed else ''}, "
           f"chi2_min {chi2.min():.3g} for {2 * n} residuals")
    return RangingResult(True, msg, epoch, att, n, rho, rhodot, states, chi2, w, q, d_geo, moid,
                         zoomed)


def ranging_from_batch(batch, rows: np.ndarray | None = None,
                       sigma_arcsec: float | np.ndarray | Callable = 1.0,
                       **kwargs) -> RangingResult:
    """:func:`systematic_ranging` on the usable optical rows of a batch (see
    :func:`neodefense.orbits.iod.batch_arrays`). ``sigma_arcsec`` may be a callable
    ``f(batch_subset) -> (n,) or (n, 2)`` (e.g. a weighting scheme)."""
    arr = iod.batch_arrays(batch, rows)
    if callable(sigma_arcsec):
        sigma_arcsec = sigma_arcsec(batch.take(arr.rows))
    return systematic_ranging(arr.times_tdb_jd, arr.ra_deg, arr.dec_deg, arr.observer_bary_au,
                              arr.sun_bary_au, sun_bary_vel_au_per_day=arr.sun_bary_vel_au_per_day,
                              sigma_arcsec=sigma_arcsec, **kwargs)
