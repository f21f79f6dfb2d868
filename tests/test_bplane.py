"""b-plane geometry and the Gaussian-in-a-disc impact probability (neodefense.impacts.bplane).

Geometry: the straight-line limit, hyperbolas built analytically (pericentre from (b, v∞), the
b-plane invariant along the orbit propagated with the two-body propagator), the frame, the
focusing radius, the impact flag, bound orbits, the complex-step Jacobian against central
differences, and Apophis 2029 from JPL #220 through the project's propagator.

Impact probability: closed forms (centred circular Gaussian; offset circular Gaussian = the
non-central χ² with 2 degrees of freedom), the 1-D limit of very elongated ellipses (axis ratio
1e8), seeded Monte Carlo (4σ), dense 2-D polar Gauss-Legendre quadrature for far offsets
(1e-10 .. 1e-16), and the transposed integration order as an independent computation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

from neodefense.constants import AU_KM, SECONDS_PER_DAY
from neodefense.impacts.bplane import (
    GM_KM3_S2,
    RADIUS_KM,
    BPlane,
    bplane,
    bplane_from_states,
    bplane_jacobian,
    focused_radius_km,
    impact_probability_disc,
)
from neodefense.orbits.elements import kepler_propagate

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REF = DATA / "reference"
MU_EARTH = GM_KM3_S2["earth"]
R_EARTH = RADIUS_KM["earth"]
EARTH_HELIO_V = np.array([-29.0, 6.5, 2.8])  # a typical heliocentric Earth velocity, km/s


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _pericentre_state(rp_km: float, v_inf_km_s: float, mu: float, rot: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Relative state at the pericentre of a hyperbola (orbit plane rotated by ``rot``)."""
    vp = math.sqrt(v_inf_km_s**2 + 2.0 * mu / rp_km)
    return rot @ np.array([rp_km, 0.0, 0.0]), rot @ np.array([0.0, vp, 0.0])


def _rp_from_b(b_km: float, v_inf_km_s: float, mu: float) -> float:
    """Pericentre distance of the hyperbola with impact parameter b and excess speed v∞."""
    return (mu / v_inf_km_s**2) * (math.sqrt(1.0 + (b_km * v_inf_km_s**2 / mu) ** 2) - 1.0)


# -- constants ----------------------------------------------------------------------------------
def test_gm_are_de440_as_assist_has_them():
    from neodefense.dynamics.ephemeris import assist_ephem

    ephem = assist_ephem()
    to_km3_s2 = AU_KM**3 / SECONDS_PER_DAY**2
    assert ephem.get_particle(3, 0).m * to_km3_s2 == pytest.approx(GM_KM3_S2["earth"], rel=1e-12)
    assert ephem.get_particle(4, 0).m * to_km3_s2 == pytest.approx(GM_KM3_S2["moon"], rel=1e-12)
    assert RADIUS_KM == {"earth": 6378.137, "moon": 1737.4}


def test_focused_radius_earth_at_12_km_s():
    expected = 6378.137 * math.sqrt(1.0 + 2.0 * 398600.435507 / (6378.137 * 144.0))
    assert expected == pytest.approx(8_717.27, abs=0.01)  # 1.367 Earth radii
    assert focused_radius_km(R_EARTH, MU_EARTH, 12.0) == pytest.approx(expected, rel=1e-15)
    v = np.array([1.0, 12.0, 70.0])
    out = focused_radius_km(R_EARTH, MU_EARTH, v)
    assert out.shape == (3,) and np.all(np.diff(out) < 0) and out[-1] > R_EARTH
    assert focused_radius_km(R_EARTH, 0.0, 5.0) == R_EARTH


