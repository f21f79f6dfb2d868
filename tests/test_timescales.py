"""Time-scale conversions: UTC (UT1 before 1962) -> TT/TDB, two-part precision, offline IERS."""

from __future__ import annotations

import warnings

import erfa
import numpy as np
import pytest
from astropy.time import Time
from astropy.utils import iers

from neodefense import timescales as ts

US_PER_DAY = 86400e6


def _tt_minus_input_s(mjd: np.ndarray) -> np.ndarray:
    jd1, jd2 = ts.utc_mjd_to_tt_jd(mjd)
    day = np.floor(mjd)
    return ((jd1 - ts.MJD_TO_JD - day) + (jd2 - (mjd - day))) * 86400.0


def test_configure_offline_is_idempotent_and_sets_iers_config():
    ts.configure_astropy_offline()
    ts.configure_astropy_offline()
    assert iers.conf.auto_download is False
    assert iers.conf.auto_max_age is None
    assert iers.conf.iers_degraded_accuracy == "warn"
    # the table in use is the bundled astropy-iers-data one, not a download
    table = iers.earth_orientation_table.get()
    assert "astropy_iers_data" in str(table.meta.get("data_path", ""))


def test_nothing_is_downloaded(monkeypatch):
    """Recent, predicted and future times convert with every download path made to fail."""

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    import astropy.utils.data
    import astropy.utils.iers.iers as iers_module

    monkeypatch.setattr(astropy.utils.data, "download_file", no_network)
    monkeypatch.setattr(iers_module, "download_file", no_network)
    _, predictive, last = ts.iers_table_range_mjd()
    mjd = np.array([predictive - 40.0, predictive + 20.0, last - 1.0])
    t = ts.utc_mjd_to_time(mjd)
    assert np.all(np.isfinite(t.ut1.jd2))
    assert np.all(np.isfinite(ts.utc_mjd_to_tdb_jd(mjd)[1]))


def test_tt_minus_utc_is_tai_offset_plus_32_184():
    # TAI-UTC: 32 s from 1999-01-01, 35 s from 2012-07-01, 37 s from 2017-01-01 (IERS Bull. C)
    mjd = np.array([51544.5, 56200.25, 58000.0, 60500.75])
    expected = 32.184 + np.array([32.0, 35.0, 37.0, 37.0])
    np.testing.assert_allclose(_tt_minus_input_s(mjd), expected, atol=1e-6)


def test_tdb_matches_astropy_two_part_to_a_microsecond():
    rng = np.random.default_rng(7)
    mjd = 48000.0 + rng.random(5000) * 13000.0
    mjd = mjd[ts.leap_day_extra_s(np.floor(mjd)) == 0.0]  # ERFA differs there on purpose
    jd1, jd2 = ts.utc_mjd_to_tdb_jd(mjd)
    day = np.floor(mjd)
    ref = Time(day, mjd - day, format="mjd", scale="utc").tdb
    diff_us = np.abs((jd1 - ref.jd1) + (jd2 - ref.jd2)) * US_PER_DAY
    # grid-interpolated TDB-TT (7e-8 s max) against astropy's direct erfa.dtdb
    assert diff_us.max() < 0.2
    # the two parts keep full precision: jd1 whole (half) days, |jd2| <= 0.5
    assert np.all(np.abs(jd2) <= 0.5)


def test_tdb_minus_tt_interpolation_against_erfa():
    rng = np.random.default_rng(3)
    jd = 2440000.5 + np.floor(rng.random(20000) * 25000.0)
    frac = rng.random(20000)
    approx = ts.tdb_minus_tt_s(jd, frac)
    exact = erfa.dtdb(jd, frac, 0.0, 0.0, 0.0, 0.0)
    assert np.abs(approx - exact).max() < 1e-7  # s; < 3 mm of Earth motion
    assert np.abs(exact).max() == pytest.approx(1.7e-3, abs=1e-4)  # the 1.66 ms annual term


def test_leap_second_day_fraction_is_seconds_over_86400():
    # 2016-12-31 had 86401 s. "2016 12 31.5" is 12:00:00 UTC, 36 s TAI-UTC before the leap.
    day = 57753.0
    assert ts.leap_day_extra_s(np.array([day, day + 1.0, 57752.0])).tolist() == [1.0, 0.0, 0.0]
    for frac in (0.25, 0.5, 0.99):
        got = _tt_minus_input_s(np.array([day + frac]))[0]
        assert got == pytest.approx(32.184 + 36.0, abs=1e-6)
    assert ts.utc_mjd_to_iso(day + 0.5)[0] == "2016-12-31T12:00:00.000"
    # ERFA alone would read the fraction over 86401 s: 0.5 s later at noon
    naive = Time(day, 0.5, format="mjd", scale="utc").tt
    assert ((naive.jd1 - ts.MJD_TO_JD - day) + (naive.jd2 - 0.5)) * 86400 - 68.184 == (
        pytest.approx(0.5, abs=1e-6))


