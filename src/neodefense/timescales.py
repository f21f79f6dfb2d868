"""Time scales: the one place where neodefense converts observation times.

Conventions
-----------
* Observation times arrive as **UTC** Modified Julian Dates (``obsTime_mjd``, float64, ~1 µs
  resolution). Internally every conversion keeps a **two-part Julian date** (``jd1`` whole days,
  ``jd2`` fraction) so no precision is lost: a single float64 JD near 2.46e6 resolves only ~40 µs,
  which moves the Earth by ~1 m.
* Dynamics run in **TDB** (``tdb_jd1``, ``tdb_jd2``). TDB-TT is the geocentric series of
  ``erfa.dtdb`` (astropy's default without an observer location; the topocentric term is < 2 µs).
* **Before 1962-01-01** (MJD 37665, the start of the IERS EOP series) "UTC" is not a usable time
  scale; following JPL Horizons, an observation time before then is read as **UT1** and TT = UT1 +
  ΔT, with ΔT from the Espenak & Meeus (2006) polynomials (about 1 s accurate for 1800-1962,
  i.e. ~30 km of Earth motion, well under the precision of photographic astrometry). The returned
  :class:`~astropy.time.Time` then has ``.ut1`` equal to the input and ``.tt`` = input + ΔT; its
  nominal ``.utc`` is astropy's (pre-1960: TAI-based) and is not the input.
* UT1-UTC comes from astropy-iers-data, never downloaded: IERS-A/B combined table (1973 onwards,
  including about one year of predictions), IERS-B EOP C04 for 1962-1973. Times past the end of
  the table use its last value and emit :class:`astropy.utils.iers.IERSDegradedAccuracyWarning`
  (a stale astropy-iers-data package: keep it current).

Call :func:`configure_astropy_offline` in every process (every Dask worker) before any Earth
orientation work; the functions here call it themselves.
"""

from __future__ import annotations

import functools
import warnings

import erfa
import numpy as np
from astropy.time import Time
from astropy.utils import iers

__all__ = [
    "MJD_TO_JD",
    "UT1_ERA_END_MJD",
    "SECONDS_PER_DAY",
    "configure_astropy_offline",
    "iers_table_range_mjd",
    "delta_t_s",
    "ut1_minus_utc_s",
    "tdb_minus_tt_s",
    "leap_day_extra_s",
    "polar_motion_rad",
    "utc_mjd_to_time",
    "utc_mjd_to_tdb_jd",
    "utc_mjd_to_tt_jd",
    "tdb_jd_to_utc_mjd",
    "utc_mjd_to_iso",
    "iso_to_utc_mjd",
]

MJD_TO_JD = 2400000.5
SECONDS_PER_DAY = 86400.0
#: 1962-01-01 UTC: the first day of the IERS EOP series. Earlier observation times are UT1.
UT1_ERA_END_MJD = 37665.0

_CONFIGURED = False


def configure_astropy_offline() -> None:
    """Make astropy use only the bundled astropy-iers-data tables, never the network. Idempotent.

    Sets ``iers.conf.auto_download = False`` (the bundled IERS-A table and leap-second files are
    used; this also stops leap-second updates from the network), ``iers.conf.auto_max_age = None``
    (no "table too old" error for recent times) and ``iers.conf.iers_degraded_accuracy = "warn"``
    (times outside the tables warn instead of raising). Ephemerides are never fetched by name:
    :mod:`neodefense.dynamics.ephemeris` passes file paths.
    """
    global _CONFIGURED
    if _CONFIGURED:
        return
    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    iers.conf.iers_degraded_accuracy = "warn"
    _CONFIGURED = True


@functools.cache
def _eop_tables() -> tuple[iers.IERS, iers.IERS]:
    configure_astropy_offline()
    return iers.earth_orientation_table.get(), iers.IERS_B.open()


@functools.cache
def iers_table_range_mjd() -> tuple[float, float, float]:
    """(first MJD, first predicted MJD, last MJD) of the IERS-A/B table astropy uses (UTC)."""
    table, _ = _eop_tables()
    mjd = np.asarray(table["MJD"].value, dtype=float)
    return float(mjd[0]), float(table.meta.get("predictive_mjd", mjd[-1])), float(mjd[-1])


