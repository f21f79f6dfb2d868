"""Orbit solutions in the catalog (SQLite and PostgreSQL): versions, round trip, provenance, work.

The stored solution is JPL's orbit #220 of (99942) Apophis (SBDB: state, 8×8 covariance with A1
and A2), with residuals computed by neodefense's own observation model against the real Apophis
astrometry, so every stored number is a real one.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from neodefense.catalog import ingest, models, queries, solutions
from neodefense.orbits.solution import (
    ARC_TOO_SHORT,
    CONVERGED,
    FAILED,
    OrbitSolution,
    Residuals,
    observation_set_hash,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OBSERVATIONS = SHARED / "observations"
SBDB_APOPHIS = SHARED / "reference" / "jpl_sbdb" / "99942_Apophis_JPL220.json"
#: Carpino et al. (2003)-style rejection threshold on an observation's χ² (2 d.o.f.)
CHI2_REJECT = 10.0


def _jpl_apophis() -> tuple[float, np.ndarray, np.ndarray, dict[str, float], dict[str, float]]:
    """JPL #220: epoch, barycentric ICRF state, 8×8 covariance of (state, A1, A2), non-grav
    values and σ. The SBDB covariance (e, q, tp, node, peri, i, A1, A2) is mapped with the
    complex-step Jacobian of cometary → barycentric ICRF."""
    from neodefense.dynamics import ephemeris
    from neodefense.orbits import elements as el

    orbit = json.loads(SBDB_APOPHIS.read_text())["orbit"]
    cov = orbit["covariance"]
    epoch = float(cov["epoch"])
    value = {e["label"]: float(e["value"]) for e in cov["elements"]}
    pars = {p["name"]: p for p in orbit["model_pars"]}
    perm = [1, 0, 5, 3, 4, 2, 6, 7]  # → q, e, i, node, peri, tp, A1, A2
    c_elements = np.array(cov["data"], dtype=float)[np.ix_(perm, perm)]
    x = np.array([[value["q"], value["e"], value["i"], value["node"], value["peri"],
                   value["tp"]]])
    sun_pos, sun_vel = ephemeris.body_barycentric_state("sun", epoch)
    sun = np.concatenate([np.ravel(sun_pos), np.ravel(sun_vel)])

    def convert(z: np.ndarray) -> np.ndarray:
        return el.ecliptic_to_equatorial(el.cometary_to_cartesian(z, epoch)) + sun

    state = convert(x)[0].real
    jac = np.eye(8)
    jac[:6, :6] = el.complex_step_jacobian(convert, x)[0]
    nongrav = {k: float(pars[k]["value"]) for k in ("A1", "A2")}
    sigmas = {k: float(pars[k]["sigma"]) for k in ("A1", "A2")}
    return epoch, state, jac @ c_elements @ jac.T, nongrav, sigmas


@pytest.fixture(scope="module")
def apophis_file_residuals() -> dict[str, np.ndarray]:
    """JPL #220 residuals of the non-deprecated Apophis positions, in catalog order (time, then
    file order), from the project's propagator, observer positions and light-time model."""
    from neodefense import timescales
    from neodefense.dynamics.propagator import NonGrav, propagate
    from neodefense.observations import io as obs_io
    from neodefense.observatories.positions import batch_observer_states
    from neodefense.orbits.observation_model import astrometric_radec, residuals_arcsec
    from neodefense.orbits.weights import optical_sigmas_arcsec

    timescales.configure_astropy_offline()
    epoch, state, _, ng, _ = _jpl_apophis()
    batch = obs_io.read(OBSERVATIONS / "99942_Apophis.obs80").batch
    keep = np.flatnonzero(~batch["deprecated"])
    batch = batch.take(keep[np.argsort(batch["obsTime_mjd"][keep], kind="stable")])
    optical = batch["kind"] != "radar"
    pos, _ = batch_observer_states(batch)
    jd1, jd2 = timescales.utc_mjd_to_tdb_jd(batch["obsTime_mjd"])
    nongrav = NonGrav(A1=ng["A1"], A2=ng["A2"])
    ast = astrometric_radec((jd1 + jd2)[optical], pos[optical],
                            lambda t: propagate(epoch, state, t, nongrav=nongrav).states_au)
    res = np.full((len(batch), 2), np.nan)
    res[optical] = residuals_arcsec(batch["ra"][optical], batch["dec"][optical], ast[0], ast[1])
    sig_ra, sig_dec, _ = optical_sigmas_arcsec(batch)
    chi2 = (res[:, 0] / sig_ra) ** 2 + (res[:, 1] / sig_dec) ** 2
    return {"time": batch["obsTime_mjd"], "stn": batch["stn"], "ra": res[:, 0],
            "dec": res[:, 1], "sigma_ra": sig_ra, "sigma_dec": sig_dec, "chi2": chi2}