# -- geometry -----------------------------------------------------------------------------------
def test_straight_line_limit_gives_the_geometric_miss_vector():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(50, 3)) * 1e6
    v = rng.normal(size=(50, 3)) * 10.0
    vb = rng.normal(size=(50, 3)) * 30.0
    bp = bplane(r, v, vb, 0.0, R_EARTH)
    vhat = v / np.linalg.norm(v, axis=1)[:, None]
    miss = r - np.sum(r * vhat, axis=1)[:, None] * vhat
    np.testing.assert_allclose(bp.b_km, np.linalg.norm(miss, axis=1), rtol=1e-13)
    np.testing.assert_allclose(np.hypot(bp.xi_km, bp.zeta_km), bp.b_km, rtol=1e-13)
    np.testing.assert_allclose(bp.eta_hat, vhat, atol=1e-15)
    rebuilt = bp.xi_km[:, None] * bp.xi_hat + bp.zeta_km[:, None] * bp.zeta_hat
    np.testing.assert_allclose(rebuilt, miss, atol=1e-13 * 1e6)
    np.testing.assert_allclose(bp.v_inf_km_s, np.linalg.norm(v, axis=1), rtol=1e-15)
    np.testing.assert_array_equal(bp.impact_radius_km, R_EARTH)


def test_weak_deflection_keeps_full_precision():
    """e ≫ 1 (GM → 0): the b-plane tends continuously to the straight line, no cancellation."""
    rng = np.random.default_rng(2)
    r = rng.normal(size=(20, 3)) * 4e5
    v = rng.normal(size=(20, 3)) * 15.0
    vb = np.broadcast_to(EARTH_HELIO_V, (20, 3))
    line = bplane(r, v, vb, 0.0, R_EARTH)
    for gm in (1e-12, 1e-6):  # e ~ 1e17 and 1e11
        weak = bplane(r, v, vb, gm, R_EARTH)
        # the deflection is O(GM / (b v²)): ≤ 1e-6 / (1e3 · 1) relative
        scale = gm / 1e3 + 1e-14
        np.testing.assert_allclose(weak.xi_km, line.xi_km, rtol=0, atol=scale * 1e6 + 1e-8)
        np.testing.assert_allclose(weak.zeta_km, line.zeta_km, rtol=0, atol=scale * 1e6 + 1e-8)
        np.testing.assert_allclose(weak.b_km, line.b_km, rtol=scale + 1e-14)


def test_hyperbola_pericentre_from_b_and_v_inf():
    rng = np.random.default_rng(3)
    for rp, vinf in ((7_000.0, 5.0), (6_000.0, 20.0), (50_000.0, 2.0), (38_012.0, 5.84),
                     (400_000.0, 0.5), (2_000.0, 60.0)):
        r, v = _pericentre_state(rp, vinf, MU_EARTH, _rotation(rng))
        bp = bplane(r, v, EARTH_HELIO_V, MU_EARTH, R_EARTH)
        assert bp.v_inf_km_s[0] == pytest.approx(vinf, rel=1e-14)
        assert _rp_from_b(bp.b_km[0], vinf, MU_EARTH) == pytest.approx(rp, rel=1e-12)
        assert math.hypot(bp.xi_km[0], bp.zeta_km[0]) == pytest.approx(bp.b_km[0], rel=1e-14)
        # impact <=> pericentre below the radius <=> b below the focused radius
        assert bool(bp.impact[0]) is (rp < R_EARTH)