def _as_mjd_array(mjd_utc: np.ndarray | float) -> np.ndarray:
    return np.atleast_1d(np.asarray(mjd_utc, dtype=np.float64))


def _split_mjd(mjd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact split of a float MJD into whole days and fraction (both exactly representable)."""
    day = np.floor(mjd)
    return day, mjd - day


# Espenak & Meeus (2006), "Five Millennium Canon of Solar Eclipses", NASA/TP-2006-214141:
# ΔT polynomials (seconds) by validity interval; the variable is year - offset.
_DELTA_T_PIECES: tuple[tuple[float, float, float, tuple[float, ...]], ...] = (
    (1600.0, 1700.0, 1600.0, (120.0, -0.9808, -0.01532, 1.0 / 7129.0)),
    (1700.0, 1800.0, 1700.0, (8.83, 0.1603, -0.0059285, 0.00013336, -1.0 / 1174000.0)),
    (1800.0, 1860.0, 1800.0, (13.72, -0.332447, 0.0068612, 0.0041116, -0.00037436,
                              0.0000121272, -0.0000001699, 0.000000000875)),
    (1860.0, 1900.0, 1860.0, (7.62, 0.5737, -0.251754, 0.01680668, -0.0004473624,
                              1.0 / 233174.0)),
    (1900.0, 1920.0, 1900.0, (-2.79, 1.494119, -0.0598939, 0.0061966, -0.000197)),
    (1920.0, 1941.0, 1920.0, (21.20, 0.84493, -0.076100, 0.0020936)),
    (1941.0, 1961.0, 1950.0, (29.07, 0.407, -1.0 / 233.0, 1.0 / 2547.0)),
    (1961.0, 1986.0, 1975.0, (45.45, 1.067, -1.0 / 260.0, -1.0 / 718.0)),
)


def delta_t_s(mjd_ut1: np.ndarray | float) -> np.ndarray:
    """ΔT = TT - UT1 in seconds from the Espenak & Meeus (2006) polynomials (1600-1986).

    Outside that range the long-term parabola -20 + 32 u², u = (year - 1820)/100. Used only for
    observation times before 1962 (see module docstring); about 1 s accurate for 1800-1962.
    """
    mjd = _as_mjd_array(mjd_ut1)
    year = 2000.0 + (mjd + MJD_TO_JD - 2451544.5) / 365.2425
    u = (year - 1820.0) / 100.0
    out = -20.0 + 32.0 * u * u
    for lo, hi, t0, coeffs in _DELTA_T_PIECES:
        sel = (year >= lo) & (year < hi)
        if sel.any():
            out[sel] = np.polynomial.polynomial.polyval(year[sel] - t0, coeffs)
    return out


def leap_day_extra_s(day_mjd: np.ndarray) -> np.ndarray:
    """Length of UTC day(s) ``day_mjd`` (whole MJDs) minus 86400 s: +1 on a leap-second day.

    Computed as ERFA does (``eraUtctai``), so it also covers the 1961-1972 steps of UTC.
    """
    day = np.asarray(day_mjd, dtype=float)
    out = np.zeros(day.shape)
    days = np.unique(day[day >= UT1_ERA_END_MJD])  # before 1962 times are UT1: no leaps
    if days.size == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        y0, m0, d0, _ = erfa.jd2cal(days + MJD_TO_JD, 0.0)
        y1, m1, d1, _ = erfa.jd2cal(days + 1.0 + MJD_TO_JD, 0.0)
        dat0 = erfa.dat(y0, m0, d0, 0.0)
        dat12 = erfa.dat(y0, m0, d0, 0.5)
        dat24 = erfa.dat(y1, m1, d1, 0.0)
    extra = dat24 - (dat0 + 2.0 * (dat12 - dat0))
    extra = np.where(np.abs(extra) > 1e-9, extra, 0.0)
    if np.any(extra != 0.0):
        lookup = dict(zip(days[extra != 0.0].tolist(), extra[extra != 0.0].tolist(), strict=True))
        for d, e in lookup.items():
            out[day == d] = e
    return out


def _warn_beyond_table(mjd: np.ndarray) -> None:
    _, _, last = iers_table_range_mjd()
    if np.any(mjd > last + 1.0):
        warnings.warn(
            f"{int(np.sum(mjd > last + 1.0))} time(s) after MJD {last:.0f}, the end of the bundled "
            "IERS table (astropy-iers-data): UT1-UTC and polar motion are held at their last "
            "values, accuracy is degraded; update astropy-iers-data",
            iers.IERSDegradedAccuracyWarning,
            stacklevel=3,
        )


def ut1_minus_utc_s(mjd_utc: np.ndarray | float, *, warn: bool = True) -> np.ndarray:
    """UT1-UTC in seconds at UTC MJD(s) >= 1962 from the bundled IERS tables (offline).

    1962-1973: IERS EOP C04 (IERS-B); from 1973: astropy's IERS-A/B table. Before 1962 NaN (UTC
    is not used then; see :func:`utc_mjd_to_time`). Past the table end: last value and, if
    ``warn``, an ``IERSDegradedAccuracyWarning``.
    """
    mjd = _as_mjd_array(mjd_utc)
    day, frac = _split_mjd(mjd)
    out = np.full(mjd.shape, np.nan)
    table, table_b = _eop_tables()
    first, _, _ = iers_table_range_mjd()
    early = (mjd >= UT1_ERA_END_MJD) & (mjd < first)
    main = mjd >= first
    with warnings.catch_warnings():
        # clipping beyond the table is reported once below, in our own words
        warnings.simplefilter("ignore", iers.IERSDegradedAccuracyWarning)
        if early.any():
            out[early] = table_b.ut1_utc(day[early] + MJD_TO_JD, frac[early]).to_value("s")
        if main.any():
            out[main] = table.ut1_utc(day[main] + MJD_TO_JD, frac[main]).to_value("s")
    if warn:
        _warn_beyond_table(mjd)
    return out


#: grid step (days) of the interpolated geocentric TDB-TT series; linear interpolation error
#: < 1e-7 s (measured 7e-8 s over 1987-2028), i.e. < 3 mm of Earth motion
_DTDB_STEP_DAYS = 1.0


def tdb_minus_tt_s(tt_jd1: np.ndarray, tt_jd2: np.ndarray) -> np.ndarray:
    """Geocentric TDB-TT in seconds (``erfa.dtdb`` with no observer, as astropy's default).

    ``erfa.dtdb`` costs ~14 µs per time; when many times share days it is evaluated once per
    day boundary and interpolated linearly (error < 1e-7 s, i.e. < 3 mm of Earth motion).
    """
    jd1 = np.asarray(tt_jd1, dtype=float)
    jd2 = np.broadcast_to(np.asarray(tt_jd2, dtype=float), jd1.shape)
    if jd1.size == 0:
        return np.zeros(jd1.shape)
    ref = np.floor(jd1.min())
    x = ((jd1 - ref) + jd2) / _DTDB_STEP_DAYS
    cell = np.floor(x)
    nodes = np.unique(np.concatenate([cell, cell + 1.0]))
    if len(nodes) >= 0.8 * jd1.size:  # sparse in time: evaluating directly is as cheap
        return erfa.dtdb(jd1, jd2, 0.0, 0.0, 0.0, 0.0)
    values = erfa.dtdb(ref, nodes * _DTDB_STEP_DAYS, 0.0, 0.0, 0.0, 0.0)
    i = np.searchsorted(nodes, cell)
    lo, hi = values[i], values[i + 1]
    return lo + (hi - lo) * (x - cell)


def polar_motion_rad(mjd_utc: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Pole coordinates (xp, yp) in radians at UTC MJD(s) from the bundled IERS tables.

    1962-1973 IERS EOP C04, then astropy's IERS-A/B table; clipped to the first (1962) and last
    table values outside (the pole wanders < 0.5", i.e. < 15 m on the Earth's surface).
    """
    mjd = _as_mjd_array(mjd_utc)
    day, frac = _split_mjd(mjd)
    table, table_b = _eop_tables()
    first, _, _ = iers_table_range_mjd()
    early = mjd < first
    xp = np.empty(mjd.shape)
    yp = np.empty(mjd.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", iers.IERSDegradedAccuracyWarning)
        for sel, tab in ((early, table_b), (~early, table)):
            if sel.any():
                x, y = tab.pm_xy(day[sel] + MJD_TO_JD, frac[sel])
                xp[sel], yp[sel] = x.to_value("rad"), y.to_value("rad")
    return xp, yp


def utc_mjd_to_time(mjd_utc: np.ndarray | float) -> Time:
    """Observation times (UTC MJD) as an astropy ``Time`` in the UTC scale, two-part precise.

    ``delta_ut1_utc`` is set explicitly from the bundled IERS tables (never downloaded), so Earth
    orientation from this object (``EarthLocation.get_gcrs_posvel`` ...) uses them. Times before
    1962 are taken as UT1 (see module docstring): ``.ut1`` is the input, ``.tt`` = input + ΔT.
    Always a 1-d array ``Time``.
    """
    configure_astropy_offline()
    mjd = _as_mjd_array(mjd_utc)
    if mjd.ndim != 1:
        raise ValueError(f"expected a 1-d array of MJDs, got shape {mjd.shape}")
    if not np.all(np.isfinite(mjd)):
        raise ValueError("observation times must be finite (NaN/inf MJD given)")
    day, frac = _split_mjd(mjd)
    # A decimal UTC day means frac × 86400 s after 0h (as MPC, JPL and observers use it); ERFA
    # instead spreads a leap second over its day (1.0 = 86401 s): rescale on those days.
    extra = leap_day_extra_s(day)
    if np.any(extra != 0.0):
        frac = frac * (SECONDS_PER_DAY / (SECONDS_PER_DAY + extra))
    old = mjd < UT1_ERA_END_MJD
    if not old.any():
        t = Time(day, frac, format="mjd", scale="utc")
        t.delta_ut1_utc = ut1_minus_utc_s(mjd)
        return _with_tdb_tt(t)
    # mixed or pre-1962: assemble UTC two-part JDs row by row
    jd1 = day + MJD_TO_JD
    jd2 = frac.copy()
    dut1 = np.zeros_like(mjd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" before 1960
        tt_old = Time(jd1[old], frac[old] + delta_t_s(mjd[old]) / SECONDS_PER_DAY,
                      format="jd", scale="tt")
        utc_old = tt_old.utc
    # UT1 (the input) minus astropy's UTC for the same instant
    dut1[old] = ((jd1[old] - utc_old.jd1) + (frac[old] - utc_old.jd2)) * SECONDS_PER_DAY
    jd1[old], jd2[old] = utc_old.jd1, utc_old.jd2
    if (~old).any():
        dut1[~old] = ut1_minus_utc_s(mjd[~old])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        t = Time(jd1, jd2, format="jd", scale="utc")
        t.format = "mjd"
    t.delta_ut1_utc = dut1
    return _with_tdb_tt(t)


def _with_tdb_tt(t: Time) -> Time:
    """Set ``t.delta_tdb_tt`` from :func:`tdb_minus_tt_s` (the UT term of dtdb is topocentric)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        tt = t.tt
    t.delta_tdb_tt = tdb_minus_tt_s(tt.jd1, tt.jd2)
    return t


def _time_scale_jd(t: Time, scale: str) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        other = getattr(t, scale)
        return np.asarray(other.jd1, dtype=float), np.asarray(other.jd2, dtype=float)


def utc_mjd_to_tdb_jd(mjd_utc: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Two-part TDB Julian dates ``(jd1, jd2)`` of UTC MJD observation times (1-d arrays)."""
    return _time_scale_jd(utc_mjd_to_time(mjd_utc), "tdb")


def utc_mjd_to_tt_jd(mjd_utc: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Two-part TT Julian dates ``(jd1, jd2)`` of UTC MJD observation times (1-d arrays)."""
    return _time_scale_jd(utc_mjd_to_time(mjd_utc), "tt")


def tdb_jd_to_utc_mjd(tdb_jd1: np.ndarray | float, tdb_jd2: np.ndarray | float = 0.0
                      ) -> np.ndarray:
    """Inverse of :func:`utc_mjd_to_tdb_jd`: UTC MJD (float64) of two-part TDB Julian dates.

    Instants before 1962 come back as UT1 MJD (TT - ΔT), the convention of the forward direction.
    """
    configure_astropy_offline()
    jd1 = np.atleast_1d(np.asarray(tdb_jd1, dtype=float))
    jd2 = np.broadcast_to(np.asarray(tdb_jd2, dtype=float), jd1.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        tdb = Time(jd1, jd2, format="jd", scale="tdb")
        utc = tdb.utc
        day, frac = _split_mjd(np.asarray(utc.jd1 - MJD_TO_JD))
        frac = frac + utc.jd2
        whole = np.floor(frac)
        day, frac = day + whole, frac - whole
        frac = frac * ((SECONDS_PER_DAY + leap_day_extra_s(day)) / SECONDS_PER_DAY)
        out = day + frac
        old = out < UT1_ERA_END_MJD
        if old.any():
            tt = tdb[old].tt
            tt_mjd = (tt.jd1 - MJD_TO_JD) + tt.jd2
            ut1 = tt_mjd - delta_t_s(tt_mjd) / SECONDS_PER_DAY
            for _ in range(3):  # ΔT varies by < 2 s per year: fixed point converges at once
                ut1 = tt_mjd - delta_t_s(ut1) / SECONDS_PER_DAY
            out[old] = ut1
    return out


def tdb_jd_to_utc_iso(tdb_jd1: np.ndarray | float, tdb_jd2: np.ndarray | float = 0.0,
                      precision: int = 3) -> np.ndarray:
    """ISO 8601 UTC strings of two-part TDB Julian dates (:func:`tdb_jd_to_utc_mjd` then
    :func:`utc_mjd_to_iso`)."""
    return utc_mjd_to_iso(tdb_jd_to_utc_mjd(tdb_jd1, tdb_jd2), precision)


def utc_mjd_to_iso(mjd_utc: np.ndarray | float, precision: int = 3) -> np.ndarray:
    """ISO 8601 strings ``YYYY-MM-DDTHH:MM:SS.sss`` of UTC MJDs (fraction × 86400 s after 0h).

    Calendar arithmetic only: no time-scale change (pre-1962 inputs print as given, i.e. UT1).
    """
    mjd = _as_mjd_array(mjd_utc)
    day, frac = _split_mjd(mjd)
    seconds = np.round(frac * SECONDS_PER_DAY, precision)
    carry = seconds >= SECONDS_PER_DAY
    day, seconds = day + carry, np.where(carry, seconds - SECONDS_PER_DAY, seconds)
    y, m, d, _ = erfa.jd2cal(day + MJD_TO_JD, 0.0)
    hh = (seconds // 3600).astype(int)
    mm = ((seconds - 3600 * hh) // 60).astype(int)
    ss = seconds - 3600 * hh - 60 * mm
    width = 3 + precision if precision > 0 else 2
    return np.array(
        [f"{a:04d}-{b:02d}-{c:02d}T{h:02d}:{n:02d}:{x:0{width}.{precision}f}"
         for a, b, c, h, n, x in zip(y, m, d, hh, mm, ss, strict=True)],
        dtype=object,
    )


def iso_to_utc_mjd(iso: np.ndarray | list[str] | str) -> np.ndarray:
    """UTC MJDs (float64) of ISO 8601 UTC strings (``2024-01-20T21:17:08.5``, space or ``Z`` ok).

    The inverse of :func:`utc_mjd_to_iso`: MJD fraction = seconds after 0h / 86400.
    """
    values = np.atleast_1d(np.asarray(iso, dtype=object)).astype(str)
    if values.size == 0:
        return np.zeros(0)
    values = np.char.replace(np.char.rstrip(np.char.strip(values), "Z"), " ", "T", count=1)
    date = np.char.partition(values, "T")
    ymd = np.char.split(date[:, 0], "-")
    hms = [t.split(":") if t else ["0"] for t in date[:, 2]]
    out = np.empty(len(values))
    for k, (parts, clock) in enumerate(zip(ymd, hms, strict=True)):
        y, m, d = (int(p) for p in parts)
        clock = [float(c) for c in clock] + [0.0] * (3 - len(clock))
        d1, d2 = erfa.cal2jd(y, m, d)
        out[k] = (d1 - MJD_TO_JD) + d2 + (clock[0] * 3600 + clock[1] * 60 + clock[2]) / 86400
    return out
