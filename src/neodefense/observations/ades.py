"""IAU ADES (Astrometry Data Exchange Standard, versions 2017 and 2022): PSV and XML readers, writers.

Readers turn every record into an observation of an
:class:`~neodefense.observations.batch.ObservationBatch` or a
:class:`~neodefense.observations.batch.Rejection` naming file, line, field and reason. Nothing is
dropped silently and nothing raises on bad input: a broken line, an unreadable number, a refused XML
document all become rejections.

Mapping (ADES field → batch column; units as in ``batch.py``)
-------------------------------------------------------------
* Strings kept as given (trimmed): trkSub, obsID, trkID, mode, stn, prog, sys, ctr, astCat, band,
  photCat, trx, rcv, com, disc, notes, remarks, ref. permID/provID (already unpacked in ADES) go
  through :func:`neodefense.observations.designations.normalize` once per distinct value — which
  leaves ADES forms unchanged and repairs sloppy ones (``2023 mq5``, a packed ``K23M05Q``); a value
  it does not recognise is kept as given.
* Numbers: ra, dec (deg), rmsRA (arcsec, already × cos dec in ADES), rmsDec, rmsCorr, mag, rmsMag,
  pos1..3, precTime (µday), precRA (s of RA), precDec (arcsec), delay (s), rmsDelay (µs), doppler
  (Hz), rmsDoppler (Hz), frq (MHz).
* ``obsTime`` (ISO 8601 UTC ``yyyy-mm-ddThh:mm:ss[.s…]Z``) → ``obsTime_mjd`` (MJD, UTC). Calendar
  arithmetic is exact in integers; on days with a UTC leap second, and before 1973 (when UTC steps
  happened on other dates), the conversion is done by ERFA ``dtf2d`` exactly as astropy does, so
  ``23:59:60.5`` is valid on a leap-second day and the value agrees with
  ``astropy.time.Time(..., scale="utc").mjd``. A missing trailing ``Z`` is tolerated (still UTC).
* ``deprecated`` "X" → ``deprecated`` True.
* ``kind``: "radar" for radar records (``stn`` is set to the receiver ``rcv``, ``mode`` stays ""),
  "optical" for everything else.
* ``line``: 1-based line of the PSV record, or of the XML element's start tag;
  ``raw``: the PSV line (without line terminator) or the XML element's source text.

Record types
------------
* ``optical``: as above.
* ``occultation`` (star position plus offset): mapped to an optical observation with
  ``ra = raStar + deltaRA / (3600 cos decStar)`` and ``dec = decStar + deltaDec / 3600`` (deltaRA
  is Δ(RA)·cos Dec in arcsec, as ADES defines it; polar ``dist``/``pa`` offsets are converted to
  these first), mode "OCC" when the record has none (ADES 2017). Offsets are at most arcseconds,
  so the small-angle form is exact to far below a µas. Written back, it is an optical record with
  mode OCC (raStar/decStar stay in ``raw``).
* ``radar``: ADES has no Precision group for radar, so ``precTime`` is not written for radar
  records (their times are whole UTC seconds in practice).
* ``offset`` (satellite relative to ``obsCenter``) and artificial satellites (``artSat`` without
  another designation): rejected with a reason — an offset needs the centre body's ephemeris.
* Residual content: residual fields inside an observation (``orbProd``, ``resRA``, ``sigRA`` …) are
  orbit-computer output, not observation data; the observation part is mapped and the residual
  values stay in ``raw``. Free-standing ``opticalResidual`` / ``radarResidual`` elements carry no
  observation and are rejected with a reason naming them.

Fields without a column
-----------------------
* Standard ADES fields the batch has no column for (artSat, obsSubID, trkMPC, rmsTime, photAp,
  logSNR, seeing, exp, rmsFit, nStars, fltr, nucMag, shapeOcc, subFrm, subFmt, uncTime, vel1..3,
  posCov.., residual fields, localUse) are kept verbatim in ``raw`` only.
* Column names that are **not ADES** (PSV keyword records, or unknown elements inside an XML
  observation) are logged once per block at WARNING level and their non-empty values are appended
  to ``remarks`` as ``name=value`` pairs joined by ``"; "`` — the record is kept and the values are
  visible downstream.

PSV structure
-------------
Header lines start with ``#`` or ``!`` (``# version=2022``, ``# observatory`` / ``! mpcCode …``);
a keyword record (first keyword ``permID``; ``provID``, ``artSat`` or ``trkSub`` first are
tolerated) starts each data block; every following data line needs exactly as many ``|`` separated
fields. Streaming keeps the header context and current keyword record across chunks, and absolute
line numbers. Parsing a chunk is vectorised (numpy line classification and field counts,
``pyarrow.csv`` with ``|`` as delimiter, arrow compute and integer arithmetic for conversions);
only header lines, keyword records and rejected lines go through Python. Wrong field counts,
records before any keyword record and lines that are not UTF-8 are rejected (fields ``fields``,
``keyword``, ``encoding``).

XML
---
Streamed through defusedxml's expat parser with no tree (memory holds one chunk's records). A DTD,
entity declaration or external reference is refused (rejection, field ``xml``, at its line)
before anything is expanded; malformed XML ends the file with a rejection at the error's line.
Elements under ``<ades>`` / ``<obsData>`` that are not ADES record types are rejected by name.

Writers
-------
:func:`write_psv` / :func:`write_xml`: optical and radar records in separate blocks (schema
element order), numbers with the precision the observer reported (precTime / precRA / precDec,
ADES-Master conversion rules) or the fewest digits that reproduce the stored float, so
ADES → batch → ADES → batch is exact and obs80 → ADES keeps every value to its reported precision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO

import erfa
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from neodefense.observations.batch import ObservationBatch, ParseResult, Rejection

try:  # canonical unpacked designations (a sibling module; optional)
    from neodefense.observations.designations import normalize as _normalize_designation
except ImportError:  # pragma: no cover
    _normalize_designation = None

__all__ = [
    "VERSIONS",
    "parse_psv",
    "iter_parse_psv",
    "parse_xml",
    "iter_parse_xml",
    "write_psv",
    "write_xml",
]

log = logging.getLogger(__name__)

FORMAT_PSV = "ades_psv"
FORMAT_XML = "ades_xml"
#: ADES versions read and written.
VERSIONS = ("2017", "2022")
DEFAULT_CHUNK_BYTES = 8 << 20

# ---------------------------------------------------------------------------------------------
# ADES vocabulary
# ---------------------------------------------------------------------------------------------
#: ADES string fields copied to the batch column of the same name.
_STR_FIELDS = ("permID", "provID", "trkSub", "obsID", "trkID", "mode", "stn", "prog", "sys", "ctr",
               "astCat", "band", "photCat", "trx", "rcv", "com", "disc", "notes", "remarks", "ref")
#: ADES numeric fields copied to the float batch column of the same name.
_FLOAT_FIELDS = ("pos1", "pos2", "pos3", "precTime", "precRA", "precDec", "ra", "dec", "rmsRA",
                 "rmsDec", "rmsCorr", "mag", "rmsMag", "delay", "rmsDelay", "doppler",
                 "rmsDoppler", "frq")
#: ADES numeric fields used to compute columns (occultations).
_AUX_FLOAT_FIELDS = ("raStar", "decStar", "deltaRA", "deltaDec", "dist", "pa")
#: ADES fields handled specially.
_SPECIAL_FIELDS = ("obsTime", "deprecated", "artSat", "obsCenter")
#: Standard ADES (2017/2022) observation and residual fields that have no batch column: kept in
#: ``raw`` only.
_UNMAPPED_FIELDS = frozenset({
    "obsSubID", "trkMPC", "vel1", "vel2", "vel3", "posCov11", "posCov12", "posCov13",
    "posCov22", "posCov23", "posCov33", "rmsTime", "rmsDist", "rmsPA", "fltr", "photAp",
    "nucMag", "logSNR", "shapeOcc", "seeing", "exp", "rmsFit", "nStars", "subFrm", "subFmt",
    "uncTime", "localUse",
    # residuals (orbit-computer output)
    "orbProd", "orbID", "resRA", "resDec", "selAst", "sigRA", "sigDec", "sigCorr", "sigTime",
    "biasRA", "biasDec", "biasTime", "photProd", "resMag", "selPhot", "sigMag", "biasMag",
    "photMod", "resDelay", "selDelay", "sigDelay", "resDoppler", "selDoppler", "sigDoppler",
})
_KNOWN_FIELDS = frozenset(_STR_FIELDS + _FLOAT_FIELDS + _AUX_FLOAT_FIELDS + _SPECIAL_FIELDS) \
    | _UNMAPPED_FIELDS
#: First keyword of a PSV keyword record (ADES requires permID; the others are tolerated).
_KEYWORD_FIRST = frozenset({"permID", "provID", "artSat", "trkSub"})
_OBS_ELEMENTS = frozenset({"optical", "occultation", "offset", "radar"})
_RESIDUAL_ELEMENTS = frozenset({"opticalResidual", "radarResidual"})

#: Column order written for optical and radar blocks (the ADES XML schema's element order).
_OPTICAL_ORDER = ("permID", "provID", "trkSub", "obsID", "trkID", "mode", "stn", "sys", "ctr",
                  "pos1", "pos2", "pos3", "prog", "obsTime", "ra", "dec", "rmsRA", "rmsDec",
                  "rmsCorr", "astCat", "mag", "rmsMag", "band", "photCat", "ref", "disc",
                  "precTime", "precRA", "precDec", "notes", "remarks", "deprecated")
_RADAR_ORDER = ("permID", "provID", "trkSub", "obsID", "trx", "rcv", "prog", "obsTime", "delay",
                "rmsDelay", "doppler", "rmsDoppler", "com", "frq", "ref", "remarks")
#: Most decimals written for a float column when no reported precision applies: the ADES 2022
#: schema allows 9 for ra/dec; elsewhere any value that came from text keeps its digits (at most
#: 15 significant ones are written) and only computed values are rounded.
_MAX_DECIMALS = {"ra": 9, "dec": 9, "precTime": 0, "precRA": 3, "precDec": 3}
_DEFAULT_MAX_DECIMALS = 12

_NUM_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_MJD_UNIX_EPOCH = 40587  # MJD of 1970-01-01
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# small vectorised helpers
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one chunk is converted.

    A chunk creates no reference cycles, but it allocates enough small objects to trigger full
    collections, and each full collection walks every slot of the object arrays the caller is
    already holding — with a million kept records that doubled the parse time. Collection resumes
    (and catches up) as soon as the chunk is done; nothing is yielded while paused.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _to_object(arr: pa.Array, transform=None) -> np.ndarray:
    """An arrow string array as a numpy object array of ``str`` (repeated values share objects).

    ``transform`` (str → str) is applied once per distinct value.
    """
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=object)
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    distinct = enc.dictionary.to_pylist()
    if transform is not None:
        distinct = [transform(v) for v in distinct]
    values = np.empty(len(distinct), dtype=object)
    values[:] = distinct
    return values[enc.indices.to_numpy(zero_copy_only=False)]


def _designation(value: str) -> str:
    """ADES permID/provID in the project's canonical form; unchanged if not recognised."""
    if not value or _normalize_designation is None:
        return value
    try:
        return _normalize_designation(value)
    except ValueError:
        return value