def test_bplane_is_invariant_along_one_hyperbola():
    """Same (ξ, ζ, v∞) from any point of a two-body hyperbola, incoming or outgoing leg."""
    rng = np.random.default_rng(4)
    for rp, vinf in ((12_000.0, 4.0), (30_000.0, 1.0), (7_000.0, 25.0)):
        r0, v0 = _pericentre_state(rp, vinf, MU_EARTH, _rotation(rng))
        ref = bplane(r0, v0, EARTH_HELIO_V, MU_EARTH, R_EARTH)
        dt_s = np.array([-20.0, -3.0, -0.1, 0.02, 1.0, 10.0]) * SECONDS_PER_DAY
        r, v = kepler_propagate(r0[None], v0[None], dt_s, MU_EARTH)
        assert np.all(np.linalg.norm(r, axis=1) > rp)
        bp = bplane(r, v, EARTH_HELIO_V, MU_EARTH, R_EARTH)
        np.testing.assert_allclose(bp.xi_km, ref.xi_km[0], rtol=0, atol=1e-9 * ref.b_km[0])
        np.testing.assert_allclose(bp.zeta_km, ref.zeta_km[0], rtol=0, atol=1e-9 * ref.b_km[0])
        np.testing.assert_allclose(bp.v_inf_km_s, vinf, rtol=1e-12)
        np.testing.assert_allclose(bp.eta_hat, np.broadcast_to(ref.eta_hat, (6, 3)), atol=1e-12)
        # eta is the incoming asymptote: the velocity long before the encounter
        r_far, v_far = kepler_propagate(r0, v0, -3e4 * SECONDS_PER_DAY, MU_EARTH)
        angle = np.linalg.norm(np.cross(v_far / np.linalg.norm(v_far), ref.eta_hat[0]))
        # residual turning from there to infinity < GM / (r v∞²) rad (~1e-8 here)
        assert angle < MU_EARTH / (np.linalg.norm(r_far) * vinf**2) + 1e-15


def test_frame_is_orthonormal_right_handed_and_oriented():
    rng = np.random.default_rng(5)
    n = 200
    r = rng.normal(size=(n, 3)) * 1e5
    v = rng.normal(size=(n, 3)) * 10.0
    vb = rng.normal(size=(n, 3)) * 30.0
    bp = bplane(r, v, vb, MU_EARTH, R_EARTH)
    frame = np.stack([bp.xi_hat, bp.eta_hat, bp.zeta_hat], axis=1)  # rows ξ̂, η̂, ζ̂
    np.testing.assert_allclose(frame @ np.swapaxes(frame, 1, 2), np.broadcast_to(np.eye(3), (n, 3, 3)),
                               atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(frame), 1.0, atol=1e-14)  # (ξ, η, ζ) right-handed
    np.testing.assert_allclose(np.cross(bp.eta_hat, bp.zeta_hat), bp.xi_hat, atol=1e-15)
    # ζ̂ opposite to the projection of the body's velocity: ζ̂·V < 0 and ξ̂·V = 0
    assert np.all(np.sum(bp.zeta_hat * vb, axis=1) < 0.0)
    np.testing.assert_allclose(np.sum(bp.xi_hat * vb, axis=1), 0.0, atol=1e-12)
    # the planet velocity along eta: documented fallback, still a frame
    par = bplane(np.array([1e5, 2e4, 0.0]), np.array([-10.0, 0.0, 0.0]), np.array([30.0, 0, 0]),
                 0.0, R_EARTH)
    f = np.stack([par.xi_hat[0], par.eta_hat[0], par.zeta_hat[0]])
    np.testing.assert_allclose(f @ f.T, np.eye(3), atol=1e-15)
    assert par.b_km[0] == pytest.approx(2e4)


def test_vectorized_rows_equal_single_calls_and_shapes():
    rng = np.random.default_rng(6)
    r = rng.normal(size=(5, 3)) * 1e5
    v = rng.normal(size=(5, 3)) * 10.0
    bp = bplane(r, v, EARTH_HELIO_V, MU_EARTH, R_EARTH)
    assert isinstance(bp, BPlane) and len(bp) == 5
    for name in ("xi_km", "zeta_km", "b_km", "v_inf_km_s", "impact_radius_km"):
        assert getattr(bp, name).shape == (5,)
    for name in ("eta_hat", "xi_hat", "zeta_hat"):
        assert getattr(bp, name).shape == (5, 3)
    for i in range(5):
        one = bplane(r[i], v[i], EARTH_HELIO_V, MU_EARTH, R_EARTH)
        assert one.xi_km[0] == bp.xi_km[i] and one.zeta_km[0] == bp.zeta_km[i]
    with pytest.raises(ValueError):
        bplane(np.zeros(3), v[0], EARTH_HELIO_V, MU_EARTH, R_EARTH)
    with pytest.raises(ValueError):
        bplane(r[:, :2], v[:, :2], EARTH_HELIO_V, MU_EARTH, R_EARTH)


