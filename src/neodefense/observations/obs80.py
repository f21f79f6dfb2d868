"""MPC 80-column ("obs80") astrometry: a vectorized reader and a writer.

Layout (1-based columns, as in the MPC's format documents for optical, satellite, roving and radar
observations):

====== ==============================================================================
1-12   identifier: packed number (1-5) and packed provisional or temporary designation (6-12)
13     discovery asterisk
14     note 1: a letter is an MPC note (→ ``notes``); a digit or punctuation is a program code
       (→ ``prog``, as the 2-character ADES code)
15     note 2: technique / record kind (→ ``mode``, two-line records, ``deprecated``)
16-32  date of observation, UTC, ``YYYY MM DD.dddddd`` (→ ``obsTime_mjd``, ``precTime``)
33-44  RA ``HH MM SS.sss`` (or ``HH MM.mmm``, ``HH MM``) (→ ``ra`` deg, ``precRA`` s)
45-56  Dec ``sDD MM SS.ss`` (or ``sDD MM.mm``, ``sDD MM``) (→ ``dec`` deg, ``precDec`` arcsec)
57-65  blank in submissions; MPC database exports put a cross-reference here (kept in ``raw`` only)
66-70  magnitude; 71 band; 72 astrometric catalogue code (→ ``astCat`` ADES name)
73-77  publication reference (→ ``ref``, unpacked: ``MPC 12345`` / ``MPS 123456`` / as written)
78-80  observatory code (→ ``stn``)
====== ==============================================================================

Two-line records (the second line repeats columns 1-32 and 78-80):

* satellite ``S`` + ``s``: column 33 ``1`` (km) or ``2`` (AU); geocentric equatorial (J2000/ICRF)
  X, Y, Z as a sign in columns 35, 47, 59 and the number in 36-45, 48-57, 60-69
  (→ ``sys`` ICRF_KM / ICRF_AU, ``ctr`` 399, ``pos1..3``).
* roving ``V`` + ``v``: east longitude (deg) 35-44, latitude (deg) 46-55, altitude (m) 57-61
  (→ ``sys`` WGS84).
* radar ``R`` + ``r``: time delay (µs, implied decimal point between columns 43 and 44) in 33-47,
  Doppler (Hz, sign in 48, implied point between 58 and 59) in 48-62, frequency (MHz, point
  between 67 and 68, further digits in 63-68 of the ``r`` line) in 63-68, transmitter 69-71,
  receiver 78-80; the ``r`` line has ``C`` (centre of mass) or ``S`` (peak power) in 33 and the
  delay / Doppler uncertainties in the same columns (→ ``delay`` s, ``rmsDelay`` µs, ``doppler``,
  ``rmsDoppler`` Hz, ``frq`` MHz, ``trx``, ``rcv``, ``com`` "1"/"0").

Note-2 letters and their ADES ``mode``: blank, P, A → PHO (A: reduced from B1950);
C, c → CCD (c: corrected without republication); B → CMO; M → MIC; T → MER; E → OCC; e → ENC;
H → PMT (Hipparcos); n → VID (mini-normal place from video frames); N (normal place),
O (offset) → UNK; X, x (deleted / replaced) → UNK with ``deprecated`` True; S, V → CCD with the
observer position; R → radar.

Reading is vectorized: the 80-column lines of a chunk are gathered into one transposed uint8
array (row j = column j+1 of every line) and every field is decoded with arithmetic on digit
columns; Python-level work is per *distinct* value (designations, references), per two-line
record (its ``raw``) or per rejected line only. Header lines of MPC submissions (``COD``,
``CON``, ``OBS``, ``MEA``, ``TEL``, ``NET``, ``BND``, ``COM``, ``NUM``, ``ACK``, ``AC2``) and the
``----- end -----`` line are skipped (counted in ``n_lines``, neither observations nor rejections).

What obs80 → batch loses (``raw`` keeps the original bytes, and :func:`write` uses it): which of
blank/P/A or C/c or N/O or X/x the note-2 letter was, the number of magnitude decimals
("19" / "19.0", "21.9" / "21.90"), the number of delay/Doppler decimals, and columns 57-65.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from neodefense.observations import designations
from neodefense.observations.batch import COLUMNS, ObservationBatch, ParseResult, Rejection

__all__ = [
    "AST_CAT_CODES",
    "MODE_OF_NOTE2",
    "NOTE2_OF_MODE",
    "format_record",
    "iter_parse",
    "pack_prog",
    "pack_ref",
    "parse",
    "unpack_prog",
    "unpack_ref",
    "write",
    "write_stream",
]

FORMAT = "obs80"
LINE_WIDTH = 80

#: MPC note 2 (column 15) -> ADES mode. Radar ("R") records have no mode.
MODE_OF_NOTE2: dict[str, str] = {
    " ": "PHO", "P": "PHO", "A": "PHO",
    "C": "CCD", "c": "CCD", "B": "CMO", "M": "MIC", "T": "MER", "E": "OCC", "e": "ENC",
    "H": "PMT", "n": "VID", "N": "UNK", "O": "UNK", "X": "UNK", "x": "UNK",
    "S": "CCD", "V": "CCD", "R": "",
}
#: ADES mode -> note-2 letter written for single-line optical records (see module docstring).
NOTE2_OF_MODE: dict[str, str] = {
    "PHO": "P", "CCD": "C", "CMO": "B", "MIC": "M", "MER": "T", "OCC": "E", "ENC": "e",
    "PMT": "H", "VID": "n", "TDI": "C",
    # obs80 has no letter for an unknown technique; UNK comes from N (normal place) or O
    # (offset) and is written back as N so that reading the text again gives UNK
    "UNK": "N",
}

#: MPC one-character astrometric-catalogue codes (column 72) -> ADES ``astCat`` names.
AST_CAT_CODES: dict[str, str] = {
    "a": "USNOA1", "b": "USNOSA1", "c": "USNOA2", "d": "USNOSA2", "e": "UCAC1", "f": "Tyc1",
    "g": "Tyc2", "h": "GSC1.0", "i": "GSC1.1", "j": "GSC1.2", "k": "GSC2.2", "l": "ACT",
    "m": "GSCACT", "n": "SDSS8", "o": "USNOB1", "p": "PPM", "q": "UCAC4", "r": "UCAC2",
    "s": "USNOB2", "t": "PPMXL", "u": "UCAC3", "v": "NOMAD", "w": "CMC14", "x": "Hip2",
    "y": "Hip1", "z": "GSC", "A": "AC", "B": "SAO1984", "C": "SAO", "D": "AGK3", "E": "FK4",
    "F": "ACRS", "G": "LickGas", "H": "Ida93", "I": "Perth70", "J": "COSMOS", "K": "Yale",
    "L": "2MASS", "M": "GSC2.3", "N": "SDSS7", "O": "SSTRC1", "P": "MPOSC3", "Q": "CMC15",
    "R": "SSTRC4", "S": "URAT1", "T": "URAT2", "U": "Gaia1", "V": "Gaia2", "W": "Gaia3",
    "X": "Gaia3E", "Y": "UCAC5", "Z": "ATLAS2", "0": "IHW", "1": "PS1_DR1", "2": "PS1_DR2",
    "3": "Gaia_Int", "4": "GZ", "5": "UBSC", "6": "Gaia_2016",
}
_AST_CAT_LETTER = {v: k for k, v in AST_CAT_CODES.items()}

#: The MPC's program codes in order; the ADES ``prog`` is the index in two base-62 digits.
_PROGRAM_CODES = (
    "0123456789!\"#$%&'()*+,-./[\\]^_`{|}~:;<=>?@"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_HEADER_KEYS = (b"COD ", b"CON ", b"OBS ", b"MEA ", b"TEL ", b"NET ", b"BND ", b"COM ", b"NUM ",
                b"ACK ", b"AC2 ")

# record kinds from note 2
_BAD, _OPT, _SAT, _ROV, _RAD, _SAT2, _ROV2, _RAD2 = range(8)
_FIRST_KINDS = (_SAT, _ROV, _RAD)
_KIND_LETTER = {_SAT: "S", _ROV: "V", _RAD: "R", _SAT2: "s", _ROV2: "v", _RAD2: "r"}

_POW10 = 10 ** np.arange(19, dtype=np.int64)
_PREC_RA_SEC = np.array([1.0, 0.1, 0.01, 0.001])
_PREC_RA_MIN = np.array([60.0, 6.0, 0.6, 0.06, 0.006, 0.0006, 0.00006])
_PREC_DEC_SEC = np.array([1.0, 0.1, 0.01])
_PREC_DEC_MIN = np.array([60.0, 6.0, 0.6, 0.06, 0.006, 0.0006])
_PREC_TIME = np.array([1e6, 1e5, 1e4, 1e3, 1e2, 10.0, 1.0])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_MONTHS = ("", "January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


# ==============================================================================================
# small tables and conversions
# ==============================================================================================
def pack_prog(char: str) -> str:
    """obs80 program-code character -> 2-character ADES ``prog`` ('' for blank)."""
    if char in ("", " "):
        return ""
    i = _PROGRAM_CODES.find(char)
    if i < 0:
        raise ValueError(f"{char!r} is not an MPC program code")
    return ("0" + _B62[i]) if i < 62 else ("1" + _B62[i - 62])


def unpack_prog(prog: str) -> str:
    """2-character ADES ``prog`` -> obs80 program-code character (' ' for '')."""
    if not prog:
        return " "
    if len(prog) != 2 or prog[0] not in "01" or prog[1] not in _B62:
        raise ValueError(f"{prog!r} is not an ADES program code")
    i = _B62.index(prog[1]) + 62 * int(prog[0])
    if i >= len(_PROGRAM_CODES):
        raise ValueError(f"{prog!r} is not an ADES program code")
    return _PROGRAM_CODES[i]


def _b62(s: str) -> int:
    n = 0
    for c in s:
        n = n * 62 + _B62.index(c)
    return n


def _to_b62(n: int) -> str:
    out = []
    for _ in range(4):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def unpack_ref(packed: str) -> str:
    """Columns 73-77 -> ``MPC nnnnn`` / ``MPS nnnnnn`` (MPC reference packing); else as written."""
    p = packed.rstrip()
    if len(p) == 5:
        head, tail = p[0], p[1:]
        if p.isdigit():
            return f"MPC {int(p)}"
        if head == "@" and tail.isdigit():
            return f"MPC {100000 + int(tail)}"
        if head == "#" and all(c in _B62 for c in tail):
            return f"MPC {110000 + _b62(tail)}"
        if "a" <= head <= "z" and tail.isdigit():
            return f"MPS {(ord(head) - 97) * 10000 + int(tail)}"
        if head == "~" and all(c in _B62 for c in tail):
            return f"MPS {260000 + _b62(tail)}"
    return p


def pack_ref(ref: str) -> str:
    """Inverse of :func:`unpack_ref`: a 5-character field for columns 73-77."""
    parts = ref.split()
    if len(parts) == 2 and parts[0] in ("MPC", "MPS") and parts[1].isdigit():
        n = int(parts[1])
        if parts[0] == "MPC":
            if n < 100000:
                return f"{n:05d}"
            if n < 110000:
                return f"@{n - 100000:04d}"
            if n < 110000 + 62**4:
                return "#" + _to_b62(n - 110000)
        else:
            if n < 260000:
                return chr(97 + n // 10000) + f"{n % 10000:04d}"
            if n < 260000 + 62**4:
                return "~" + _to_b62(n - 260000)
    if len(ref) > 5:
        raise ValueError(f"reference {ref!r} does not fit columns 73-77")
    return ref.ljust(5)


def _object_table(fn) -> np.ndarray:
    """256-entry object array: byte value -> fn(chr(byte))."""
    t = np.empty(256, dtype=object)
    t[:] = [fn(chr(i)) for i in range(256)]
    return t


_T_CHAR = _object_table(lambda c: c if c != " " else "")
_T_NOTES = _object_table(lambda c: c if c.isascii() and c.isalpha() else "")
_T_PROG = _object_table(lambda c: pack_prog(c) if (c in _PROGRAM_CODES and not c.isalpha()) else "")
_T_MODE = _object_table(lambda c: MODE_OF_NOTE2.get(c, ""))
_T_ASTCAT = _object_table(lambda c: AST_CAT_CODES.get(c, c if c != " " else ""))
_T_DISC = _object_table(lambda c: "*" if c == "*" else "")

_KIND = np.full(256, _BAD, dtype=np.int8)
for _c in " PACcBMTEeHnNOXx":
    _KIND[ord(_c)] = _OPT
for _c, _k in (("S", _SAT), ("V", _ROV), ("R", _RAD), ("s", _SAT2), ("v", _ROV2), ("r", _RAD2)):
    _KIND[ord(_c)] = _k

#: station code characters -> 0..35 (others 63: invalid)
_STN_LUT = np.full(256, 63, dtype=np.int64)
for _i, _c in enumerate(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    _STN_LUT[_c] = _i
_STN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# ==============================================================================================
# calendar
# ==============================================================================================
def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Proleptic Gregorian date -> MJD (integer days). Vectorized (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = np.where(m > 2, m - 3, m + 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468 + 40587


def _civil_from_days(mjd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MJD (integer days) -> proleptic Gregorian (year, month, day). Vectorized."""
    z = mjd.astype(np.int64) - 40587 + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    return y + (m <= 2), m, d