def _bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _empty(arr: pa.Array) -> np.ndarray:
    """True where a (null-free) arrow string is empty — read straight from its offsets."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    return offsets[1:] == offsets[:-1]


def _parse_float(arr: pa.Array, empty: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Decimal strings → float64. Returns (values with NaN where empty or bad, bad mask)."""
    n = len(arr)
    if empty is None:
        empty = _empty(arr)
    if empty.all():
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    # empties become nulls through a validity bitmap over the same buffers (no copy)
    valid = np.zeros(arr.offset + n, dtype=bool)
    valid[arr.offset:] = ~empty
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    masked = pa.Array.from_buffers(pa.string(), n, [bitmap, arr.buffers()[1], arr.buffers()[2]],
                                   offset=arr.offset)
    try:
        out = pc.cast(masked, pa.float64()).to_numpy(zero_copy_only=False)
        bad = ~empty & ~np.isfinite(out)  # 'nan', 'inf' spelled out are not ADES numbers
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = _bool(pc.match_substring_regex(arr, _NUM_RE))
        out = pc.cast(pc.if_else(pa.array(ok), arr, pa.scalar(None, pa.string())),
                      pa.float64()).to_numpy(zero_copy_only=False)
        bad = ~empty & (~ok | ~np.isfinite(out))
    if bad.any():
        out = np.where(bad, np.nan, out)
    elif not out.flags.writeable:  # arrow's zero-copy view: batch columns must be writable
        out = out.copy()
    return out, bad


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """MJD day number of a proleptic Gregorian date (exact integer arithmetic, vectorised)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468 + _MJD_UNIX_EPOCH


def _civil_from_days(mjd_day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`_days_from_civil`."""
    z = mjd_day - _MJD_UNIX_EPOCH + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def _needs_erfa(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days whose UTC length may differ from 86400 s: leap-second days and the pre-1973 era."""
    return (y < 1973) | ((m == 6) & (d == 30)) | ((m == 12) & (d == 31))


def _iso_to_mjd(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ISO 8601 UTC strings → MJD (UTC). Returns (mjd, bad_format, bad_calendar).

    Accepted: ``yyyy-mm-ddThh:mm:ss`` with an optional fraction of 1–13 digits and an optional
    ``Z``. Seconds are formed as an exact integer over a power of ten, so they equal
    ``float(text)``; the result is bit-identical to ERFA ``dtf2d``.
    """
    n = len(arr)
    mjd = np.full(n, np.nan)
    bad_cal = np.zeros(n, dtype=bool)
    if n == 0:
        return mjd, np.zeros(0, dtype=bool), bad_cal
    arr = pa.array(arr, pa.string()) if not isinstance(arr, pa.StringArray) else arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + n + 1]
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None and buf.size else \
        np.zeros(1, dtype=np.uint8)
    start = offsets[:-1].astype(np.int64)
    length = np.diff(offsets).astype(np.int64)
    last = data[np.clip(start + length - 1, 0, len(data) - 1)]
    body = length - ((length > 0) & (last == ord("Z")))
    width = int(min(max(body.max(), 19), 34))
    if (length == width + 1).all() or (length == width).all():  # one layout: a zero-copy view
        g = data[start[0]:start[0] + n * length[0]].reshape(n, length[0])[:, :width]
    else:
        g = data[np.minimum(start[:, None] + np.arange(width, dtype=np.int64), len(data) - 1)]
    g = g - np.uint8(48)  # digits → 0..9; everything else wraps to ≥ 10
    digit = g <= 9
    layout = ((body == 19) | ((body >= 21) & (body <= 33)))
    layout &= digit[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]].all(axis=1)
    for j, ch in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")):
        layout &= g[:, j] == np.uint8((ord(ch) - 48) % 256)
    if width > 19:
        layout &= (body == 19) | (g[:, 19] == np.uint8((ord(".") - 48) % 256))
        cols = np.arange(20, width)
        in_frac = cols < body[:, None]
        layout &= ~np.any(in_frac & ~digit[:, 20:], axis=1)
    bad_fmt = ~layout
    if not layout.any():
        return mjd, bad_fmt, bad_cal
    idx = np.flatnonzero(layout)
    if len(idx) < n:
        g, body = g[idx], body[idx]

    def num(*cols: int) -> np.ndarray:
        v = np.zeros(len(idx), dtype=np.int64)
        for c in cols:
            v = v * 10 + g[:, c]
        return v

    y, mo, d, h, mi, whole = num(0, 1, 2, 3), num(5, 6), num(8, 9), num(11, 12), num(14, 15), \
        num(17, 18)
    k = np.maximum(body - 20, 0)  # fraction digits
    frac = np.zeros(len(idx), dtype=np.int64)
    for j in range(20, width):
        use = j < body
        if not use.any():
            break
        frac = np.where(use, frac * 10 + g[:, j], frac)
    sec = (whole * 10 ** k + frac) / (10.0 ** k)  # exact int / exact power of ten
    leap_year = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    valid = (mo >= 1) & (mo <= 12)
    dim = _DAYS_IN_MONTH[np.clip(mo, 0, 12)] + ((mo == 2) & leap_year)
    valid &= (d >= 1) & (d <= dim) & (h <= 23) & (mi <= 59)
    june_dec = ((mo == 6) & (d == 30)) | ((mo == 12) & (d == 31))
    valid &= (whole < 60) | ((whole == 60) & (h == 23) & (mi == 59) & june_dec)
    day = _days_from_civil(y, mo, d)
    # same operation order as ERFA dtf2d, so both paths give identical floats
    value = day + (60.0 * (60 * h + mi) + sec) / 86400.0
    special = valid & _needs_erfa(y, mo, d)
    if special.any():  # leap-second days and pre-1973 UTC: ERFA, as astropy does
        s = np.flatnonzero(special)
        d1, d2, status = erfa.ufunc.dtf2d("UTC", y[s].astype(np.int32), mo[s].astype(np.int32),
                                          d[s].astype(np.int32), h[s].astype(np.int32),
                                          mi[s].astype(np.int32), sec[s])
        # status 2/3: second 60 on a day without a leap second; < 0: invalid; 1: pre-1960 (fine)
        good = (status == 0) | (status == 1)
        value[s] = np.where(good, (d1 - 2400000.5) + d2, np.nan)
        valid[s[~good]] = False
    value[~valid] = np.nan
    mjd[idx] = value
    bad_cal[idx] = ~valid
    return mjd, bad_fmt, bad_cal


