"""Differential correction on real astrometry, checked against JPL, ESA and two real impacts.

References (../shared/data):
* ``observations/2008_TC3.obs80`` (883 obs) and ``2024_BX1.obs80`` (328 obs): both hit the Earth
  hours after discovery. The fitted orbits are propagated into the atmosphere (vacuum, no drag)
  and compared with what was seen: TC3's fireball (CNEOS: 2008-10-07 02:45:45 UTC, 38.9 km,
  20.9°N 31.4°E) and BX1's bolide (Spurný et al. 2024: 00:32:38 UT start, entry 15.20 km/s, slope
  75.6°; the "Ribbeck" meteorites near 52.6°N 12.8°E).
* ``reference/neocc/2024BX1.ke1``: ESA's BX1 orbit at MJD 60000 (before the encounter), its
  covariance, H and MOID. NEOCC elements are in an ecliptic frame that includes the ICRF frame
  bias (~20 mas) which JPL — and this project — leave out: for BX1's low-inclination, short-arc
  orbit that alone moves the node by ~17 NEOCC σ, so only frame-insensitive quantities are
  compared to σ level (a, e, M, MOID, H).
* ``reference/jpl_sbdb/99942_Apophis_JPL220.json``: JPL #220, covariance at 2459215.5 TDB with A1
  and A2 (7,370 observations incl. 20 delay + 30 Doppler radar, JPL weights and star-catalogue
  debiasing). Our file: 9,528 optical positions, no radar, no debiasing table. JPL's σ are
  6–35× smaller than an optical-only fit can give, so "≤ 3 in JPL's covariance" is out of
  reach by construction; measured: 1,808 with JPL's covariance, 5.2 with the sum of both
  covariances, A2 = −2.65e-14 ± 0.26e-14 vs JPL −2.90e-14 (1.0 σ of ours, 13 σ of JPL's).
  JPL's own orbit fits our data with Δχ² = +32 over our optimum (19,030 residuals), the
  expected size for solutions 5 σ apart: the two are consistent; the offset is in the data
  (mean Dec residuals of JPL's orbit on the raw 2004–2005 and 2021 data are +0.11″…+0.15″ —
  the catalogue biases JPL removes).
* ``reference/jpl_sbdb/101955_Bennu_JPL118.json``: JPL #118 (554 obs to 2020-10-03, incl. 58
  delay + 7 Doppler radar; SRP + a physical Yarkovsky model; DE424 with 343 perturbing
  asteroids). Our file: 603 optical positions 1999–2025 and 27 radar records (23 delays,
  7 Dopplers, all fitted). JPL's σ are 60–250× ours (100–570× without radar); the largest
  offset is in i (−6.6 of our σ; −8.9 optical-only), driven by 69 H01 (Magdalena Ridge)
  positions of 2012 reduced with USNO-B1 and weighted 0.3″ (Vereš et al. 2017) whose mean Dec
  residual against JPL's orbit is +0.37″ — a catalogue bias that JPL's debiasing removes.

Runtime on one core: ≈ 25 s (the Apophis fit, marked slow, ≈ 7 s of it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neodefense.dynamics import ephemeris
from neodefense.dynamics.propagator import propagate
from neodefense.observations import io
from neodefense.observations.batch import ObservationBatch
from neodefense.orbits import elements as E
from neodefense.orbits.fit import (
    CHI2_RECOVER,
    CHI2_REJECT,
    MAX_REJECT_FRACTION,
    default_epoch_tdb_jd,
    fit_orbit,
    solution_at_epoch,
)
from neodefense.orbits.solution import ARC_TOO_SHORT, CONVERGED, DIVERGED, FAILED

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OBS = DATA / "observations"
REF = DATA / "reference"
AU_KM = ephemeris.AU_KM

pytestmark = pytest.mark.skipif(not OBS.is_dir(), reason="shared data not present")

#: GM_sun (km³/s²) of the planetary ephemeris a JPL solution used (its elements are two-body
#: heliocentric with that GM)
GM_SUN_KM3_S2 = {"DE424": 132712440041.9394, "DE441": 132712440041.279419}
#: element label (JPL covariance) → column of ELEMENT_NAMES
_COLUMN = {"e": 1, "q": 6, "tp": 7, "node": 3, "peri": 4, "i": 2}


def read(name: str) -> ObservationBatch:
    return io.read(OBS / name).batch


def jpl_reference(name: str) -> dict:
    """JPL SBDB covariance block: epoch, labels, covariance, element values, model pars, GM."""
    orbit = json.loads((REF / "jpl_sbdb" / name).read_text())["orbit"]
    cov = orbit["covariance"]
    source = cov.get("elements") or orbit["elements"]
    return {
        "epoch": float(cov["epoch"]),
        "labels": cov["labels"],
        "cov": np.array(cov["data"], dtype=float),
        "values": {x["label"]: float(x["value"]) for x in source},
        "pars": {x["name"]: float(x["value"]) for x in orbit.get("model_pars", [])},
        "gm": GM_SUN_KM3_S2[orbit["pe_used"]] * 86400.0**2 / AU_KM**3,
    }


def elements_with_nongrav(sol, gm: float) -> tuple[np.ndarray, np.ndarray]:
    """Our (8 elements + fitted non-grav) and their covariance, with JPL's GM."""
    sun_p, sun_v = ephemeris.body_barycentric_state("sun", sol.epoch_tdb_jd)
    sun = np.concatenate([sun_p[0], sun_v[0]])

    def convert(s):
        return E.cartesian_to_keplerian(E.equatorial_to_ecliptic(s - sun), sol.epoch_tdb_jd, gm)

    el = convert(sol.state_icrf_au[None])[0]
    jac = E.complex_step_jacobian(convert, sol.state_icrf_au[None])[0]
    k = len(sol.covariance) - 6
    full = np.zeros((8 + k, 6 + k))
    full[:8, :6] = jac
    full[8:, 6:] = np.eye(k)
    values = np.concatenate([el, [sol.nongrav[n] for n in sol.nongrav_sigmas]])
    return values, full @ sol.covariance @ full.T