def test_impact_flag_and_head_on_trajectory():
    rng = np.random.default_rng(7)
    rot = _rotation(rng)
    hit = bplane(*_pericentre_state(R_EARTH - 1.0, 12.0, MU_EARTH, rot), EARTH_HELIO_V, MU_EARTH,
                 R_EARTH)
    miss = bplane(*_pericentre_state(R_EARTH + 1.0, 12.0, MU_EARTH, rot), EARTH_HELIO_V, MU_EARTH,
                  R_EARTH)
    assert hit.impact[0] and not miss.impact[0]
    assert hit.impact_radius_km[0] == pytest.approx(focused_radius_km(R_EARTH, MU_EARTH, 12.0))
    assert hit.b_km[0] < hit.impact_radius_km[0] < miss.b_km[0]
    # aimed at the centre: b = 0, no NaN
    head_on = bplane(np.array([1e5, 0.0, 0.0]), np.array([-11.0, 0.0, 0.0]), EARTH_HELIO_V,
                     MU_EARTH, R_EARTH)
    assert head_on.b_km[0] == 0.0 and head_on.impact[0]
    assert np.all(np.isfinite(head_on.eta_hat)) and abs(head_on.xi_km[0]) < 1e-9


def test_bound_relative_orbit_does_not_crash():
    """v∞² ≤ 0: v∞ = NaN, straight-line b; impact still means pericentre < R."""
    rp, ra = 5_000.0, 300_000.0  # pericentre inside the Earth
    a = 0.5 * (rp + ra)
    vp = math.sqrt(MU_EARTH * (2.0 / rp - 1.0 / a))
    r0, v0 = np.array([rp, 0.0, 0.0]), np.array([0.0, vp, 0.0])
    r, v = kepler_propagate(r0, v0, 2.0 * SECONDS_PER_DAY, MU_EARTH)
    bp = bplane(r, v, EARTH_HELIO_V, MU_EARTH, R_EARTH)
    assert np.isnan(bp.v_inf_km_s[0])
    speed = np.linalg.norm(v)
    assert bp.b_km[0] == pytest.approx(np.linalg.norm(np.cross(r, v)) / speed, rel=1e-14)
    assert bp.impact[0]
    far = bplane(*kepler_propagate(np.array([8_000.0, 0, 0]),
                                   np.array([0.0, math.sqrt(MU_EARTH * (2 / 8e3 - 1 / 154e3)), 0]),
                                   1e5, MU_EARTH), EARTH_HELIO_V, MU_EARTH, R_EARTH)
    assert not far.impact[0] and np.isnan(far.v_inf_km_s[0])


def test_jacobian_matches_central_differences():
    rng = np.random.default_rng(8)
    r0, v0 = _pericentre_state(20_000.0, 6.0, MU_EARTH, _rotation(rng))
    r, v = kepler_propagate(r0, v0, -0.3 * SECONDS_PER_DAY, MU_EARTH)  # before the minimum
    x = np.concatenate([r, v])
    jac = bplane_jacobian(x, EARTH_HELIO_V, MU_EARTH)
    assert jac.shape == (2, 6)

    def xi_zeta(s: np.ndarray) -> np.ndarray:
        bp = bplane(s[:3], s[3:], EARTH_HELIO_V, MU_EARTH, R_EARTH)
        return np.array([bp.xi_km[0], bp.zeta_km[0]])

    # steps 1e-5 of each scale (|r| ~ 1e5 km, |v| ~ 10 km/s): truncation O(step²) ~ 1e-10,
    # rounding ~ eps · |ξ| / step ~ 1e-10 relative to the largest entry
    fd = np.empty((2, 6))
    for j in range(6):
        step = 1e-5 * (np.linalg.norm(r) if j < 3 else np.linalg.norm(v))
        e = np.zeros(6)
        e[j] = step
        fd[:, j] = (xi_zeta(x + e) - xi_zeta(x - e)) / (2.0 * step)
    np.testing.assert_allclose(jac[:, :3], fd[:, :3], rtol=0, atol=1e-7 * np.abs(fd[:, :3]).max())
    np.testing.assert_allclose(jac[:, 3:], fd[:, 3:], rtol=0, atol=1e-7 * np.abs(fd[:, 3:]).max())
    # the position derivative along the velocity is ~0 (b-plane invariant along the orbit, to
    # first order): d(ξ, ζ)/dt = J_r v + J_v a = 0
    acc = -MU_EARTH * r / np.linalg.norm(r) ** 3
    np.testing.assert_allclose(jac[:, :3] @ v + jac[:, 3:] @ acc, 0.0, atol=1e-10)