# ---------------------------------------------------------------------------------------------
# conversion of one homogeneous block of records (shared by PSV and XML)
# ---------------------------------------------------------------------------------------------
class _Rejector:
    """Collects the first failing check per row."""

    def __init__(self, n: int, file: str, lines: np.ndarray, raw: np.ndarray):
        self.bad = np.zeros(n, dtype=bool)
        self.file = file
        self.lines = lines
        self.raw = raw
        self.out: list[Rejection] = []

    def __call__(self, mask: np.ndarray, field: str, reason, values: np.ndarray | None = None):
        new = mask & ~self.bad
        if not new.any():
            return
        for i in np.flatnonzero(new):
            text = reason if isinstance(reason, str) else reason(values[i])
            self.out.append(Rejection(self.file, int(self.lines[i]), field, text, str(self.raw[i])))
        self.bad |= new


def _convert(cols: Mapping[str, pa.Array], n: int, lines: np.ndarray, raw: np.ndarray,
             kind: str, file: str, unknown: Sequence[str] = ()
             ) -> tuple[ObservationBatch, list[Rejection]]:
    """Typed batch + rejections from trimmed string columns of one record kind.

    ``kind`` is the ADES record type: optical, occultation, offset or radar.
    """
    rej = _Rejector(n, file, lines, raw)
    if n == 0:
        return ObservationBatch.empty(), []
    if kind == "occultation":  # ADES 2017 occultations have no mode element
        cols = dict(cols)
        mode = cols.get("mode", pa.repeat(pa.scalar("", pa.string()), n))
        cols["mode"] = pc.if_else(pc.equal(mode, ""), "OCC", mode)
    empty_col = pa.repeat(pa.scalar("", pa.string()), n)
    empties = {name: _empty(arr) for name, arr in cols.items()}
    nothing = np.zeros(n, dtype=bool)

    def col(name: str) -> pa.Array:
        return cols[name] if name in cols else empty_col

    def present(name: str) -> np.ndarray:
        return ~empties[name] if name in cols else nothing

    if kind == "offset":
        rej(np.ones(n, dtype=bool), "obsCenter",
            "ADES offset observations (position relative to obsCenter) are not supported")
    # identification
    has_id = present("permID") | present("provID") | present("trkSub")
    if "artSat" in cols:
        rej(~has_id & present("artSat"), "artSat",
            "artificial-satellite observation (artSat) without permID/provID/trkSub: not stored")
    rej(~has_id, "permID", "no designation: permID, provID or trkSub required")
    required = ("trx", "rcv", "obsTime") if kind == "radar" else ("mode", "stn", "obsTime")
    for name in required:
        rej(~present(name), name, f"missing required field {name!r}")
    # time
    obs_time = col("obsTime")
    mjd, bad_fmt, bad_cal = _iso_to_mjd(obs_time)
    obs_time_np = None
    if (bad_fmt | bad_cal).any():
        obs_time_np = np.asarray(obs_time.to_pylist(), dtype=object)
        rej(bad_fmt, "obsTime",
            lambda v: f"not an ISO 8601 UTC time yyyy-mm-ddThh:mm:ss[.sss]Z: {v!r}", obs_time_np)
        rej(bad_cal, "obsTime", lambda v: f"impossible UTC date or time: {v!r}", obs_time_np)
    # numbers
    floats: dict[str, np.ndarray] = {}
    for name in _FLOAT_FIELDS + _AUX_FLOAT_FIELDS:
        if name not in cols:
            continue
        values, bad = _parse_float(cols[name], empties[name])
        if bad.any():
            text = np.asarray(cols[name].to_pylist(), dtype=object)
            rej(bad, name, lambda v: f"not a number: {v!r}", text)
        floats[name] = values
    nan = np.full(n, np.nan)
    if kind == "occultation":
        ra_star, dec_star = floats.get("raStar", nan), floats.get("decStar", nan)
        rej(~np.isfinite(ra_star), "raStar", "missing required field 'raStar'")
        rej(~np.isfinite(dec_star), "decStar", "missing required field 'decStar'")
        d_ra, d_dec = floats.get("deltaRA", nan), floats.get("deltaDec", nan)
        polar = ~np.isfinite(d_ra) & ~np.isfinite(d_dec)
        dist, pa_deg = floats.get("dist", nan), floats.get("pa", nan)
        d_ra = np.where(polar, dist * np.sin(np.radians(pa_deg)), d_ra)
        d_dec = np.where(polar, dist * np.cos(np.radians(pa_deg)), d_dec)
        rej(~np.isfinite(d_ra) | ~np.isfinite(d_dec), "deltaRA",
            "occultation needs deltaRA/deltaDec or dist/pa")
        with np.errstate(invalid="ignore", divide="ignore"):
            ra = np.mod(ra_star + d_ra / (3600.0 * np.cos(np.radians(dec_star))), 360.0)
        floats["ra"] = ra
        floats["dec"] = dec_star + d_dec / 3600.0
    if kind in ("optical", "occultation"):
        rej(~np.isfinite(floats.get("ra", nan)), "ra", "missing required field 'ra'")
        rej(~np.isfinite(floats.get("dec", nan)), "dec", "missing required field 'dec'")
    elif kind == "radar":
        rej(~np.isfinite(floats.get("delay", nan)) & ~np.isfinite(floats.get("doppler", nan)),
            "delay", "radar record needs 'delay' or 'doppler'")
    deprecated = np.zeros(n, dtype=bool)
    if "deprecated" in cols:
        dep = cols["deprecated"]
        deprecated = _bool(pc.equal(pc.utf8_upper(dep), "X"))
        other = present("deprecated") & ~deprecated
        if other.any():
            text = np.asarray(dep.to_pylist(), dtype=object)
            rej(other, "deprecated", lambda v: f"must be 'X' or empty: {v!r}", text)

    # unknown (non-ADES) fields: keep their values visible in remarks
    remarks = col("remarks")
    if unknown:
        pieces = [pc.if_else(pc.equal(cols[u], ""), "", pc.binary_join_element_wise(
            pa.scalar(u + "="), cols[u], "; ", "")) for u in unknown]
        extra = pc.replace_substring_regex(pc.binary_join_element_wise(*pieces, ""), r"; $", "")
        sep = pc.if_else(pc.and_(pc.not_equal(remarks, ""), pc.not_equal(extra, "")), "; ", "")
        remarks = pc.binary_join_element_wise(remarks, sep, extra, "")

    keep = ~rej.bad
    out: dict[str, np.ndarray] = {}
    take = None if keep.all() else np.flatnonzero(keep)

    def sel(a: np.ndarray) -> np.ndarray:
        return a if take is None else a[take]

    for name in _STR_FIELDS:
        if name == "remarks":
            out[name] = sel(_to_object(remarks))
        elif name in ("permID", "provID") and name in cols:
            out[name] = sel(_to_object(cols[name], _designation))
        elif name in cols:
            out[name] = sel(_to_object(cols[name]))
    for name in _FLOAT_FIELDS:
        if name in floats:
            out[name] = sel(floats[name])
    out["obsTime_mjd"] = sel(mjd)
    out["deprecated"] = sel(deprecated)
    out["line"] = sel(lines)
    out["raw"] = sel(raw)
    m = len(out["line"])
    if kind == "radar":
        out["kind"] = np.full(m, "radar", dtype=object)
        out["stn"] = out["rcv"] if "rcv" in out else np.full(m, "", dtype=object)
        out["mode"] = np.full(m, "", dtype=object)
    else:
        out["kind"] = np.full(m, "optical", dtype=object)
    return ObservationBatch(out, n=m), rej.out