def compare_with_jpl(sol, ref: dict) -> dict:
    """Differences of the six elements JPL's covariance lists (and A2 when both have it)."""
    names = [lab for lab in ref["labels"] if lab in _COLUMN]
    ours, cov = elements_with_nongrav(sol, ref["gm"])
    rows = [_COLUMN[n] for n in names]
    jrows = [ref["labels"].index(n) for n in names]
    d = ours[rows] - np.array([ref["values"][n] for n in names])
    for j, n in enumerate(names):
        if n in ("node", "peri"):
            d[j] = (d[j] + 180.0) % 360.0 - 180.0
    c_jpl = ref["cov"][np.ix_(jrows, jrows)]
    c_ours = cov[np.ix_(rows, rows)]
    out = {
        "names": names,
        "d_over_sigma_jpl": d / np.sqrt(np.diag(c_jpl)),
        "d_over_sigma_ours": d / np.sqrt(np.diag(c_ours)),
        "sigma_ratio": np.sqrt(np.diag(c_ours) / np.diag(c_jpl)),
        "maha_jpl": float(np.sqrt(d @ np.linalg.solve(c_jpl, d))),
        "maha_sum": float(np.sqrt(d @ np.linalg.solve(c_jpl + c_ours, d))),
        "maha_ours": float(np.sqrt(d @ np.linalg.solve(c_ours, d))),
    }
    print(f"\n{sol.designation} vs JPL: {names}\n  Δ/σ_JPL {np.round(out['d_over_sigma_jpl'], 1)}"
          f"\n  Δ/σ_ours {np.round(out['d_over_sigma_ours'], 2)}\n  σ_ours/σ_JPL "
          f"{np.round(out['sigma_ratio'], 1)}\n  Mahalanobis: JPL cov {out['maha_jpl']:.1f}, "
          f"JPL+ours {out['maha_sum']:.2f}, ours {out['maha_ours']:.2f}")
    return out