def test_roundtrip_tdb_to_utc_including_leap_days_and_pre_1962():
    mjd = np.array([15020.25, 33282.0, 37664.9, 37665.1, 41683.0, 54831.11852, 57203.9999,
                    57753.5, 60000.123456, 61400.0])
    jd1, jd2 = ts.utc_mjd_to_tdb_jd(mjd)
    back = ts.tdb_jd_to_utc_mjd(jd1, jd2)
    assert np.abs(back - mjd).max() * US_PER_DAY < 1.0


def test_iso_roundtrip():
    mjd = np.array([15020.25, 54831.11852, 57753.5, 60000.123456])
    iso = ts.utc_mjd_to_iso(mjd, precision=6)
    assert iso[0] == "1900-01-01T06:00:00.000000"
    back = ts.iso_to_utc_mjd(iso)
    assert np.abs(back - mjd).max() * US_PER_DAY < 1.0
    assert ts.iso_to_utc_mjd("2024-01-20 21:17:08.5Z")[0] == pytest.approx(
        60329.0 + (21 * 3600 + 17 * 60 + 8.5) / 86400, abs=1e-11)


@pytest.mark.parametrize(
    ("year", "delta_t_s"),
    # observed ΔT (s) at the start of the year (Astronomical Almanac / USNO historic table)
    [(1900, -2.72), (1910, 10.46), (1920, 21.16), (1930, 24.02), (1940, 24.35),
     (1950, 29.15), (1960, 33.15)],
)
def test_pre_1962_times_are_ut1_with_delta_t(year, delta_t_s):
    jd1, jd2 = erfa.cal2jd(year, 1, 1)
    mjd = np.array([(jd1 - ts.MJD_TO_JD) + jd2 + 0.25])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        t = ts.utc_mjd_to_time(mjd)
        ut1 = t.ut1
    assert ((ut1.jd1 - ts.MJD_TO_JD) + ut1.jd2)[0] == pytest.approx(mjd[0], abs=2e-8)
    # the Espenak & Meeus polynomials follow the observed values to well under a second
    assert _tt_minus_input_s(mjd)[0] == pytest.approx(delta_t_s, abs=0.35)


def test_switch_to_utc_in_1962_is_continuous():
    before = _tt_minus_input_s(np.array([ts.UT1_ERA_END_MJD - 1e-6]))[0]
    after = _tt_minus_input_s(np.array([ts.UT1_ERA_END_MJD + 1e-6]))[0]
    # TT-UTC = 32.184 + 1.845858 s on 1962-01-01 with UT1-UTC ~ +0.03 s: ΔT ~ 34.0 s
    assert after == pytest.approx(34.03, abs=0.01)
    assert abs(after - before) < 0.1


def test_ut1_utc_from_bundled_tables():
    # IERS EOP 20 C04 rows (0h UTC): 1962-01-01 +0.0326338 s and 1970-01-01 +0.0034537 s, before
    # astropy's IERS-A table starts (1973); 2000-01-01 +0.3554 s (IERS Bulletin B)
    got = ts.ut1_minus_utc_s(np.array([37665.0, 40587.0, 51544.0]))
    np.testing.assert_allclose(got, [0.0326338, 0.0034537, 0.3554], atol=1e-3)
    assert np.isnan(ts.ut1_minus_utc_s(np.array([30000.0]))[0])


def test_times_beyond_the_iers_table_warn_not_raise():
    _, _, last = ts.iers_table_range_mjd()
    mjd = np.array([last + 400.0])
    with pytest.warns(iers.IERSDegradedAccuracyWarning, match="end of the bundled IERS table"):
        t = ts.utc_mjd_to_time(mjd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # leap-second table "dubious year"
        warnings.simplefilter("ignore", iers.IERSDegradedAccuracyWarning)  # tested above
        assert np.isfinite(t.ut1.jd2[0])
        assert np.isfinite(ts.utc_mjd_to_tdb_jd(mjd)[1][0])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="finite"):
        ts.utc_mjd_to_time(np.array([60000.0, np.nan]))
    with pytest.raises(ValueError, match="1-d"):
        ts.utc_mjd_to_time(np.zeros((2, 2)))
