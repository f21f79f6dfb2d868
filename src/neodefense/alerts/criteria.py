"""Subscriber criteria: which alerts a subscriber hears.

Stored as JSON (``subscribers.criteria``)::

    {"torino_min": int|null, "ip_min": float|null, "palermo_min": float|null,
     "iawn_only": bool, "imminent_only": bool, "objects": [names as the user typed them]}

All given criteria must hold; empty criteria match every alert. The thresholds are checked
against the larger of the payload's ``risk`` and ``previous`` (a subscriber who heard a rise also
hears the fall and the removal). ``palermo_min`` is compared with the cumulative Palermo value
(``palermo_cum``, else ``palermo_max``). ``objects`` matches when a name equals the payload's
designation or one of its aliases after :func:`neodefense.catalog.ingest.canonical_designation`,
case-insensitively. ``iawn_only``: ``risk.iawn_notify`` or ``previous.iawn_notify`` or an ``iawn``
event. ``imminent_only``: an ``imminent`` event, a non-null ``imminent`` block, or a payload whose
``previous`` was imminent (the removal of an imminent impactor).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Criteria", "matches"]

_FIELDS = ("torino_min", "ip_min", "palermo_min", "iawn_only", "imminent_only", "objects")
#: at most this many object names per subscriber
MAX_OBJECTS = 1000
#: a tracklet alias as the catalog stores it (``catalog.ingest.trksub_alias``): trkSub:<station>:<id>
_TRKSUB = re.compile(r"^trksub:[a-z0-9]{3}:[a-z0-9._-]{1,16}$", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _canonical(name: str) -> str:
    from neodefense.catalog.ingest import canonical_designation

    return canonical_designation(name).casefold()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class Criteria:
    """A subscriber's alert filter (see the module docstring). Invalid values raise ValueError
    naming the field: ``torino_min`` an integer 0..10, ``ip_min`` a probability in (0, 1],
    ``palermo_min`` a finite number, ``iawn_only`` / ``imminent_only`` booleans, ``objects``
    designations or names the designation normalizer reads, or tracklet aliases
    ``trkSub:<station>:<trkSub>``."""

    torino_min: int | None = None
    ip_min: float | None = None
    palermo_min: float | None = None
    iawn_only: bool = False
    imminent_only: bool = False
    objects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.torino_min is not None:
            t = self.torino_min
            if isinstance(t, bool) or not isinstance(t, int | float) or t != int(t) or not 0 <= t <= 10:
                raise ValueError(f"criteria.torino_min must be an integer 0..10 or null, got {t!r}")
            object.__setattr__(self, "torino_min", int(t))
        if self.ip_min is not None:
            p = self.ip_min
            if not _is_number(p) or not 0.0 < p <= 1.0:
                raise ValueError(f"criteria.ip_min must be a probability in (0, 1] or null, got {p!r}")
            object.__setattr__(self, "ip_min", float(p))
        if self.palermo_min is not None:
            if not _is_number(self.palermo_min):
                raise ValueError(f"criteria.palermo_min must be a finite number or null, "
                                 f"got {self.palermo_min!r}")
            object.__setattr__(self, "palermo_min", float(self.palermo_min))
        for key in ("iawn_only", "imminent_only"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"criteria.{key} must be true or false, got {getattr(self, key)!r}")
        object.__setattr__(self, "objects", self._check_objects(self.objects))

    @staticmethod
    def _check_objects(objects: Any) -> tuple[str, ...]:
        if isinstance(objects, str | bytes) or not isinstance(objects, Iterable):
            raise ValueError(f"criteria.objects must be a list of designations, got {objects!r}")
        out = tuple(objects)
        if len(out) > MAX_OBJECTS:
            raise ValueError(f"criteria.objects: at most {MAX_OBJECTS} names, got {len(out)}")
        from neodefense.observations.designations import normalize

        for i, name in enumerate(out):
            if not isinstance(name, str):
                raise ValueError(f"criteria.objects[{i}] must be text, got {name!r}")
            if _TRKSUB.match(name.strip()):
                continue
            try:
                normalize(name)
            except ValueError as exc:
                raise ValueError(f"criteria.objects[{i}] {name!r}: {exc}") from None
        return tuple(" ".join(name.split()) for name in out)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Criteria:
        """From the stored JSON (None or {} = every alert); unknown keys raise ValueError, null
        booleans and objects count as false / empty."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"criteria must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown criteria {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(_FIELDS)}")
        objects = d.get("objects")
        return cls(torino_min=d.get("torino_min"), ip_min=d.get("ip_min"),
                   palermo_min=d.get("palermo_min"),
                   iawn_only=False if d.get("iawn_only") is None else d["iawn_only"],
                   imminent_only=False if d.get("imminent_only") is None else d["imminent_only"],
                   objects=() if objects is None else objects)

    def as_json(self) -> dict[str, Any]:
        return {"torino_min": self.torino_min, "ip_min": self.ip_min, "palermo_min": self.palermo_min,
                "iawn_only": self.iawn_only, "imminent_only": self.imminent_only,
                "objects": list(self.objects)}

    @property
    def empty(self) -> bool:
        """True when every alert matches."""
        return self == Criteria()

    def describe(self) -> str:
        """A short human description: 'every alert', or e.g. 'Torino ≥ 1, IP ≥ 0.0001, IAWN only,
        objects 2008 TC3, Apophis'."""
        parts = []
        if self.torino_min is not None:
            parts.append(f"Torino ≥ {self.torino_min}")
        if self.ip_min is not None:
            parts.append(f"IP ≥ {self.ip_min:g}")
        if self.palermo_min is not None:
            parts.append(f"Palermo ≥ {self.palermo_min:g}")
        if self.iawn_only:
            parts.append("IAWN only")
        if self.imminent_only:
            parts.append("imminent only")
        if self.objects:
            shown = ", ".join(self.objects[:5]) + (f" and {len(self.objects) - 5} more"
                                                   if len(self.objects) > 5 else "")
            parts.append(f"objects {shown}")
        return ", ".join(parts) if parts else "every alert"