# ---------------------------------------------------------------------------------------------
# fixtures: one fit per object per session
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tc3():
    return fit_orbit(read("2008_TC3.obs80"))


@pytest.fixture(scope="module")
def bx1():
    return fit_orbit(read("2024_BX1.obs80"))


def geodetic_track(sol, utc_iso: list[str]) -> dict[str, np.ndarray]:
    """Vacuum trajectory of a solution at UTC times: geodetic lat/lon/height, Earth-fixed speed
    and the slope of the path below the local horizontal."""
    import astropy.units as u
    from astropy.coordinates import (
        GCRS,
        ITRS,
        CartesianDifferential,
        CartesianRepresentation,
        EarthLocation,
    )
    from astropy.time import Time

    from neodefense import timescales

    timescales.configure_astropy_offline()
    t = Time(utc_iso, scale="utc")
    tdb = t.tdb
    st = propagate(sol.epoch_tdb_jd, sol.state_icrf_au, tdb.jd1, times_tdb_jd2=tdb.jd2).states_au
    e_pos, e_vel = ephemeris.earth_barycentric_state(tdb.jd1, tdb.jd2)
    geo = (st[:, :3] - e_pos) * AU_KM
    vel = (st[:, 3:] - e_vel) * AU_KM / 86400.0
    gcrs = GCRS(CartesianRepresentation(geo.T * u.km,
                                        differentials=CartesianDifferential(vel.T * u.km / u.s)),
                obstime=t)
    itrs = gcrs.transform_to(ITRS(obstime=t))
    loc = EarthLocation.from_geocentric(itrs.x, itrs.y, itrs.z)
    v = itrs.velocity.d_xyz.to(u.km / u.s).value.T
    lat, lon = np.radians(loc.lat.deg), np.radians(loc.lon.deg)
    up = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    speed = np.linalg.norm(v, axis=1)
    return {"lat": loc.lat.deg, "lon": loc.lon.deg, "h_km": loc.height.to(u.km).value,
            "speed_km_s": speed,
            "slope_deg": np.degrees(np.arcsin(-np.sum(v * up, axis=1) / speed))}


def ground_distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    c = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl)
    return 6371.0 * np.arccos(np.clip(c, -1.0, 1.0))


# ---------------------------------------------------------------------------------------------
# the two impactors
# ---------------------------------------------------------------------------------------------
def test_2008_tc3_fit_and_the_sudan_fireball(tc3):
    sol = tc3
    print(f"\n2008 TC3: {sol.status}; {sol.message}; {sol.iterations} iterations, "
          f"{sol.runtime_s:.2f} s; H {sol.H}; MOID {sol.moid_au}")
    assert sol.status == CONVERGED
    assert sol.n_obs == 883
    # measured: 865 used, 18 rejected; RMS 1.27", normalized 0.39 (a-priori σ conservative)
    assert 0 < sol.n_rejected <= MAX_REJECT_FRACTION * sol.n_obs
    assert sol.n_used + sol.n_rejected == sol.n_obs
    assert sol.rms_arcsec < 1.6 and sol.rms_normalized < 0.6
    assert sol.epoch_tdb_jd == 2454746.5  # 0h TDB 2008-10-07, inside the 0.8-day arc
    assert sol.elements["q_au"] < 1.0 and sol.moid_au < 1e-4  # an Earth impactor
    # vacuum trajectory against the fireball: at 38.9 km at 02:45:45 UTC (we reach 38.9 km
    # 0.7 s earlier, no drag), and the ground track passes the CNEOS point 20.9N 31.4E
    seconds = np.arange(30.0, 50.0, 0.25)
    track = geodetic_track(sol, [f"2008-10-07 02:45:{s:05.2f}" for s in seconds])
    t_at = float(np.interp(-38.9, -track["h_km"], seconds))
    miss = ground_distance_km(track["lat"], track["lon"], 20.9, 31.4).min()
    print(f"  reaches 38.9 km at 02:45:{t_at:.1f} UTC; track passes {miss:.1f} km from "
          f"20.9N 31.4E; slope {track['slope_deg'][0]:.1f}°, {track['speed_km_s'][0]:.2f} km/s")
    assert abs(t_at - 45.0) < 3.0
    assert miss < 20.0
    assert 15.0 < track["slope_deg"][0] < 25.0  # the famous shallow (~20°) entry


