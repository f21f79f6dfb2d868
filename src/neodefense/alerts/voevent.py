"""VOEvent 2.0 documents of alerts (IVOA VOEvent 2.0, built with ``voevent-parse``).

:func:`to_voevent` renders an alert payload (:func:`neodefense.alerts.rules.build_payload`) as a
``role="prediction"`` VOEvent: ``ivorn`` = the payload's; Who (AuthorIVORN, Date = issued_utc,
Author shortName); What (top-level Params of the risk, a Group per virtual impactor and one for
the imminent entry); WhereWhen (the predicted atmospheric entry — time and geodetic position,
``UTC-GEOD-TOPO``, Position3D longitude/latitude in degrees and height in metres — for an imminent
impact, else just the issue time); How (the monitoring method and code version); Why
(importance from the IP, an Inference with concept "Impact risk" and the event messages);
Citations of the previous alert of the object: ``supersedes``, or ``retraction`` for a removal.

:func:`parse_voevent` reads such a document back with ``defusedxml`` (safe on untrusted input).

``voevent-parse`` 1.0.3 calls ``collections.Iterable`` (gone since Python 3.10) in
``add_citations`` and in ``add_how`` / ``add_why`` with lists, so the sub-elements are appended
here directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import voeventparse as vp
from defusedxml import ElementTree as SafeET
from lxml import etree

from neodefense.alerts.rules import REMOVED, format_ip

__all__ = ["VOEVENT_NS", "importance_from_ip", "parse_voevent", "to_voevent"]

VOEVENT_NS = "http://www.ivoa.net/xml/VOEvent/v2.0"

#: top-level What Params: (payload risk key, Param name, unit, ucd)
_RISK_PARAMS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("cumulative_ip", "cumulative_ip", None, "stat.probability"),
    ("palermo_cum", "palermo_cum", None, None),
    ("palermo_max", "palermo_max", None, None),
    ("torino_max", "torino_max", None, None),
    ("n_vi", "n_vi", None, "meta.number"),
    ("first_year", "first_year", "yr", "time.epoch"),
    ("last_year", "last_year", "yr", "time.epoch"),
    ("H", "H", "mag", "phys.magAbs"),
    ("diameter_m", "diameter_m", "m", "phys.size.diameter"),
    ("v_inf_km_s", "v_inf_km_s", "km/s", "phys.veloc"),
    ("iawn_notify", "iawn_notify", None, None),
    ("smpag", "smpag", None, None),
    ("method", "method", None, "meta.code"),
    ("n_samples", "n_samples", None, "meta.number"),
)
_VI_PARAMS: tuple[tuple[str, str | None], ...] = (
    ("body", None), ("date_utc", None), ("ip", None), ("palermo", None), ("torino", None),
    ("v_inf_km_s", "km/s"), ("energy_mt", "Mt"))


def importance_from_ip(ip: float | None) -> float:
    """VOEvent ``Why/@importance`` (0..1) of an impact probability: log-linear, 0 at IP ≤ 1e-8,
    0.25 at 1e-6, 0.75 at 1e-2, 1 at IP = 1; 0 for None."""
    if ip is None or not isinstance(ip, int | float) or not ip > 0.0 or not math.isfinite(ip):
        return 0.0
    return round(min(max((math.log10(ip) + 8.0) / 8.0, 0.0), 1.0), 4)


#: characters XML 1.0 does not allow (C0 controls other than tab, newline, CR; surrogates; U+FFFE/F)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: Any) -> str:
    """``text`` as a string XML 1.0 can carry (forbidden characters dropped; escaping is lxml's)."""
    return _NOT_XML.sub("", str(text))


def _value(value: Any) -> Any:
    """A Param value: bool → 'true'/'false', finite numbers as they are, other values as XML-safe
    text; None for absent or non-finite values."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return _xml_text(value)


def _param(name: str, value: Any, unit: str | None = None, ucd: str | None = None) -> Any | None:
    v = _value(value)
    if v is None:
        return None
    if isinstance(v, str):
        return vp.Param(name, value=v, unit=unit, ucd=ucd, dataType="string")
    return vp.Param(name, value=v, unit=unit, ucd=ucd)  # int / float: dataType set by voeventparse


def _group(params: list[Any], name: str, type_: str) -> Any | None:
    params = [p for p in params if p is not None]
    return vp.Group(params, name=name, type=type_) if params else None


def _add_text(parent: Any, tag: str, text: str) -> None:
    """Append ``<tag>text</tag>`` to an objectified element."""
    etree.SubElement(parent, tag)
    getattr(parent, tag)[-1] = _xml_text(text)


def _iso_time(text: str) -> str:
    """ISO time for STC ``ISOTime``: no zone designator (the coordinate system says UTC)."""
    text = str(text).strip()
    return text[:-1] if text.endswith("Z") else text


def _where_when(v: Any, time_utc: str, entry: Mapping[str, Any] | None) -> None:
    """WhereWhen: the entry point (geodetic, UTC-GEOD-TOPO) when known, else only the time."""
    obs = etree.SubElement(v.WhereWhen, "ObsDataLocation")
    etree.SubElement(obs, "ObservatoryLocation", id=vp.definitions.observatory_location.geosurface)
    loc = etree.SubElement(obs, "ObservationLocation")
    lat = _value(entry.get("lat_deg")) if entry else None
    lon = _value(entry.get("lon_deg")) if entry else None
    alt_km = _value(entry.get("alt_km")) if entry else None
    system = "UTC-GEOD-TOPO" if lat is not None and lon is not None else "UTC-ICRS-GEO"
    etree.SubElement(loc, "AstroCoordSystem", id=system)
    coords = etree.SubElement(loc, "AstroCoords", coord_system_id=system)
    t = etree.SubElement(coords, "Time", unit="s")
    instant = etree.SubElement(t, "TimeInstant")
    instant.ISOTime = _xml_text(_iso_time(time_utc))
    if system == "UTC-GEOD-TOPO":
        pos = etree.SubElement(coords, "Position3D", unit="deg-deg-m")
        pos.Name1, pos.Name2, pos.Name3 = "Longitude", "Latitude", "Height"
        value3 = etree.SubElement(pos, "Value3")
        value3.C1 = float(lon)
        value3.C2 = float(lat)
        value3.C3 = float(alt_km) * 1e3 if isinstance(alt_km, int | float) else 0.0
        v.WhereWhen.Description = "Predicted atmospheric entry point (WGS84 geodetic) and time"
    else:
        v.WhereWhen.Description = "Time of issue of this prediction"


def _how_text(risk: Mapping[str, Any], prov: Mapping[str, Any]) -> str:
    """'Impact monitoring by the lov method (1000 samples) of orbit solution 7 (observations
    ab12...), assessment 3 version 1, neodefense 0.1.0' with what is known."""
    text = "Impact monitoring"
    if risk.get("method"):
        text += f" by the {risk['method']} method"
        if risk.get("n_samples"):
            text += f" ({risk['n_samples']} samples)"
    parts = [text]
    if prov.get("solution_id") is not None:
        obs = prov.get("observation_set_hash")
        parts.append(f"of orbit solution {prov['solution_id']}" + (f" (observations {obs})" if obs else ""))
    text = " ".join(parts)
    if prov.get("assessment_id") is not None:
        version = prov.get("assessment_version")
        text += f", assessment {prov['assessment_id']}"
        text += f" version {version}" if version is not None else ""
    if prov.get("code_version"):
        text += f", neodefense {prov['code_version']}"
    return text