def _check_keyword(names: list[str]) -> str | None:
    """Why a keyword record is unusable, or None."""
    if any(not nm for nm in names):
        return "keyword record has an empty column name"
    seen: set[str] = set()
    for nm in names:
        if nm in seen:
            return f"keyword record repeats column {nm!r}"
        seen.add(nm)
    return None


def _block_kind(names: Sequence[str]) -> str:
    s = set(names)
    if "ra" not in s and s & {"delay", "doppler", "trx", "rcv"}:
        return "radar"
    if "raStar" in s:
        return "occultation"
    if "ra" not in s and s & {"obsCenter", "deltaRA", "dist"}:
        return "offset"
    return "optical"


# ---------------------------------------------------------------------------------------------
# PSV reader
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Keyword:
    names: list[str]
    line: int
    kind: str
    error: str | None
    unknown: list[str]


@dataclasses.dataclass
class _PsvState:
    """Context carried from one chunk to the next."""

    line_offset: int = 0  # lines before the current chunk
    version: str = ""
    mpc_code: str = ""
    keyword: _Keyword | None = None
    first_chunk: bool = True
    header_group: str = ""


def _make_keyword(text: str, line: int, file: str) -> _Keyword:
    names = [nm.strip() for nm in text.split("|")]
    error = _check_keyword(names)
    unknown = [nm for nm in names if nm and nm not in _KNOWN_FIELDS]
    if unknown and error is None:
        log.warning("%s:%d: keyword record has non-ADES columns %s; their values are appended "
                    "to remarks", file, line, unknown)
    return _Keyword(names, line, _block_kind(names), error, unknown)


def _header_line(state: _PsvState, text: str) -> None:
    s = text.strip()
    if s.startswith("#"):
        body = s[1:].strip()
        key, _, value = body.replace("=", " ", 1).partition(" ")
        state.header_group = key
        if key == "version":
            state.version = value.strip()
    elif s.startswith("!") and state.header_group == "observatory":
        key, _, value = s[1:].strip().partition(" ")
        if key == "mpcCode":
            state.mpc_code = value.strip()


def _check_utf8(data: bytes, file: str, line0: int) -> tuple[bytes, list[Rejection]]:
    """Lines that are not valid UTF-8 are rejected and blanked (line numbering is kept)."""
    if data.isascii():
        return data, []
    try:
        data.decode("utf-8")
        return data, []
    except UnicodeDecodeError:
        pass
    out_b: list[bytes] = []
    rejections: list[Rejection] = []
    for i, b in enumerate(data.split(b"\n")):
        try:
            b.decode("utf-8")
            out_b.append(b)
        except UnicodeDecodeError as e:
            bad = b[e.start:e.start + 1]
            rejections.append(Rejection(
                file, line0 + i + 1, "encoding",
                f"not valid UTF-8: byte 0x{bad.hex()} at column {e.start + 1}",
                b.decode("utf-8", errors="replace")))
            out_b.append(b"")
    return b"\n".join(out_b), rejections


_VIEW_MASK = (np.arange(12)[None, :] < np.arange(13)[:, None]).astype(np.uint8) * 255


