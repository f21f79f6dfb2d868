"""Discovery replay (neodefense.impacts.replay): steps, step records, warning times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neodefense.impacts.replay import first_tracklet, replay, replay_steps, warning_times
from neodefense.observations import io
from neodefense.observations.batch import ObservationBatch

HOUR_DAY = 1.0 / 24.0


@pytest.fixture(scope="module")
def tc3(shared_data: Path) -> ObservationBatch:
    return io.read(shared_data / "observations" / "2008_TC3.obs80").batch


def test_first_tracklet_is_the_discovery_stations(tc3: ObservationBatch) -> None:
    idx = first_tracklet(tc3)
    t = tc3["obsTime_mjd"][idx]
    # 2008 TC3's four discovery images from Mt. Lemmon (G96, Catalina Sky Survey), ~15 min apart
    assert len(idx) == 4
    assert set(tc3["stn"][idx]) == {"G96"}
    assert tc3["disc"][idx[0]] == "*"
    assert t[0] == tc3["obsTime_mjd"].min()
    assert np.all(np.diff(t) > 0) and (t[-1] - t[0]) <= HOUR_DAY
    # a longer span takes in the same station's later observations only
    idx2 = first_tracklet(tc3, tracklet_hours=2.0)
    assert len(idx2) == 8 and set(tc3["stn"][idx2]) == {"G96"}
    # without a discovery flag: the station of the earliest observation
    cols = dict(tc3.columns)
    cols["disc"] = np.full(len(tc3), "", dtype=object)
    assert np.array_equal(first_tracklet(ObservationBatch(cols)), idx)


def test_replay_steps_tc3(tc3: ObservationBatch) -> None:
    steps = replay_steps(tc3)
    t = tc3["obsTime_mjd"]
    cutoffs = np.array([c for c, _ in steps])
    counts = [len(i) for _, i in steps]
    assert np.array_equal(steps[0][1], first_tracklet(tc3))
    assert cutoffs[0] == t[steps[0][1]].max()
    np.testing.assert_allclose(np.diff(cutoffs), HOUR_DAY, rtol=0, atol=1e-9)
    assert counts == sorted(counts) and counts[-1] == len(tc3) == 883
    assert counts[-2] < 883  # stops at the first step holding everything
    for (_, previous), (cutoff, idx) in zip(steps[:-1], steps[1:], strict=True):
        assert set(previous.tolist()) <= set(idx.tolist())
        assert np.array_equal(np.sort(idx), np.nonzero(t <= cutoff + 1e-8)[0])
    assert len(steps) == 20
    half = replay_steps(tc3, step_hours=0.5)
    assert half[-1][1].size == 883 and len(half) > len(steps)
    with pytest.raises(ValueError):
        replay_steps(tc3, step_hours=0.0)


def test_replay_first_steps_structure(tc3: ObservationBatch) -> None:
    seen: list[int] = []
    steps = replay(tc3, "2008 TC3", n_samples=50, years=0.01, max_steps=3, seed=1,
                   on_step=lambda r: seen.append(r["step"]))
    assert seen == [0, 1, 2] and [r["step"] for r in steps] == seen
    assert [r["n_obs"] for r in steps] == [4, 9, 15]
    assert [r["n_new"] for r in steps] == [4, 5, 6]
    keys = {"cutoff_utc", "cutoff_mjd_utc", "n_obs", "arc_hours", "fit_status", "rms_arcsec",
            "method", "status", "cumulative_ip", "ip_sigma", "vi_date_utc", "entry",
            "runtime_s", "recomputed"}
    for r in steps:
        assert keys <= set(r)
        assert r["recomputed"]
        assert r["cutoff_utc"].startswith("2008-10-06T")
        assert r["status"] == "ok", r["message"]
        assert 0.0 <= r["cumulative_ip"] <= 1.0
        assert r["arc_hours"] >= 0 and r["runtime_s"] > 0
    # the four-image tracklet fixes no orbit: ranging samples, weighted Monte Carlo
    assert steps[0]["fit_status"] == "arc_too_short" and steps[0]["method"] == "mc"
    assert steps[0]["ip_sigma"] is not None
    assert steps[1]["fit_status"] == "converged" and steps[1]["method"] == "lov"
    assert steps[1]["rms_arcsec"] < 1.0
    assert steps[1]["arc_hours"] == pytest.approx(0.07118 * 24, abs=0.01)


def _synthetic(ips: list[float | None]) -> list[dict]:
    start = 54745.3
    return [{"step": k, "cutoff_mjd_utc": start + k * HOUR_DAY, "cutoff_utc": f"step{k}",
             "n_obs": 4 + k, "cumulative_ip": ip} for k, ip in enumerate(ips)]


def test_warning_times_synthetic() -> None:
    steps = _synthetic([None, 0.005, 0.02, 0.6, 0.4, 0.995, None, 1.0])
    impact_mjd = 54745.3 + 10 * HOUR_DAY
    out = warning_times(list(reversed(steps)), impact_mjd, thresholds=(0.01, 0.5, 0.99, 0.9999,
                                                                        1.0))
    by = {w["threshold"]: w for w in out}
    assert by[0.01]["step"] == 2 and by[0.01]["warning_hours"] == pytest.approx(8.0)
    assert by[0.01]["stays_above"] and by[0.01]["ip"] == 0.02 and by[0.01]["n_obs"] == 6
    assert by[0.5]["step"] == 3 and by[0.5]["warning_hours"] == pytest.approx(7.0)
    assert by[0.5]["stays_above"] is False  # 0.4 at step 4
    assert by[0.99]["step"] == 5 and by[0.99]["warning_hours"] == pytest.approx(5.0)
    assert by[0.99]["stays_above"]  # the step without an IP is no drop
    assert by[0.9999]["step"] == 7 and by[1.0]["step"] == 7
    # never reached; ISO impact time
    out = warning_times(_synthetic([0.1, 0.2]), "2008-10-07T02:45:45")
    assert out[0]["step"] == 0 and out[1]["step"] is None and out[1]["warning_hours"] is None
    assert out[0]["warning_hours"] == pytest.approx((54746.11510417 - 54745.3) * 24, abs=1e-4)