def _largest(payload: Mapping[str, Any], *keys: str) -> float | None:
    """The largest finite value of ``keys`` over payload.risk and payload.previous (None if none)."""
    values = []
    for block in (payload.get("risk"), payload.get("previous")):
        if isinstance(block, Mapping):
            for key in keys:
                v = block.get(key)
                if _is_number(v):
                    values.append(float(v))
    return max(values) if values else None


def _flag(payload: Mapping[str, Any], key: str) -> bool:
    blocks = (payload.get("risk"), payload.get("previous"))
    return any(isinstance(b, Mapping) and bool(b.get(key)) for b in blocks)


def matches(criteria: Criteria, payload: Mapping[str, Any]) -> bool:
    """Whether an alert payload passes a subscriber's criteria (module docstring)."""
    kinds = set(payload.get("kinds") or ()) | {e.get("kind") for e in payload.get("events") or ()
                                               if isinstance(e, Mapping)}
    for minimum, keys in ((criteria.torino_min, ("torino_max",)), (criteria.ip_min, ("cumulative_ip",)),
                          (criteria.palermo_min, ("palermo_cum", "palermo_max"))):
        if minimum is not None:
            value = _largest(payload, *keys)
            if value is None or value < minimum:
                return False
    if criteria.iawn_only and not (_flag(payload, "iawn_notify") or "iawn" in kinds):
        return False
    if criteria.imminent_only and not ("imminent" in kinds or payload.get("imminent") is not None
                                       or _flag(payload, "imminent")):
        return False
    if criteria.objects:
        names = [payload.get("designation"), *(payload.get("aliases") or ())]
        known = {_canonical(str(n)) for n in names if n}
        if not any(_canonical(o) in known for o in criteria.objects):
            return False
    return True