def test_bplane_from_states_converts_units():
    rng = np.random.default_rng(9)
    earth = np.concatenate([rng.normal(size=(3, 3)), rng.normal(size=(3, 3)) * 0.017], axis=1)
    sun = np.concatenate([rng.normal(size=(3, 3)) * 1e-3, rng.normal(size=(3, 3)) * 1e-5], axis=1)
    rel = np.concatenate([rng.normal(size=(3, 3)) * 1e-3, rng.normal(size=(3, 3)) * 5e-3], axis=1)
    bp = bplane_from_states(earth + rel, earth, sun, "Earth")
    kms = AU_KM / 86400.0
    ref = bplane(rel[:, :3] * AU_KM, rel[:, 3:] * kms, (earth[:, 3:] - sun[:, 3:]) * kms,
                 MU_EARTH, R_EARTH)
    np.testing.assert_allclose(bp.xi_km, ref.xi_km, rtol=1e-12)
    np.testing.assert_allclose(bp.zeta_km, ref.zeta_km, rtol=1e-12)
    moon = bplane_from_states(earth + rel, earth, sun, "moon")
    assert np.all(moon.impact_radius_km < bp.impact_radius_km)
    with pytest.raises(ValueError):
        bplane_from_states(earth + rel, earth, sun, "mars")


# -- real data: Apophis 2029 ---------------------------------------------------------------------
@pytest.mark.skipif(not REF.is_dir(), reason="shared reference data not present")
def test_apophis_2029_bplane():
    """JPL #220 through the project's propagator: v∞ = 5.84 km/s (published), a miss."""
    from neodefense.dynamics.ephemeris import body_barycentric_state, earth_barycentric_state
    from neodefense.dynamics.nongrav import NonGrav
    from neodefense.dynamics.propagator import close_approaches
    from neodefense.orbits.elements import elements_to_barycentric_icrf

    orbit = json.loads((REF / "jpl_sbdb" / "99942_Apophis_JPL220.json").read_text())["orbit"]
    el = {x["name"]: float(x["value"]) for x in orbit["elements"]}
    pars = {x["name"]: float(x["value"]) for x in orbit["model_pars"]}
    epoch = float(orbit["epoch"])
    assert orbit["pe_used"] in ("DE440", "DE441")  # the default mu of the elements module
    row = [el["a"], el["e"], el["i"], el["om"], el["w"], el["ma"], el["q"], el["tp"]]
    state, _ = elements_to_barycentric_icrf(epoch, [row], parameterization="keplerian")
    ng = NonGrav(A1=pars["A1"], A2=pars["A2"], alpha=pars["ALN"], r0_au=pars["R0"], m=pars["NM"],
                 k=pars["NK"])
    until = 2462240.5  # 2029-04-14 0h TDB
    found = [c for c in close_approaches(epoch, state[0], until, bodies=("earth",), nongrav=ng)
             if c.body == "earth"]
    assert len(found) == 1
    ca = found[0]
    assert 2462240.0 < ca.time_tdb_jd < until  # 2029-04-13 (TDB)
    _, earth_v = earth_barycentric_state(ca.time_tdb_jd)
    _, sun_v = body_barycentric_state("sun", ca.time_tdb_jd)
    kms = AU_KM / SECONDS_PER_DAY
    bp = bplane(ca.rel_position_au * AU_KM, ca.rel_velocity_au_per_day * kms,
                (earth_v[0] - sun_v[0]) * kms, MU_EARTH, R_EARTH)
    print(f"\nApophis 2029 b-plane: xi {bp.xi_km[0]:.1f} km, zeta {bp.zeta_km[0]:.1f} km, "
          f"b {bp.b_km[0]:.1f} km, v_inf {bp.v_inf_km_s[0]:.4f} km/s, "
          f"impact radius {bp.impact_radius_km[0]:.1f} km")
    assert bp.v_inf_km_s[0] == pytest.approx(5.84, abs=0.05)
    assert bp.b_km[0] > bp.impact_radius_km[0] and not bp.impact[0]
    assert math.hypot(bp.xi_km[0], bp.zeta_km[0]) == pytest.approx(bp.b_km[0], rel=1e-13)
    # the pericentre of the osculating hyperbola is the close-approach distance (38,012 km)
    assert _rp_from_b(bp.b_km[0], bp.v_inf_km_s[0], MU_EARTH) == pytest.approx(
        ca.distance_km, rel=1e-9)
    assert bp.impact_radius_km[0] == pytest.approx(2.16 * R_EARTH, rel=0.01)