def _days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    return _DAYS_IN_MONTH[np.clip(m, 0, 12)] + (leap & (m == 2))


# ==============================================================================================
# vectorized field decoders
#
# They work on C, the transposed chunk: C[j] is column j+1 of every line, a contiguous uint8
# array, so each step is one fast elementwise operation over all lines (no per-line Python).
# ==============================================================================================
_U48 = np.uint8(48)


def _c_digits(C: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns a..b-1 (0-based) all digits -> (int64 value, ok)."""
    val = np.zeros(C.shape[1], dtype=np.int64)
    ok = np.ones(C.shape[1], dtype=bool)
    for j in range(a, b):
        d = C[j] - _U48
        ok &= d <= 9
        val = val * 10 + d
    return val, ok


def _c_ljust(C: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits then blanks (a fraction) -> (value scaled by 10**(b-a), number of digits, ok)."""
    n = C.shape[1]
    val = np.zeros(n, dtype=np.int64)
    nd = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    for j in range(a, b):
        d = C[j] - _U48
        alive &= d <= 9
        ok &= alive | (C[j] == 32)
        nd += alive
        val = val * 10 + d * alive
    return val, nd, ok


def _c_rjust(C: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blanks then digits (a right-justified integer) -> (value, ok, blank)."""
    n = C.shape[1]
    val = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    lead = np.ones(n, dtype=bool)
    for j in range(a, b):
        d = C[j] - _U48
        isd = d <= 9
        lead &= C[j] == 32
        ok &= lead | isd
        val = val * 10 + d * isd
    return val, ok & ~lead, lead


def _c_decimal(C: np.ndarray, a: int, b: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Free-form decimal: blanks, [sign], digits, [. digits], blanks -> (value, ok).

    The value is one correctly rounded division of two exact integers."""
    n = C.shape[1]
    mant = np.zeros(n, dtype=np.int64)
    ndig = np.zeros(n, dtype=np.int64)
    ndec = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    started = np.zeros(n, dtype=bool)
    ended = np.zeros(n, dtype=bool)
    dot_seen = np.zeros(n, dtype=bool)
    neg = np.zeros(n, dtype=bool)
    for j in range(a, b):
        c = C[j]
        sp = c == 32
        d = c - _U48
        isd = d <= 9
        dot = c == 46
        sign = (c == 43) | (c == 45)
        sign_ok = (~started & sign) if signed else np.zeros(n, dtype=bool)
        neg |= sign_ok & (c == 45)
        ok &= sp | isd | dot | sign_ok
        ok &= ~(ended & ~sp)
        ok &= ~(dot & dot_seen)
        ended |= started & sp
        started |= ~sp
        ndec += isd & dot_seen
        dot_seen |= dot
        mant = np.where(isd, mant * 10 + d, mant)
        ndig += isd
    ok &= (ndig >= 1) & (ndig <= 18)
    val = mant / _POW10[np.clip(ndec, 0, 18)]
    val = np.where(neg, -val, val)
    return np.where(ok, val, np.nan), ok


def _transpose(M: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(M.T)


_BLOCK = 4096  # rows per block of the cache-friendly gather + transpose


def _gather_transposed(window: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Lines starting at ``starts`` -> C with C[j] = column j+1 of every line (contiguous).

    Done in blocks of rows so the transpose stays in cache (4x faster than one big transpose).
    """
    n = len(starts)
    C = np.empty((LINE_WIDTH, n), dtype=np.uint8)
    for i in range(0, n, _BLOCK):
        C[:, i:i + _BLOCK] = window[starts[i:i + _BLOCK]].T
    return C


# ==============================================================================================
# the parser
# ==============================================================================================
class _Chunk:
    """State for parsing one chunk of bytes."""

    def __init__(self, data: bytes, file: str, first_line: int):
        self.data = data
        self.file = file
        self.first_line = first_line
        self.rejections: list[Rejection] = []
        self._text_lines: list[str] | None = None
        self.raw_len = np.zeros(0, dtype=np.int64)

    # -- text of lines (only for raw and messages) ----------------------------------------------
    def text_lines(self) -> list[str]:
        if self._text_lines is None:
            try:
                txt = self.data.decode("ascii")
            except UnicodeDecodeError:
                txt = self.data.decode("utf-8", errors="replace")
            lines = txt.split("\n")
            if self.data.endswith(b"\n"):
                lines.pop()
            self._text_lines = lines
        return self._text_lines

    def line_text(self, i: int) -> str:
        s = self.text_lines()[i]
        return s.removesuffix("\r")

    def reject(self, i: int, field: str, reason: str) -> None:
        self.rejections.append(
            Rejection(self.file, self.first_line + int(i), field, reason, self.line_text(i)))

    # -- main ------------------------------------------------------------------------------------
    def run(self) -> ParseResult:
        if self.first_line == 1 and self.data.startswith(b"\xef\xbb\xbf"):
            self.data = self.data[3:]  # a UTF-8 byte-order mark from a Windows editor
        data = self.data
        if not data:
            return ParseResult(ObservationBatch.empty(), [], FORMAT, 0)
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], nl + 1))
        ends = np.concatenate((nl, [len(buf)]))
        if data.endswith(b"\n"):
            starts, ends = starts[:-1], ends[:-1]
        n_lines = len(starts)
        lens = ends - starts
        has_cr = np.zeros(n_lines, dtype=bool)
        nz = lens > 0
        has_cr[nz] = buf[ends[nz] - 1] == 13
        self.raw_len = lens  # bytes, with a trailing CR
        lens = lens - has_cr

        # 80-column lines take the fast path; everything else is looked at one by one (rare)
        is80 = lens == LINE_WIDTH
        for i in np.flatnonzero(~is80 & (lens > 0)):
            raw = data[starts[i]:starts[i] + lens[i]]
            if not raw.strip():
                continue  # blank line
            if raw.startswith(_HEADER_KEYS) or raw.strip() == b"----- end -----":
                continue
            if lens[i] > LINE_WIDTH and not raw[LINE_WIDTH:].strip() and raw[:LINE_WIDTH].strip():
                is80[i] = True  # trailing blanks after column 80
                continue
            self._reject_odd_line(int(i), raw)
        rows80 = np.flatnonzero(is80)
        if len(rows80) == 0:
            return ParseResult(ObservationBatch.empty(), self._sorted(), FORMAT, n_lines)
        window = np.lib.stride_tricks.sliding_window_view(buf, LINE_WIDTH)
        M = _Rows(window, starts[rows80])
        C = _gather_transposed(window, starts[rows80])
        line_idx = rows80

        # blank 80-column lines and header lines are not records (nor rejections)
        skip = np.zeros(len(rows80), dtype=bool)
        maybe = np.flatnonzero(((C[77] == 32) & (C[78] == 32) & (C[79] == 32)) | (C[0] == 45))
        for i in maybe:  # blank (only whitespace) or the '----- end -----' line
            text = M[i].tobytes().strip()
            skip[i] = not text or text == b"----- end -----"
        head = ((C[0].astype(np.uint32) << 24) | (C[1].astype(np.uint32) << 16)
                | (C[2].astype(np.uint32) << 8) | C[3])
        for word in _HEADER_WORDS:
            skip |= head == word
        batch = self._decode(M, C, line_idx, skip)
        return ParseResult(batch, self._sorted(), FORMAT, n_lines)

    def _sorted(self) -> list[Rejection]:
        self.rejections.sort(key=lambda r: r.line)
        return self.rejections

    def _reject_odd_line(self, i: int, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.reject(i, "line", f"not valid UTF-8 (byte 0x{raw[exc.start]:02X} at byte "
                                   f"{exc.start + 1}); obs80 lines are plain ASCII")
            return
        bad = _first_bad_char(raw)
        if bad is not None and len(text) == LINE_WIDTH:
            self.reject(i, "line", bad)
            return
        n = len(text)
        if n < LINE_WIDTH:
            self.reject(i, "line", f"line has {n} columns, an obs80 record has 80 "
                                   "(truncated line?)")
        else:
            self.reject(i, "line", f"line has {n} columns, an obs80 record has 80 "
                                   "(text after column 80)")

    # -- vectorized decoding ---------------------------------------------------------------------
    def _decode(self, M: _Rows, C: np.ndarray, line_idx: np.ndarray,
                skip: np.ndarray) -> ObservationBatch:
        n = len(M)
        bad_field = np.zeros(n, dtype=object)  # 0 = fine, else the field of the first failure
        bad = skip.copy()  # skipped rows: no field, so neither records nor rejections

        def fail(mask: np.ndarray, field: str) -> None:
            new = mask & ~bad
            if new.any():
                bad_field[new] = field
                bad[new] = True

        # bytes outside printable ASCII
        fail(((C - np.uint8(32)) >= 95).any(axis=0), "line")
        kind = _KIND[C[14]]
        fail(kind == _BAD, "mode")

        perm, prov, trk, id_bad = _identifiers(M, C)
        fail(id_bad == 1, "permID")
        fail(id_bad == 2, "provID")
        fail((C[12] != 32) & (C[12] != 42), "disc")

        mjd, prec_time, time_ok = _obs_time(C)
        fail(~time_ok, "obsTime")

        optical = (kind >= _OPT) & (kind <= _ROV)
        ra, prec_ra, ra_ok = _ra(C)
        dec, prec_dec, dec_ok = _dec(C)
        fail(optical & ~ra_ok, "ra")
        fail(optical & ~dec_ok, "dec")
        mag, mag_ok = _mag(C)
        fail(optical & ~mag_ok, "mag")

        s0, s1, s2 = _STN_LUT[C[77]], _STN_LUT[C[78]], _STN_LUT[C[79]]
        stn_key = (s0 * 64 + s1) * 64 + s2
        fail((s0 >= 36) | (s1 >= 36) | (s2 >= 36), "stn")

        # second lines and radar lines, decoded on their (small) subsets
        sys_ = np.zeros(n, dtype=np.int8)  # 1 km, 2 AU, 3 WGS84
        pos = np.full((n, 3), np.nan)
        for k, fn in ((_SAT2, _satellite_position), (_ROV2, _roving_position)):
            idx = np.flatnonzero(kind == k)
            if len(idx):
                p, s, field = fn(_transpose(M[idx]))
                pos[idx] = p
                sys_[idx] = s
                for name in ("sys", "pos1", "pos2", "pos3"):
                    m = np.zeros(n, dtype=bool)
                    m[idx] = field == name
                    fail(m, name)
        radar: dict = {}
        idx_r = np.flatnonzero(kind == _RAD)
        idx_r2 = np.flatnonzero(kind == _RAD2)
        if len(idx_r) or len(idx_r2):
            radar = _radar_fields(M, idx_r, idx_r2, n)
            for name, m in radar.pop("fail"):
                fail(m, name)

        # pairing of two-line records: first line, then its second line on the next line
        first = (kind == _SAT) | (kind == _ROV) | (kind == _RAD)
        second = kind >= _SAT2
        paired = np.zeros(n, dtype=bool)
        if first.any() or second.any():
            cand = np.flatnonzero(first[:-1] & (kind[1:] == kind[:-1] + 3)
                                  & (line_idx[1:] == line_idx[:-1] + 1) & ~skip[1:])
            if len(cand):
                a, b = M[cand], M[cand + 1]
                same = ((a[:, :12] == b[:, :12]).all(axis=1)
                        & (a[:, 15:32] == b[:, 15:32]).all(axis=1)
                        & (a[:, 77:80] == b[:, 77:80]).all(axis=1)
                        & ((kind[cand] != _RAD) | (a[:, 68:71] == b[:, 68:71]).all(axis=1)))
                paired[cand[same]] = True
            has_first = np.zeros(n, dtype=bool)
            has_first[1:] = paired[:-1]
            lone_first = first & ~paired & ~bad
            lone_second = second & ~has_first & ~bad
            bad_field[lone_first | lone_second] = 0
            for i in np.flatnonzero(lone_first | lone_second):
                self._reject_unpaired(M, line_idx, kind, int(i))
            bad |= lone_first | lone_second
            # a pair is rejected as a whole when either of its lines is bad
            pf = np.flatnonzero(paired)
            pair_bad = pf[bad[pf] | bad[pf + 1]]
            for i in pair_bad:
                self._reject_pair(M, line_idx, bad_field, int(i))
            bad[pair_bad] = True
            bad[pair_bad + 1] = True
            bad_field[pair_bad] = 0
            bad_field[pair_bad + 1] = 0
            paired &= ~bad

        # single-line rejections with their reasons
        for i in np.flatnonzero(bad & (bad_field != 0)):
            field = bad_field[i]
            self.reject(int(line_idx[i]), field, _explain(field, _row_text(M, int(i))))

        rec = np.flatnonzero(~bad & ((kind == _OPT) | paired))
        if len(rec) == 0:
            return ObservationBatch.empty()
        return self._columns(M, C, line_idx, rec, kind, paired, perm, prov, trk, mjd, prec_time,
                             ra, prec_ra, dec, prec_dec, mag, stn_key, sys_, pos, radar)

    def _reject_unpaired(self, M, line_idx, kind, i: int) -> None:
        k = int(kind[i])
        letter = _KIND_LETTER[k]
        what = {"S": "satellite", "V": "roving-observer", "R": "radar"}[letter.upper()]
        field = "delay" if letter in "Rr" else "pos1"
        ln = int(line_idx[i])
        if k in _FIRST_KINDS:
            nxt = i + 1
            if nxt < len(M) and line_idx[nxt] == ln + 1:
                if kind[nxt] != k + 3:
                    detail = f"the next line has note 2 {chr(M[nxt, 14])!r}"
                elif (M[i, :12] != M[nxt, :12]).any():
                    detail = "the next line has another designation (columns 1-12)"
                elif (M[i, 15:32] != M[nxt, 15:32]).any():
                    detail = "the next line has another date (columns 16-32)"
                elif (M[i, 77:80] != M[nxt, 77:80]).any():
                    detail = "the next line has another observatory code (columns 78-80)"
                else:
                    detail = "the next line has another transmitter code (columns 69-71)"
            elif ln + 1 < len(self.text_lines()):
                detail = "the next line is not an 80-column record"
            else:
                detail = "it is the last line"
            self.reject(ln, field, f"{what} observation (note 2 {letter!r}) without its second "
                                   f"line {letter.lower()!r}: {detail}")
        else:
            self.reject(ln, field, f"second line of a {what} observation (note 2 {letter!r}) "
                                   f"without its first line {letter.upper()!r} just before it")

    def _reject_pair(self, M, line_idx, bad_field, i: int) -> None:
        ln = int(line_idx[i])
        f1, f2 = bad_field[i], bad_field[i + 1]
        if f1 != 0:
            self.reject(ln, f1, _explain(f1, _row_text(M, i)))
            self.reject(ln + 1, f1, f"first line of this two-line record (line "
                                    f"{self.first_line + ln}) was rejected")
        else:
            r2 = _explain(f2, _row_text(M, i + 1))
            self.reject(ln, f2, f"its second line (line {self.first_line + ln + 1}) was "
                                f"rejected: {r2}")
            self.reject(ln + 1, f2, r2)

    def _columns(self, M, C, line_idx, rec, kind, paired, perm, prov, trk, mjd, prec_time,
                 ra, prec_ra, dec, prec_dec, mag, stn_key, sys_, pos, radar) -> ObservationBatch:
        nrec = len(rec)
        whole = nrec == len(M)  # every line is a single-line record: no fancy indexing needed
        take = (lambda a: a) if whole else (lambda a: a[rec])
        k = take(kind)
        is_radar = k == _RAD
        any_radar = bool(is_radar.any())
        two = take(paired)
        sec = rec + 1  # second-line rows (valid where two)
        c12, c13, c14, c70, c71 = (take(C[j]) for j in (12, 13, 14, 70, 71))
        cols: dict[str, np.ndarray] = {
            "permID": take(perm), "provID": take(prov), "trkSub": take(trk),
            "kind": _KIND_NAMES[is_radar.view(np.int8)],
            "mode": _T_MODE[c14],
            "stn": _stations(take(stn_key)),
            "notes": _T_NOTES[c13],
            "prog": _T_PROG[c13],
            "disc": _T_DISC[c12],
            "deprecated": (c14 == 88) | (c14 == 120),
            "obsTime_mjd": take(mjd),
            "precTime": take(prec_time),
            "ra": take(ra), "dec": take(dec), "precRA": take(prec_ra), "precDec": take(prec_dec),
            "mag": take(mag),
            "band": _T_CHAR[c70],
            "astCat": _T_ASTCAT[c71],
            "ref": _refs(C, rec, whole),
        }
        if any_radar:
            for name in ("ra", "dec", "precRA", "precDec", "mag"):
                cols[name] = np.where(is_radar, np.nan, cols[name])
            for name in ("band", "astCat"):
                cols[name] = cols[name].copy()
                cols[name][is_radar] = ""
        if two.any():
            s = np.zeros(nrec, dtype=np.int8)
            s[two] = sys_[sec[two]]
            cols["sys"] = _SYS_NAMES[s]
            cols["ctr"] = _CTR_NAMES[(s > 0).view(np.int8)]
            p = np.full((nrec, 3), np.nan)
            opt2 = two & ~is_radar
            p[opt2] = pos[sec[opt2]]
            cols["pos1"], cols["pos2"], cols["pos3"] = p[:, 0], p[:, 1], p[:, 2]
        if any_radar:
            ir = np.flatnonzero(is_radar)
            rr, rr2 = rec[ir], rec[ir] + 1
            for name, rows in (("delay", rr), ("doppler", rr), ("rmsDelay", rr2),
                               ("rmsDoppler", rr2)):
                v = np.full(nrec, np.nan)
                v[ir] = radar[name][rows]
                cols[name] = v
            v = np.full(nrec, np.nan)
            v[ir] = _join_frequency(radar["frq_int"][rr], radar["frq_dec"][rr],
                                    radar["frq_more"][rr2], radar["frq_more_n"][rr2],
                                    radar["frq_blank"][rr])
            cols["frq"] = v
            trx = _empty_strings(nrec)
            trx[ir] = _stations(radar["trx_key"][rr])
            cols["trx"] = trx
            rcv = _empty_strings(nrec)
            rcv[ir] = cols["stn"][ir]
            cols["rcv"] = rcv
            com = _empty_strings(nrec)
            com[ir] = np.where(M[rr2, 32] == ord("C"), "1", "0")
            cols["com"] = com
        cols["line"] = self.first_line + take(line_idx)
        cols["raw"] = self._raw(line_idx, rec, two)
        _fill_missing(cols, nrec)
        return ObservationBatch(cols, n=nrec)

    def _raw(self, line_idx, rec, two) -> np.ndarray:
        lines = self.text_lines()
        first = line_idx[rec]
        if len(first) == len(lines):
            raw = np.empty(len(lines), dtype=object)
            raw[:] = lines
        else:
            arr = np.empty(len(lines), dtype=object)
            arr[:] = lines
            raw = arr[first]
        # trim CR and trailing blanks after column 80 (only those lines are touched)
        for j in np.flatnonzero(self.raw_len[first] != LINE_WIDTH):
            raw[j] = raw[j][:LINE_WIDTH]
        if two.any():
            jj = np.flatnonzero(two)
            nxt = first[jj] + 1
            second = np.empty(len(jj), dtype=object)
            second[:] = [lines[i][:LINE_WIDTH] for i in nxt.tolist()]
            raw[jj] = raw[jj] + "\n" + second
        return raw


_HEADER_WORDS = np.array([int.from_bytes(k, "big") for k in _HEADER_KEYS], dtype=np.uint32)
_KIND_NAMES = np.array(["optical", "radar"], dtype=object)
_SYS_NAMES = np.array(["", "ICRF_KM", "ICRF_AU", "WGS84"], dtype=object)
_CTR_NAMES = np.array(["", "399"], dtype=object)


def _fill_missing(cols: dict[str, np.ndarray], n: int) -> None:
    """Add the columns the reader does not set (faster than np.full for object arrays)."""
    for name, kind in COLUMNS.items():
        if name in cols:
            continue
        if kind == "U":
            a = _empty_strings(n)
        elif kind == "f":
            a = np.full(n, np.nan)
        elif kind == "b":
            a = np.zeros(n, dtype=bool)
        else:
            a = np.full(n, -1, dtype=np.int64)
        cols[name] = a


def _row_text(M: _Rows, i: int) -> str:
    return M[i].tobytes().decode("latin-1")


class _Rows:
    """The 80-column lines of a chunk as rows, gathered on demand (subsets only)."""

    __slots__ = ("starts", "window")

    def __init__(self, window: np.ndarray, starts: np.ndarray):
        self.window = window
        self.starts = starts

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows, cols = key
            return self.window[self.starts[rows]][..., cols]
        return self.window[self.starts[key]]


def _first_bad_char(raw: bytes) -> str | None:
    for j, b in enumerate(raw):
        if b >= 128:
            return f"non-ASCII byte 0x{b:02X} in column {j + 1}; obs80 lines are plain ASCII"
        if b < 32 or b == 127:
            name = {9: "tab", 0: "NUL", 13: "carriage return"}.get(b, f"0x{b:02X}")
            return f"control character ({name}) in column {j + 1}"
    return None


# ----------------------------------------------------------------------------------------------
# field decoders
# ----------------------------------------------------------------------------------------------
_ID_CACHE: dict[bytes, tuple[str, str, str, int]] = {}


def _identifier(key: bytes) -> tuple[str, str, str, int]:
    hit = _ID_CACHE.get(key)
    if hit is not None:
        return hit
    try:
        perm, prov, trk = designations.unpack_obs80_id(key.decode("latin-1"))
        out = (perm, prov, trk, 0)
    except ValueError as exc:
        out = ("", "", "", 2 if str(exc).startswith("columns 6-12") else 1)
    if len(_ID_CACHE) > 200_000:
        _ID_CACHE.clear()
    _ID_CACHE[key] = out
    return out


def _run_starts(C: np.ndarray, a: int, b: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Start positions of runs of identical values in columns a..b-1 (over ``rows`` if given)."""
    n = C.shape[1] if rows is None else len(rows)
    change = np.zeros(n, dtype=bool)
    change[:1] = True
    if n > 1:
        for j in range(a, b):
            col = C[j] if rows is None else C[j][rows]
            change[1:] |= col[1:] != col[:-1]
    return np.flatnonzero(change)


def _identifiers(M: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, ...]:
    """Columns 1-12 -> permID, provID, trkSub object arrays and an error code per row
    (0 fine, 1 columns 1-5, 2 columns 6-12). One Python call per run of equal identifiers."""
    starts = _run_starts(C, 0, 12)
    lengths = np.diff(np.append(starts, C.shape[1]))
    keys = np.ascontiguousarray(C[:12, starts].T).tobytes()
    vals = [_identifier(keys[12 * j:12 * j + 12]) for j in range(len(starts))]
    perm = np.empty(len(vals), dtype=object)
    prov = np.empty(len(vals), dtype=object)
    trk = np.empty(len(vals), dtype=object)
    perm[:] = [v[0] for v in vals]
    prov[:] = [v[1] for v in vals]
    trk[:] = [v[2] for v in vals]
    code = np.array([v[3] for v in vals], dtype=np.int8)
    return (np.repeat(perm, lengths), np.repeat(prov, lengths), np.repeat(trk, lengths),
            np.repeat(code, lengths))


def _stations(key: np.ndarray) -> np.ndarray:
    """Station keys (3 base-64 digits) -> object array of 3-character codes."""
    if len(key) == 0:
        return np.empty(0, dtype=object)
    present = np.zeros(64**3, dtype=bool)
    present[key] = True
    uniq = np.flatnonzero(present)
    remap = np.zeros(64**3, dtype=np.int64)
    remap[uniq] = np.arange(len(uniq))
    names = np.empty(len(uniq), dtype=object)
    names[:] = [_STN_CHARS[(u >> 12) & 63] + _STN_CHARS[(u >> 6) & 63] + _STN_CHARS[u & 63]
                if max((u >> 12) & 63, (u >> 6) & 63, u & 63) < 36 else ""
                for u in uniq.tolist()]
    return names[remap[key]]


_REF_CACHE: dict[int, str] = {}


def _refs(C: np.ndarray, rows: np.ndarray, whole: bool) -> np.ndarray:
    """Columns 73-77 of ``rows`` -> unpacked references (one Python call per distinct value)."""
    starts = _run_starts(C, 72, 77, None if whole else rows)
    lengths = np.diff(np.append(starts, len(rows)))
    src = rows[starts]
    key = np.zeros(len(src), dtype=np.int64)
    for j in range(72, 77):
        key = (key << 8) | C[j][src]
    uniq, inv = np.unique(key, return_inverse=True)
    vals = np.empty(len(uniq), dtype=object)
    vals[:] = [_ref_of_key(int(k)) for k in uniq.tolist()]
    return np.repeat(vals[inv], lengths)


def _ref_of_key(key: int) -> str:
    v = _REF_CACHE.get(key)
    if v is None:
        v = unpack_ref(key.to_bytes(5, "big").decode("latin-1"))
        if len(_REF_CACHE) > 100_000:
            _REF_CACHE.clear()
        _REF_CACHE[key] = v
    return v


def _empty_strings(n: int) -> np.ndarray:
    a = np.empty(n, dtype=object)
    a.fill("")
    return a


def _obs_time(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns 16-32 ``YYYY MM DD.dddddd`` -> (MJD UTC, precTime, ok)."""
    y, oky = _c_digits(C, 15, 19)
    m, okm = _c_digits(C, 20, 22)
    d, okd = _c_digits(C, 23, 25)
    frac, nd, okf = _c_ljust(C, 26, 32)
    ok = (oky & okm & okd & okf & (C[19] == 32) & (C[22] == 32) & (C[25] == 46)
          & (nd >= 1) & (m >= 1) & (m <= 12) & (d >= 1))
    m = np.clip(m, 1, 12)
    ok &= d <= _days_in_month(y, m)
    day = _days_from_civil(y, m, d)
    mjd = (day * 1_000_000 + frac) / 1e6
    return np.where(ok, mjd, np.nan), _PREC_TIME[nd], ok


def _sexagesimal(C: np.ndarray, c0: int, wf_s: int, wf_m: int):
    """``AA BB`` + tail (`` SS.sss`` / `` SS`` / ``.bbb`` / blanks) starting at column c0.

    Returns (numerator, denominator, seconds-form mask, decimals, ok, AA): the value in units of
    the first component (hours or degrees) is numerator / denominator, exact integers, so the
    caller converts with one correctly rounded division.
    """
    a, oka = _c_digits(C, c0, c0 + 2)
    b, okb = _c_digits(C, c0 + 3, c0 + 5)
    t = c0 + 5  # first tail column
    ok_head = oka & okb & (C[c0 + 2] == 32)
    # seconds form: ' SS' then '.fff' or blanks
    ss, okss = _c_digits(C, t + 1, t + 3)
    frac_s, nd_s, okfs = _c_ljust(C, t + 4, t + 4 + wf_s)
    is_sec = (C[t] == 32) & okss & (ss < 60) & okfs & (
        ((C[t + 3] == 46) & (nd_s >= 1)) | ((C[t + 3] == 32) & (nd_s == 0)))
    num = (a * 3600 + b * 60 + ss) * _POW10[wf_s] + frac_s
    den = np.full(len(num), 3600 * _POW10[wf_s])
    nd = nd_s
    ok = ok_head & (b < 60) & is_sec
    # minutes form ('.bbb' then blanks, or blanks only), on the (few) other lines only
    rest = np.flatnonzero(ok_head & ~is_sec)
    if len(rest):
        T = C[t:t + 1 + wf_m][:, rest]
        frac_m, nd_m, okfm = _c_ljust(T, 1, 1 + wf_m)
        is_min = okfm & (((T[0] == 46) & (nd_m >= 1)) | ((T[0] == 32) & (nd_m == 0)))
        ok[rest] = (b[rest] < 60) & is_min
        num[rest] = (a[rest] * 60 + b[rest]) * _POW10[wf_m] + frac_m
        den[rest] = 60 * _POW10[wf_m]
        nd = nd.copy()
        nd[rest] = nd_m
    return num, den, is_sec, nd, ok, a


def _ra(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns 33-44 -> (RA deg, precRA s, ok)."""
    num, den, is_sec, nd, ok, hh = _sexagesimal(C, 32, 3, 6)
    ok &= hh < 24
    deg = num / (den // 15)  # 15 deg per hour; den is a multiple of 15
    prec = np.where(is_sec, _PREC_RA_SEC[np.clip(nd, 0, 3)], _PREC_RA_MIN[np.clip(nd, 0, 6)])
    return np.where(ok, deg, np.nan), prec, ok


def _dec(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns 45-56 -> (Dec deg, precDec arcsec, ok)."""
    sign = C[44]
    num, den, is_sec, nd, ok, _ = _sexagesimal(C, 45, 2, 5)
    ok &= ((sign == 43) | (sign == 45)) & (num <= 90 * den)
    deg = num / den
    deg = np.where(sign == 45, -deg, deg)
    prec = np.where(is_sec, _PREC_DEC_SEC[np.clip(nd, 0, 2)], _PREC_DEC_MIN[np.clip(nd, 0, 5)])
    return np.where(ok, deg, np.nan), prec, ok


def _mag(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns 66-70: ``MM.mm`` / ``MM.m`` / `` M.m`` / ``MM`` / blank -> (mag, ok)."""
    ip, okip, ipblank = _c_rjust(C, 65, 67)
    frac, nd, okf = _c_ljust(C, 68, 70)
    dot = C[67] == 46
    blank = ipblank & (C[67] == 32) & (C[68] == 32) & (C[69] == 32)
    nodot = (C[67] == 32) & (nd == 0) & okf
    ok = blank | (okip & ((dot & okf & (nd >= 1)) | nodot))
    mag = (ip * 100 + frac * dot) / 100.0
    return np.where(ok & ~blank, mag, np.nan), ok


def _satellite_position(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """'s' lines (transposed) -> (pos (n,3), sys code 1 km / 2 AU, failing field or '')."""
    n = S.shape[1]
    field = _empty_strings(n)
    sys_ = np.where(S[32] == ord("1"), 1, np.where(S[32] == ord("2"), 2, 0)).astype(np.int8)
    field[sys_ == 0] = "sys"
    pos = np.full((n, 3), np.nan)
    for j, (c0, name) in enumerate(((34, "pos1"), (46, "pos2"), (58, "pos3"))):
        sign = S[c0]
        val, ok = _c_decimal(S, c0 + 1, c0 + 11, signed=False)
        ok &= (sign == 43) | (sign == 45)
        pos[:, j] = np.where(sign == 45, -val, val)
        field[(field == "") & ~ok] = name
    return pos, sys_, field


def _roving_position(V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """'v' lines (transposed) -> (lon deg east, lat deg, altitude m), sys code 3, field."""
    n = V.shape[1]
    field = _empty_strings(n)
    lon, ok1 = _c_decimal(V, 34, 44, signed=True)
    lat, ok2 = _c_decimal(V, 45, 55, signed=True)
    alt, ok3 = _c_decimal(V, 56, 61, signed=True)
    ok1 &= (lon >= 0.0) & (lon <= 360.0)
    ok2 &= (lat >= -90.0) & (lat <= 90.0)
    field[~ok3] = "pos3"
    field[~ok2] = "pos2"
    field[~ok1] = "pos1"
    return np.stack([lon, lat, alt], axis=1), np.full(n, 3, dtype=np.int8), field


def _fixed_point(C: np.ndarray, a: int, b: int, c: int,
                 scale_down: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer part right-justified in a..b-1, fraction left-justified in b..c-1 (an implied
    decimal point between them) -> (value / scale_down, ok, blank), one exact division."""
    ip, okip, ipblank = _c_rjust(C, a, b)
    frac, nd, okf = _c_ljust(C, b, c)
    blank = ipblank & (nd == 0) & okf
    ok = blank | (okip & okf)
    val = (ip * _POW10[c - b] + frac) / (_POW10[c - b] * scale_down)
    return np.where(ok & ~blank, val, np.nan), ok, blank


def _radar_fields(M: np.ndarray, idx_r: np.ndarray, idx_r2: np.ndarray, n: int) -> dict:
    out: dict = {"fail": []}
    for name in ("delay", "doppler", "rmsDelay", "rmsDoppler", "frq_int", "frq_dec"):
        out[name] = np.full(n, np.nan)
    out["frq_blank"] = np.zeros(n, dtype=bool)
    out["frq_more"] = np.zeros(n, dtype=np.int64)
    out["frq_more_n"] = np.zeros(n, dtype=np.int64)
    out["trx_key"] = np.zeros(n, dtype=np.int64)

    def mask(idx, sub_bad):
        m = np.zeros(n, dtype=bool)
        m[idx[sub_bad]] = True
        return m

    if len(idx_r):
        R = _transpose(M[idx_r])
        # delay: integer µs in columns 33-43, fraction in 44-47
        sec, ok, _ = _fixed_point(R, 32, 43, 47, scale_down=1_000_000)
        out["delay"][idx_r] = sec
        out["fail"].append(("delay", mask(idx_r, ~ok)))
        # doppler: sign in 48, integer Hz in 49-58, fraction in 59-62
        hz, okd, blank_f = _fixed_point(R, 48, 58, 62)
        sign = R[47]
        okd &= np.where(blank_f, sign == 32, (sign == 43) | (sign == 45) | (sign == 32))
        out["doppler"][idx_r] = np.where(sign == 45, -hz, hz)
        out["fail"].append(("doppler", mask(idx_r, ~okd)))
        # frequency: integer MHz in 63-67, first decimal in 68
        fi, okfi, fblank = _c_rjust(R, 62, 67)
        fd = R[67]
        fd_digit = (fd - np.uint8(48)) <= 9
        okfr = (fblank & (fd == 32)) | (okfi & ((fd == 32) | fd_digit))
        out["frq_int"][idx_r] = fi
        out["frq_dec"][idx_r] = np.where(fd_digit, fd.astype(np.int64) - 48, -1)
        out["frq_blank"][idx_r] = fblank & (fd == 32)
        out["fail"].append(("frq", mask(idx_r, ~okfr)))
        t0, t1, t2 = _STN_LUT[R[68]], _STN_LUT[R[69]], _STN_LUT[R[70]]
        out["trx_key"][idx_r] = (t0 * 64 + t1) * 64 + t2
        out["fail"].append(("trx", mask(idx_r, (t0 >= 36) | (t1 >= 36) | (t2 >= 36))))
    if len(idx_r2):
        r = _transpose(M[idx_r2])
        okc = (r[32] == ord("C")) | (r[32] == ord("S"))
        out["fail"].append(("com", mask(idx_r2, ~okc)))
        us, ok, _ = _fixed_point(r, 33, 43, 47)
        out["rmsDelay"][idx_r2] = us
        out["fail"].append(("rmsDelay", mask(idx_r2, ~ok)))
        hz, ok, _ = _fixed_point(r, 47, 58, 62)
        out["rmsDoppler"][idx_r2] = hz
        out["fail"].append(("rmsDoppler", mask(idx_r2, ~ok)))
        more, nd, okm = _c_ljust(r, 62, 68)
        out["frq_more"][idx_r2] = more
        out["frq_more_n"][idx_r2] = nd
        out["fail"].append(("frq", mask(idx_r2, ~okm)))
    return out


def _join_frequency(fint, fdec, more, more_n, blank) -> np.ndarray:
    """MHz = integer + '.' + first decimal (R line col 68) + further digits (r line cols 63-68)."""
    out = np.full(len(fint), np.nan)
    for j in range(len(fint)):
        if blank[j]:
            continue
        digits = "" if fdec[j] < 0 else str(int(fdec[j]))
        if fdec[j] >= 0 and more_n[j]:
            digits += f"{int(more[j]):06d}"[: int(more_n[j])]
        out[j] = float(f"{int(fint[j])}.{digits or '0'}")
    return out


# ----------------------------------------------------------------------------------------------
# readable reasons for rejected lines
# ----------------------------------------------------------------------------------------------
_FIELD_COLUMNS = {
    "line": (1, 80), "mode": (15, 15), "permID": (1, 5), "provID": (6, 12), "trkSub": (6, 12),
    "disc": (13, 13), "obsTime": (16, 32), "ra": (33, 44), "dec": (45, 56), "mag": (66, 70),
    "stn": (78, 80), "sys": (33, 33), "pos1": (35, 45), "pos2": (46, 57), "pos3": (57, 69),
    "delay": (33, 47), "doppler": (48, 62), "frq": (63, 68), "trx": (69, 71), "com": (33, 33),
    "rmsDelay": (34, 47), "rmsDoppler": (48, 62),
}


_RE_DATE = re.compile(r"[12]\d{3} [01]\d [0-3]\d\.\d")


def _explain(field: str, line: str) -> str:
    msg = ""
    try:
        specific = _EXPLAIN.get(field)
        if specific is not None:
            msg = specific(line)
    except Exception:  # noqa: BLE001 - a reason must never break parsing
        msg = ""
    if not msg:
        a, b = _FIELD_COLUMNS.get(field, (1, 80))
        msg = f"columns {a}-{b} unreadable: {line[a - 1:b]!r}"
    return msg + _shift_hint(line)


def _shift_hint(line: str) -> str:
    """' (columns shifted ...)' when the date is found a few columns away from column 16."""
    if _RE_DATE.match(line, 15):
        return ""
    for k in (1, -1, 2, -2, 3, -3):
        if 15 + k >= 0 and _RE_DATE.match(line, 15 + k):
            way = "right" if k > 0 else "left"
            return (f" (the date starts in column {16 + k}, not 16: the line looks shifted "
                    f"{abs(k)} column{'s' if abs(k) > 1 else ''} to the {way})")
    return ""


def _explain_line(line: str) -> str:
    return _first_bad_char(line.encode("latin-1")) or "unreadable line"


def _explain_mode(line: str) -> str:
    return (f"column 15 {line[14]!r} is not an MPC note-2 code "
            "(one of blank, P, A, C, c, B, M, T, E, e, H, n, N, O, X, x, S, s, V, v, R, r)")


def _explain_id(line: str) -> str:
    try:
        designations.unpack_obs80_id(line[:12])
    except ValueError as exc:
        return str(exc)
    return ""


def _explain_disc(line: str) -> str:
    return f"column 13 (discovery flag) must be blank or '*', found {line[12]!r}"


def _explain_time(line: str) -> str:
    s = line[15:32]
    m = re.fullmatch(r"(\d{4}) (\d\d) (\d\d)\.(\d{1,6}) *", s)
    if not m:
        return f"columns 16-32 must read 'YYYY MM DD.dddddd' (UTC), found {s!r}"
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= mo <= 12:
        return f"month {mo} is not 1-12 in {s.strip()!r}"
    dim = int(_days_in_month(np.array([y]), np.array([mo]))[0])
    if not 1 <= d <= dim:
        return f"day {d} does not exist in {_MONTHS[mo]} {y} (1-{dim}) in {s.strip()!r}"
    return ""


def _explain_sexagesimal(line: str, field: str) -> str:
    if field == "ra":
        s, unit, top = line[32:44], "RA", 24
        body = s
        sign = ""
    else:
        s, unit, top = line[44:56], "Dec", 90
        sign, body = s[0], s[1:]
        if sign not in "+-":
            return f"Dec must start with '+' or '-' in column 45, found {s!r}"
    m = re.fullmatch(r"(\d\d) (\d\d)(?: (\d\d)(?:\.(\d+))? *|\.(\d+) *| *)", body)
    if not m:
        form = "HH MM SS.sss" if field == "ra" else "sDD MM SS.ss"
        a, b = _FIELD_COLUMNS[field]
        return f"columns {a}-{b} must read '{form}' (or minutes only), found {s!r}"
    a, b, c = int(m.group(1)), int(m.group(2)), m.group(3)
    if field == "ra" and a >= 24:
        return f"RA hours {a} must be below 24 in {s.strip()!r}"
    if b >= 60:
        return f"{unit} minutes {b} must be below 60 in {s.strip()!r}"
    if c is not None and int(c) >= 60:
        return f"{unit} seconds {int(c)} must be below 60 in {s.strip()!r}"
    if field == "dec":
        return f"|Dec| exceeds 90° in {s.strip()!r}"
    return f"{unit} outside its range in {s.strip()!r} (limit {top})"


def _explain_mag(line: str) -> str:
    return f"columns 66-70 must hold a magnitude like '18.9 ' or '21.93', found {line[65:70]!r}"


def _explain_stn(line: str) -> str:
    code = line[77:80]
    if not code.strip():
        return "missing observatory code (columns 78-80)"
    return f"observatory code in columns 78-80 must be 3 letters/digits, found {code!r}"


def _explain_sys(line: str) -> str:
    return f"column 33 of a satellite second line must be 1 (km) or 2 (AU), found {line[32]!r}"


def _explain_pos(line: str, j: int) -> str:
    if line[14] == "s":
        c0 = (34, 46, 58)[j]
        return (f"geocentric {'XYZ'[j]} in columns {c0 + 1}-{c0 + 11} must be a sign and a "
                f"number, found {line[c0:c0 + 11]!r}")
    a, b, what = ((35, 44, "east longitude 0-360°"), (46, 55, "latitude -90-+90°"),
                  (57, 61, "altitude in metres"))[j]
    return f"roving observer {what} in columns {a}-{b} unreadable: {line[a - 1:b]!r}"


def _explain_radar(field: str):
    def f(line: str) -> str:
        a, b = _FIELD_COLUMNS[field]
        if field == "com":
            return f"column 33 of a radar second line must be C or S, found {line[32]!r}"
        if field in ("trx",):
            return ("transmitter code in columns 69-71 must be 3 letters/digits, "
                    f"found {line[68:71]!r}")
        return f"radar {field} in columns {a}-{b} unreadable: {line[a - 1:b]!r}"
    return f


_EXPLAIN = {
    "line": _explain_line, "mode": _explain_mode, "permID": _explain_id, "provID": _explain_id,
    "trkSub": _explain_id, "disc": _explain_disc, "obsTime": _explain_time,
    "ra": lambda s: _explain_sexagesimal(s, "ra"), "dec": lambda s: _explain_sexagesimal(s, "dec"),
    "mag": _explain_mag, "stn": _explain_stn, "sys": _explain_sys,
    "pos1": lambda s: _explain_pos(s, 0), "pos2": lambda s: _explain_pos(s, 1),
    "pos3": lambda s: _explain_pos(s, 2),
    **{k: _explain_radar(k) for k in ("delay", "doppler", "frq", "trx", "com", "rmsDelay",
                                      "rmsDoppler")},
}


# ==============================================================================================
# public reading API
# ==============================================================================================
def parse(data: bytes, file: str, first_line: int = 1) -> ParseResult:
    """Parse obs80 bytes. ``first_line`` is the file line number of the first line in ``data``.

    Never raises on bad input: every non-blank line becomes part of an observation (``line`` is
    the first line of two-line records) or a :class:`Rejection` naming file, line, field, reason.
    """
    return _Chunk(bytes(data), file, first_line).run()


def iter_parse(stream: BinaryIO, file: str, chunk_bytes: int = 8 << 20) -> Iterator[ParseResult]:
    """Parse a binary stream chunk by chunk in about ``chunk_bytes`` of memory.

    Chunks are cut after the last complete line, never between the two lines of a satellite,
    roving or radar record; line numbers are those of the whole file. A single "line" longer
    than ``chunk_bytes`` is rejected without being held in memory.
    """
    chunk_bytes = max(int(chunk_bytes), 1024)
    line_no = 1
    pending = b""
    skipping = False  # inside an over-long line: discard until its newline
    while True:
        block = stream.read(chunk_bytes)
        if not block:
            break
        if skipping:
            k = block.find(b"\n")
            if k < 0:
                continue
            block = block[k + 1:]
            skipping = False
            if not block:
                continue
        buf = pending + block if pending else block
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            if len(buf) > chunk_bytes + LINE_WIDTH * 4:
                yield _overlong(file, line_no, buf)
                line_no += 1
                pending, skipping = b"", True
            else:
                pending = buf
            continue
        # never end a chunk on the first line of a two-line record
        last_start = buf.rfind(b"\n", 0, cut - 1) + 1
        if cut - last_start > 15 and buf[last_start + 14:last_start + 15] in (b"S", b"V", b"R"):
            if last_start == 0:
                pending = buf
                continue
            cut = last_start
        part, pending = buf[:cut], buf[cut:]
        res = parse(part, file, line_no)
        line_no += res.n_lines
        yield res
    if pending:
        yield parse(pending, file, line_no)


def _overlong(file: str, line_no: int, head: bytes) -> ParseResult:
    rej = Rejection(file, line_no, "line",
                    f"line longer than {len(head)} bytes without a line break; an obs80 record "
                    "has 80 columns", head[:LINE_WIDTH].decode("utf-8", errors="replace"))
    return ParseResult(ObservationBatch.empty(), [rej], FORMAT, 1)


# ==============================================================================================
# writing
# ==============================================================================================
def _fmt_date(mjd: float, prec_time: float) -> str:
    if not np.isfinite(prec_time) or prec_time <= 0:
        nd = 6
    else:
        nd = round(6 - math.log10(prec_time))
    nd = min(max(nd, 1), 6)
    units = round(mjd * 10**nd)
    day, frac = divmod(units, 10**nd)
    y, m, d = (int(v[0]) for v in _civil_from_days(np.array([day])))
    return f"{y:04d} {m:02d} {d:02d}.{frac:0{nd}d}".ljust(17)


def _is_minutes_form(prec: float) -> bool:
    if not np.isfinite(prec) or prec <= 0:
        return False
    x = math.log10(prec / 6.0)
    return abs(x - round(x)) < 1e-6


def _fmt_sexagesimal(value: float, prec: float, per_unit: int, max_sec_dec: int,
                     max_min_dec: int) -> str:
    """value in hours (RA) or degrees (Dec, absolute value) -> 'AA BB SS.sss' / 'AA BB.bbb'."""
    if _is_minutes_form(prec):
        nd = min(max(round(-math.log10(prec / 60.0)), 0), max_min_dec)
        units = round(value * 60 * 10**nd)
        a, rest = divmod(units, 60 * 10**nd)
        if per_unit and a >= per_unit:
            a -= per_unit
        b, f = divmod(rest, 10**nd)
        return f"{a:02d} {b:02d}" + (f".{f:0{nd}d}" if nd else "")
    if not np.isfinite(prec) or prec <= 0:
        nd = max_sec_dec
    else:
        nd = min(max(round(-math.log10(prec)), 0), max_sec_dec)
    units = round(value * 3600 * 10**nd)
    a, rest = divmod(units, 3600 * 10**nd)
    if per_unit and a >= per_unit:
        a -= per_unit
    b, rest = divmod(rest, 60 * 10**nd)
    s, f = divmod(rest, 10**nd)
    return f"{a:02d} {b:02d} {s:02d}" + (f".{f:0{nd}d}" if nd else "")


def _fmt_mag(mag: float) -> str:
    if not np.isfinite(mag):
        return "     "
    if abs(mag * 10 - round(mag * 10)) < 1e-6:
        return f"{mag:4.1f} "
    return f"{mag:5.2f}"


def _fmt_signed(v: float, width: int, max_dec: int) -> str:
    """Sign + right-justified number in ``width`` characters, as many decimals as fit."""
    sign = "-" if v < 0 or (v == 0 and math.copysign(1, v) < 0) else "+"
    if not np.isfinite(v):
        raise ValueError("observer position incomplete")
    a = abs(v)
    int_digits = len(str(int(a)))
    nd = max(0, min(max_dec, width - int_digits - 1))
    text = f"{a:{width}.{nd}f}"
    if len(text) > width:
        raise ValueError(f"observer coordinate {v} does not fit {width} columns")
    return sign + text


def _fixed(v: float, int_w: int, frac_w: int) -> str:
    """Value -> integer part right-justified in int_w + fraction digits (trailing zeros dropped)."""
    if not np.isfinite(v):
        return " " * (int_w + frac_w)
    units = round(abs(v) * 10**frac_w)
    ip, fp = divmod(units, 10**frac_w)
    frac = f"{fp:0{frac_w}d}".rstrip("0")
    return f"{ip:>{int_w}d}" + frac.ljust(frac_w)


def format_record(row: dict) -> list[str]:
    """One batch row (as from ``ObservationBatch.records()``) -> its obs80 line(s) from the fields.

    Raises ValueError when the record cannot be written in obs80.
    """
    g = lambda k: row.get(k) or ""
    num = lambda k: row.get(k) if row.get(k) is not None else float("nan")
    ident = designations.pack_obs80_id(g("permID"), g("provID"), g("trkSub"))
    disc = "*" if g("disc") == "*" else " "
    notes, prog = g("notes"), g("prog")
    note1 = unpack_prog(prog) if prog else (notes[0] if notes else " ")
    stn = g("stn")
    if len(stn) != 3:
        raise ValueError(f"observatory code {stn!r} does not fit columns 78-80")
    mjd = num("obsTime_mjd")
    if not np.isfinite(mjd):
        raise ValueError("no observation time")
    date = _fmt_date(mjd, num("precTime"))
    ref = pack_ref(g("ref")) if g("ref") else "     "
    if g("kind") == "radar":
        return _format_radar(row, ident, disc, note1, date, ref)
    sys_ = g("sys")
    if row.get("deprecated"):
        note2 = "X"
    elif sys_ == "WGS84":
        note2 = "V"
    elif sys_ in ("ICRF_KM", "ICRF_AU"):
        note2 = "S"
    elif sys_:
        raise ValueError(f"observer position system {sys_!r} cannot be written in obs80")
    else:
        note2 = NOTE2_OF_MODE.get(g("mode"), " ")
    ra, dec = num("ra"), num("dec")
    if not (np.isfinite(ra) and np.isfinite(dec)):
        raise ValueError("optical record without RA/Dec")
    ra_s = _fmt_sexagesimal((ra % 360.0) / 15.0, num("precRA"), 24, 3, 6).ljust(12)
    dsign = "-" if dec < 0 or (dec == 0 and math.copysign(1, dec) < 0) else "+"
    dec_s = (dsign + _fmt_sexagesimal(abs(dec), num("precDec"), 0, 2, 5)).ljust(12)
    band = g("band")[:1] or " "
    cat = g("astCat")
    cat_c = _AST_CAT_LETTER.get(cat, cat if len(cat) == 1 else " ")
    first = (ident + disc + note1 + note2 + date + ra_s + dec_s + " " * 9 + _fmt_mag(num("mag"))
             + band + cat_c + ref + stn)
    if len(first) != LINE_WIDTH:
        raise ValueError(f"record does not fit 80 columns: {first!r}")
    if note2 not in "SV" or not sys_:
        return [first]
    p1, p2, p3 = num("pos1"), num("pos2"), num("pos3")
    if note2 == "S":
        unit = "1" if sys_ == "ICRF_KM" else "2"
        maxd = 4 if unit == "1" else 8
        body = (unit + " " + _fmt_signed(p1, 10, maxd) + " " + _fmt_signed(p2, 10, maxd) + " "
                + _fmt_signed(p3, 10, maxd) + "  ")
    else:
        body = f"1 {p1:9.5f}  {p2:+09.5f}  {p3:5.0f}".ljust(39)
    # the discovery asterisk is not repeated on the second line
    second = ident + " " + note1 + note2.lower() + date + body + " " + ref + stn
    if len(second) != LINE_WIDTH:
        raise ValueError(f"second line does not fit 80 columns: {second!r}")
    return [first, second]


def _format_radar(row, ident, disc, note1, date, ref) -> list[str]:
    num = lambda k: row.get(k) if row.get(k) is not None else float("nan")
    trx, rcv = row.get("trx") or "", row.get("rcv") or row.get("stn") or ""
    if len(trx) != 3 or len(rcv) != 3:
        raise ValueError("radar record needs 3-character transmitter and receiver codes")
    delay = num("delay")
    delay_s = _fixed(delay * 1e6 if np.isfinite(delay) else delay, 11, 4)
    dop = num("doppler")
    dop_s = (" " * 15 if not np.isfinite(dop)
             else ("-" if dop < 0 else "+") + _fixed(abs(dop), 10, 4))
    frq = num("frq")
    if np.isfinite(frq):
        digits = f"{frq:.7f}".rstrip("0")
        ip, _, dp = digits.partition(".")
        frq1 = f"{int(ip):>5d}" + (dp[:1] or " ")
        frq2 = dp[1:7].ljust(6)
    else:
        frq1, frq2 = " " * 6, " " * 6
    com = "C" if row.get("com") == "1" else "S"
    first = ident + disc + note1 + "R" + date + delay_s + dop_s + frq1 + trx + " " + ref + rcv
    second = (ident + " " + note1 + "r" + date + com + _fixed(num("rmsDelay"), 10, 4)
              + _fixed(num("rmsDoppler"), 11, 4) + frq2 + trx + " " + ref + rcv)
    for s in (first, second):
        if len(s) != LINE_WIDTH:
            raise ValueError(f"radar record does not fit 80 columns: {s!r}")
    return [first, second]


def _raw_lines(raw: str) -> list[str] | None:
    """The raw text as obs80 lines when it is obs80 (one or two 80-column lines), else None."""
    if not raw:
        return None
    lines = raw.split("\n")
    if not 1 <= len(lines) <= 2 or any(len(s) != LINE_WIDTH for s in lines):
        return None
    if len(lines) == 2 and lines[1][14:15] != lines[0][14:15].lower():
        return None
    if len(lines) == 1 and lines[0][14:15] in ("S", "V", "R", "s", "v", "r"):
        return None
    return lines


def write(batch: ObservationBatch, use_raw: bool = True,
          skipped: list[tuple[int, str]] | None = None) -> str:
    """obs80 text for the records of ``batch`` that fit the format, one line (two for satellite,
    roving and radar records) each, newline-terminated.

    With ``use_raw`` a record read from obs80 is written back byte for byte from its ``raw``
    column; otherwise (and for records from other formats) the lines are formatted from the
    fields (see the module docstring for what obs80 cannot carry). Records that cannot be written
    are left out; their row index and the reason are appended to ``skipped`` when given.
    """
    out: list[str] = []
    raws = batch["raw"].tolist() if use_raw else None
    cols = batch.columns
    for i in range(len(batch)):
        if raws is not None:
            lines = _raw_lines(raws[i])
            if lines is not None:
                out.extend(lines)
                continue
        row = {k: v[i] for k, v in cols.items()}
        row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        try:
            out.extend(format_record(row))
        except ValueError as exc:
            if skipped is not None:
                skipped.append((i, str(exc)))
    return "".join(s + "\n" for s in out)


def write_stream(batch: ObservationBatch, stream: io.TextIOBase, use_raw: bool = True) -> int:
    """Write :func:`write`'s text to a text stream; returns the number of characters written."""
    text = write(batch, use_raw=use_raw)
    stream.write(text)
    return len(text)