def test_2024_bx1_fit_bolide_and_esa(bx1):
    sol = bx1
    print(f"\n2024 BX1: {sol.status}; {sol.message}; {sol.iterations} iterations, "
          f"{sol.runtime_s:.2f} s; H {sol.H}")
    assert sol.status == CONVERGED and sol.n_obs == 328
    assert 0 < sol.n_rejected <= MAX_REJECT_FRACTION * sol.n_obs  # measured 9
    assert sol.rms_arcsec < 1.6  # measured 1.28"
    # Spurný et al. (2024): 00:32:38 UT, 15.20 km/s, slope 75.6° (measured: 96.9 km high,
    # 15.20 km/s, 75.7°); meteorites near 52.6N 12.8E: our ground point ~6 km away
    track = geodetic_track(sol, ["2024-01-21 00:32:38"])
    assert track["speed_km_s"][0] == pytest.approx(15.20, abs=0.05)
    assert track["slope_deg"][0] == pytest.approx(75.6, abs=0.5)
    assert 70.0 < track["h_km"][0] < 130.0  # the bolide's start (luminous from ~100 km)
    seconds = np.arange(40.0, 46.0, 0.05)
    ground = geodetic_track(sol, [f"2024-01-21 00:32:{s:05.2f}" for s in seconds])
    i0 = int(np.argmin(np.abs(ground["h_km"])))
    dist = ground_distance_km(ground["lat"][i0], ground["lon"][i0], 52.6, 12.8)
    print(f"  at 00:32:38 UT: {track['h_km'][0]:.1f} km, {track['speed_km_s'][0]:.2f} km/s, "
          f"slope {track['slope_deg'][0]:.1f}°; ground point {dist:.1f} km from 52.6N 12.8E")
    assert dist < 15.0

    # ESA NEOCC at MJD 60000 TT (a year before, across the encounter; TT − TDB < 2 ms)
    kep, mjd, mag, cov, moid = read_ke1(REF / "neocc" / "2024BX1.ke1")
    before = solution_at_epoch(sol, mjd + 2400000.5)
    ours = np.array([before.elements[k] for k in ("a_au", "e", "i_deg", "node_deg",
                                                  "argperi_deg", "M_deg")])
    d_sigma = (ours - kep) / np.sqrt(np.diag(cov))
    print(f"  vs NEOCC (a, e, i, node, argperi, M) Δ/σ {np.round(d_sigma, 2)}; MOID "
          f"{before.moid_au:.7f} vs {moid:.7f}; H {sol.H} vs {mag}")
    assert np.all(np.abs(d_sigma[[0, 1, 5]]) < 4.0)  # a, e, M: measured −2.7σ each
    assert before.moid_au == pytest.approx(moid, abs=1e-6)  # measured 3.4576e-4 vs 3.4581e-4
    assert sol.H == pytest.approx(mag, abs=0.3)  # measured 32.704 vs 32.707


def read_ke1(path: Path) -> tuple[np.ndarray, float, float, np.ndarray, float]:
    """ESA OEF2.0 file: Keplerian elements, MJD epoch, H, 6×6 covariance, MOID."""
    kep, mjd, mag, cov, moid = None, None, None, [], None
    for line in path.read_text().splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "KEP":
            kep = np.array([float(x) for x in tok[1:7]])
        elif tok[0] == "MJD":
            mjd = float(tok[1])
        elif tok[0] == "MAG":
            mag = float(tok[1])
        elif tok[0] == "COV":
            cov += [float(x) for x in tok[1:]]
        elif tok[:2] == ["!", "MOID"]:
            moid = float(tok[2])
    full = np.zeros((6, 6))
    full[np.triu_indices(6)] = cov[:21]
    full = full + full.T - np.diag(np.diag(full))
    return kep, mjd, mag, full, moid