def to_voevent(payload: Mapping[str, Any], *, author_ivorn: str = "ivo://neodefense/author",
               short_name: str = "neodefense", title: str | None = "neodefense planetary-defence alerts",
               contact_name: str | None = None, contact_email: str | None = None,
               contact_phone: str | None = None) -> str:
    """The VOEvent 2.0 XML (UTF-8 text with declaration) of an alert payload (module docstring).

    ``author_ivorn``: the full AuthorIVORN (``ivo://...``); ``short_name``, ``title`` and the
    ``contact_*`` fields go to Who/Author (None: left out). Params whose value is None or not
    finite are omitted. Raises ValueError for a payload without ``ivorn`` or ``issued_utc``.
    """
    ivorn, issued = payload.get("ivorn"), payload.get("issued_utc")
    if not ivorn or not issued:
        raise ValueError("alert payload needs 'ivorn' and 'issued_utc'")
    v = vp.Voevent(stream="neodefense", stream_id="alert", role=vp.definitions.roles.prediction)
    v.attrib["ivorn"] = _xml_text(ivorn)

    # Who
    v.Who.AuthorIVORN = _xml_text(author_ivorn)
    v.Who.Date = _xml_text(issued)
    v.Who.Description = "neodefense impact-risk alert (schema neodefense.alert/1)"
    author = {"title": title, "shortName": short_name, "contactName": contact_name,
              "contactEmail": contact_email, "contactPhone": contact_phone}
    vp.set_author(v, **{k: _xml_text(x) for k, x in author.items() if x is not None})

    # What
    risk = payload.get("risk") or payload.get("previous") or {}
    removal = payload.get("removal")
    kinds = list(payload.get("kinds") or [])
    top = [
        _param("designation", payload.get("designation"), ucd="meta.id"),
        _param("alert_id", payload.get("alert_id"), ucd="meta.id"),
        _param("sequence", payload.get("sequence"), ucd="meta.number"),
        _param("supersedes", payload.get("supersedes"), ucd="meta.id"),
        _param("object_id", payload.get("object_id"), ucd="meta.id"),
        _param("event_kinds", ",".join(kinds) if kinds else None, ucd="meta.code"),
    ]
    top += [_param(name, risk.get(key), unit, ucd) for key, name, unit, ucd in _RISK_PARAMS]
    if removal:
        top += [_param("removal_reason", removal.get("reason"), ucd="meta.code"),
                _param("removal_reason_text", removal.get("reason_text")),
                _param("removal_note", removal.get("note") or None)]
    for p in top:
        if p is not None:
            v.What.append(p)
    for i, vi in enumerate((payload.get("virtual_impactors") or [])[:10], start=1):
        g = _group([_param(k, vi.get(k), unit) for k, unit in _VI_PARAMS], f"vi{i}", "virtual_impactor")
        if g is not None:
            v.What.append(g)
    imminent = payload.get("imminent")
    entry = imminent.get("entry") if isinstance(imminent, Mapping) else None
    entry = entry if isinstance(entry, Mapping) else None
    if imminent:
        e = entry or {}
        g = _group([_param("body", imminent.get("body")), _param("date_utc", imminent.get("date_utc")),
                    _param("ip", imminent.get("ip"), ucd="stat.probability"),
                    _param("entry_time_utc", e.get("time_utc"), ucd="time.epoch"),
                    _param("entry_lat_deg", e.get("lat_deg"), "deg", "pos.earth.lat"),
                    _param("entry_lon_deg", e.get("lon_deg"), "deg", "pos.earth.lon"),
                    _param("entry_alt_km", e.get("alt_km"), "km", "pos.earth.altitude"),
                    _param("entry_error", e.get("error"))], "imminent", "imminent_impact")
        if g is not None:
            v.What.append(g)
    _add_text(v.What, "Description", "Impact risk of a near-Earth object; event kinds: "
              + (", ".join(kinds) if kinds else "none"))

    # WhereWhen
    if entry is not None and entry.get("time_utc"):
        _where_when(v, str(entry["time_utc"]), entry)
    else:
        _where_when(v, str(issued), None)

    # How
    prov = payload.get("provenance") or {}
    how = etree.SubElement(v, "How")
    _add_text(how, "Description", _how_text(risk, prov))

    # Why
    is_removal = REMOVED in kinds or bool(removal)
    ip_basis = ((payload.get("previous") or {}).get("cumulative_ip") if is_removal
                else risk.get("cumulative_ip"))
    vp.add_why(v, importance=importance_from_ip(ip_basis))
    ip_now = (payload.get("risk") or {}).get("cumulative_ip")
    probability = min(max(float(ip_now), 0.0), 1.0) if isinstance(ip_now, int | float) and \
        math.isfinite(ip_now) else None
    name = _xml_text(payload.get("designation") or "")
    inference = vp.Inference(probability=probability, relation="predicted", name=name or None,
                             concept="Impact risk")
    for event in payload.get("events") or []:
        if event.get("message"):
            _add_text(inference, "Description", str(event["message"]))
    v.Why.append(inference)
    summary = (f"{payload.get('designation')}: {', '.join(kinds) or 'update'}; cumulative IP "
               f"{format_ip(ip_now)}, Torino {risk.get('torino_max')}")
    _add_text(v.Why, "Description", summary)

    # Citations
    if payload.get("supersedes_ivorn"):
        etree.SubElement(v, "Citations")
        cite = vp.definitions.cite_types.retraction if is_removal else vp.definitions.cite_types.supersedes
        v.Citations.append(vp.EventIvorn(_xml_text(payload["supersedes_ivorn"]), cite))
        _add_text(v.Citations, "Description",
                  f"{'Retracts' if is_removal else 'Supersedes'} {payload.get('supersedes')}")
    return vp.dumps(v, pretty_print=True).decode("utf-8")


