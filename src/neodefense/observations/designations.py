"""MPC designations: packed <-> unpacked forms, the obs80 12-column identifier, and user input.

Forms handled (the MPC's "Packed designations" conventions):

* **Permanent minor-planet numbers** (5 characters): ``00433`` = 433, ``A1955`` = 101955 (a letter
  replaces the leading digits: A-Z = 10-35, a-z = 36-61, up to ``z9999`` = 619999), and the tilde
  form for numbers from 620000: ``~`` + four base-62 digits (``~0000`` = 620000, ``~zzzz`` =
  15396335).
* **Provisional minor-planet designations** (7 characters): ``K08T03C`` = 2008 TC3. Century letter
  (I = 18xx, J = 19xx, K = 20xx), two year digits, half-month letter, the cycle count in two
  characters (the first becomes a letter, A-Z then a-z, for counts of 100 and more: ``J95Xa1A`` =
  1995 XA361), the second letter. Survey designations: ``PLS2040`` = 2040 P-L, ``T1S3138`` =
  3138 T-1 (also T-2, T-3). The extended form for cycle counts of 620 and more:
  ``_`` + year letter (A = 2010 ... Z = 2035) + half-month + four base-62 digits of
  (25 · cycle + order − 15500): ``_QC0aEM`` = 2026 CZ6190.
* **Comets**: numbered periodic comets ``0001P`` = 1P (fragments: 73P-B), provisional comet
  designations packed in 8 characters with their orbit-type letter ``CJ95O010`` = C/1995 O1,
  ``PK19L02D`` = P/2019 LD2 (comets given an asteroid-style designation), fragments
  ``PJ30J01b`` = P/1930 J1-B.
* **Natural satellites**: ``J013S`` = Jupiter XIII (written here "Jupiter 13", as ADES-Master
  does), provisional ``SK19S010`` = S/2019 S 1.

In the obs80 record the 12 identifier columns hold the packed number (columns 1-5; for comets the
number in 1-4 and the orbit type in 5) and the packed provisional or a temporary designation (the
observer's "trkSub") in columns 6-12: :func:`unpack_obs80_id` / :func:`pack_obs80_id`.

:func:`normalize` turns anything a user types into the canonical unpacked designation
(``"(99942) Apophis"`` -> ``"99942"``, ``"2008tc3"`` -> ``"2008 TC3"``) or a cleaned-up name.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = [
    "MAX_NUMBER",
    "is_comet",
    "is_permanent",
    "is_provisional",
    "normalize",
    "pack",
    "pack_obs80_id",
    "unpack",
    "unpack_obs80_id",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_VALUE = {c: i for i, c in enumerate(_B62)}
#: Half-month letters (A = Jan 1-15 ... Y = Dec 16-31; no I, no Z).
_HALF_MONTHS = "ABCDEFGHJKLMNOPQRSTUVWXY"
#: Second letters of a provisional designation (25 of them: no I).
_ORDER_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
_CENTURY = {"I": 18, "J": 19, "K": 20, "L": 21}
_CENTURY_LETTER = {v: k for k, v in _CENTURY.items()}
_SURVEYS = {"PL": "P-L", "T1": "T-1", "T2": "T-2", "T3": "T-3"}
_SURVEY_CODES = {v: k for k, v in _SURVEYS.items()}
_PLANETS = {"J": "Jupiter", "S": "Saturn", "U": "Uranus", "N": "Neptune"}
_PLANET_LETTERS = {v: k for k, v in _PLANETS.items()}
_COMET_TYPES = "PCDXIA"

#: Largest minor-planet number the packed forms can hold (``~zzzz``).
MAX_NUMBER = 620_000 + 62**4 - 1
#: Extended provisional form: first cycle count it is used for, and the offset it subtracts.
_EXTENDED_FIRST_CYCLE = 620
_EXTENDED_OFFSET = 15_500

_RE_PACKED_NUMBER = re.compile(r"[0-9A-Za-z]\d{4}|~[0-9A-Za-z]{4}")
_RE_PACKED_PROV = re.compile(r"([IJKL])(\d\d)([A-HJ-Y])([0-9A-Za-z])(\d)([A-HJ-Z])")
_RE_PACKED_SURVEY = re.compile(r"(PL|T1|T2|T3)S(\d{4})")
_RE_PACKED_EXTENDED = re.compile(r"_([A-Z])([A-HJ-Y])([0-9A-Za-z]{4})")  # year letter A-Z
_RE_PACKED_COMET_PROV = re.compile(r"([IJKL])(\d\d)([A-HJ-Y])([0-9A-Za-z])(\d)([0A-Za-z])")
_RE_PACKED_COMET_NUMBER = re.compile(r"(\d{4})([PDI])")
_RE_PACKED_SATELLITE = re.compile(r"([JSUN])(\d{3})S")
_RE_PACKED_SATELLITE_PROV = re.compile(r"([IJKL])(\d\d)([JSUN])([0-9A-Za-z])(\d)0")

_RE_PROV = re.compile(r"(\d{4}) ?([A-HJ-Y])([A-HJ-Z])(\d*)", re.IGNORECASE)
_RE_SURVEY = re.compile(r"(\d{4}) ?(P-L|T-1|T-2|T-3)", re.IGNORECASE)
_RE_COMET_NUMBER = re.compile(r"(\d{1,4})([PDI])(?:-([A-Z]{1,2}))?(?:/.*)?", re.IGNORECASE)
_RE_COMET_PROV = re.compile(
    r"([PCDXIA])/ ?(\d{4}) ?([A-HJ-Y])([A-HJ-Z]?)(\d*)(?:-([A-Z]))?(?: ?\(.*\))?", re.IGNORECASE
)
_RE_SATELLITE_PROV = re.compile(r"S/ ?(\d{4}) ?([JSUN]) ?(\d+)", re.IGNORECASE)
_RE_NUMBER_NAME = re.compile(r"\(? ?(\d+) ?\)?(?: (.+))?")
_RE_TRKSUB = re.compile(r"[A-Za-z0-9]{1,8}")

#: Characters never part of a designation or a minor-planet name (SQL, shell and markup syntax).
_FORBIDDEN = set(';=<>{}[]|\\`"*%$#@!?^&+,:')
#: Longest input accepted by :func:`normalize` (the longest MPC names are under 40 characters).
MAX_INPUT_LENGTH = 64


# ----------------------------------------------------------------------------------------------
# permanent numbers
# ----------------------------------------------------------------------------------------------
def _unpack_number(packed: str) -> int:
    if not _RE_PACKED_NUMBER.fullmatch(packed):
        raise ValueError(f"{packed!r} is not a packed minor-planet number")
    if packed[0] == "~":
        n = 0
        for c in packed[1:]:
            n = n * 62 + _B62_VALUE[c]
        n += 620_000
    else:
        n = _B62_VALUE[packed[0]] * 10_000 + int(packed[1:])
    if n == 0:
        raise ValueError(f"{packed!r}: minor-planet number 0 does not exist")
    return n


def _pack_number(n: int) -> str:
    if not 0 < n <= MAX_NUMBER:
        raise ValueError(f"minor-planet number {n} outside 1..{MAX_NUMBER}")
    if n < 620_000:
        return _B62[n // 10_000] + f"{n % 10_000:04d}"
    n -= 620_000
    digits = []
    for _ in range(4):
        n, r = divmod(n, 62)
        digits.append(_B62[r])
    return "~" + "".join(reversed(digits))


# ----------------------------------------------------------------------------------------------
# provisional designations
# ----------------------------------------------------------------------------------------------
def _cycle(letter: str, digit: str) -> int:
    return _B62_VALUE[letter] * 10 + int(digit)


def _pack_cycle(n: int) -> str:
    if not 0 <= n < _EXTENDED_FIRST_CYCLE:
        raise ValueError(f"cycle count {n} does not fit the 2-character packed form")
    return _B62[n // 10] + str(n % 10)


def _year(century_letter: str, yy: str) -> int:
    return _CENTURY[century_letter] * 100 + int(yy)


def _pack_year(year: int) -> str:
    century, yy = divmod(year, 100)
    if century not in _CENTURY_LETTER:
        raise ValueError(f"year {year} outside 1800-2199")
    return _CENTURY_LETTER[century] + f"{yy:02d}"


def _unpack_provisional(packed: str) -> str:
    """7-character packed minor-planet provisional (regular, survey or extended) -> unpacked."""
    m = _RE_PACKED_PROV.fullmatch(packed)
    if m:
        c, yy, half, cl, cd, order = m.groups()
        n = _cycle(cl, cd)
        return f"{_year(c, yy)} {half}{order}{n if n else ''}"
    m = _RE_PACKED_SURVEY.fullmatch(packed)
    if m:
        return f"{m.group(2)} {_SURVEYS[m.group(1)]}"
    m = _RE_PACKED_EXTENDED.fullmatch(packed)
    if m:
        yl, half, b62 = m.groups()
        year = 2000 + _B62_VALUE[yl]
        k = 0
        for ch in b62:
            k = k * 62 + _B62_VALUE[ch]
        k += _EXTENDED_OFFSET
        cycle, order = divmod(k, 25)
        return f"{year} {half}{_ORDER_LETTERS[order]}{cycle}"
    raise ValueError(f"{packed!r} is not a packed provisional designation")


def _pack_provisional(year: int, half: str, order: str, cycle: int) -> str:
    if cycle >= _EXTENDED_FIRST_CYCLE:
        if not 2010 <= year <= 2035:  # year letter A-Z = 2010-2035
            raise ValueError(f"extended provisional form needs a year 2010-2035, got {year}")
        k = cycle * 25 + _ORDER_LETTERS.index(order) - _EXTENDED_OFFSET
        if k >= 62**4:
            raise ValueError(f"cycle count {cycle} too large for the extended packed form")
        digits = []
        for _ in range(4):
            k, r = divmod(k, 62)
            digits.append(_B62[r])
        return "_" + _B62[year - 2000] + half + "".join(reversed(digits))
    return _pack_year(year) + half + _pack_cycle(cycle) + order


def _unpack_comet_provisional(kind: str, packed: str) -> str:
    m = _RE_PACKED_COMET_PROV.fullmatch(packed)
    if not m:
        raise ValueError(f"{packed!r} is not a packed comet provisional designation")
    c, yy, half, cl, cd, last = m.groups()
    n = _cycle(cl, cd)
    base = f"{kind}/{_year(c, yy)} {half}"
    if last == "0":
        if n == 0:
            raise ValueError(f"{packed!r}: comet provisional number 0 does not exist")
        return f"{base}{n}"
    if last.isupper():  # asteroid-style designation given to a comet, e.g. P/2019 LD2
        if last == "I":
            raise ValueError(f"{packed!r}: 'I' is not a designation letter")
        return f"{base}{last}{n if n else ''}"
    if n == 0:
        raise ValueError(f"{packed!r}: comet provisional number 0 does not exist")
    return f"{base}{n}-{last.upper()}"  # fragment


def _unpack_satellite_provisional(packed: str) -> str:
    m = _RE_PACKED_SATELLITE_PROV.fullmatch(packed)
    if not m:
        raise ValueError(f"{packed!r} is not a packed natural-satellite provisional designation")
    c, yy, planet, cl, cd = m.groups()
    return f"S/{_year(c, yy)} {planet} {_cycle(cl, cd)}"


# ----------------------------------------------------------------------------------------------
# public: stand-alone packed forms
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def unpack(packed: str) -> str:
    """Unpack one packed designation (5, 7 or 8 characters; or a 12-column obs80 identifier).

    Raises ValueError for anything that is not a valid packed form (TypeError for non-strings).
    """
    if not isinstance(packed, str):
        raise TypeError(f"packed designation must be a string, not {type(packed).__name__}")
    if len(packed) == 12:
        perm, prov, trk = unpack_obs80_id(packed)
        best = perm or prov or trk
        if not best:
            raise ValueError("the 12 identifier columns are blank")
        return best
    s = packed.strip()
    if len(s) == 5:
        if _RE_PACKED_NUMBER.fullmatch(s):
            return str(_unpack_number(s))
        m = _RE_PACKED_COMET_NUMBER.fullmatch(s)
        if m:
            n = int(m.group(1))
            if n == 0:
                raise ValueError(f"{s!r}: comet number 0 does not exist")
            return f"{n}{m.group(2)}"
        m = _RE_PACKED_SATELLITE.fullmatch(s)
        if m:
            n = int(m.group(2))
            if n == 0:
                raise ValueError(f"{s!r}: satellite number 0 does not exist")
            return f"{_PLANETS[m.group(1)]} {n}"
    elif len(s) == 7:
        return _unpack_provisional(s)
    elif len(s) == 8:
        if s[0] == "S" and _RE_PACKED_SATELLITE_PROV.fullmatch(s[1:]):
            return _unpack_satellite_provisional(s[1:])
        if s[0] in _COMET_TYPES:
            return _unpack_comet_provisional(s[0], s[1:])
    raise ValueError(f"{packed!r} is not a packed MPC designation")


@functools.lru_cache(maxsize=65536)
def pack(unpacked: str) -> str:
    """Pack one unpacked designation ('433', '2008 TC3', '2040 P-L', '1P', 'C/1995 O1', ...).

    Numbered comet fragments ('73P-B') have no stand-alone packed form (use
    :func:`pack_obs80_id`). Raises ValueError for anything else.
    """
    s = " ".join(str(unpacked).split())
    if s.isdigit():
        return _pack_number(int(s))
    m = re.fullmatch(r"(\d{4}) ([A-HJ-Y])([A-HJ-Z])(\d*)", s)
    if m:
        year, half, order, cyc = m.groups()
        if cyc.startswith("0"):
            raise ValueError(f"{s!r}: cycle count with a leading zero")
        return _pack_provisional(int(year), half, order, int(cyc or 0))
    m = re.fullmatch(r"(\d{4}) (P-L|T-1|T-2|T-3)", s)
    if m:
        return f"{_SURVEY_CODES[m.group(2)]}S{m.group(1)}"
    m = re.fullmatch(r"(\d{1,4})([PDI])", s)
    if m and int(m.group(1)) > 0:
        return f"{int(m.group(1)):04d}{m.group(2)}"
    m = re.fullmatch(r"([PCDXIA])/(\d{4}) ([A-HJ-Y])([A-HJ-Z]?)(\d*)(?:-([A-Z]))?", s)
    if m:
        kind, year, half, letter, num, frag = m.groups()
        n = int(num or 0)
        if letter:
            if frag:
                raise ValueError(f"{s!r}: fragment of an asteroid-style comet designation")
            return kind + _pack_year(int(year)) + half + _pack_cycle(n) + letter
        if n == 0:
            raise ValueError(f"{s!r}: comet provisional designations need a number")
        last = frag.lower() if frag else "0"
        return kind + _pack_year(int(year)) + half + _pack_cycle(n) + last
    m = re.fullmatch(r"S/(\d{4}) ([JSUN]) (\d+)", s)
    if m:
        return "S" + _pack_year(int(m.group(1))) + m.group(2) + _pack_cycle(int(m.group(3))) + "0"
    m = re.fullmatch(r"(Jupiter|Saturn|Uranus|Neptune) (\d+)", s)
    if m and 0 < int(m.group(2)) < 1000:
        return f"{_PLANET_LETTERS[m.group(1)]}{int(m.group(2)):03d}S"
    raise ValueError(f"{unpacked!r} is not a designation with a packed form")


# ----------------------------------------------------------------------------------------------
# the obs80 identifier (columns 1-12)
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def unpack_obs80_id(field: str) -> tuple[str, str, str]:
    """Columns 1-12 of an obs80 record -> ``(permID, provID, trkSub)``, "" where absent.

    Raises ValueError naming the columns at fault when the field is not a valid identifier.
    """
    f = field.ljust(12)
    if len(f) != 12:
        raise ValueError(f"identifier field is {len(field)} characters, not 12")
    num, prov = f[:5], f[5:]
    if num == "     " and prov == "       ":
        return "", "", ""
    # comets: number in columns 1-4 (or blank), orbit type in column 5
    if num[4] in _COMET_TYPES and (num[:4].isdigit() or num[:4] == "    "):
        kind = num[4]
        perm = ""
        if num[:4] != "    ":
            n = int(num[:4])
            if n == 0 or kind not in "PDI":
                raise ValueError(f"columns 1-5 {num!r}: not a numbered comet (nnnnP, nnnnD, nnnnI)")
            perm = f"{n}{kind}"
        provid = ""
        if prov.strip():
            if perm and prov[:5] == "     " and re.fullmatch(r"[a-z ][a-z]", prov[5:]):
                return f"{perm}-{prov[5:].strip().upper()}", "", ""
            try:
                provid = _unpack_comet_provisional(kind, prov)
            except ValueError:
                raise ValueError(
                    f"columns 6-12 {prov!r}: not a packed comet provisional designation"
                ) from None
        elif not perm:
            raise ValueError(f"columns 1-12 {f!r}: comet orbit type without a designation")
        return perm, provid, ""
    # natural satellites: planet letter + 3 digits + 'S' (or blank number + 'S')
    if num[4] == "S" and (num == "    S" or _RE_PACKED_SATELLITE.fullmatch(num)):
        perm = ""
        if num != "    S":
            n = int(num[1:4])
            if n == 0:
                raise ValueError(f"columns 1-5 {num!r}: satellite number 0 does not exist")
            perm = f"{_PLANETS[num[0]]} {n}"
        provid = ""
        if prov.strip():
            try:
                provid = _unpack_satellite_provisional(prov)
            except ValueError:
                raise ValueError(
                    f"columns 6-12 {prov!r}: not a packed natural-satellite designation"
                ) from None
        return perm, provid, ""
    # minor planets
    perm = ""
    if num != "     ":
        try:
            perm = str(_unpack_number(num))
        except ValueError as exc:
            raise ValueError(f"columns 1-5 {num!r}: {exc}") from None
    provid = trk = ""
    body = prov.strip()
    if body:
        try:
            provid = _unpack_provisional(prov)
        except ValueError:
            if not _RE_TRKSUB.fullmatch(body):
                raise ValueError(
                    f"columns 6-12 {prov!r}: neither a packed provisional designation nor a "
                    "temporary designation (letters and digits only)"
                ) from None
            trk = body
    return perm, provid, trk


def pack_obs80_id(perm_id: str = "", prov_id: str = "", trk_sub: str = "") -> str:
    """``(permID, provID, trkSub)`` -> the 12 identifier columns of an obs80 record."""
    perm_id, prov_id = (perm_id or "").strip(), (prov_id or "").strip()
    trk_sub = (trk_sub or "").strip()
    num = "     "
    body = "       "
    comet_kind = ""
    if perm_id:
        m = re.fullmatch(r"(\d{1,4})([PDI])(?:-([A-Z]{1,2}))?", perm_id)
        if m:
            comet_kind = m.group(2)
            num = f"{int(m.group(1)):04d}{comet_kind}"
            if m.group(3):
                body = "     " + m.group(3).lower().rjust(2)
        else:
            num = pack(perm_id)
            if len(num) != 5:
                raise ValueError(f"permID {perm_id!r} has no 5-character packed form")
    if prov_id:
        packed = pack(prov_id)
        if len(packed) == 8:  # comet or natural-satellite provisional: type letter in column 5
            kind = packed[0]
            if comet_kind and kind != comet_kind:
                raise ValueError(f"permID {perm_id!r} and provID {prov_id!r} disagree on type")
            if num == "     ":
                num = "    " + kind
            body = packed[1:]
        elif len(packed) == 7:
            body = packed
        else:
            raise ValueError(f"provID {prov_id!r} has no 7-character packed form")
    elif trk_sub:
        if not _RE_TRKSUB.fullmatch(trk_sub) or len(trk_sub) > 7:
            raise ValueError(f"trkSub {trk_sub!r} does not fit columns 6-12 (1-7 letters/digits)")
        body = trk_sub.ljust(7)
    return num + body


# ----------------------------------------------------------------------------------------------
# classification helpers (unpacked designations)
# ----------------------------------------------------------------------------------------------
def is_permanent(desig: str) -> bool:
    """True for a numbered minor planet ('433') or a numbered comet ('1P', '73P-B')."""
    s = desig.strip()
    if s.isdigit():
        return 0 < int(s) <= MAX_NUMBER
    return bool(re.fullmatch(r"[1-9]\d{0,3}[PDI](?:-[A-Z]{1,2})?", s))


def is_provisional(desig: str) -> bool:
    """True for an unpacked provisional designation (minor planet, survey, comet, satellite)."""
    s = desig.strip()
    return bool(
        re.fullmatch(r"\d{4} [A-HJ-Y][A-HJ-Z](?:[1-9]\d*)?", s)
        or re.fullmatch(r"\d{4} (?:P-L|T-1|T-2|T-3)", s)
        or re.fullmatch(r"[PCDXIA]/\d{4} [A-HJ-Y](?:[A-HJ-Z]\d*|[1-9]\d*)(?:-[A-Z])?", s)
        or re.fullmatch(r"S/\d{4} [JSUN] [1-9]\d*", s)
    )


def is_comet(desig: str) -> bool:
    """True for comet designations ('1P', '73P-B', 'C/1995 O1')."""
    s = desig.strip()
    return bool(re.fullmatch(r"\d{1,4}[PDI](?:-[A-Z]{1,2})?", s) or re.fullmatch(r"[PCDXIA]/.+", s))


# ----------------------------------------------------------------------------------------------
# user input
# ----------------------------------------------------------------------------------------------
def _clean_name(name: str) -> str:
    """Single spaces; words capitalized when the name was typed all in one case."""
    for _ in range(3):  # a few scripts need a second pass to settle ('ß' -> 'Ss')
        words = name.split()
        if name == name.lower() or name == name.upper():
            words = [w[:1].title() + w[1:].lower() for w in words]
        cleaned = " ".join(words)
        if cleaned == name:
            break
        name = cleaned
    return name


def normalize(text: str) -> str:
    """Canonical unpacked designation for anything a user may type; a cleaned name otherwise.

    ``'2008 TC3'``, ``'2008tc3'``, ``'K08T03C'`` -> ``'2008 TC3'``; ``'99942'``, ``'(99942)'``,
    ``'(99942) Apophis'``, ``'99942 Apophis'``, ``'~0000'``-style packed numbers, ``'00433'``
    -> the number as a plain integer string; ``'1P'``, ``'1P/Halley'``, ``'0001P'`` -> ``'1P'``;
    ``'C/2020 F3 (NEOWISE)'``, ``'CK20F030'`` -> ``'C/2020 F3'``. A bare name (``'apophis'``) comes
    back stripped, with single spaces, title-cased when typed all in one case (the catalog resolves
    names through its alias table); a temporary designation (letters and digits, ≤ 8) comes back
    as typed.

    Raises ValueError (with the reason) for empty input, control characters, input longer than
    :data:`MAX_INPUT_LENGTH`, characters that never occur in designations or names (``; = " *`` …,
    ``--``, ``/*``), and anything else it cannot read.
    """
    if not isinstance(text, str):
        # a user-input boundary: callers catch ValueError for anything unusable
        raise ValueError(f"designation must be text, not {type(text).__name__}")  # noqa: TRY004
    if len(text) > 4 * MAX_INPUT_LENGTH:
        raise ValueError(f"designation too long ({len(text)} characters; "
                         f"at most {MAX_INPUT_LENGTH})")
    s = unicodedata.normalize("NFKC", text)
    for ch in s:
        cat = unicodedata.category(ch)
        if cat[0] == "C" and ch not in " \t":
            raise ValueError("designation contains a control or invalid character "
                             f"(U+{ord(ch):04X})")
    s = " ".join(s.split())
    if not s:
        raise ValueError("designation is empty")
    if len(s) > MAX_INPUT_LENGTH:
        raise ValueError(f"designation too long ({len(s)} characters; at most {MAX_INPUT_LENGTH})")
    bad = sorted({ch for ch in s if ch in _FORBIDDEN})
    if bad:
        raise ValueError(f"character(s) {''.join(bad)!r} cannot occur in a designation or name")
    if "--" in s or "/*" in s or "*/" in s:
        raise ValueError("'--' and '/*' cannot occur in a designation or name")

    # packed forms (case-sensitive: the cycle letters of packed designations are)
    if len(s) in (5, 7, 8) and " " not in s:
        try:
            return unpack(s)
        except ValueError:
            pass
    # provisional designations, survey designations
    m = _RE_PROV.fullmatch(s)
    if m:
        year, half, order, cyc = m.groups()
        return f"{year} {half.upper()}{order.upper()}{int(cyc) if cyc and int(cyc) else ''}"
    m = _RE_SURVEY.fullmatch(s)
    if m:
        return f"{m.group(1)} {m.group(2).upper()}"
    # comets
    m = _RE_COMET_NUMBER.fullmatch(s)
    if m and int(m.group(1)) > 0:
        frag = f"-{m.group(3).upper()}" if m.group(3) else ""
        return f"{int(m.group(1))}{m.group(2).upper()}{frag}"
    m = _RE_COMET_PROV.fullmatch(s)
    if m:
        kind, year, half, letter, num, frag = m.groups()
        n = int(num) if num else 0
        if letter or n:
            out = f"{kind.upper()}/{year} {half.upper()}{letter.upper()}{n if n else ''}"
            return out + (f"-{frag.upper()}" if frag else "")
    m = _RE_SATELLITE_PROV.fullmatch(s)
    if m and int(m.group(3)) > 0:
        return f"S/{m.group(1)} {m.group(2).upper()} {int(m.group(3))}"
    # numbers, with or without parentheses and a name
    m = _RE_NUMBER_NAME.fullmatch(s)
    if m and (m.group(2) is None or not m.group(2)[0].isdigit()):
        if s.count("(") != s.count(")"):
            raise ValueError(f"unbalanced parentheses in {s!r}")
        n = int(m.group(1))
        if not 0 < n <= MAX_NUMBER:
            raise ValueError(f"minor-planet number {n} outside 1..{MAX_NUMBER}")
        return str(n)
    # temporary designations (NEO Confirmation Page trkSubs): letters and digits with a digit
    if _RE_TRKSUB.fullmatch(s) and any(c.isdigit() for c in s) and any(c.isalpha() for c in s):
        return s
    # names: letters (any script), spaces, apostrophes, hyphens, periods
    if any(c.isalpha() for c in s) and all(c.isalpha() or c in " '’-." for c in s):
        return _clean_name(s)
    raise ValueError(f"{text.strip()!r} is not a designation, number or name")