# -- impact probability of a Gaussian in a disc -------------------------------------------------
def _rot2(theta: float) -> np.ndarray:
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


def _cov(sig_u: float, sig_v: float, theta: float) -> np.ndarray:
    q = _rot2(theta)
    return q @ np.diag([sig_u**2, sig_v**2]) @ q.T


def _ip_transposed(mean, cov, radius) -> float:
    """Independent computation in the other order: numerically along the long axis u,
    analytically (scipy.stats.norm cdf/sf) along the short axis v."""
    lam, vec = np.linalg.eigh(cov)
    sv, su = math.sqrt(lam[0]), math.sqrt(lam[1])
    mv, mu = float(mean @ vec[:, 0]), float(mean @ vec[:, 1])

    def inner(h: float) -> float:
        lo, hi = (-h - mv) / sv, (h - mv) / sv
        if lo > 0:
            return float(stats.norm.sf(lo) - stats.norm.sf(hi))
        return float(stats.norm.cdf(hi) - stats.norm.cdf(lo))

    def f(theta: float) -> float:
        u = radius * math.sin(theta)
        h = radius * math.cos(theta)
        return stats.norm.pdf(u, mu, su) * inner(h) * h

    pts = [mu + k * su for k in (-5, -2, 0, 2, 5)]
    for k in (-8, -3, -1, 0, 1, 3, 8):  # the step of the inner factor: h(u) = |m_v| + k σ_v
        h = abs(mv) + k * sv
        if 0.0 < h < radius:
            w = math.sqrt(radius**2 - h**2)
            pts += [w, -w]
    thetas = sorted({math.asin(p / radius) for p in pts if abs(p) < radius}
                    | {-math.pi / 2, math.pi / 2})
    return sum(integrate.quad(f, a, b, epsabs=0.0, epsrel=1e-12, limit=300)[0]
               for a, b in zip(thetas[:-1], thetas[1:]))