def _typed(value: str | None, data_type: str | None) -> Any:
    if value is None:
        return None
    try:
        if data_type == "int":
            return int(value)
        if data_type == "float":
            return float(value)
    except ValueError:
        return value
    return value


def _params(parent: Any) -> dict[str, Any]:
    return {p.get("name"): _typed(p.get("value"), p.get("dataType")) for p in parent.findall("Param")}


def _text(el: Any) -> str | None:
    return None if el is None or el.text is None else el.text.strip()


def parse_voevent(xml: str | bytes) -> dict[str, Any]:
    """Read a VOEvent 2.0 document safely (defusedxml: no DTDs, entities or external references).

    Returns ``{"ivorn", "role", "version", "author_ivorn", "date", "citations": [(ivorn, cite)],
    "params": {name: value} (top-level What; int/float by dataType), "groups": {name: {param:
    value}}, "importance" (float or None), "inferences": [{"name", "concept", "probability",
    "descriptions"}], "where_when": {"time", "system", "lon_deg", "lat_deg", "height_m"} or None}``.
    Raises ValueError for XML that is not a VOEvent (or is unsafe).
    """
    try:
        root = SafeET.fromstring(xml)
    except (SafeET.ParseError, ValueError) as exc:  # DefusedXmlException subclasses ValueError
        raise ValueError(f"not a readable VOEvent: {exc}") from exc
    if root.tag != f"{{{VOEVENT_NS}}}VOEvent":
        raise ValueError(f"not a VOEvent 2.0 document (root element {root.tag!r})")
    what = root.find("What")
    citations = [(_text(e), e.get("cite")) for e in root.findall("Citations/EventIVORN")]
    why = root.find("Why")
    importance = why.get("importance") if why is not None else None
    where = None
    coords = root.find("WhereWhen/ObsDataLocation/ObservationLocation/AstroCoords")
    if coords is not None:
        value3 = coords.find("Position3D/Value3")
        where = {"time": _text(coords.find("Time/TimeInstant/ISOTime")),
                 "system": coords.get("coord_system_id"),
                 "lon_deg": float(_text(value3.find("C1"))) if value3 is not None else None,
                 "lat_deg": float(_text(value3.find("C2"))) if value3 is not None else None,
                 "height_m": float(_text(value3.find("C3"))) if value3 is not None else None}
    return {
        "ivorn": root.get("ivorn"),
        "role": root.get("role", "observation"),
        "version": root.get("version"),
        "author_ivorn": _text(root.find("Who/AuthorIVORN")),
        "date": _text(root.find("Who/Date")),
        "citations": citations,
        "params": _params(what) if what is not None else {},
        "groups": {g.get("name"): _params(g) for g in what.findall("Group")} if what is not None else {},
        "importance": float(importance) if importance is not None else None,
        "inferences": [{"name": _text(i.find("Name")), "concept": _text(i.find("Concept")),
                        "probability": float(i.get("probability")) if i.get("probability") else None,
                        "descriptions": [_text(d) for d in i.findall("Description")]}
                       for i in (why.findall("Inference") if why is not None else [])],
        "where_when": where,
    }
