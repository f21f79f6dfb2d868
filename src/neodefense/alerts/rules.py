"""Risk-list rules: which changes of an object's impact assessment raise an alert, and its payload.

Pure functions over the ``ImpactAssessment.as_json()`` dict (see
:mod:`neodefense.impacts.assessment`) and a small per-object :class:`AlertState` that the catalog
stores between assessments.

Rules (:func:`evaluate`), applied to ``status == "ok"`` assessments of objects not excluded:

* An object is **on the risk list** iff it has at least one virtual impactor (VI) with IP > 0.
  Joining raises ``new_object``; leaving because no VI remains raises ``removed`` (reason
  ``no_vi``) and resets the state, so that a return is a ``new_object`` again (with ``ip_up``,
  ``torino_change``, ... measured from zero, like any new object).
* ``torino_change`` on any change of ``torino_max``.
* ``ip_up`` / ``ip_down`` with hysteresis on the cumulative IP: the *up-level* is the number of
  thresholds T with IP ≥ T, the *down-level* the number with IP ≥ T / ``hysteresis_factor``. The
  state's level rises to the up-level when that is higher (one ``ip_up`` naming the highest
  threshold passed), falls to the down-level when that is lower (one ``ip_down`` naming the
  highest threshold left), else stays: an IP hovering around a threshold does not flap.
* ``iawn`` / ``smpag`` when the criterion flag changes (``met`` True or False).
* ``imminent`` when a VI carries an atmospheric ``entry`` (the monitor sets it for Earth impacts
  within 30 days with IP > 0.5): the first time, and again (``update`` True) when the predicted
  entry time moved by more than ``imminent_update_s`` from the last alerted one.

The state changes only together with events: when :func:`evaluate` returns no event, it returns
the state it was given. Hence ``state.ip``, ``state.imminent_time_utc`` and ``state.risk`` are the
values **at the object's last alert**, and ``state.risk`` is the ``previous`` of the next alert
(so a subscriber who heard a rise also hears the fall, see :mod:`neodefense.alerts.criteria`).

Manual removals (an artificial object, observations reassigned to another object, an operator's
decision) go through :func:`removal`; ``artificial`` and ``reassigned`` exclude the object from
the list for good (:attr:`AlertState.excluded`; :func:`reinstate` lifts that).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ARTIFICIAL",
    "EXCLUDING_REASONS",
    "IAWN",
    "IMMINENT",
    "IP_DOWN",
    "IP_UP",
    "MANUAL",
    "MAX_PAYLOAD_VIS",
    "NEW_OBJECT",
    "NO_VI",
    "PROVENANCE_KEYS",
    "REASSIGNED",
    "REMOVAL_REASONS",
    "REMOVED",
    "RISK_KEYS",
    "RULE_ORDER",
    "SCHEMA",
    "SMPAG",
    "TORINO_CHANGE",
    "VI_KEYS",
    "AlertEvent",
    "AlertRules",
    "AlertState",
    "build_payload",
    "down_level",
    "evaluate",
    "format_ip",
    "imminent_vi",
    "iso_utc",
    "reinstate",
    "removal",
    "risk_summary",
    "risk_vis",
    "up_level",
]

#: payload schema identifier
SCHEMA = "neodefense.alert/1"

# event kinds, in the order alerts list them
NEW_OBJECT = "new_object"
TORINO_CHANGE = "torino_change"
IP_UP = "ip_up"
IP_DOWN = "ip_down"
IAWN = "iawn"
SMPAG = "smpag"
IMMINENT = "imminent"
REMOVED = "removed"
RULE_ORDER: tuple[str, ...] = (NEW_OBJECT, TORINO_CHANGE, IP_UP, IP_DOWN, IAWN, SMPAG, IMMINENT, REMOVED)

# removal reasons
NO_VI = "no_vi"
ARTIFICIAL = "artificial"
REASSIGNED = "reassigned"
MANUAL = "manual"
REMOVAL_REASONS: dict[str, str] = {
    NO_VI: "new observations excluded every virtual impactor",
    ARTIFICIAL: "identified as an artificial object",
    REASSIGNED: "observations reassigned to another object",
    MANUAL: "removed by an operator",
}
#: reasons that bar the object from returning to the list (its observations are not an asteroid's,
#: or belong to another object)
EXCLUDING_REASONS = frozenset({ARTIFICIAL, REASSIGNED})

#: keys of the payload's "risk" and "previous" dicts ("previous" adds "imminent": bool)
RISK_KEYS: tuple[str, ...] = ("cumulative_ip", "palermo_cum", "palermo_max", "torino_max", "n_vi",
                              "first_year", "last_year", "H", "diameter_m", "v_inf_km_s",
                              "iawn_notify", "smpag", "method", "n_samples")
#: keys of each payload virtual impactor
VI_KEYS: tuple[str, ...] = ("body", "date_utc", "ip", "palermo", "torino", "v_inf_km_s", "energy_mt")
#: keys of the payload's "provenance"
PROVENANCE_KEYS: tuple[str, ...] = ("assessment_id", "assessment_version", "solution_id",
                                    "observation_set_hash", "code_version", "solution_code_version")
#: the payload lists at most this many VIs (largest IP first)
MAX_PAYLOAD_VIS = 10


# ---------------------------------------------------------------------------------------------
# small helpers


def _num(value: Any) -> float | None:
    """A finite float, or None (None, NaN, ±inf, bools and non-numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _int(value: Any, default: int | None = None) -> int | None:
    num = _num(value)
    return default if num is None else int(num)


def format_ip(ip: float | None) -> str:
    """An impact probability for people: '0.011', '0.98', '9.50e-05'; '>0.999' just below 1;
    'n/a' for None."""
    ip = _num(ip)
    if ip is None:
        return "n/a"
    if ip == 0.0:
        return "0"
    if ip >= 0.01:
        text = f"{ip:.3g}"
        return ">0.999" if ip < 1.0 and float(text) >= 1.0 else text
    return f"{ip:.2e}"


def _format_threshold(t: float) -> str:
    return f"{t:g}"


def iso_utc(when: datetime | str) -> str:
    """ISO 8601 UTC to the second with a 'Z' (``2008-10-06T08:00:00Z``); a naive datetime is taken
    as UTC; a string is returned as given."""
    if isinstance(when, str):
        return when
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.replace(microsecond=0).isoformat() + "Z"


def _parse_utc(text: str | None) -> datetime | None:
    """A UTC instant from ISO text ('Z', an offset or naive = UTC); None if unreadable."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(str(text).strip())
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


_YEAR = re.compile(r"^\s*(-?\d{4,})-")


def _year(date_utc: Any) -> int | None:
    match = _YEAR.match(str(date_utc)) if date_utc else None
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------
# configuration, state, events


@dataclasses.dataclass(frozen=True)
class AlertRules:
    """Thresholds of the rules (the ``[alerts]`` settings section).

    ``ip_thresholds``: cumulative-IP alert levels, ascending in (0, 1]; ``hysteresis_factor`` (≥ 1):
    a level passed at T is only left below T / factor; ``imminent_update_s`` (≥ 0, seconds): an
    imminent impact is re-announced when its predicted entry time moves by more than this.
    """

    ip_thresholds: tuple[float, ...] = (1e-6, 1e-4, 1e-2, 0.5, 0.99)
    hysteresis_factor: float = 2.0
    imminent_update_s: float = 60.0

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "ip_thresholds", tuple(float(t) for t in self.ip_thresholds))

    def validate(self) -> None:
        """Raise ValueError unless the thresholds are numbers ascending in (0, 1], the factor ≥ 1 and
        the update interval ≥ 0 (all finite)."""
        values = self.ip_thresholds
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ValueError(f"alerts.ip_thresholds must be a list of numbers, got {values!r}")
        if not values:
            raise ValueError("alerts.ip_thresholds must not be empty")
        for t in values:
            if isinstance(t, bool) or not isinstance(t, int | float) or not (0.0 < t <= 1.0):
                raise ValueError(f"alerts.ip_thresholds: {t!r} is not a probability in (0, 1]")
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"alerts.ip_thresholds must be strictly ascending, got {list(values)}")
        f = self.hysteresis_factor
        if isinstance(f, bool) or not isinstance(f, int | float) or not math.isfinite(f) or f < 1.0:
            raise ValueError(f"alerts.hysteresis_factor must be a number ≥ 1, got {f!r}")
        u = self.imminent_update_s
        if isinstance(u, bool) or not isinstance(u, int | float) or not math.isfinite(u) or u < 0.0:
            raise ValueError(f"alerts.imminent_update_s must be a number ≥ 0 (seconds), got {u!r}")

    @classmethod
    def from_settings(cls, section: Mapping[str, Any] | None) -> AlertRules:
        """From the ``[alerts]`` settings section; keys other than the three fields are ignored,
        missing ones take the defaults."""
        section = section or {}
        kwargs: dict[str, Any] = {}
        if "ip_thresholds" in section:
            raw = section["ip_thresholds"]
            kwargs["ip_thresholds"] = tuple(raw) if isinstance(raw, list | tuple) else raw
        for key in ("hysteresis_factor", "imminent_update_s"):
            if key in section:
                kwargs[key] = section[key]
        return cls(**kwargs)


def up_level(ip: float, rules: AlertRules) -> int:
    """Number of thresholds T with ``ip`` ≥ T."""
    return sum(ip >= t for t in rules.ip_thresholds)


def down_level(ip: float, rules: AlertRules) -> int:
    """Number of thresholds T with ``ip`` ≥ T / hysteresis_factor."""
    return sum(ip >= t / rules.hysteresis_factor for t in rules.ip_thresholds)


@dataclasses.dataclass
class AlertState:
    """What the rules remember about one object between assessments (JSON: :meth:`as_json`).

    ``on_risk_list``; ``torino``, ``ip_level`` (number of thresholds counted as passed), ``ip``,
    ``iawn``, ``smpag``: as of the last alert; ``imminent`` / ``imminent_time_utc``: whether the
    last alert had an imminent impact and its announced entry time (None if unknown);
    ``excluded``: a removal reason that bars re-adding (``'artificial'``, ``'reassigned'``) or None;
    ``risk``: the :func:`risk_summary` at the last alert plus ``"imminent": bool`` — the
    ``previous`` of the next alert.
    """

    on_risk_list: bool = False
    torino: int = 0
    ip_level: int = 0
    ip: float = 0.0
    iawn: bool = False
    smpag: bool = False
    imminent: bool = False
    imminent_time_utc: str | None = None
    excluded: str | None = None
    risk: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> AlertState:
        """The state of :meth:`as_json`; None (no state yet) gives the initial state. Unknown keys
        are ignored, missing ones take the defaults."""
        if not d:
            return cls()
        risk = d.get("risk")
        return cls(
            on_risk_list=bool(d.get("on_risk_list", False)),
            torino=_int(d.get("torino"), 0) or 0,
            ip_level=max(_int(d.get("ip_level"), 0) or 0, 0),
            ip=_num(d.get("ip")) or 0.0,
            iawn=bool(d.get("iawn", False)),
            smpag=bool(d.get("smpag", False)),
            imminent=bool(d.get("imminent", False)),
            imminent_time_utc=d.get("imminent_time_utc") or None,
            excluded=d.get("excluded") or None,
            risk=copy.deepcopy(dict(risk)) if isinstance(risk, Mapping) else None,
        )


@dataclasses.dataclass
class AlertEvent:
    """One reason to alert: ``kind`` (one of :data:`RULE_ORDER`), a human sentence, and the
    kind's details (issue 5: torino_change {from, to}; ip_up/ip_down {threshold, ip, previous_ip};
    iawn/smpag {met}; imminent {date_utc, ip, entry, corridor, update}; removed {reason,
    reason_text, note}; new_object {cumulative_ip, n_vi})."""

    kind: str
    message: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **copy.deepcopy(self.details)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AlertEvent:
        details = {k: copy.deepcopy(v) for k, v in d.items() if k not in ("kind", "message")}
        return cls(kind=str(d["kind"]), message=str(d.get("message", "")), details=details)


def _order(kind: str) -> int:
    return RULE_ORDER.index(kind) if kind in RULE_ORDER else len(RULE_ORDER)


# ---------------------------------------------------------------------------------------------
# the assessment's virtual impactors and risk summary


def risk_vis(assessment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The assessment's VIs with IP > 0, largest IP first (ties: earlier date first)."""
    vis = [vi for vi in assessment.get("virtual_impactors") or ()
           if isinstance(vi, Mapping) and (_num(vi.get("ip")) or 0.0) > 0.0]
    return sorted(vis, key=lambda vi: (-(_num(vi.get("ip")) or 0.0), str(vi.get("date_utc") or "")))


