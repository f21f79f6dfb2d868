"""Impact assessments in the catalog (SQLite and PostgreSQL): round trip, versions, the current
assessment, which solutions need monitoring, all-or-nothing storage, migration 0003.

The orbit solutions are hand-made (no fit) for the real 2024 BX1 observations; the assessments are
hand-built with the values the monitor produces (two virtual impactors, one imminent with its
entry point and corridor), so only the catalog is under test.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from neodefense.catalog import assessments, ingest, queries, solutions
from neodefense.impacts.assessment import DEGENERATE, FAILED, OK, ImpactAssessment, VirtualImpactor
from neodefense.orbits.solution import CONVERGED, DIVERGED, OrbitSolution

OBSERVATIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
DESIGNATION = "2024 BX1"


def _solution(n_obs: int, status: str = CONVERGED, x_au: float = -0.46) -> OrbitSolution:
    if status != CONVERGED:
        return OrbitSolution(designation=DESIGNATION, status=status, message="no luck")
    return OrbitSolution(designation=DESIGNATION, status=CONVERGED, epoch_tdb_jd=2460330.5,
                         state_icrf_au=np.array([x_au, 0.87, 0.38, -0.017, -0.007, -0.004]),
                         rms_arcsec=0.41, n_obs=n_obs, n_used=n_obs)


@pytest.fixture()
def bx1(catalog_engine) -> tuple[int, np.ndarray]:
    """2024 BX1's observations in the catalog: (object id, fit-set observation ids)."""
    ingest.ingest(catalog_engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
    _, ids = solutions.observations_with_ids(catalog_engine, DESIGNATION)
    return queries.resolve(catalog_engine, DESIGNATION), ids


def _store_solution(engine, bx1, status: str = CONVERGED, x_au: float = -0.46) -> int:  # noqa: ANN001
    object_id, ids = bx1
    return solutions.store_solution(engine, object_id, _solution(len(ids), status, x_au), ids)


def _assessment(status: str = OK, ip: float = 2.5e-4, hash_: str = "") -> ImpactAssessment:
    """Two virtual impactors: a distant Earth one (Monte Carlo, NaN σ_LOV and b) and an imminent
    one with entry point and corridor (floats with many digits, a NaN inside the entry dict)."""
    distant = VirtualImpactor(
        body="earth", time_tdb_jd=2482345.123456789, date_utc="2067-09-14.62", ip=ip,
        ip_sigma=1.1e-5, palermo=-2.345678901234, torino=1, v_inf_km_s=11.2345,
        v_imp_km_s=16.0123456789, energy_mt=123.456, diameter_m=140.0, method="mc")
    imminent = VirtualImpactor(
        body="earth", time_tdb_jd=2460330.5222, date_utc="2024-01-21T00:32:38.123", ip=0.99,
        palermo=float("nan"), torino=0, v_inf_km_s=12.09, v_imp_km_s=15.2, energy_mt=0.0004,
        diameter_m=0.44, sigma_lov=0.123456789012345, b_km=1234.5678, b_impact_km=6800.1,
        method="lov",
        entry={"time_utc": "2024-01-21T00:32:38.1", "lat_deg": 52.6012345678,
               "lon_deg": 12.7698765432, "alt_km": 100.0, "speed_km_s": float("nan")},
        corridor={"1sigma": [[52.1, 12.0], [52.61, 12.77], [53.0, 13.5]],
                  "3sigma": [[51.0, 10.0], [54.0, 15.0]]})
    return ImpactAssessment(
        designation=DESIGNATION, status=status, message="" if status == OK else "boom",
        method="lov", n_samples=2001, seed=12345, years=100.0, bodies=("earth", "moon"),
        horizon_tdb_jd=2496854.5, assessed_utc="2026-11-27T10:00:00Z",
        cumulative_ip=ip + 0.99, palermo_cum=-1.23456789, palermo_max=float("nan"),
        torino_max=1, iawn_notify=True, smpag=False, H=32.8, diameter_m=None,
        virtual_impactors=[distant, imminent],
        close_approaches=[{"body": "earth", "time_tdb_jd": 2460330.52, "distance_au": 1e-5,
                           "sigma_km": float("nan")}],
        cross_check={"method": "mc", "cumulative_ip": 0.98, "n_samples": 10000},
        runtime_s=12.5, solution_epoch_tdb_jd=2460330.5, observation_set_hash=hash_,
        solution_code_version="neodefense test")


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# -- tests -----------------------------------------------------------------------------------------

def test_assessment_round_trip(catalog_engine, bx1):
    solution_id = _store_solution(catalog_engine, bx1)
    stored_hash = solutions.latest_solution(catalog_engine, DESIGNATION)["observation_set_hash"]
    original = _assessment()  # no hash given: the solution's is recorded
    before = dt.datetime.now(dt.UTC)

    assessment_id = assessments.store_assessment(catalog_engine, solution_id, original)

    got = assessments.latest_assessment(catalog_engine, "K24B01X")  # any alias
    assert (got["id"], got["version"], got["solution_id"], got["object_id"]) == (
        assessment_id, 1, solution_id, bx1[0])
    assert got["is_current"] and got["designation"] == DESIGNATION
    assert before - dt.timedelta(seconds=1) <= got["created_at"] <= dt.datetime.now(dt.UTC)
    assert got["created_at"].tzinfo is not None
    assert (got["n_vi"], got["first_year"], got["last_year"]) == (2, 2024, 2067)
    assert got["observation_set_hash"] == stored_hash
    assert got["bodies"] == ["earth", "moon"] and got["seed"] == 12345
    # NaN → null: columns, VI columns and inside JSON
    assert got["palermo_max"] is None and got["diameter_m"] is None
    distant, imminent = got["virtual_impactors"]
    assert distant["sigma_lov"] is None and distant["entry"] is None
    assert distant["corridor"] is None and imminent["palermo"] is None
    assert imminent["entry"]["speed_km_s"] is None
    assert got["close_approaches"][0]["sigma_km"] is None
    # every number back bit for bit, and the dataclass rebuilt: same as_json (NaN → None)
    expected = original.as_json() | {"observation_set_hash": stored_hash}
    expected["virtual_impactors"][1]["entry"]["speed_km_s"] = None
    expected["close_approaches"][0]["sigma_km"] = None
    for key, value in expected.items():
        if key != "virtual_impactors":
            assert got[key] == value, key
    for have, want in zip(got["virtual_impactors"], expected["virtual_impactors"], strict=True):
        assert {k: have[k] for k in want} == want
    rebuilt = assessments.assessment_from_dict(got)
    assert rebuilt.as_json() == expected
    assert rebuilt.palermo_max is None  # optional field: NaN → None stays None
    assert math.isnan(rebuilt.virtual_impactors[0].sigma_lov)  # NaN default → NaN again
    assert math.isnan(rebuilt.virtual_impactors[1].palermo)
    assert rebuilt.bodies == ("earth", "moon") and rebuilt.virtual_impactors[1].torino == 0
    # the as_json dict itself converts too (the CLI's --json output)
    assert assessments.assessment_from_dict(original.as_json()).as_json() == original.as_json()
    assert assessments.assessment_by_id(catalog_engine, assessment_id)["id"] == assessment_id
    # SQL NULL, not JSON null, where there is no entry point
    with catalog_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM virtual_impactors WHERE entry IS NULL"
                                    )).scalar_one() == 1


