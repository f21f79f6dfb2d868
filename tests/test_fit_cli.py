"""``neodefense fit``: files without a catalog, catalog objects with stored versions, failures.

Real fits (a few seconds each) on real astrometry; the orbits are checked against ESA NEOCC's
published 2024 BX1 orbit and against what happened to 2008 TC3 (it hit the Earth).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neodefense.catalog import db, solutions
from neodefense.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OBSERVATIONS = SHARED / "observations"
NEOCC_BX1 = SHARED / "reference" / "neocc" / "2024BX1.ke1"
#: Earth's equatorial radius in au: a MOID below it means the orbit crosses the Earth itself
EARTH_RADIUS_AU = 6378.137 / 149_597_870.7


@pytest.fixture()
def catalog(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _neocc(path: Path) -> tuple[float, np.ndarray, np.ndarray, float]:
    """(epoch TDB JD, [a, e, i, node, argperi, M], their 1σ, H) from an OEF2.0 .ke1 file."""
    kep = rms = None
    epoch = h = float("nan")
    for line in path.read_text().splitlines():
        words = line.split()
        if words[:1] == ["KEP"]:
            kep = np.array(words[1:7], dtype=float)
        elif words[:1] == ["MJD"]:
            epoch = float(words[1]) + 2400000.5  # TDT; TDB − TT < 2 ms
        elif words[:1] == ["MAG"]:
            h = float(words[1])
        elif words[:2] == ["!", "RMS"]:
            rms = np.array(words[2:8], dtype=float)
    assert kep is not None and rms is not None
    return epoch, kep, rms, h


def test_fit_file_matches_neocc_at_its_epoch(capsys):
    """2024 BX1 from the MPC file alone, reported at NEOCC's epoch (propagated ~330 days back
    with the covariance): a, e, i within 3σ of NEOCC's (combined σ), H within its σ."""
    epoch, kep, rms, h = _neocc(NEOCC_BX1)
    status, out, err = _run(capsys, "fit", "--obs", str(OBSERVATIONS / "2024_BX1.obs80"),
                            "--epoch", repr(epoch), "--json")
    assert status == 0, err
    got = json.loads(out)
    assert got["status"] == "converged" and got["designation"] == "2024 BX1"
    assert got["epoch_tdb_jd"] == epoch
    assert got["n_obs"] == 328 and got["n_used"] >= 300
    for i, key in enumerate(("a_au", "e", "i_deg")):
        combined = np.hypot(rms[i], got["sigmas"][key])
        assert abs(got["elements"][key] - kep[i]) < 3 * combined, key
    assert got["H"] == pytest.approx(h, abs=0.15)
    assert np.array(got["covariance"]).shape == (6, 6)
    assert got["observation_set_hash"] and got["code_version"].startswith("neodefense")


def test_fit_file_reports_rejected_lines_and_fits_the_rest(capsys, tmp_path):
    lines = (OBSERVATIONS / "2008_TC3.obs80").read_text().splitlines(keepends=True)[:60]
    lines[3] = lines[3][:20] + "99" + lines[3][22:]  # day 99 of October
    path = tmp_path / "tc3.obs80"
    path.write_text("".join(lines))
    status, out, err = _run(capsys, "fit", "--obs", str(path))
    assert status == 0, err
    assert f"{path}:4: obsTime" in err
    assert out.startswith("2008 TC3: converged")
    assert "59 observations" in out and "a_au" in out and "RMS" in out


def test_failed_fit_prints_status_and_exits_1(capsys):
    """2008 EK68: ten positions over 58 minutes, no measurable curvature — no orbit."""
    path = str(OBSERVATIONS / "short_arc" / "2008_EK68.obs80")
    status, out, err = _run(capsys, "fit", "--obs", path)
    assert status == 1
    assert out.startswith("2008 EK68: arc_too_short — arc too short")
    assert "\nranging: distance from the observer" in out  # what the admissible region says
    assert "Traceback" not in out + err
    status, out, _ = _run(capsys, "fit", "--obs", path, "--json")
    assert status == 1
    got = json.loads(out)
    assert got["status"] == "arc_too_short" and got["message"]
    assert got["elements"] == {}


def test_fit_catalog_object_stores_versions(capsys, catalog):
    assert main(["ingest", str(OBSERVATIONS / "2008_TC3.obs80"), "--catalog", catalog]) == 0
    capsys.readouterr()
    status, out, err = _run(capsys, "fit", "2008 TC3", "--catalog", catalog)
    assert status == 0, err
    assert out.startswith("2008 TC3: converged")
    assert out.rstrip().endswith("stored in the catalog as solution 1 (version 1)")

    # again, by another alias, reported at the fireball (2008-10-07 02:46 UTC ≈ TDB JD
    # 2454746.616): a new version; the stored one stays at the fit epoch
    status, out, err = _run(capsys, "fit", "K08T03C", "--catalog", catalog, "--json",
                            "--epoch", "2454746.6")
    assert status == 0, err
    reported = json.loads(out)
    assert reported["epoch_tdb_jd"] == 2454746.6
    engine = db.connect(catalog)
    try:
        stored = solutions.latest_solution(engine, "2008 TC3", residuals=True)
        history = solutions.solution_history(engine, "2008 TC3")
    finally:
        engine.dispose()
    assert [h["version"] for h in history] == [1, 2] and stored["version"] == 2
    assert stored["settings"]["epoch_tdb_jd"] == 2454746.6
    assert stored["epoch_tdb_jd"] != reported["epoch_tdb_jd"]
    assert stored["observation_set_hash"] == reported["observation_set_hash"]
    assert len(stored["residuals"]) == 883
    assert sum(not r["used"] for r in stored["residuals"]) == reported["n_rejected"]
    # 2008 TC3 hit the Earth: its orbit crosses the Earth's body, not just its orbit
    assert reported["moid_au"] < EARTH_RADIUS_AU
    # propagation keeps the covariance positive definite and the state sensible
    assert np.all(np.linalg.eigvalsh(np.array(reported["covariance"])) > 0)
    assert 0.9 < reported["elements"]["q_au"] / stored["elements"]["q_au"] < 1.1


def test_failed_catalog_fit_is_stored_but_not_current(capsys, catalog):
    assert main(["ingest", str(OBSERVATIONS / "short_arc" / "2008_EK68.obs80"),
                 "--catalog", catalog]) == 0
    capsys.readouterr()
    status, out, err = _run(capsys, "fit", "2008 EK68", "--catalog", catalog)
    assert status == 1 and "arc_too_short" in out and "Traceback" not in err
    assert "stored in the catalog as solution 1 (version 1)" in out
    engine = db.connect(catalog)
    try:
        assert solutions.latest_solution(engine, "2008 EK68") is None
        newest = solutions.latest_solution(engine, "2008 EK68", ok_only=False)
    finally:
        engine.dispose()
    assert newest["status"] == "arc_too_short" and newest["message"] in out


def test_unknown_object_and_missing_file_are_clear_errors(capsys, catalog, tmp_path):
    status, _, err = _run(capsys, "fit", "2099 ZZ99", "--catalog", catalog)
    assert status == 1 and "2099 ZZ99: no such object in the catalog" in err
    status, _, err = _run(capsys, "fit", "--obs", str(tmp_path / "none.obs80"))
    assert status == 1 and "none.obs80: cannot read" in err
    with pytest.raises(SystemExit):  # argparse: one of DESIGNATION or --obs
        main(["fit", "2008 TC3", "--obs", "x.obs80"])