def _apophis_solution(batch, r: dict[str, np.ndarray]) -> OrbitSolution:
    from neodefense.orbits import elements as el

    assert np.array_equal(batch["obsTime_mjd"], r["time"])  # same observations, same order
    epoch, state, cov, ng, ng_sigmas = _jpl_apophis()
    elements, el_cov = el.barycentric_icrf_to_elements(epoch, state, cov[:6, :6])
    sig = el.element_sigmas(el_cov)[0]
    rejected = ~(r["chi2"] <= CHI2_REJECT)  # radar (NaN) is not used either
    used = ~rejected
    n_used = int(used.sum())
    return OrbitSolution(
        designation="99942", status=CONVERGED, message="JPL #220 (hand-made for the test)",
        epoch_tdb_jd=epoch, state_icrf_au=state, covariance=cov, nongrav=ng,
        nongrav_sigmas=ng_sigmas,
        elements=dict(zip(el.ELEMENT_NAMES, elements[0].tolist(), strict=True)),
        sigmas=dict(zip(el.ELEMENT_NAMES, sig.tolist(), strict=True)),
        rms_arcsec=float(np.sqrt(np.mean(np.concatenate([r["ra"][used], r["dec"][used]]) ** 2))),
        rms_normalized=float(np.sqrt(r["chi2"][used].sum() / (2 * n_used))),
        chi2=float(r["chi2"][used].sum()), n_obs=len(batch), n_used=n_used,
        n_rejected=int((rejected & np.isfinite(r["chi2"])).sum()), H=19.09, moid_au=0.000360605,
        residuals=Residuals(line=batch["line"], obs_time_mjd_utc=batch["obsTime_mjd"],
                            stn=batch["stn"], ra_arcsec=r["ra"], dec_arcsec=r["dec"],
                            sigma_ra_arcsec=r["sigma_ra"], sigma_dec_arcsec=r["sigma_dec"],
                            chi2=r["chi2"], rejected=rejected, used=used),
        iterations=4, runtime_s=1.25, observation_set_hash=observation_set_hash(batch))


def _failed(designation: str, status: str = FAILED, message: str = "diverged at step 3"
            ) -> OrbitSolution:
    return OrbitSolution(designation=designation, status=status, message=message)


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# -- tests -----------------------------------------------------------------------------------------