def test_versions_and_failed_run_keeps_current(catalog_engine, bx1):
    with pytest.raises(queries.UnknownDesignation):
        assessments.latest_assessment(catalog_engine, "2099 ZZ99")
    assert assessments.latest_assessment(catalog_engine, DESIGNATION) is None
    first_solution = _store_solution(catalog_engine, bx1)
    failed_first = assessments.store_assessment(
        catalog_engine, first_solution, ImpactAssessment(DESIGNATION, FAILED, "monitor: boom"))
    assert assessments.latest_assessment(catalog_engine, DESIGNATION) is None  # failed only

    ok1 = assessments.store_assessment(catalog_engine, first_solution, _assessment(ip=1e-4))
    second_solution = _store_solution(catalog_engine, bx1, x_au=-0.4601)
    failed = assessments.store_assessment(catalog_engine, second_solution,
                                          _assessment(status=FAILED, ip=0.0))
    degenerate = assessments.store_assessment(catalog_engine, second_solution,
                                              _assessment(status=DEGENERATE, ip=0.0))
    current = assessments.latest_assessment(catalog_engine, DESIGNATION)
    assert (current["id"], current["version"], current["solution_id"]) == (ok1, 2, first_solution)
    assert current["cumulative_ip"] == 1e-4 + 0.99

    ok2 = assessments.store_assessment(catalog_engine, second_solution, _assessment(ip=3e-4))
    history = assessments.assessment_history(catalog_engine, bx1[0])  # by object id
    assert [(h["id"], h["version"], h["status"], h["solution_id"], h["is_current"])
            for h in history] == [
        (failed_first, 1, FAILED, first_solution, False),
        (ok1, 2, OK, first_solution, False),
        (failed, 3, FAILED, second_solution, False),
        (degenerate, 4, DEGENERATE, second_solution, False),
        (ok2, 5, OK, second_solution, True)]
    assert [h["cumulative_ip"] for h in history] == [0.0, 1e-4 + 0.99, 0.99, 0.99, 3e-4 + 0.99]
    assert history[0]["message"] == "monitor: boom" and history[0]["n_vi"] == 0
    assert history[0]["first_year"] is None
    assert all(h["created_at"].tzinfo is not None for h in history)
    assert all("result" not in h and "virtual_impactors" not in h for h in history)
    assert [h["created_at"] for h in history] == sorted(h["created_at"] for h in history)
    assert assessments.latest_assessment(catalog_engine, DESIGNATION)["id"] == ok2
    assert _count(catalog_engine, "virtual_impactors") == 2 * 4