def _string_view(data: bytes, start: np.ndarray, length: np.ndarray) -> pa.Array:
    """Zero-copy arrow ``string_view`` array of the byte ranges ``[start, start + length)``.

    Arrow's view layout, 16 bytes per value: int32 length, then the bytes inline (zero padded) if
    ≤ 12 long, else a 4-byte prefix, int32 buffer index (0) and int32 offset into ``data``.
    """
    n = len(start)
    padded = np.frombuffer(data + bytes(16), dtype=np.uint8)
    head = np.lib.stride_tricks.sliding_window_view(padded, 12)[start]
    head &= _VIEW_MASK[np.minimum(length, 12)]
    words = head.view("<i4")
    views = np.empty((n, 4), dtype=np.int32)
    views[:, 0] = length
    views[:, 1] = words[:, 0]
    short = length <= 12
    views[:, 2] = np.where(short, words[:, 1], 0)
    views[:, 3] = np.where(short, words[:, 2], start)
    return pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views),
                                                       pa.py_buffer(data)])


def _lines_array(data: bytes, starts: np.ndarray, ends: np.ndarray,
                 rows: np.ndarray) -> np.ndarray:
    """Text of lines ``rows`` (without line end) as an object array of ``str``."""
    return _string_view(data, starts[rows], ends[rows] - starts[rows]).to_numpy(
        zero_copy_only=False)


def _read_block_csv(buf: bytes | memoryview, ncols: int, use: Sequence[int], ascii_only: bool
                    ) -> list[pa.Array] | None:
    """Columns ``use`` of ``|``-separated ``buf`` as trimmed arrow strings (None if unreadable)."""
    names = [f"c{i}" for i in range(ncols)]
    wanted = [names[i] for i in use]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(buf)),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=True,
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter="|", quote_char=False, escape_char=False,
                                             newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={nm: pa.string() for nm in wanted}, include_columns=wanted,
                strings_can_be_null=False, quoted_strings_can_be_null=False,
                check_utf8=not ascii_only),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    trim = pc.ascii_trim_whitespace if ascii_only else pc.utf8_trim_whitespace
    return [trim(table.column(nm).combine_chunks()) for nm in wanted]


def _first_nonspace(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Byte index of each line's first non-blank character (``ends`` for blank lines)."""
    pos = starts.copy()
    active = np.flatnonzero(pos < ends)
    for _ in range(64):  # vectorised walk over leading blanks
        if len(active) == 0:
            return pos
        c = arr[pos[active]]
        active = active[(c == 32) | (c == 9)]
        pos[active] += 1
        active = active[pos[active] < ends[active]]
    for i in active:  # lines with very long leading blanks
        line = arr[pos[i]:ends[i]]
        nonblank = np.flatnonzero((line != 32) & (line != 9))
        pos[i] += nonblank[0] if len(nonblank) else len(line)
    return pos


def _parse_psv_chunk(data: bytes, file: str, state: _PsvState) -> ParseResult:
    """Parse whole lines (``data`` holds complete lines only) and advance ``state``."""
    line0 = state.line_offset
    if state.first_chunk and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    state.first_chunk = False
    data, rejections = _check_utf8(data, file, line0)
    if not data:
        return ParseResult(ObservationBatch.empty(), rejections, FORMAT_PSV, 0)
    if b"\r" in data:  # CRLF line ends; a stray CR elsewhere counts as a blank
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b" ")
    if len(data) >= 2**31 - 1:  # arrow views use int32 offsets
        raise ValueError("a PSV chunk must be smaller than 2 GiB (is there a line end?)")
    ascii_only = data.isascii()

    # --- classify lines (vectorised over bytes) ---
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    n_lines = len(nl) + (0 if data.endswith(b"\n") else 1)
    state.line_offset += n_lines
    starts = np.concatenate(([0], nl + 1))[:n_lines]
    ends = np.concatenate((nl, [len(arr)]))[:n_lines]

    def text(i) -> str:
        return data[starts[i]:ends[i]].decode("utf-8", errors="replace")

    first = _first_nonspace(arr, starts, ends)
    blank = first >= ends
    first_char = np.where(blank, 0, arr[np.minimum(first, len(arr) - 1)])
    header = ~blank & ((first_char == ord("#")) | (first_char == ord("!")))
    maybe_kw = ~blank & np.isin(first_char, np.frombuffer(b"pat", dtype=np.uint8))
    kw_lines = [int(i) for i in np.flatnonzero(maybe_kw)
                if text(i).split("|", 1)[0].strip(" \t") in _KEYWORD_FIRST]
    data_mask = ~blank & ~header
    if kw_lines:
        data_mask[kw_lines] = False
    data_idx = np.flatnonzero(data_mask)

    # header lines and keyword records, in file order, define each data line's keyword record
    events = sorted([(int(i), "h") for i in np.flatnonzero(header)] + [(i, "k") for i in kw_lines])
    keywords: list[_Keyword | None] = [state.keyword]
    kw_pos = [-1]
    for i, what in events:
        if what == "h":
            _header_line(state, text(i))
        else:
            state.keyword = _make_keyword(text(i), line0 + i + 1, file)
            keywords.append(state.keyword)
            kw_pos.append(i)
    owner = np.searchsorted(np.asarray(kw_pos), data_idx, side="right") - 1

    pipes = np.flatnonzero(arr == ord("|"))
    nfields = np.searchsorted(pipes, ends) - np.searchsorted(pipes, starts) + 1
    batches: list[ObservationBatch] = []
    for j in np.unique(owner):
        kw = keywords[j]
        rows = data_idx[owner == j]
        if kw is None or kw.error is not None:
            reason = ("data record before any keyword record (a line of column names starting "
                      "with 'permID')" if kw is None else
                      f"block's keyword record (line {kw.line}) is unusable: {kw.error}")
            for i in rows:
                rejections.append(Rejection(file, line0 + int(i) + 1, "keyword", reason, text(i)))
            continue
        ncols = len(kw.names)
        wrong = nfields[rows] != ncols
        for i in rows[wrong]:
            rejections.append(Rejection(
                file, line0 + int(i) + 1, "fields",
                f"expected {ncols} '|'-separated fields (keyword record at line {kw.line}), "
                f"found {int(nfields[i])}", text(i)))
        rows = rows[~wrong]
        if len(rows) == 0:
            continue
        use = [c for c, nm in enumerate(kw.names) if nm not in _UNMAPPED_FIELDS]
        # contiguous runs of good lines → one buffer for the CSV tokenizer
        breaks = np.flatnonzero(np.diff(rows) != 1)
        run_first = np.concatenate(([rows[0]], rows[breaks + 1]))
        run_last = np.concatenate((rows[breaks], [rows[-1]]))
        if len(run_first) == 1 and ends[run_last[0]] < len(data):  # zero-copy slice
            buf = memoryview(data)[starts[run_first[0]]:ends[run_last[0]] + 1]
        else:
            buf = b"\n".join(data[starts[a]:ends[b]] for a, b in zip(run_first, run_last,
                                                                     strict=True)) + b"\n"
        columns = _read_block_csv(buf, ncols, use, ascii_only)
        if columns is None or len(columns[0]) != len(rows):  # e.g. a line longer than a block
            split = [text(i).split("|") for i in rows]
            columns = [pc.utf8_trim_whitespace(pa.array([sp[c] for sp in split], pa.string()))
                       for c in use]
        cols = {kw.names[c]: col for c, col in zip(use, columns, strict=True)}
        raw = _lines_array(data, starts, ends, rows)
        batch, rej = _convert(cols, len(rows), rows + (line0 + 1), raw, kw.kind, file,
                              kw.unknown)
        batches.append(batch)
        rejections.extend(rej)
    rejections.sort(key=lambda r: r.line)
    batch = batches[0] if len(batches) == 1 else ObservationBatch.concat(batches)
    return ParseResult(batch, rejections, FORMAT_PSV, n_lines)