# ---------------------------------------------------------------------------------------------
# against JPL
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_apophis_a2_against_jpl_220():
    ref = jpl_reference("99942_Apophis_JPL220.json")
    batch = read("99942_Apophis.obs80")
    sol = fit_orbit(batch, designation="99942", nongrav="a2", epoch_tdb_jd=ref["epoch"])
    print(f"\nApophis: {sol.status}; {sol.message}; {sol.iterations} iterations, "
          f"{sol.runtime_s:.1f} s; H {sol.H}")
    assert sol.status == CONVERGED
    assert sol.n_obs == 9527  # 9,528 positions, one deprecated
    assert sol.n_rejected <= MAX_REJECT_FRACTION * sol.n_obs  # measured 12
    assert sol.rms_arcsec < 0.6 and sol.rms_normalized < 0.4  # measured 0.486", 0.276
    cmp = compare_with_jpl(sol, ref)
    a2, s_a2 = sol.nongrav["A2"], sol.nongrav_sigmas["A2"]
    ia = ref["labels"].index("A2")
    a2_jpl, s_jpl = ref["pars"]["A2"], float(np.sqrt(ref["cov"][ia, ia]))
    print(f"  A2 {a2:.4e} ± {s_a2:.2e} vs JPL {a2_jpl:.4e} ± {s_jpl:.2e}: "
          f"{(a2 - a2_jpl) / s_a2:.2f} σ ours, {(a2 - a2_jpl) / s_jpl:.1f} σ JPL")
    # Not reachable without radar and debiasing (module docstring): JPL's σ are 6–35× smaller.
    assert np.all(cmp["sigma_ratio"] > 3.0)
    # within the combined uncertainty (measured 5.2) and ≤ 4 of our σ per element (measured
    # ≤ 3.7, in i), A2 within 3 of our σ (measured 0.96)
    assert cmp["maha_sum"] < 8.0
    assert np.all(np.abs(cmp["d_over_sigma_ours"]) < 4.5)
    assert abs(a2 - a2_jpl) < 3.0 * s_a2
    assert -4e-14 < a2 < -1.5e-14  # the Yarkovsky drift is detected (10 σ from zero)
    assert abs(a2) > 8 * s_a2

    # at JPL's element epoch 2461000.5 (propagated with the STM): MOID as JPL's SBDB
    later = solution_at_epoch(sol, 2461000.5)
    print(f"  at 2461000.5: MOID {later.moid_au:.9f} au (JPL 0.000360605)")
    assert later.moid_au == pytest.approx(0.000360605, abs=2e-8)  # measured 0.000360608
    assert sol.H == pytest.approx(18.893, abs=0.3)  # NEOCC 18.893 (JPL 19.09); measured 18.95


