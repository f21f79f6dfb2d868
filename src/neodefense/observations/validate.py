"""Format-independent checks on parsed observations: every failing row becomes a Rejection.

Readers reject what they cannot parse (wrong columns, non-digits, impossible calendar dates);
this module rejects what parses but cannot be a real observation.
"""

from __future__ import annotations

import time

import numpy as np

from neodefense.observations.batch import ObservationBatch, Rejection

#: Earliest observation time accepted (MJD UTC of 1795-01-01: older positions are not useful here).
EARLIEST_MJD = -23_000.0
#: Allowed clock skew into the future (days) for an observation time.
FUTURE_TOLERANCE_DAYS = 1.0


def _now_mjd() -> float:
    return time.time() / 86400.0 + 40587.0


def validate(
    batch: ObservationBatch,
    file: str,
    known_stations: set[str] | frozenset[str] | None = None,
    now_mjd: float | None = None,
) -> tuple[ObservationBatch, list[Rejection]]:
    """Split ``batch`` into the rows that pass every check and one Rejection per failing row.

    A row is rejected for its first failing check (checked in the order below), naming the field.
    """
    n = len(batch)
    if n == 0:
        return batch, []
    now = _now_mjd() if now_mjd is None else now_mjd
    c = batch.columns
    optical = c["kind"] != "radar"
    radar = ~optical
    with np.errstate(invalid="ignore"):
        checks: list[tuple[str, np.ndarray, str]] = [
            ("permID", (c["permID"] == "") & (c["provID"] == "") & (c["trkSub"] == ""),
             "no designation (permID, provID or trkSub required)"),
            ("stn", c["stn"] == "", "missing observatory code"),
            ("obsTime", ~np.isfinite(c["obsTime_mjd"]), "missing or unreadable observation time"),
            ("obsTime", c["obsTime_mjd"] < EARLIEST_MJD, "observation time before 1795"),
            ("obsTime", c["obsTime_mjd"] > now + FUTURE_TOLERANCE_DAYS,
             "observation time is in the future"),
            ("ra", optical & ~((c["ra"] >= 0.0) & (c["ra"] < 360.0)),
             "RA outside [0h, 24h)"),
            ("dec", optical & ~((c["dec"] >= -90.0) & (c["dec"] <= 90.0)),
             "Dec outside [-90°, +90°]"),
            ("rmsRA", c["rmsRA"] <= 0.0, "rmsRA must be positive"),
            ("rmsDec", c["rmsDec"] <= 0.0, "rmsDec must be positive"),
            ("rmsCorr", np.abs(c["rmsCorr"]) > 1.0, "rmsCorr must lie in [-1, 1]"),
            ("mag", (c["mag"] < -30.0) | (c["mag"] > 40.0), "magnitude outside [-30, 40]"),
            ("delay", radar & ~np.isfinite(c["delay"]) & ~np.isfinite(c["doppler"]),
             "radar record without delay or Doppler"),
            ("delay", radar & (c["delay"] <= 0.0), "radar delay must be positive"),
            ("pos1", (c["sys"] != "") & ~(np.isfinite(c["pos1"]) & np.isfinite(c["pos2"])
                                          & np.isfinite(c["pos3"])),
             "observer position (pos1..pos3) incomplete"),
        ]
    if known_stations is not None:
        codes = frozenset(known_stations)
        for field in ("stn", "trx", "rcv"):
            vals = c[field]
            # look up each distinct value once; rows are then marked with a small np.isin
            unknown_values = set(vals.tolist()) - codes - {""}
            unknown = (np.isin(vals, np.array(sorted(unknown_values), dtype=object))
                       if unknown_values else np.zeros(n, dtype=bool))
            checks.insert(2, (field, unknown, "unknown observatory code"))

    bad = np.zeros(n, dtype=bool)
    rejections: list[Rejection] = []
    for field, mask, reason in checks:
        new = mask & ~bad
        if new.any():
            for i in np.flatnonzero(new):
                value = c[field][i]
                detail = f" ({value!r})" if isinstance(value, str) and value else ""
                rejections.append(Rejection(file, int(c["line"][i]), field, reason + detail,
                                            c["raw"][i]))
            bad |= new
    rejections.sort(key=lambda r: r.line)
    if not bad.any():
        return batch, rejections
    return batch.take(~bad), rejections