def iter_parse_psv(stream: BinaryIO, file: str,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[ParseResult]:
    """Stream an ADES PSV file: one ParseResult per ~``chunk_bytes`` of whole lines.

    Memory stays bounded by the chunk size (plus the longest line). The header context and the
    current keyword record carry over chunk boundaries; line numbers are absolute.
    """
    state = _PsvState()
    carry = b""
    while True:
        block = stream.read(chunk_bytes)
        if not block:
            break
        block = carry + block
        cut = block.rfind(b"\n")
        if cut < 0:
            carry = block
            continue
        carry = block[cut + 1:]
        with _gc_paused():
            result = _parse_psv_chunk(block[:cut + 1], file, state)
        yield result
    if carry:
        with _gc_paused():
            result = _parse_psv_chunk(carry, file, state)
        yield result


def parse_psv(data: bytes, file: str) -> ParseResult:
    """Parse a whole ADES PSV file held in memory."""
    parts = list(iter_parse_psv(io.BytesIO(data), file))
    if not parts:
        return ParseResult(ObservationBatch.empty(), [], FORMAT_PSV, 0)
    if len(parts) == 1:
        return parts[0]
    with _gc_paused():
        return ParseResult.concat(parts)


# ---------------------------------------------------------------------------------------------
# XML reader
# ---------------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _XmlTarget:
    """Parser target that turns ADES observation elements into field dictionaries as they end.

    It builds no tree: memory holds only the records completed since the last chunk.
    """

    def __init__(self, file: str):
        self.file = file
        self.expat = None  # set after the parser exists
        self.buf = bytearray()
        self.buf_base = 0  # absolute byte index of buf[0]
        self.stack: list[str] = []
        self.version = ""
        self.records: list[tuple[str, dict[str, str], int, str]] = []  # kind, fields, line, raw
        self.rejections: list[Rejection] = []
        self.cur: dict[str, str] | None = None
        self.cur_kind = ""
        self.cur_line = 0
        self.cur_start = 0
        self.cur_depth = 0
        self.text: list[str] = []
        self.skip_depth = 0  # >0 while inside an element whose content is ignored

    # -- helpers --
    def _pos(self) -> tuple[int, int]:
        return self.expat.CurrentLineNumber, self.expat.CurrentByteIndex

    def _raw(self, start: int, end_tag_at: int) -> str:
        lo = start - self.buf_base
        hi = self.buf.find(b">", end_tag_at - self.buf_base)
        hi = len(self.buf) if hi < 0 else hi + 1
        return bytes(self.buf[max(lo, 0):hi]).decode("utf-8", errors="replace")

    # -- target interface --
    def start(self, tag, attrib):
        tag = _local(tag)
        depth = len(self.stack)
        self.stack.append(tag)
        if self.cur is not None:
            if depth == self.cur_depth + 1:
                self.text = []
            return
        line, pos = self._pos()
        parent = self.stack[-2] if depth >= 1 else ""
        if depth == 0:
            if tag != "ades":
                self.rejections.append(Rejection(self.file, line, "xml",
                                                 f"root element is <{tag}>, not <ades>"))
                self.skip_depth = 1
            self.version = str(attrib.get("version", "")) if attrib else ""
            return
        if self.skip_depth:
            return
        if parent in ("ades", "obsData"):
            if tag in _OBS_ELEMENTS or tag in _RESIDUAL_ELEMENTS:
                self.cur = {}
                self.cur_kind, self.cur_line, self.cur_start, self.cur_depth = tag, line, pos, depth
                return
            if tag in ("obsBlock", "obsData"):  # obsData directly under <ades> is tolerated
                return
            self.rejections.append(Rejection(self.file, line, tag,
                                             f"unknown ADES element <{tag}> under <{parent}>"))

    def data(self, text):
        if self.cur is not None and len(self.stack) == self.cur_depth + 2:
            self.text.append(text)

    def end(self, tag):
        tag = _local(tag)
        depth = len(self.stack) - 1
        self.stack.pop()
        if self.cur is None:
            if depth == 0:
                self.skip_depth = 0
            return
        if depth == self.cur_depth + 1:
            if tag in self.cur:  # a repeated element: keep both values visible
                self.cur[tag] += "; " + "".join(self.text).strip()
            else:
                self.cur[tag] = "".join(self.text).strip()
        elif depth == self.cur_depth:
            _, pos = self._pos()
            raw = self._raw(self.cur_start, pos)
            if self.cur_kind in _RESIDUAL_ELEMENTS:
                self.rejections.append(Rejection(
                    self.file, self.cur_line, self.cur_kind,
                    f"<{self.cur_kind}> holds orbit-fit residuals, not an observation; "
                    "residuals are not stored", raw))
            else:
                self.records.append((self.cur_kind, self.cur, self.cur_line, raw))
            self.cur = None

    def close(self):
        return None

    def trim(self) -> None:
        """Forget buffered bytes no longer needed for raw text."""
        keep_from = self.cur_start if self.cur is not None else self.expat.CurrentByteIndex
        keep_from = min(keep_from, self.buf_base + len(self.buf))
        # expat may hold back an incomplete token; keep a margin for it
        keep_from = max(self.buf_base, keep_from - 65536) if self.cur is None else keep_from
        cut = keep_from - self.buf_base
        if cut > 0:
            del self.buf[:cut]
            self.buf_base += cut


def _records_to_result(target: _XmlTarget, n_lines: int) -> ParseResult:
    by_kind: dict[str, list[tuple[dict[str, str], int, str]]] = {}
    for kind, fields, line, raw in target.records:
        by_kind.setdefault(kind, []).append((fields, line, raw))
    target.records = []
    batches: list[ObservationBatch] = []
    rejections = target.rejections
    target.rejections = []
    for kind, recs in by_kind.items():
        names: dict[str, None] = {}
        for fields, _, _ in recs:
            names.update(dict.fromkeys(fields))
        cols = {nm: pa.array([f.get(nm, "") for f, _, _ in recs], pa.string()) for nm in names}
        unknown = [nm for nm in names if nm not in _KNOWN_FIELDS]
        if unknown:
            log.warning("%s: non-ADES elements %s in <%s>; their values are appended to remarks",
                        target.file, unknown, kind)
        lines = np.array([ln for _, ln, _ in recs], dtype=np.int64)
        raw = np.empty(len(recs), dtype=object)
        raw[:] = [r for _, _, r in recs]
        batch, rej = _convert(cols, len(recs), lines, raw, kind, target.file, unknown)
        batches.append(batch)
        rejections.extend(rej)
    rejections.sort(key=lambda r: r.line)
    batch = ObservationBatch.concat(batches)
    if len(batch) > 1:
        order = np.argsort(batch["line"], kind="stable")
        batch = batch.take(order)
    return ParseResult(batch, rejections, FORMAT_XML, n_lines)


def iter_parse_xml(stream: BinaryIO, file: str,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[ParseResult]:
    """Stream an ADES XML file with expat through defusedxml (no tree is built).

    A DTD, entity declaration or external reference (XML bombs, XXE) is refused before anything is
    expanded: the file yields a rejection (field ``xml``, the line of the problem) and no further
    records. Malformed XML likewise ends the file with a rejection at the error's line; records
    completed before the error are kept.
    """
    target = _XmlTarget(file)
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    target.expat = parser.parser
    n_lines = 0
    ends_with_newline = True
    failed = False
    while not failed:
        block = stream.read(chunk_bytes)
        final = not block
        if block:
            target.buf += block
            n_lines += block.count(b"\n")
            ends_with_newline = block.endswith(b"\n")
        elif not ends_with_newline:
            n_lines += 1
        try:
            if final:
                parser.close()
            else:
                parser.feed(block)
        except DefusedXmlException as e:
            failed = True
            target.rejections.append(Rejection(
                file, target.expat.CurrentLineNumber, "xml",
                f"refused: {type(e).__name__} ({e}); DTDs, entities and external references are "
                "not allowed in ADES XML"))
        except ParseError as e:
            failed = True
            line = e.position[0] if getattr(e, "position", None) else target.expat.ErrorLineNumber
            target.rejections.append(Rejection(file, line, "xml",
                                               f"not well-formed XML: {e}; rest of file not read"))
        except LookupError as e:  # the XML declaration names an encoding nobody knows
            failed = True
            target.rejections.append(Rejection(
                file, 1, "xml", f"unknown character encoding in the XML declaration: {e}; "
                                "file not read (ADES XML is UTF-8)"))
        if not failed and not final:
            target.trim()
        with _gc_paused():
            result = _records_to_result(target, n_lines)
        n_lines = 0
        yield result
        if final:
            break


def parse_xml(data: bytes, file: str) -> ParseResult:
    """Parse a whole ADES XML document held in memory."""
    return ParseResult.concat(list(iter_parse_xml(io.BytesIO(data), file)))


# ---------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------
def _fixed(x: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    """Format floats with a per-row number of decimals (NaN → ""), vectorised through arrow."""
    n = len(x)
    out = np.full(n, "", dtype=object)
    finite = np.isfinite(x)
    if not finite.any():
        return out
    decimals = np.broadcast_to(np.asarray(decimals, dtype=np.int64), (n,))
    huge = finite & (np.abs(np.where(finite, x, 0.0)) * 10.0 ** decimals >= 2.0**62)
    for i in np.flatnonzero(huge):  # beyond int64 scaling (absurd values): plain Python
        out[i] = np.format_float_positional(x[i], precision=int(decimals[i]), trim="-")
    finite &= ~huge
    for d in np.unique(decimals[finite]):
        idx = np.flatnonzero(finite & (decimals == d))
        v = x[idx]
        scale = 10 ** int(d)
        k = np.rint(np.abs(v) * scale).astype(np.int64)
        ip = pa.array(k // scale).cast(pa.string())
        if d > 0:
            fp = pc.utf8_lpad(pa.array(k % scale).cast(pa.string()), int(d), "0")
            s = pc.binary_join_element_wise(ip, fp, ".")
        else:
            s = ip
        neg = pa.array((v < 0) & (k != 0))
        s = pc.if_else(neg, pc.binary_join_element_wise("-", s, ""), s)
        out[idx] = s.to_numpy(zero_copy_only=False)
    return out


def _shortest_decimals(x: np.ndarray, max_decimals: int) -> np.ndarray:
    """Fewest decimals (≤ max) that reproduce each float exactly — the digits it was read from."""
    n = len(x)
    out = np.full(n, max_decimals, dtype=np.int64)
    finite = np.isfinite(x)
    ax = np.abs(np.where(finite, x, 0.0))
    # keep |x|·10^d below 2^53 so the scaled integer is exact
    int_digits = np.floor(np.log10(np.maximum(ax, 1.0))).astype(np.int64) + 1
    cap = np.clip(15 - int_digits, 0, max_decimals)
    todo = finite.copy()
    for d in range(max_decimals + 1):
        if not todo.any():
            break
        scale = 10.0 ** d
        with np.errstate(over="ignore", invalid="ignore"):
            exact = todo & (np.rint(ax * scale) / scale == ax)
        hit = exact | (todo & (cap <= d))
        out[hit] = d
        todo &= ~hit
    # a computed value rounded at the cap: drop the trailing zeros of the rounded digits
    rounded = finite & (out > 0)
    if rounded.any():
        with np.errstate(over="ignore", invalid="ignore"):
            k = np.rint(ax * 10.0 ** out)
        for _ in range(max_decimals):
            strip = rounded & (out > 0) & (np.fmod(k, 10.0) == 0)
            if not strip.any():
                break
            out[strip] -= 1
            k[strip] /= 10
    return out


def _format_float(name: str, x: np.ndarray) -> np.ndarray:
    return _fixed(x, _shortest_decimals(x, _MAX_DECIMALS.get(name, _DEFAULT_MAX_DECIMALS)))


def _radec_decimals(prec: np.ndarray, unit_deg: float, shortest: np.ndarray) -> np.ndarray:
    """ADES-Master rule: decimals = -floor(log10(prec · unit)), at least 1; else the shortest."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = -np.floor(np.log10(prec * unit_deg))
    d = np.where(np.isfinite(d) & (prec > 0), np.maximum(d, 1), -1).astype(np.int64)
    return np.where(d >= 0, d, shortest)


def _format_time(mjd: np.ndarray, prec_time: np.ndarray,
                 seconds_decimals: int | None = None) -> np.ndarray:
    """MJD (UTC) → ``yyyy-mm-ddThh:mm:ss[.s…]Z``.

    Seconds get ``seconds_decimals`` decimals if given; else ``clip(2 - log10(precTime), 0, 6)``
    when precTime (µday) is known (the ADES-Master rule: 1 µday → 0.01 s), else the fewest
    decimals (≤ 6) that reproduce the time to 1.5 µs (float64 MJD resolves ~1 µs).
    """
    n = len(mjd)
    out = np.full(n, "", dtype=object)
    ok = np.isfinite(mjd)
    if not ok.any():
        return out
    idx = np.flatnonzero(ok)
    m = mjd[idx]
    day = np.floor(m)
    d1 = day + 2400000.5
    d2 = m - day
    with np.errstate(divide="ignore", invalid="ignore"):
        p = prec_time[idx]
        ndp = np.where(np.isfinite(p) & (p > 0), np.clip(np.round(2 - np.log10(p)), 0, 6), -1)
    ndp = ndp.astype(np.int64)
    if seconds_decimals is not None:
        ndp[:] = int(np.clip(seconds_decimals, 0, 6))
    infer = ndp < 0
    if infer.any():
        _, _, _, hmsf, _ = erfa.ufunc.d2dtf("UTC", 6, d1[infer], d2[infer])
        f = hmsf["f"].astype(np.int64)
        chosen = np.full(len(f), 6, dtype=np.int64)
        for d in range(5, -1, -1):
            step = 10 ** (6 - d)
            r = f % step
            fits = (r <= 1) | (r >= step - 1)
            chosen = np.where(fits, d, chosen)  # fitting at d implies fitting at every finer d
        ndp[infer] = chosen
    strings = np.empty(len(idx), dtype=object)
    for d in np.unique(ndp):
        sel = np.flatnonzero(ndp == d)
        y, mo, dd, hmsf, status = erfa.ufunc.d2dtf("UTC", int(d), d1[sel], d2[sel])
        if (status < 0).any():
            raise ValueError(f"obsTime_mjd cannot be written as a UTC date: {m[sel][status < 0]}")

        def two(a, w=2):
            return pc.utf8_lpad(pa.array(np.asarray(a, dtype=np.int64)).cast(pa.string()), w, "0")

        parts = [two(y, 4), "-", two(mo), "-", two(dd), "T", two(hmsf["h"]), ":", two(hmsf["m"]),
                 ":", two(hmsf["s"])]
        if d > 0:
            parts += [".", two(hmsf["f"], int(d))]
        parts.append("Z")
        s = pc.binary_join_element_wise(*parts, "")
        strings[sel] = s.to_numpy(zero_copy_only=False)
    out[idx] = strings
    return out


def _clean_text(values: np.ndarray) -> np.ndarray:
    """Strings safe for a PSV field: no '|' (→ '/'), no line breaks (→ ' ')."""
    arr = pa.array(values.tolist(), pa.string())
    arr = pc.replace_substring(arr, "|", "/")
    arr = pc.replace_substring_regex(arr, r"[\r\n]", " ")
    return arr.to_numpy(zero_copy_only=False)


def _field_strings(batch: ObservationBatch, names: Sequence[str],
                   seconds_decimals: int | None = None) -> dict[str, np.ndarray]:
    """ADES field name → formatted strings for every row of ``batch``."""
    c = batch.columns
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == "obsTime":
            out[name] = _format_time(c["obsTime_mjd"], c["precTime"], seconds_decimals)
        elif name in ("ra", "dec"):
            x = c[name]
            shortest = _shortest_decimals(x, _MAX_DECIMALS[name])
            if name == "ra":
                dec = _radec_decimals(c["precRA"], 15.0 / 3600.0, shortest)
            else:
                dec = _radec_decimals(c["precDec"], 1.0 / 3600.0, shortest)
            out[name] = _fixed(x, dec)
        elif name == "deprecated":
            out[name] = np.where(c["deprecated"], "X", "").astype(object)
        elif name == "rcv" and "rcv" in c:
            rcv = c["rcv"].copy()
            empty = rcv == ""
            rcv[empty] = c["stn"][empty]
            out[name] = _clean_text(rcv)
        elif name in _FLOAT_FIELDS:
            out[name] = _format_float(name, c[name])
        else:
            out[name] = _clean_text(c[name])
    return out


def _present(strings: Mapping[str, np.ndarray], order: Sequence[str]) -> list[str]:
    cols = [nm for nm in order if nm == "permID" or (strings[nm] != "").any()]
    return cols


def _psv_block(batch: ObservationBatch, order: Sequence[str], align: bool,
               seconds_decimals: int | None) -> list[str]:
    strings = _field_strings(batch, order, seconds_decimals)
    names = _present(strings, order)
    columns = []
    for nm in names:
        arr = pa.array(strings[nm].tolist(), pa.string())
        if align:
            width = max(len(nm), int(pc.max(pc.utf8_length(arr)).as_py() or 0))
            pad = pc.utf8_lpad if nm in _FLOAT_FIELDS else pc.utf8_rpad
            arr = pad(arr, width, " ")
            header = nm.ljust(width)
        else:
            header = nm
        columns.append((header, arr))
    head = "|".join(h for h, _ in columns).rstrip()
    lines = pc.binary_join_element_wise(*[a for _, a in columns], "|")
    lines = pc.utf8_rtrim_whitespace(lines)
    return [head] + lines.to_pylist()


def write_psv(batch: ObservationBatch, version: str = "2022", align: bool = True,
              seconds_decimals: int | None = None) -> str:
    """ADES PSV text for ``batch``: ``# version=…`` header, then an optical block and a radar block.

    Each block starts with its keyword record (first keyword ``permID``) and lists only fields
    that some row fills. Times, RA and Dec are written with the precision the observer reported
    (precTime/precRA/precDec, converted with the ADES-Master rules) or, when none is recorded, the
    fewest digits that reproduce the stored value; other numbers with the fewest digits that
    reproduce them. ``|`` inside text becomes ``/`` and line breaks become spaces (PSV cannot hold
    them). ``align`` pads columns for reading by eye (ADES allows both forms).
    ``seconds_decimals`` forces a fixed number of decimals on every obsTime (the MPC writes 3).
    No observatory context header is written (optional outside MPC submissions).
    """
    if version not in VERSIONS:
        raise ValueError(f"ADES version must be one of {VERSIONS}, not {version!r}")
    parts = [f"# version={version}"]
    radar = batch["kind"] == "radar"
    if (~radar).any():
        parts += _psv_block(batch.take(~radar) if radar.any() else batch, _OPTICAL_ORDER, align,
                            seconds_decimals)
    if radar.any():
        parts += _psv_block(batch.take(radar), _RADAR_ORDER, align, seconds_decimals)
    return "\n".join(parts) + "\n"


def write_xml(batch: ObservationBatch, version: str = "2022",
              seconds_decimals: int | None = None) -> str:
    """ADES XML text for ``batch``: ``<ades version=…>`` holding ``<optical>`` and ``<radar>``.

    The elements sit directly under ``<ades>`` (the general schema allows this without an
    ``obsBlock``/``obsContext``), in schema order, with the same number formatting as
    :func:`write_psv`.
    """
    from xml.sax.saxutils import escape

    if version not in VERSIONS:
        raise ValueError(f"ADES version must be one of {VERSIONS}, not {version!r}")
    out = ["<?xml version='1.0' encoding='UTF-8'?>", f'<ades version="{version}">']
    radar = batch["kind"] == "radar"
    elements: list[tuple[int, str]] = []
    for mask, order, tag in ((~radar, _OPTICAL_ORDER, "optical"), (radar, _RADAR_ORDER, "radar")):
        if not mask.any():
            continue
        sub = batch.take(mask)
        strings = _field_strings(sub, order, seconds_decimals)
        rows = np.flatnonzero(mask)
        for r in range(len(sub)):
            body = "".join(f"<{nm}>{escape(str(strings[nm][r]))}</{nm}>" for nm in order
                           if strings[nm][r] != "")
            elements.append((int(rows[r]), f"  <{tag}>{body}</{tag}>"))
    elements.sort()
    out += [e for _, e in elements]
    out.append("</ades>")
    return "\n".join(out) + "\n"