def test_bennu_with_radar_against_jpl_118_and_esa():
    ref = jpl_reference("101955_Bennu_JPL118.json")
    batch = read("101955_Bennu.obs80")
    sol = fit_orbit(batch, designation="101955", nongrav="a2", epoch_tdb_jd=ref["epoch"])
    print(f"\nBennu: {sol.status}; {sol.message}; {sol.iterations} iterations, "
          f"{sol.runtime_s:.1f} s; A2 {sol.nongrav} ± {sol.nongrav_sigmas}")
    assert sol.status == CONVERGED
    assert sol.n_obs == 603 + 30  # optical + 23 delays + 7 Dopplers (JPL counts them alike)
    assert "23 radar delays and 7 Dopplers used" in sol.message
    assert sol.rms_arcsec < 0.7  # measured 0.587"
    # radar: every delay (σ 0.5–10 µs) and Doppler (σ 1–5 Hz) within 3σ; measured
    # normalized RMS 0.80, largest 2.6σ (a 0.5-µs Arecibo delay of 2005 at 1.3 µs)
    res = sol.residuals
    d = np.isfinite(res.delay_us)
    f = np.isfinite(res.doppler_hz)
    assert d.sum() == 23 and f.sum() == 7
    norm = np.concatenate([res.delay_us[d] / res.sigma_delay_us[d],
                           res.doppler_hz[f] / res.sigma_doppler_hz[f]])
    print(f"  radar normalized residuals: RMS {np.sqrt(np.mean(norm**2)):.2f}, "
          f"max {np.abs(norm).max():.2f}")
    assert np.all(np.abs(norm) < 3.0) and np.sqrt(np.mean(norm**2)) < 1.5
    # Yarkovsky: ESA NEOCC (optical + radar) A2 = −4.6048e-14 ± 2.4e-16; measured
    # −4.522e-14 ± 2.3e-16 (2.5σ of the two combined; SNR 192, NEOCC 191)
    a2, s_a2 = sol.nongrav["A2"], sol.nongrav_sigmas["A2"]
    assert abs(a2 - (-4.6048e-14)) < 3.0 * np.hypot(s_a2, 2.406e-16)
    assert abs(a2) > 100 * s_a2

    cmp = compare_with_jpl(sol, ref)
    # JPL's σ are still 60–250× ours: 58 delays (we have 23), star-catalogue debiasing, and a
    # force model we do not share (DE424, 343 perturbing asteroids, physical Yarkovsky): #118
    # propagated in ours misses our delays by up to 36 µs (5 km) in 1999 while matching the
    # Dopplers to 0.02 Hz. Measured: combined Mahalanobis 18.0 (13.0 without radar), our
    # elements ≤ 6.6 of our σ from JPL's (i; the 2012 H01/USNO-B1 bias, module docstring).
    assert np.all(cmp["sigma_ratio"] > 30.0)
    assert cmp["maha_sum"] < 25.0
    assert np.all(np.abs(cmp["d_over_sigma_ours"]) < 9.0)


# ---------------------------------------------------------------------------------------------
# mechanics: epochs, exclusion, rejection, JSON
# ---------------------------------------------------------------------------------------------
def test_solution_at_epoch_matches_a_fit_at_that_epoch(bx1):
    """Mapping state and covariance with the STM equals fitting at the other epoch (to 1e-3 σ
    in elements, 1e-3 relative in σ): the covariance mapping and the fit agree."""
    target = bx1.epoch_tdb_jd - 0.25
    mapped = solution_at_epoch(bx1, target)
    direct = fit_orbit(read("2024_BX1.obs80"), epoch_tdb_jd=target, initial=bx1)
    assert direct.status == CONVERGED and direct.n_rejected == bx1.n_rejected
    for k in ("a_au", "e", "i_deg", "node_deg", "argperi_deg", "q_au", "tp_tdb_jd"):
        assert abs(mapped.elements[k] - direct.elements[k]) < 2e-2 * direct.sigmas[k], k
        assert mapped.sigmas[k] == pytest.approx(direct.sigmas[k], rel=2e-2), k
    assert mapped.residuals is bx1.residuals and mapped.chi2 == bx1.chi2
    back = solution_at_epoch(mapped, bx1.epoch_tdb_jd)
    assert np.allclose(back.state_icrf_au, bx1.state_icrf_au, rtol=0, atol=1e-11)
    assert np.allclose(back.covariance, bx1.covariance, rtol=1e-5,
                       atol=1e-8 * np.abs(bx1.covariance).max())