def imminent_vi(assessment: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The VI (IP > 0) with an atmospheric ``entry`` and the largest IP, or None."""
    if not assessment:
        return None
    return next((vi for vi in risk_vis(assessment) if vi.get("entry") is not None), None)


def risk_summary(assessment: Mapping[str, Any]) -> dict[str, Any]:
    """The payload's ``risk`` dict (keys :data:`RISK_KEYS`) of an ``as_json`` assessment.

    ``n_vi``, ``first_year`` / ``last_year`` (calendar years of the VI dates) and ``v_inf_km_s``
    (of the VI with the largest IP) count only VIs with IP > 0; None where a value is absent or not
    finite.
    """
    vis = risk_vis(assessment)
    years = [y for y in (_year(vi.get("date_utc")) for vi in vis) if y is not None]
    return {
        "cumulative_ip": _num(assessment.get("cumulative_ip")) or 0.0,
        "palermo_cum": _num(assessment.get("palermo_cum")),
        "palermo_max": _num(assessment.get("palermo_max")),
        "torino_max": _int(assessment.get("torino_max"), 0),
        "n_vi": len(vis),
        "first_year": min(years) if years else None,
        "last_year": max(years) if years else None,
        "H": _num(assessment.get("H")),
        "diameter_m": _num(assessment.get("diameter_m")),
        "v_inf_km_s": _num(vis[0].get("v_inf_km_s")) if vis else None,
        "iawn_notify": bool(assessment.get("iawn_notify", False)),
        "smpag": bool(assessment.get("smpag", False)),
        "method": assessment.get("method"),
        "n_samples": _int(assessment.get("n_samples")),
    }


# ---------------------------------------------------------------------------------------------
# the rules


def _entry_time(vi: Mapping[str, Any]) -> str | None:
    entry = vi.get("entry")
    return entry.get("time_utc") if isinstance(entry, Mapping) and entry.get("time_utc") else None


def _moved_s(old_utc: str | None, new_utc: str | None) -> float | None:
    """|new − old| in seconds; inf when only the new time is known or either is unreadable;
    None when the new time is unknown."""
    if new_utc is None:
        return None
    if old_utc is None:
        return math.inf
    old, new = _parse_utc(old_utc), _parse_utc(new_utc)
    if old is None or new is None:
        return 0.0 if old_utc == new_utc else math.inf
    return abs((new - old).total_seconds())


def _where(entry: Mapping[str, Any] | None) -> str:
    """'at 2008-10-07T02:45:40.1 UTC, 20.93°N 31.41°E, 100 km altitude' (what is known)."""
    if not isinstance(entry, Mapping):
        return ""
    parts = []
    if entry.get("time_utc"):
        parts.append(f"at {entry['time_utc']} UTC")
    lat, lon = _num(entry.get("lat_deg")), _num(entry.get("lon_deg"))
    if lat is not None and lon is not None:
        parts.append(f"{abs(lat):.2f}°{'N' if lat >= 0 else 'S'} {abs(lon):.2f}°{'E' if lon >= 0 else 'W'}")
    alt = _num(entry.get("alt_km"))
    if alt is not None and parts:
        parts.append(f"{alt:g} km altitude")
    if not entry.get("time_utc") and entry.get("error"):
        parts.append("entry point could not be computed")
    return ", ".join(parts)


def _imminent_event(vi: Mapping[str, Any], name: str, update: bool, moved_s: float | None) -> AlertEvent:
    ip = _num(vi.get("ip"))
    where = _where(vi.get("entry"))
    if update:
        shift = f" (moved by {moved_s:.0f} s)" if moved_s is not None and math.isfinite(moved_s) else ""
        text = f"Updated imminent impact of {name}: atmospheric entry {where}{shift}; IP {format_ip(ip)}."
    else:
        text = (f"Imminent impact of {name} on {vi.get('date_utc')} UTC (IP {format_ip(ip)}): "
                f"atmospheric entry {where}.")
    return AlertEvent(IMMINENT, text, {
        "date_utc": vi.get("date_utc"), "ip": ip, "entry": copy.deepcopy(vi.get("entry")),
        "corridor": copy.deepcopy(vi.get("corridor")), "update": update})


def _removed_event(name: str, reason: str, note: str) -> AlertEvent:
    text = REMOVAL_REASONS[reason]
    tail = f" ({note})" if note else ""
    return AlertEvent(REMOVED, f"{name} removed from the risk list: {text}{tail}.",
                      {"reason": reason, "reason_text": text, "note": note})


def evaluate(state: AlertState, assessment: Mapping[str, Any], rules: AlertRules
             ) -> tuple[list[AlertEvent], AlertState]:
    """Events raised by a new assessment of an object, and the object's new state.

    ``assessment``: ``ImpactAssessment.as_json()``. Only status ``'ok'`` is evaluated; other
    statuses, and objects with ``state.excluded``, give no events and the state unchanged. Events
    come in :data:`RULE_ORDER`; with no event the given state is returned (see the module
    docstring for the rules). The caller alerts with ``previous = state.risk`` (the old state's).
    """
    if assessment.get("status") != "ok" or state.excluded:
        return [], state
    name = str(assessment.get("designation") or "The object")
    vis = risk_vis(assessment)
    on_list = bool(vis)
    if not on_list and not state.on_risk_list:
        return [], state
    summary = risk_summary(assessment)
    ip = summary["cumulative_ip"]
    if not on_list:  # leaving: one 'removed' event, and the state reset
        events = [_removed_event(name, NO_VI, "")]
        new = AlertState(excluded=state.excluded, ip=ip, risk={**summary, "imminent": False})
        return events, new

    events: list[AlertEvent] = []
    if not state.on_risk_list:
        state = AlertState(excluded=state.excluded, risk=state.risk)  # measured from zero
        n = summary["n_vi"]
        events.append(AlertEvent(NEW_OBJECT, (
            f"{name} added to the risk list: cumulative impact probability {format_ip(ip)} over "
            f"{n} virtual impactor{'s' if n != 1 else ''}."), {"cumulative_ip": ip, "n_vi": n}))

    torino = summary["torino_max"] or 0
    if torino != state.torino:
        verb = "raised" if torino > state.torino else "lowered"
        events.append(AlertEvent(TORINO_CHANGE,
                                 f"Torino rating of {name} {verb} from {state.torino} to {torino}.",
                                 {"from": state.torino, "to": torino}))

    old_level = min(state.ip_level, len(rules.ip_thresholds))
    up, down = up_level(ip, rules), down_level(ip, rules)
    level = up if up > old_level else down if down < old_level else old_level
    if level > old_level:
        t = rules.ip_thresholds[level - 1]
        events.append(AlertEvent(IP_UP, (
            f"Cumulative impact probability of {name} rose to {format_ip(ip)}, above "
            f"{_format_threshold(t)} (was {format_ip(state.ip)})."),
            {"threshold": t, "ip": ip, "previous_ip": state.ip}))
    elif level < old_level:
        t = rules.ip_thresholds[old_level - 1]
        events.append(AlertEvent(IP_DOWN, (
            f"Cumulative impact probability of {name} fell to {format_ip(ip)}, below the "
            f"{_format_threshold(t)} level (was {format_ip(state.ip)})."),
            {"threshold": t, "ip": ip, "previous_ip": state.ip}))

    iawn, smpag = summary["iawn_notify"], summary["smpag"]
    for kind, met, before, what in ((IAWN, iawn, state.iawn, "IAWN notification criteria (IP > 1 %, "
                                     "D > 10 m, within 50 years)"),
                                    (SMPAG, smpag, state.smpag, "SMPAG criteria (IP > 1 %, D > 50 m, "
                                     "within 50 years)")):
        if met != before:
            events.append(AlertEvent(kind, f"{what} {'now met' if met else 'no longer met'} by {name}.",
                                     {"met": met}))

    imm = imminent_vi(assessment)
    imminent_time = None
    if imm is not None:
        new_time = _entry_time(imm)
        imminent_time = state.imminent_time_utc
        if not state.imminent:
            events.append(_imminent_event(imm, name, False, None))
            imminent_time = new_time
        else:
            moved = _moved_s(state.imminent_time_utc, new_time)
            if moved is not None and moved > rules.imminent_update_s:
                events.append(_imminent_event(imm, name, True, moved))
                imminent_time = new_time

    if not events:
        return [], state
    events.sort(key=lambda e: _order(e.kind))
    new = AlertState(on_risk_list=True, torino=torino, ip_level=level, ip=ip, iawn=iawn, smpag=smpag,
                     imminent=imm is not None, imminent_time_utc=imminent_time,
                     excluded=state.excluded, risk={**summary, "imminent": imm is not None})
    return events, new


def removal(state: AlertState, reason: str, note: str = "", *, designation: str = ""
            ) -> tuple[list[AlertEvent], AlertState]:
    """A manual removal from the risk list (reason a key of :data:`REMOVAL_REASONS`, e.g.
    ``'artificial'``, ``'reassigned'``, ``'manual'``; ``note``: free text for the record).

    One ``removed`` event if the object is on the list, none otherwise. The new state is off the
    list and reset (so a return is a ``new_object``), keeps ``risk`` (the last alert's), and for
    :data:`EXCLUDING_REASONS` is ``excluded`` (no further events, whatever the assessments say).
    Raises ValueError for an unknown reason.
    """
    if reason not in REMOVAL_REASONS:
        raise ValueError(f"unknown removal reason {reason!r}; one of {', '.join(REMOVAL_REASONS)}")
    note = " ".join(str(note or "").split())
    excluded = reason if reason in EXCLUDING_REASONS else state.excluded
    risk = {**state.risk, "imminent": False} if state.risk is not None else None
    new = AlertState(excluded=excluded, risk=risk)
    if not state.on_risk_list:
        return [], dataclasses.replace(state, excluded=excluded)
    return [_removed_event(designation or "The object", reason, note)], new


def reinstate(state: AlertState) -> AlertState:
    """The state with its exclusion lifted (the next ok assessment with VIs re-adds the object)."""
    return dataclasses.replace(state, excluded=None)


# ---------------------------------------------------------------------------------------------
# the payload


def _pick(d: Mapping[str, Any] | None, keys: Sequence[str]) -> dict[str, Any]:
    d = d or {}
    return {k: copy.deepcopy(d.get(k)) for k in keys}


def _payload_vi(vi: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(vi, VI_KEYS)
    for key in ("ip", "palermo", "v_inf_km_s", "energy_mt"):
        out[key] = _num(out[key])
    out["torino"] = _int(out["torino"])
    return out


def _removal_block(removal_: Mapping[str, Any] | str | None, events: Sequence[AlertEvent]
                   ) -> dict[str, Any] | None:
    if removal_ is None:
        removed = next((e for e in events if e.kind == REMOVED), None)
        if removed is None:
            return None
        removal_ = removed.details
    if isinstance(removal_, str):
        removal_ = {"reason": removal_}
    reason = str(removal_.get("reason") or "")
    return {"reason": reason,
            "reason_text": str(removal_.get("reason_text") or REMOVAL_REASONS.get(reason, reason)),
            "note": str(removal_.get("note") or "")}


def build_payload(*, alert_id: str, ivorn: str, sequence: int, supersedes: str | None,
                  supersedes_ivorn: str | None, issued_utc: str | datetime, object_id: int,
                  designation: str, aliases: Sequence[str], events: Sequence[AlertEvent | Mapping[str, Any]],
                  risk: Mapping[str, Any] | None, previous: Mapping[str, Any] | None,
                  assessment: Mapping[str, Any] | None, removal: Mapping[str, Any] | str | None,
                  provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    """The alert payload (schema ``neodefense.alert/1``, issue 5): JSON-ready, every channel's body.

    ``events``: :class:`AlertEvent` or their ``as_json`` dicts (put in :data:`RULE_ORDER`);
    ``risk`` / ``previous``: :func:`risk_summary`-shaped dicts (``previous`` = the old state's
    ``risk``; it gains ``"imminent": bool``); ``assessment``: the ``as_json`` assessment the alert
    comes from (its top :data:`MAX_PAYLOAD_VIS` VIs by IP and its imminent VI), None for a manual
    removal; ``removal``: ``{reason, reason_text?, note?}`` or a reason, or None — then taken from
    a ``removed`` event if there is one; ``provenance``: the keys of :data:`PROVENANCE_KEYS`
    (missing → None); ``issued_utc``: ISO UTC text or a datetime (see :func:`iso_utc`).
    """
    evs = [e if isinstance(e, AlertEvent) else AlertEvent.from_json(e) for e in events]
    evs.sort(key=lambda e: _order(e.kind))
    prev = None
    if previous is not None:
        prev = _pick(previous, RISK_KEYS)
        prev["imminent"] = bool(previous.get("imminent", False))
    imm = imminent_vi(assessment)
    return {
        "schema": SCHEMA,
        "alert_id": alert_id,
        "ivorn": ivorn,
        "sequence": int(sequence),
        "supersedes": supersedes,
        "supersedes_ivorn": supersedes_ivorn,
        "issued_utc": iso_utc(issued_utc),
        "object_id": int(object_id),
        "designation": designation,
        "aliases": list(dict.fromkeys(str(a) for a in aliases)),
        "kinds": list(dict.fromkeys(e.kind for e in evs)),
        "events": [e.as_json() for e in evs],
        "risk": _pick(risk, RISK_KEYS) if risk is not None else None,
        "previous": prev,
        "virtual_impactors": [_payload_vi(vi) for vi in
                              (risk_vis(assessment) if assessment else [])[:MAX_PAYLOAD_VIS]],
        "imminent": None if imm is None else {
            "body": imm.get("body"), "date_utc": imm.get("date_utc"), "ip": _num(imm.get("ip")),
            "entry": copy.deepcopy(imm.get("entry")), "corridor": copy.deepcopy(imm.get("corridor"))},
        "removal": _removal_block(removal, evs),
        "provenance": _pick(provenance, PROVENANCE_KEYS),
        "links": {},
    }