def test_apophis_solution_round_trip(catalog_engine, apophis_file_residuals):
    receipt = ingest.ingest(catalog_engine, OBSERVATIONS / "99942_Apophis.obs80", "apophis.obs80")
    batch, ids = solutions.observations_with_ids(catalog_engine, "99942")
    assert len(batch) == len(ids) == int((~batch["deprecated"]).sum())
    assert len(batch) == receipt.accepted - _count_deprecated(catalog_engine)
    solution = _apophis_solution(batch, apophis_file_residuals)
    # JPL's orbit fits the real data: median |O−C| ~0.15″, and most observations are kept
    used = ~solution.residuals.rejected
    assert np.median(np.abs(solution.residuals.ra_arcsec[used])) < 0.3
    assert solution.n_used > 0.9 * len(batch)
    object_id = queries.resolve(catalog_engine, "2004 MN4")
    before = dt.datetime.now(dt.UTC)

    solution_id = solutions.store_solution(catalog_engine, object_id, solution, ids,
                                           {"nongrav": "a2", "exclude": [], "epoch": None})

    got = solutions.latest_solution(catalog_engine, "2004 MN4", residuals=True)
    assert (got["id"], got["version"], got["supersedes"]) == (solution_id, 1, None)
    assert before - dt.timedelta(seconds=1) <= got["created_at"] <= dt.datetime.now(dt.UTC)
    assert got["created_at"].tzinfo is not None
    assert got["settings"] == {"nongrav": "a2", "exclude": [], "epoch": None}
    # numbers come back bit for bit (JSON keeps the shortest repr; PostgreSQL JSONB too)
    expected = solution.as_json()
    for key in ("status", "message", "epoch_tdb_jd", "state_icrf_au", "covariance", "elements",
                "sigmas", "nongrav", "nongrav_sigmas", "rms_arcsec", "rms_normalized", "chi2",
                "n_obs", "n_used", "n_rejected", "H", "moid_au", "iterations", "runtime_s",
                "code_version"):
        assert got[key] == expected[key], key
    assert got["designation"] == "99942"
    assert got["observation_set_hash"] == observation_set_hash(batch) == expected[
        "observation_set_hash"]
    # the orbit itself: JPL #220's e and q (SBDB values, to their printed digits) and A2
    assert got["elements"]["e"] == pytest.approx(0.1915216893501022, abs=1e-13)
    assert got["elements"]["q_au"] == pytest.approx(0.7458270478466523, abs=1e-13)
    assert got["sigmas"]["e"] == pytest.approx(1.57044261144172e-09, rel=1e-6)
    assert got["nongrav"]["A2"] == -2.901766637153165e-14

    # provenance: one residual row per observation, linked to the submission it came from
    rows = got["residuals"]
    assert [r["observation_id"] for r in rows] == ids.tolist()
    assert {r["submission_id"] for r in rows} == {receipt.submission_id}
    assert solutions.solution_submissions(catalog_engine, solution_id) == {
        receipt.submission_id: len(ids)}
    stored_ra = np.array([np.nan if r["ra_arcsec"] is None else r["ra_arcsec"] for r in rows])
    assert np.array_equal(stored_ra, solution.residuals.ra_arcsec, equal_nan=True)
    assert [r["rejected"] for r in rows] == solution.residuals.rejected.tolist()
    assert [r["used"] for r in rows] == solution.residuals.used.tolist()
    assert [r["line"] for r in rows] == batch["line"].tolist()  # lines of the submitted file
    radar = batch["kind"] == "radar"
    assert all(rows[i]["ra_arcsec"] is None for i in np.flatnonzero(radar))

    # back to an OrbitSolution: same state and covariance arrays
    loaded = solutions.load_solution(catalog_engine, solution_id)
    assert np.array_equal(loaded.state_icrf_au, solution.state_icrf_au)
    assert np.array_equal(loaded.covariance, solution.covariance)
    assert loaded.ok and loaded.designation == "99942"
    assert solutions.objects_to_fit(catalog_engine) == []  # fitted to the current set


def _count_deprecated(engine: sa.Engine) -> int:
    obs = models.observations_table
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(obs.c.deprecated)).scalar_one()