def test_residuals_rejection_and_exclusion(tc3):
    res = tc3.residuals
    assert len(res.line) == 883
    used, rej = res.used, res.rejected
    assert used.sum() == tc3.n_used and rej.sum() == tc3.n_rejected
    assert not np.any(used & rej)
    # Carpino et al.: the rejected have χ² above the recovery threshold, the used are below
    # the rejection threshold unless capped
    assert np.all(res.chi2[rej] >= CHI2_RECOVER)
    assert np.all(res.chi2[used] <= CHI2_REJECT)
    rms = np.sqrt(np.mean(np.concatenate([res.ra_arcsec[used], res.dec_arcsec[used]]) ** 2))
    assert rms == pytest.approx(tc3.rms_arcsec, rel=1e-9)
    # exclude the 50 first lines: out of the fit, not counted as rejections, residuals kept
    batch = read("2008_TC3.obs80")
    drop = set(batch["line"][:50].tolist())
    sol = fit_orbit(batch, exclude=drop, initial=tc3)
    assert sol.status == CONVERGED
    out = np.isin(sol.residuals.line, list(drop))
    assert not sol.residuals.used[out].any() and not sol.residuals.rejected[out].any()
    assert np.all(np.isfinite(sol.residuals.ra_arcsec[out]))
    assert sol.n_used + sol.n_rejected == 883 - 50
    assert "50 excluded" in sol.message
    data = json.loads(json.dumps(sol.as_json(residuals=True)))
    assert data["status"] == CONVERGED and len(data["residuals"]) == 883
    assert set(data["elements"]) == set(data["sigmas"]) == set(E.ELEMENT_NAMES)


def test_default_epoch_is_round_and_inside_the_arc():
    assert default_epoch_tdb_jd(2454746.28, 2454747.07) == 2454746.5
    assert default_epoch_tdb_jd(2460330.41, 2460330.52) == pytest.approx(2460330.5)
    assert default_epoch_tdb_jd(2460330.52, 2460330.58) == pytest.approx(2460330.55)
    assert default_epoch_tdb_jd(2453000.2, 2459600.9) == 2456300.5


# ---------------------------------------------------------------------------------------------
# bad input: a status and a message, never an exception
# ---------------------------------------------------------------------------------------------
def _bad_batches() -> dict[str, tuple[ObservationBatch, str, str]]:
    tc3 = read("2008_TC3.obs80")
    cases: dict[str, tuple[ObservationBatch, str, str]] = {}
    cases["empty"] = (ObservationBatch.empty(), FAILED, "no usable optical")
    cases["two observations"] = (tc3.take(np.arange(2)), ARC_TOO_SHORT, "fewer than 3")
    same = tc3.take(np.arange(20))
    same.columns["obsTime_mjd"] = np.full(20, same["obsTime_mjd"][0])
    cases["duplicated times"] = (same, FAILED, "1 distinct time")
    unknown = tc3.take(np.arange(40))
    unknown.columns["stn"] = unknown["stn"].copy()
    unknown.columns["stn"][7] = "ZZZ"
    cases["unknown station"] = (unknown, FAILED, "'ZZZ'")
    space = tc3.take(np.arange(40))
    space.columns["stn"] = np.array(["C51"] * 40, dtype=object)
    cases["space-based without position"] = (space, FAILED, "C51")
    deprecated = tc3.take(np.arange(30))
    deprecated.columns["deprecated"] = np.ones(30, bool)
    cases["all deprecated"] = (deprecated, FAILED, "30 deprecated")
    radar = read("101955_Bennu.obs80")
    radar = radar.take(np.flatnonzero(radar["kind"] == "radar"))
    cases["radar only"] = (radar, FAILED, "radar alone cannot start an orbit")
    junk = tc3.take(np.arange(0, 400, 20))
    junk.columns["ra"] = np.random.default_rng(1).uniform(0.0, 360.0, 20)
    cases["positions of no single object"] = (junk, FAILED, "no orbit fits")
    future = tc3.take(np.arange(30))
    future.columns["obsTime_mjd"] = future["obsTime_mjd"] + 700 * 365.25  # 2708: past DE440
    cases["times beyond DE440"] = (future, FAILED, "DE440")
    cases["one night of a distant object"] = (read("short_arc/2008_EK68.obs80"), ARC_TOO_SHORT,
                                              "ranging")
    return cases


@pytest.mark.filterwarnings("ignore:.*IERS table")
@pytest.mark.parametrize("case", list(_bad_batches()))
def test_bad_input_gives_a_status_never_an_exception(case):
    batch, status, words = _bad_batches()[case]
    sol = fit_orbit(batch)
    print(f"\n{case}: {sol.status}: {sol.message}")
    assert sol.status == status
    assert words in sol.message
    assert "internal error" not in sol.message and "Traceback" not in sol.message
    json.dumps(sol.as_json())
    if status == ARC_TOO_SHORT:
        assert sol.ranging is not None and sol.ranging["n_samples"] > 0