def _ip_dense_polar(mean, cov, radius, n_r=300, n_t=600) -> float:
    """Brute force: Gauss-Legendre in r and in the polar angle over the disc."""
    xr, wr = np.polynomial.legendre.leggauss(n_r)
    xt, wt = np.polynomial.legendre.leggauss(n_t)
    rr = 0.5 * radius * (xr + 1.0)
    tt = math.pi * (xt + 1.0)
    pts = np.stack(np.meshgrid(rr, tt, indexing="ij"), -1)
    xy = np.stack([pts[..., 0] * np.cos(pts[..., 1]), pts[..., 0] * np.sin(pts[..., 1])], -1)
    d = xy - mean
    icov = np.linalg.inv(cov)
    q = np.einsum("...i,ij,...j->...", d, icov, d)
    dens = np.exp(-0.5 * q) / (2.0 * math.pi * math.sqrt(np.linalg.det(cov)))
    weights = np.outer(wr * 0.5 * radius * rr, wt * math.pi)
    return float(np.sum(dens * weights))


def test_ip_centred_circular_gaussian_closed_form():
    for sigma in (30.0, 1_000.0, 3_000.0, R_EARTH, 1e4, 1e5, 1e6, 1e7, 1e8):
        expected = -math.expm1(-(R_EARTH**2) / (2.0 * sigma**2))  # down to 2e-12
        got = impact_probability_disc([0.0, 0.0], np.eye(2) * sigma**2, R_EARTH)
        assert got == pytest.approx(expected, rel=1e-9), sigma


def test_ip_offset_circular_gaussian_is_noncentral_chi2():
    for sigma, offset in ((3_000.0, 5_000.0), (1e4, 3e4), (500.0, 6_000.0), (2e3, 1.5e4),
                          (1e5, 2e5)):
        expected = stats.ncx2.cdf(R_EARTH**2 / sigma**2, 2, (offset / sigma) ** 2)
        for theta in (0.0, 1.0):
            mean = _rot2(theta) @ np.array([offset, 0.0])
            got = impact_probability_disc(mean, np.eye(2) * sigma**2, R_EARTH)
            assert got == pytest.approx(expected, rel=1e-8), (sigma, offset, got, expected)


@pytest.mark.parametrize("theta", [0.0, 0.4, math.pi / 2, 2.5])
def test_ip_very_elongated_matches_the_1d_limit(theta):
    """σ_long = 1e7 km, σ_short = 0.1 km (axis ratio 1e8): the disc's chord at the short-axis
    offset times the long-axis density; the σ_short correction (h''σ²/2h) is < 1e-8 here."""
    su, sv = 1e7, 0.1
    q = _rot2(theta)
    for mu, mv in ((2e7, 100.0), (0.0, 6_000.0), (5e7, -3_000.0), (-8e7, 5_000.0), (1e5, 0.0)):
        h = math.sqrt(R_EARTH**2 - mv**2)
        # by symmetry, in the lower tail where ndtr keeps its relative precision
        expected = special.ndtr((h - abs(mu)) / su) - special.ndtr((-h - abs(mu)) / su)
        got = impact_probability_disc(q @ np.array([mu, mv]), _cov(su, sv, theta), R_EARTH)
        assert got == pytest.approx(expected, rel=1e-7), (mu, mv, got, expected)
    # the short-axis offset beyond the disc by 20σ: nothing
    assert impact_probability_disc(q @ np.array([0.0, R_EARTH + 2.0]), _cov(su, sv, theta),
                                   R_EARTH) < 1e-80


def test_ip_against_seeded_monte_carlo():
    rng = np.random.default_rng(2024)
    n = 1_000_000
    cases = [
        ([3_000.0, -2_000.0], 4_000.0, 1_500.0, 0.3),
        ([0.0, 0.0], 2e4, 300.0, 1.2),
        ([9_000.0, 1_000.0], 5_000.0, 5_000.0, 0.0),
        ([-200.0, 6_300.0], 800.0, 50.0, 2.0),  # ellipse across the edge
        ([1e4, 1e4], 3e4, 2e3, 0.8),
    ]
    for mean, su, sv, theta in cases:
        cov = _cov(su, sv, theta)
        ip = impact_probability_disc(mean, cov, R_EARTH)
        x = rng.multivariate_normal(mean, cov, size=n)
        hits = np.count_nonzero(np.einsum("ij,ij->i", x, x) < R_EARTH**2)
        sigma = math.sqrt(ip * (1.0 - ip) / n)
        assert abs(hits / n - ip) < 4.0 * sigma + 1e-12, (mean, ip, hits / n, sigma)
        assert ip == pytest.approx(_ip_transposed(np.asarray(mean), cov, R_EARTH), rel=1e-8)


