"""Human texts of an alert payload: a one-line summary for listings, an e-mail subject and body.

All functions take the payload of :func:`neodefense.alerts.rules.build_payload` and return plain
text; the subject and the summary line are single lines with control characters removed (safe
as a mail header).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from neodefense.alerts.rules import (
    IAWN,
    IMMINENT,
    IP_DOWN,
    IP_UP,
    NEW_OBJECT,
    REMOVED,
    RULE_ORDER,
    SMPAG,
    TORINO_CHANGE,
    format_ip,
)

__all__ = ["cell", "email_subject", "email_text", "removals_table", "risk_table", "short_utc",
           "summary_line", "text_table"]

#: longest subject produced (characters); longer ones are cut with an ellipsis
MAX_SUBJECT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _one_line(text: Any) -> str:
    """Control characters (newlines included) replaced by spaces, whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def _fmt(value: Any, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec and isinstance(value, int | float):
        return format(value, spec)
    return str(value)


def _events(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in payload.get("events") or () if isinstance(e, Mapping)]


def _risk(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return payload.get("risk") or payload.get("previous") or {}


def summary_line(payload: Mapping[str, Any]) -> str:
    """'2008-10-06T08:00:00Z NDA-12-3 2008 TC3 new_object,ip_up,imminent IP=0.99 Torino=0'."""
    risk = _risk(payload)
    kinds = ",".join(payload.get("kinds") or ()) or "-"
    return _one_line(f"{payload.get('issued_utc')} {payload.get('alert_id')} {payload.get('designation')} "
                     f"{kinds} IP={format_ip(risk.get('cumulative_ip'))} "
                     f"Torino={_fmt(risk.get('torino_max'))}")


def _phrase(event: Mapping[str, Any]) -> str:
    kind = event.get("kind")
    if kind == NEW_OBJECT:
        return "added to the risk list"
    if kind == TORINO_CHANGE:
        return f"Torino {event.get('from')}→{event.get('to')}"
    if kind in (IP_UP, IP_DOWN):
        return f"IP {'above' if kind == IP_UP else 'below'} {_fmt(event.get('threshold'), 'g')}"
    if kind in (IAWN, SMPAG):
        return f"{kind.upper()} criteria {'met' if event.get('met') else 'no longer met'}"
    if kind == IMMINENT:
        entry = event.get("entry") if isinstance(event.get("entry"), Mapping) else {}
        when = f" {entry['time_utc']} UTC" if entry.get("time_utc") else ""
        return ("imminent impact update" if event.get("update") else "IMMINENT IMPACT") + when
    if kind == REMOVED:
        return f"removed from the risk list ({event.get('reason_text') or event.get('reason')})"
    return str(kind)


def email_subject(payload: Mapping[str, Any]) -> str:
    """'[neodefense] 2008 TC3: IMMINENT IMPACT 2008-10-07T02:45:40.1 UTC; added to the risk list;
    IP above 0.99 (IP 0.99, Torino 0)' — imminent and removal first, then in rule order."""
    first = {IMMINENT: 0, REMOVED: 1}
    rank = {kind: (first.get(kind, 2), i) for i, kind in enumerate(RULE_ORDER)}
    events = sorted(_events(payload), key=lambda e: rank.get(e.get("kind"), (2, len(RULE_ORDER))))
    risk = _risk(payload)
    what = "; ".join(_phrase(e) for e in events) or "update"
    subject = _one_line(f"[neodefense] {payload.get('designation')}: {what} "
                        f"(IP {format_ip(risk.get('cumulative_ip'))}, Torino {_fmt(risk.get('torino_max'))})")
    return subject if len(subject) <= MAX_SUBJECT else subject[:MAX_SUBJECT - 1] + "…"


_RISK_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Cumulative impact probability", "cumulative_ip", "ip"),
    ("Palermo scale (cumulative)", "palermo_cum", ".2f"),
    ("Palermo scale (maximum)", "palermo_max", ".2f"),
    ("Torino scale (maximum)", "torino_max", ""),
    ("Virtual impactors", "n_vi", ""),
    ("First year", "first_year", ""),
    ("Last year", "last_year", ""),
    ("Absolute magnitude H", "H", ".2f"),
    ("Diameter (m)", "diameter_m", ".0f"),
    ("v-infinity (km/s)", "v_inf_km_s", ".2f"),
    ("IAWN criteria met", "iawn_notify", ""),
    ("SMPAG criteria met", "smpag", ""),
    ("Method", "method", ""),
    ("Samples", "n_samples", ""),
)


def _cell(block: Mapping[str, Any] | None, key: str, spec: str) -> str:
    if block is None:
        return "-"
    value = block.get(key)
    return format_ip(value) if spec == "ip" else _fmt(value, spec)


def _position(entry: Mapping[str, Any]) -> str:
    lat, lon, alt = entry.get("lat_deg"), entry.get("lon_deg"), entry.get("alt_km")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return "-"
    text = f"{abs(lat):.3f}°{'N' if lat >= 0 else 'S'} {abs(lon):.3f}°{'E' if lon >= 0 else 'W'}"
    if isinstance(alt, int | float):
        text += f", {alt:g} km altitude"
    return text + " (WGS84 geodetic)"


def email_text(payload: Mapping[str, Any]) -> str:
    """A plain-text alert: what happened, the risk now and at the previous alert, the virtual
    impactors, the imminent entry time and place, the removal, provenance and the alert chain."""
    lines: list[str] = []
    add = lines.append
    name = _one_line(payload.get("designation"))
    add(f"neodefense impact-risk alert {payload.get('alert_id')} (sequence {payload.get('sequence')})")
    add(f"Issued: {payload.get('issued_utc')}")
    aliases = [_one_line(a) for a in payload.get("aliases") or () if _one_line(a) != name]
    add(f"Object: {name} (catalog id {payload.get('object_id')})"
        + (f", also known as {', '.join(aliases)}" if aliases else ""))
    add("")
    add("What happened")
    for event in _events(payload):
        add(f"  - {_one_line(event.get('message') or _phrase(event))}")
    if not _events(payload):
        add("  - (no events)")

    risk, previous = payload.get("risk"), payload.get("previous")
    if risk is not None or previous is not None:
        add("")
        add(f"  {'Risk':<32}{'now':>14}{'previous alert':>18}")
        for label, key, spec in _RISK_ROWS:
            add(f"  {label:<32}{_cell(risk, key, spec):>14}{_cell(previous, key, spec):>18}")
        if previous is not None:
            add(f"  {'Imminent impact':<32}{_fmt(payload.get('imminent') is not None):>14}"
                f"{_fmt(bool(previous.get('imminent'))):>18}")

    vis = payload.get("virtual_impactors") or []
    if vis:
        add("")
        add("Virtual impactors (largest impact probability first)")
        add(f"  {'Date (UTC)':<24}{'Body':<7}{'IP':>10}{'Palermo':>9}{'Torino':>7}{'v-inf km/s':>11}"
            f"{'Energy Mt':>11}")
        for vi in vis:
            add(f"  {_fmt(vi.get('date_utc')):<24}{_fmt(vi.get('body')):<7}{format_ip(vi.get('ip')):>10}"
                f"{_fmt(vi.get('palermo'), '.2f'):>9}{_fmt(vi.get('torino')):>7}"
                f"{_fmt(vi.get('v_inf_km_s'), '.2f'):>11}{_fmt(vi.get('energy_mt'), '.3g'):>11}")

    imminent = payload.get("imminent")
    if isinstance(imminent, Mapping):
        entry = imminent.get("entry") if isinstance(imminent.get("entry"), Mapping) else {}
        add("")
        add("IMMINENT IMPACT")
        add(f"  Impact ({imminent.get('body')}): {imminent.get('date_utc')} UTC, "
            f"probability {format_ip(imminent.get('ip'))}")
        if entry.get("time_utc"):
            add(f"  Atmospheric entry: {entry['time_utc']} UTC")
            add(f"  Entry point: {_position(entry)}")
        elif entry.get("error"):
            add(f"  Entry point could not be computed: {_one_line(entry['error'])}")
        corridor = imminent.get("corridor")
        if isinstance(corridor, Mapping):
            counts = [f"{k} {len(corridor[k])} point{'' if len(corridor[k]) == 1 else 's'}"
                      for k in ("1sigma", "3sigma") if isinstance(corridor.get(k), list)]
            if counts:
                add(f"  Entry corridor: {', '.join(counts)} (in the JSON / VOEvent attachment)")

    removal = payload.get("removal")
    if isinstance(removal, Mapping):
        add("")
        note = f" — {_one_line(removal['note'])}" if removal.get("note") else ""
        add(f"Removed from the risk list: {removal.get('reason_text') or removal.get('reason')}{note}")

    prov = payload.get("provenance") or {}
    add("")
    add("Provenance")
    for label, key in (("Assessment", "assessment_id"), ("Assessment version", "assessment_version"),
                       ("Orbit solution", "solution_id"), ("Observation set", "observation_set_hash"),
                       ("Code version", "code_version"), ("Solution code version", "solution_code_version")):
        add(f"  {label + ':':<24}{_fmt(prov.get(key))}")

    add("")
    if payload.get("supersedes"):
        verb = "retracts" if isinstance(removal, Mapping) else "supersedes"
        add(f"This alert {verb} {payload['supersedes']} ({payload.get('supersedes_ivorn') or '-'}).")
    else:
        add("This is the first alert for this object.")
    add(f"VOEvent IVORN: {payload.get('ivorn')}")
    links = payload.get("links") or {}
    for key, url in links.items():
        add(f"{key}: {url}")
    return "\n".join(lines) + "\n"


# -- tables for terminals (the risk list, removals) -------------------------------------------------

def cell(value: Any, spec: str = "") -> str:
    """A table cell: '-' for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if spec and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
           right: frozenset[int] = frozenset()) -> list[str]:
    """Lines of an aligned text table (two spaces between columns; columns ``right`` right
    aligned)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def short_utc(iso: str | None, minutes: bool = True) -> str:
    """'2026-12-02T18:04:05Z' → '2026-12-02 18:04' (or the date alone); '-' for None."""
    if not iso:
        return "-"
    text = str(iso).replace("T", " ").rstrip("Z")
    return text[:16] if minutes else text[:10]


_RISK_HEADERS = ("rank", "designation", "years", "VIs", "cum IP", "PS cum", "PS max", "TS", "H",
                 "D (m)", "v∞ (km/s)", "last obs", "used", "arc (d)", "updated (UTC)")
_RISK_RIGHT = frozenset({0, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13})


def risk_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    cells = [[cell(r["rank"]), r["designation"], r["year_range"] or "-", cell(r["n_vi"]),
              cell(r["cumulative_ip"], ".2e"), cell(r["palermo_cum"], ".2f"),
              cell(r["palermo_max"], ".2f"), cell(r["torino_max"]), cell(r["H"], ".1f"),
              cell(r["diameter_m"], ".3g"), cell(r["v_inf_km_s"], ".2f"),
              short_utc(r["last_obs_utc"], minutes=False), cell(r["n_obs_used"]),
              cell(r["arc_days"], ".2f"), short_utc(r["updated_utc"])] for r in rows]
    return text_table(_RISK_HEADERS, cells, _RISK_RIGHT)


def removals_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    cells = []
    for r in rows:
        last = r.get("last_values") or {}
        cells.append([short_utc(r["removed_utc"]), r["designation"], r["reason"],
                      cell(last.get("cumulative_ip"), ".2e"), cell(last.get("palermo_cum"), ".2f"),
                      cell(last.get("torino_max")), r["alert_id"] or "-",
                      r["reason_text"] + (f" — {r['note']}" if r["note"] else "")])
    return text_table(("removed (UTC)", "designation", "reason", "last IP", "last PS", "last TS",
                   "alert", "why"), cells, frozenset({3, 4, 5}))