def test_time_limit_and_divergence_are_reported():
    tc3 = read("2008_TC3.obs80")
    sol = fit_orbit(tc3, time_limit_s=0.05)
    assert sol.status == FAILED and "time limit" in sol.message
    # a starting orbit 1 au off: the fit must not converge to nonsense silently
    state = np.array([3.0, 2.0, 1.0, 0.0, 0.001, 0.0])
    far = fit_orbit(tc3, initial=(2454746.5, state))
    print(f"\nfar start: {far.status}: {far.message}")
    assert far.status == DIVERGED and "no convergence" in far.message
    with pytest.raises(ValueError, match="nongrav"):
        fit_orbit(tc3, nongrav="yarkovsky")


# ---------------------------------------------------------------------------------------------
# photometry
# ---------------------------------------------------------------------------------------------
def test_absolute_magnitude_inverts_the_hg_system():
    from neodefense.orbits.photometry import BAND_TO_V, absolute_magnitude, hg_phase_function

    rng = np.random.default_rng(7)
    n = 40
    sun = np.zeros((n, 3))
    obj = np.column_stack([rng.uniform(0.9, 2.5, n), rng.uniform(-0.5, 0.5, n), np.zeros(n)])
    observer = np.column_stack([np.cos(rng.uniform(0, 1, n)), np.sin(rng.uniform(0, 1, n)),
                                np.zeros(n)])
    r = np.linalg.norm(obj, axis=1)
    delta = np.linalg.norm(obj - observer, axis=1)
    cos_a = np.sum(-obj * (observer - obj), axis=1) / (r * delta)
    v = 20.0 + 5 * np.log10(r * delta) - 2.5 * np.log10(hg_phase_function(np.arccos(cos_a)))
    bands = np.array(["R", "V", "G", "o", "w"] * 8, dtype=object)
    mag = v - np.array([BAND_TO_V[b] for b in bands])
    mag[3] += 5.0  # one gross outlier, clipped
    bands_blank = bands.copy()
    bands_blank[:5] = ""  # blank bands are ignored while coded ones exist
    out = absolute_magnitude(mag, bands_blank, obj, observer, sun)
    assert out.H == pytest.approx(20.0, abs=1e-9)
    assert out.n_available == n - 5 and out.n_used == n - 5
    bad = absolute_magnitude(mag, bands, obj, observer, sun)
    assert bad.H == pytest.approx(20.0, abs=1e-9) and bad.n_used == n - 1  # outlier out
    assert hg_phase_function(0.0) == pytest.approx(1.0)


def test_nominal_close_approaches_apophis_2029_and_tc3_impact():
    """The converged orbit lists its Earth/Moon approaches: Apophis passes 2029-04-13 at ~38,000 km
    from the geocentre (JPL: 38,012 km — our optical-only, undebiased fit moves it by tens of km),
    and 2008 TC3's nominal orbit ends inside the Earth on 2008-10-07."""
    from neodefense.orbits.approaches import nominal_close_approaches

    apophis = io.read(OBS / "99942_Apophis.obs80").batch
    sol = fit_orbit(apophis, nongrav="a2", close_approach_years=None)
    assert sol.ok and sol.close_approaches == []
    approaches = nominal_close_approaches(sol, years=10.0)
    earth = [a for a in approaches if a["body"] == "earth"]
    assert earth[0]["date_utc"].startswith("2029-04-13")
    assert abs(earth[0]["dist_km"] - 38_012.0) < 100.0
    assert not earth[0]["impact"]

    tc3 = fit_orbit(io.read(OBS / "2008_TC3.obs80").batch)
    assert tc3.ok
    last = tc3.close_approaches[-1]
    assert last["impact"] and last["body"] == "earth"
    assert last["date_utc"].startswith("2008-10-07T02:")