def test_solutions_to_monitor_follows_the_current_solution(catalog_engine, bx1):
    object_id, ids = bx1
    ingest.ingest(catalog_engine, OBSERVATIONS / "2008_TC3.obs80", "tc3.obs80")
    tc3_id = queries.resolve(catalog_engine, "2008 TC3")
    _, tc3_ids = solutions.observations_with_ids(catalog_engine, tc3_id)
    assert assessments.solutions_to_monitor(catalog_engine) == []  # no solution, nothing to do
    solutions.store_solution(catalog_engine, tc3_id, _solution(0, DIVERGED), tc3_ids)
    assert assessments.solutions_to_monitor(catalog_engine) == []  # no converged solution

    first = _store_solution(catalog_engine, bx1)
    assert assessments.solutions_to_monitor(catalog_engine) == [(object_id, DESIGNATION, first)]
    assessments.store_assessment(catalog_engine, first, _assessment())
    assert assessments.solutions_to_monitor(catalog_engine) == []

    # a failed refit leaves the current orbit (already assessed) in place: nothing to do
    _store_solution(catalog_engine, bx1, status=DIVERGED)
    assert assessments.solutions_to_monitor(catalog_engine) == []
    # a new converged orbit makes the object due again
    second = _store_solution(catalog_engine, bx1, x_au=-0.4602)
    assert assessments.solutions_to_monitor(catalog_engine) == [(object_id, DESIGNATION, second)]
    # a failed run counts as monitored, unless retries of failed runs are asked for
    assessments.store_assessment(catalog_engine, second, _assessment(status=FAILED))
    assert assessments.solutions_to_monitor(catalog_engine) == []
    assert assessments.solutions_to_monitor(catalog_engine, retry_failed=True) == [
        (object_id, DESIGNATION, second)]
    assessments.store_assessment(catalog_engine, second, _assessment(status=DEGENERATE))
    assert assessments.solutions_to_monitor(catalog_engine, retry_failed=True) == []