def test_ip_far_offset_tiny_but_positive_matches_dense_quadrature():
    cov = np.array([[3_000.0**2, 0.3 * 3_000.0 * 2_000.0], [0.3 * 3_000.0 * 2_000.0, 2_000.0**2]])
    for d in (2.0e4, 2.5e4, 3.0e4):
        mean = np.array([d, 0.3 * d])
        ip = impact_probability_disc(mean, cov, R_EARTH)
        dense = _ip_dense_polar(mean, cov, R_EARTH)
        if d == 3.0e4:  # the brute force has converged (the steepest case)
            assert dense == pytest.approx(_ip_dense_polar(mean, cov, R_EARTH, 400, 800), rel=1e-10)
        assert 0.0 < ip < 1e-5
        assert ip == pytest.approx(dense, rel=1e-8), (d, ip, dense)
    # a value near 1e-10, as asked
    mean = np.array([2.3e4, 0.3 * 2.3e4])
    ip = impact_probability_disc(mean, cov, R_EARTH)
    assert 1e-12 < ip < 1e-8
    assert ip == pytest.approx(_ip_dense_polar(mean, cov, R_EARTH), rel=1e-8)


def test_ip_narrow_ellipses_near_the_edge_agree_with_the_transposed_order():
    """Both σ ≪ R, or one σ ≪ R and the other ≫ R, centred near the rim or outside it."""
    for mean, su, sv, theta in (
        ([R_EARTH + 100.0, 0.0], 50.0, 10.0, 0.2),  # ~1e-2..1e-9 regime
        ([0.0, R_EARTH + 30.0], 200.0, 5.0, 1.3),
        ([4_000.0, 4_990.0], 40.0, 20.0, 0.0),  # just inside the rim
        ([R_EARTH * 0.7, R_EARTH * 0.7 + 40.0], 3e6, 20.0, 2.0),
        ([1e6, -R_EARTH - 60.0], 1e6, 10.0, 0.0),  # short axis 6σ outside
    ):
        cov = _cov(su, sv, theta)
        ip = impact_probability_disc(mean, cov, R_EARTH)
        ref = _ip_transposed(np.asarray(mean, dtype=float), cov, R_EARTH)
        assert ip > 0.0
        assert ip == pytest.approx(ref, rel=1e-7), (mean, ip, ref)


def test_ip_degenerate_and_invalid_inputs():
    assert impact_probability_disc([10.0, 0.0], np.zeros((2, 2)), R_EARTH) == 1.0
    assert impact_probability_disc([R_EARTH + 1, 0.0], np.zeros((2, 2)), R_EARTH) == 0.0
    # a line density (σ_v = 0): the chord at v = 3000 km
    line = impact_probability_disc([0.0, 3_000.0], np.diag([1e8, 0.0]), R_EARTH)
    h = math.sqrt(R_EARTH**2 - 3_000.0**2)
    assert line == pytest.approx(special.ndtr(h / 1e4) - special.ndtr(-h / 1e4), rel=1e-12)
    assert impact_probability_disc([0.0, 0.0], np.eye(2), 0.0) == 0.0
    assert impact_probability_disc([1e9, 0.0], np.eye(2) * 1e6, R_EARTH) == 0.0
    with pytest.raises(ValueError):
        impact_probability_disc([0.0, 0.0], np.array([[1.0, 0.0], [0.0, -1.0]]), R_EARTH)
    with pytest.raises(ValueError):
        impact_probability_disc([np.nan, 0.0], np.eye(2), R_EARTH)