def test_versions_and_failed_fit_keeps_previous(catalog_engine):
    ingest.ingest(catalog_engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
    batch, ids = solutions.observations_with_ids(catalog_engine, "2024 BX1")
    object_id = queries.resolve(catalog_engine, "2024 BX1")
    good = OrbitSolution(designation="2024 BX1", status=CONVERGED, epoch_tdb_jd=2460330.5,
                         state_icrf_au=np.array([-0.46, 0.87, 0.38, -0.017, -0.007, -0.004]),
                         rms_arcsec=0.41, n_obs=len(batch), n_used=len(batch))
    first = solutions.store_solution(catalog_engine, object_id, good, ids, {"nongrav": "none"})
    failed = solutions.store_solution(catalog_engine, object_id,
                                      _failed("2024 BX1", message="singular normal matrix"),
                                      ids, {"nongrav": "a1a2a3"})

    current = solutions.latest_solution(catalog_engine, "2024 BX1")
    assert current["id"] == first and current["status"] == CONVERGED
    newest = solutions.latest_solution(catalog_engine, "K24B01X", ok_only=False)
    assert (newest["id"], newest["version"], newest["supersedes"]) == (failed, 2, first)
    assert (newest["status"], newest["message"]) == (FAILED, "singular normal matrix")
    assert newest["state_icrf_au"] == [None] * 6 and newest["elements"] == {}
    assert "residuals" not in newest
    # a failed fit still records the exact observation set it was given
    assert len(solutions.residuals_of(catalog_engine, failed)) == len(ids)
    assert all(r["ra_arcsec"] is None for r in solutions.residuals_of(catalog_engine, failed))

    third = solutions.store_solution(catalog_engine, object_id, good, ids, {})
    history = solutions.solution_history(catalog_engine, "2024 BX1")
    assert [(h["version"], h["status"], h["supersedes"]) for h in history] == [
        (1, CONVERGED, None), (2, FAILED, first), (3, CONVERGED, failed)]
    assert solutions.latest_solution(catalog_engine, "2024 BX1")["id"] == third
    with pytest.raises(queries.UnknownDesignation):
        solutions.latest_solution(catalog_engine, "2099 ZZ99")


def test_objects_to_fit_follows_the_observation_sets(catalog_engine):
    bx1 = (OBSERVATIONS / "2024_BX1.obs80").read_text().splitlines(keepends=True)
    ingest.ingest(catalog_engine, "".join(bx1[:200]).encode(), "bx1-a.obs80")
    ingest.ingest(catalog_engine, OBSERVATIONS / "2008_TC3.obs80", "tc3.obs80")
    bx1_id, tc3_id = (queries.resolve(catalog_engine, d) for d in ("2024 BX1", "2008 TC3"))
    assert solutions.objects_to_fit(catalog_engine) == sorted(
        [(bx1_id, "2024 BX1"), (tc3_id, "2008 TC3")])

    _, ids = solutions.observations_with_ids(catalog_engine, "2024 BX1")
    solutions.store_solution(catalog_engine, bx1_id, _failed("2024 BX1", ARC_TOO_SHORT), ids)
    assert solutions.objects_to_fit(catalog_engine) == [(tc3_id, "2008 TC3")]
    _, ids = solutions.observations_with_ids(catalog_engine, "2008 TC3")
    solutions.store_solution(catalog_engine, tc3_id, _failed("2008 TC3"), ids)
    assert solutions.objects_to_fit(catalog_engine) == []  # failures are not retried as such

    # new observations of one object make it due again; duplicates do not
    ingest.ingest(catalog_engine, OBSERVATIONS / "2008_TC3.obs80", "tc3-again.obs80")
    assert solutions.objects_to_fit(catalog_engine) == []
    ingest.ingest(catalog_engine, "".join(bx1[200:]).encode(), "bx1-b.obs80")
    assert solutions.objects_to_fit(catalog_engine) == [(bx1_id, "2024 BX1")]
    batch, ids = solutions.observations_with_ids(catalog_engine, "2024 BX1")
    assert len(ids) == 328
    by_id, same_ids = solutions.observations_with_ids(catalog_engine, bx1_id)  # by object id
    assert np.array_equal(same_ids, ids) and np.array_equal(by_id["ra"], batch["ra"])
    assert solutions.current_hashes(catalog_engine)[bx1_id] == observation_set_hash(batch)


def test_residuals_must_match_the_observation_ids(catalog_engine, apophis_file_residuals):
    ingest.ingest(catalog_engine, OBSERVATIONS / "99942_Apophis.obs80", "apophis.obs80")
    batch, ids = solutions.observations_with_ids(catalog_engine, "99942")
    solution = _apophis_solution(batch, apophis_file_residuals)
    object_id = queries.resolve(catalog_engine, "99942")
    with pytest.raises(ValueError, match="order of observation_ids"):
        solutions.store_solution(catalog_engine, object_id, solution, ids[::-1])
    with pytest.raises(LookupError, match="not observations of object"):
        solutions.store_solution(catalog_engine, object_id, solution, ids + 10**9)
    assert _count(catalog_engine, "orbit_solutions") == 0  # all or nothing
    assert _count(catalog_engine, "orbit_residuals") == 0
    # residuals for a subset of the ids are matched by observation id in Residuals.line
    r = solution.residuals
    sub = np.flatnonzero(batch["kind"] != "radar")[:50]
    solution.residuals = Residuals(ids[sub], r.obs_time_mjd_utc[sub], r.stn[sub],
                                   r.ra_arcsec[sub], r.dec_arcsec[sub], r.sigma_ra_arcsec[sub],
                                   r.sigma_dec_arcsec[sub], r.chi2[sub], r.rejected[sub])
    sid = solutions.store_solution(catalog_engine, object_id, solution, ids)
    rows = solutions.residuals_of(catalog_engine, sid)
    have = [i for i, row in enumerate(rows) if row["ra_arcsec"] is not None]
    assert have == sub.tolist()


def test_object_merge_takes_the_merged_objects_solutions(catalog_engine):
    """Identifying a provisional object with a numbered one deletes the provisional object and
    its duplicated observations: its solutions and their residual rows go with it (cascade),
    the survivor keeps its solutions and becomes due for a refit."""
    lines = (OBSERVATIONS / "99942_Apophis.obs80").read_text().splitlines()
    linked = [line for line in lines if line.startswith("99942K04M04N")]
    prov_only = ["     " + line[5:] for line in linked[:20]]
    number_only = [line[:5] + "       " + line[12:] for line in linked[10:20]]

    def submit(rows, name):
        return ingest.ingest(catalog_engine, ("\n".join(rows) + "\n").encode(), name)

    submit(prov_only, "prov.obs80")
    submit(number_only, "num.obs80")
    prov, num = (queries.resolve(catalog_engine, d) for d in ("2004 MN4", "99942"))
    assert prov != num
    for object_id, name in ((prov, "2004 MN4"), (num, "99942")):
        _, ids = solutions.observations_with_ids(catalog_engine, name)
        solutions.store_solution(catalog_engine, object_id, _failed(name), ids)
    # 19 + 10: linked[6] is a deprecated ("X") record, stored but not in the fit set
    assert _count(catalog_engine, "orbit_residuals") == 19 + 10

    receipt = submit(linked[20:22], "link.obs80")
    assert receipt.merged == [{"object_id": prov, "from": "2004 MN4", "into_object_id": num,
                               "duplicates_removed": 10}]
    assert [h["object_id"] for h in solutions.solution_history(catalog_engine, "2004 MN4")] == [
        num]
    assert _count(catalog_engine, "orbit_residuals") == 10  # the survivor's rows only
    assert solutions.objects_to_fit(catalog_engine) == [(num, "99942")]


def test_migration_0002_downgrades_and_upgrades(catalog_url):
    """The orbit tables come and go with revision 0002; the observations stay."""
    from alembic import command

    from neodefense.catalog import db

    engine = db.connect(catalog_url)
    try:
        ingest.ingest(engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
        _, ids = solutions.observations_with_ids(engine, "2024 BX1")
        solutions.store_solution(engine, queries.resolve(engine, "2024 BX1"),
                                 _failed("2024 BX1"), ids)
        with db.write_transaction(engine) as conn:
            command.downgrade(db.alembic_config(conn), "0001")
        tables = set(sa.inspect(engine).get_table_names())
        assert "orbit_solutions" not in tables and "orbit_residuals" not in tables
        assert db.current_revision(engine) == "0001"
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert _count(engine, "orbit_solutions") == 0 and _count(engine, "observations") == 328
        assert solutions.objects_to_fit(engine) == [(queries.resolve(engine, "2024 BX1"),
                                                     "2024 BX1")]
    finally:
        engine.dispose()
