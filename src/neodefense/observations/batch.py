"""The normalized observation: one record type and its columnar batch form.

Field names follow the IAU Astrometry Data Exchange Standard (ADES). Every reader (obs80, ADES PSV,
ADES XML) produces an :class:`ObservationBatch`; every writer and the catalog consume one.

Conventions
-----------
* ``obsTime_mjd``: observation time as a Modified Julian Date in **UTC** (float64; ~1 µs resolution).
* ``ra`` / ``dec``: degrees (ICRF, astrometric). NaN for radar records.
* ``rmsRA`` / ``rmsDec``: arcsec, with ``rmsRA`` already multiplied by cos(dec) as ADES defines it.
* ``precTime`` (millionths of a day), ``precRA`` (seconds of RA), ``precDec`` (arcsec): the precision
  the observer reported, so writers reproduce the digits they were given.
* ``sys`` / ``ctr`` / ``pos1..3``: observer position for space-based (``ICRF_KM``/``ICRF_AU``,
  geocentric, ``ctr`` = "399") and roving (``WGS84``: pos1 = east longitude deg, pos2 = latitude deg,
  pos3 = altitude m) observers. Empty ``sys`` means a fixed ground station from the MPC table.
* Radar (``kind == "radar"``): ``delay`` (s), ``rmsDelay`` (µs), ``doppler`` (Hz), ``rmsDoppler``
  (Hz), ``frq`` (MHz), ``trx`` / ``rcv`` (station codes), ``com`` ("1" if referred to the centre of
  mass, "0" for the peak-power point).
* ``deprecated``: True for obs80 "X"/"x" records (replaced or deleted by the MPC). They are stored
  and flagged, never dropped, and never used in fits.
* ``line``: 1-based line number of the record's first line in its source file; ``raw``: the source
  text of the record verbatim (two-line records joined with "\\n").
* Missing strings are "" and missing numbers are NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

#: column name -> numpy dtype kind used in the batch: "f" float64, "U" str, "b" bool, "i" int64.
COLUMNS: dict[str, str] = {
    # identification
    "permID": "U",
    "provID": "U",
    "trkSub": "U",
    "obsID": "U",
    "trkID": "U",
    "kind": "U",  # "optical" | "radar"
    "mode": "U",
    "stn": "U",
    "prog": "U",
    # observer position for space-based / roving observers
    "sys": "U",
    "ctr": "U",
    "pos1": "f",
    "pos2": "f",
    "pos3": "f",
    # time and position
    "obsTime_mjd": "f",
    "precTime": "f",
    "ra": "f",
    "dec": "f",
    "precRA": "f",
    "precDec": "f",
    "rmsRA": "f",
    "rmsDec": "f",
    "rmsCorr": "f",
    "astCat": "U",
    # photometry
    "mag": "f",
    "rmsMag": "f",
    "band": "U",
    "photCat": "U",
    # radar
    "delay": "f",
    "rmsDelay": "f",
    "doppler": "f",
    "rmsDoppler": "f",
    "frq": "f",
    "trx": "U",
    "rcv": "U",
    "com": "U",
    # flags and free text
    "disc": "U",
    "notes": "U",
    "remarks": "U",
    "ref": "U",
    "deprecated": "b",
    # provenance inside the source file
    "line": "i",
    "raw": "U",
}

_MISSING: dict[str, Any] = {"f": np.nan, "U": "", "b": False, "i": -1}
_DTYPE: dict[str, Any] = {"f": np.float64, "U": object, "b": np.bool_, "i": np.int64}


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """A line that did not become an observation, and why. Nothing is dropped silently."""

    file: str
    line: int
    field: str
    reason: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


class ObservationBatch:
    """Columnar observations: a dict of equal-length numpy arrays keyed by :data:`COLUMNS`.

    String columns are numpy object arrays of Python ``str`` (``""`` when missing); float columns
    are float64 with NaN when missing.
    """

    __slots__ = ("columns",)

    def __init__(self, columns: Mapping[str, np.ndarray] | None = None, n: int | None = None):
        columns = dict(columns or {})
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise KeyError(f"not observation columns: {sorted(unknown)}")
        if n is None:
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise ValueError(f"columns of unequal length: {lengths}")
            n = lengths.pop() if lengths else 0
        full: dict[str, np.ndarray] = {}
        for name, kind in COLUMNS.items():
            if name in columns:
                arr = np.asarray(columns[name])
                if kind == "U" and arr.dtype != object:
                    arr = arr.astype(str).astype(object)
                elif kind != "U":
                    arr = arr.astype(_DTYPE[kind], copy=False)
                if len(arr) != n:
                    raise ValueError(f"column {name!r} has {len(arr)} rows, expected {n}")
                full[name] = arr
            else:
                full[name] = np.full(n, _MISSING[kind], dtype=_DTYPE[kind])
        self.columns = full

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> ObservationBatch:
        return cls(n=0)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> ObservationBatch:
        records = list(records)
        cols: dict[str, np.ndarray] = {}
        for name, kind in COLUMNS.items():
            values = [r.get(name, _MISSING[kind]) for r in records]
            if kind == "U":
                values = ["" if v is None else str(v) for v in values]
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
            else:
                values = [_MISSING[kind] if v is None else v for v in values]
                arr = np.asarray(values, dtype=_DTYPE[kind])
            cols[name] = arr
        return cls(cols, n=len(records))

    @classmethod
    def concat(cls, batches: Iterable[ObservationBatch]) -> ObservationBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        return cls({k: np.concatenate([b.columns[k] for b in batches]) for k in COLUMNS})

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.columns["line"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def take(self, index: np.ndarray | slice) -> ObservationBatch:
        return ObservationBatch({k: v[index] for k, v in self.columns.items()})

    def records(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts with Python scalars (NaN → None, "" kept)."""
        names = list(COLUMNS)
        cols = [self.columns[k].tolist() for k in names]
        for row in zip(*cols, strict=True):
            yield {
                k: (None if isinstance(v, float) and v != v else v)
                for k, v in zip(names, row, strict=True)
            }

    @property
    def designation(self) -> np.ndarray:
        """The best designation of each row: permID, else provID, else trkSub."""
        out = self.columns["permID"].copy()
        empty = out == ""
        out[empty] = self.columns["provID"][empty]
        empty = out == ""
        out[empty] = self.columns["trkSub"][empty]
        return out

    def __repr__(self) -> str:
        return f"ObservationBatch({len(self)} observations)"


@dataclasses.dataclass(slots=True)
class ParseResult:
    """What a reader returns for one file or chunk: observations plus rejections, lines accounted."""

    batch: ObservationBatch
    rejections: list[Rejection]
    format: str
    n_lines: int = 0  # physical lines read (including blank and header/comment lines)

    @classmethod
    def concat(cls, parts: Iterable[ParseResult]) -> ParseResult:
        parts = list(parts)
        return cls(
            batch=ObservationBatch.concat(p.batch for p in parts),
            rejections=[r for p in parts for r in p.rejections],
            format=parts[0].format if parts else "",
            n_lines=sum(p.n_lines for p in parts),
        )