def test_store_is_all_or_nothing(catalog_engine, bx1, monkeypatch):
    solution_id = _store_solution(catalog_engine, bx1)
    good = assessments.store_assessment(catalog_engine, solution_id, _assessment())
    n_vi = _count(catalog_engine, "virtual_impactors")

    # the second virtual impactor has no impact probability: the database refuses the VI rows
    # after the assessment row was inserted and the current flag moved — all of it rolls back
    bad = _assessment()
    bad.virtual_impactors[1].ip = float("nan")
    with pytest.raises(sa.exc.IntegrityError):
        assessments.store_assessment(catalog_engine, solution_id, bad)
    # the same with a failure outside the database, between the two inserts
    def fail(*args):  # noqa: ANN002, ANN202
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(assessments, "_vi_rows", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        assessments.store_assessment(catalog_engine, solution_id, _assessment())
    monkeypatch.undo()

    assert _count(catalog_engine, "impact_assessments") == 1
    assert _count(catalog_engine, "virtual_impactors") == n_vi
    current = assessments.latest_assessment(catalog_engine, DESIGNATION)
    assert (current["id"], current["version"]) == (good, 1)
    # unknown solution, and an assessment of another observation set, are refused up front
    with pytest.raises(LookupError, match="no orbit solution"):
        assessments.store_assessment(catalog_engine, solution_id + 1000, _assessment())
    with pytest.raises(ValueError, match="observation set"):
        assessments.store_assessment(catalog_engine, solution_id, _assessment(hash_="f" * 64))
    assert _count(catalog_engine, "impact_assessments") == 1
    # the next good one takes the next version
    again = assessments.store_assessment(catalog_engine, solution_id, _assessment())
    assert assessments.latest_assessment(catalog_engine, DESIGNATION)["id"] == again
    assert assessments.assessment_history(catalog_engine, DESIGNATION)[-1]["version"] == 2


def test_object_merge_takes_the_merged_objects_assessments(catalog_engine):
    """Identifying a provisional object with a numbered one deletes the provisional object: its
    solutions, their assessments and virtual impactors go with it (cascade); the survivor's stay."""
    lines = (OBSERVATIONS / "99942_Apophis.obs80").read_text().splitlines()
    linked = [line for line in lines if line.startswith("99942K04M04N")]
    prov_only = ["     " + line[5:] for line in linked[:20]]
    number_only = [line[:5] + "       " + line[12:] for line in linked[10:20]]
    for rows, name in ((prov_only, "prov.obs80"), (number_only, "num.obs80")):
        ingest.ingest(catalog_engine, ("\n".join(rows) + "\n").encode(), name)
    kept = {}
    for name in ("2004 MN4", "99942"):
        object_id = queries.resolve(catalog_engine, name)
        _, ids = solutions.observations_with_ids(catalog_engine, object_id)
        solution_id = solutions.store_solution(catalog_engine, object_id, _solution(len(ids)), ids)
        kept[name] = assessments.store_assessment(catalog_engine, solution_id, _assessment())
    assert _count(catalog_engine, "virtual_impactors") == 4

    ingest.ingest(catalog_engine, ("\n".join(linked[20:22]) + "\n").encode(), "link.obs80")
    assert _count(catalog_engine, "impact_assessments") == 1
    assert _count(catalog_engine, "virtual_impactors") == 2
    assert assessments.latest_assessment(catalog_engine, "2004 MN4")["id"] == kept["99942"]


def test_migration_0003_downgrades_and_upgrades(catalog_url):
    """The assessment tables come and go with revision 0003; the solutions stay."""
    from alembic import command

    from neodefense.catalog import db

    engine = db.connect(catalog_url)
    try:
        ingest.ingest(engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
        object_id = queries.resolve(engine, DESIGNATION)
        _, ids = solutions.observations_with_ids(engine, object_id)
        solution_id = _store_solution(engine, (object_id, ids))
        assessments.store_assessment(engine, solution_id, _assessment())
        with db.write_transaction(engine) as conn:
            command.downgrade(db.alembic_config(conn), "0002")
        tables = set(sa.inspect(engine).get_table_names())
        assert "impact_assessments" not in tables and "virtual_impactors" not in tables
        assert db.current_revision(engine) == "0002"
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert _count(engine, "impact_assessments") == 0 and _count(engine, "orbit_solutions") == 1
        assert assessments.solutions_to_monitor(engine) == [(object_id, DESIGNATION, solution_id)]
    finally:
        engine.dispose()
