"""The impact assessment: what monitoring produces, stores and reports.

An :class:`ImpactAssessment` belongs to one orbit solution (its observation-set hash, epoch and
code version are copied in) and lists the virtual impactors (:class:`VirtualImpactor`) found by
the chosen method, the nominal close approaches with their uncertainty, and the per-object risk
summary (cumulative IP, Palermo, Torino, IAWN/SMPAG criteria). ``as_json`` is the
``neodefense monitor --json`` contract. ``target_planes`` holds the samples' b-plane points at
the most probable virtual impactors and the nominal's closest approaches (for plots: see
:func:`neodefense.impacts.monitor.target_planes` for the keys).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from neodefense.orbits.solution import code_version

#: outcomes of a monitoring run
OK = "ok"  # the search ran to its horizon (with or without virtual impactors)
NO_SOLUTION = "no_solution"  # no orbit solution (or a failed / diverged fit) to monitor
DEGENERATE = "degenerate_covariance"  # covariance missing, not finite or not positive definite
UNBOUND = "unbound_samples"  # too many samples hyperbolic w.r.t. the Sun or falling into it
FAILED = "failed"  # the computation failed (message says why); nothing stored half-way
STATUSES = (OK, NO_SOLUTION, DEGENERATE, UNBOUND, FAILED)

METHODS = ("lov", "is", "mc")


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclasses.dataclass
class VirtualImpactor:
    """One virtual impactor: a connected set of impacting orbits at one encounter.

    ``ip``: impact probability; ``ip_sigma``: its 1σ statistical error (Monte Carlo), 0 for a
    linearized estimate. ``sigma_lov``: the sampling coordinate (LOV σ of the representative
    orbit; NaN for Monte Carlo). ``entry``: ``{time_utc, lat_deg, lon_deg, alt_km}`` for
    imminent impactors (entry within 30 days, IP > 0.5), else None; ``corridor``:
    ``{"1sigma": [[lat, lon], ...], "3sigma": [...]}`` then.
    """

    body: str
    time_tdb_jd: float
    date_utc: str
    ip: float
    ip_sigma: float = 0.0
    palermo: float = float("nan")
    torino: int = 0
    v_inf_km_s: float = float("nan")
    v_imp_km_s: float = float("nan")
    energy_mt: float = float("nan")
    diameter_m: float = float("nan")
    sigma_lov: float = float("nan")
    b_km: float = float("nan")  # b-plane distance of the representative orbit
    b_impact_km: float = float("nan")  # focused impact radius at its v∞
    method: str = ""
    entry: dict[str, Any] | None = None
    corridor: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "date_utc": self.date_utc,
            "time_tdb_jd": _num(self.time_tdb_jd),
            "ip": _num(self.ip),
            "ip_sigma": _num(self.ip_sigma),
            "palermo": _num(self.palermo),
            "torino": int(self.torino),
            "v_inf_km_s": _num(self.v_inf_km_s),
            "v_imp_km_s": _num(self.v_imp_km_s),
            "energy_mt": _num(self.energy_mt),
            "diameter_m": _num(self.diameter_m),
            "sigma_lov": _num(self.sigma_lov),
            "b_km": _num(self.b_km),
            "b_impact_km": _num(self.b_impact_km),
            "method": self.method,
            "entry": self.entry,
            "corridor": self.corridor,
        }


@dataclasses.dataclass
class ImpactAssessment:
    """Result of monitoring one orbit solution (see the module docstring)."""

    designation: str
    status: str
    message: str = ""
    method: str = "lov"
    n_samples: int = 0
    seed: int | None = None
    years: float = 100.0
    bodies: tuple[str, ...] = ("earth", "moon")
    horizon_tdb_jd: float = float("nan")
    assessed_utc: str = ""  # when the assessment ran (ISO UTC): the reference for ΔT in Palermo
    cumulative_ip: float = 0.0
    palermo_cum: float | None = None
    palermo_max: float | None = None
    torino_max: int = 0
    iawn_notify: bool = False
    smpag: bool = False
    H: float | None = None
    diameter_m: float | None = None
    virtual_impactors: list[VirtualImpactor] = dataclasses.field(default_factory=list)
    close_approaches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cross_check: dict[str, Any] | None = None  # the independent method's result (MC vs LOV)
    # target planes of the most probable virtual impactors and of the nominal's close
    # approaches: the samples' (ξ, ζ) on each (see neodefense.impacts.monitor.target_planes)
    target_planes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    runtime_s: float = 0.0
    # what the monitor was asked to do (method, n_samples, years, bodies, seed, ...): with the
    # orbit solution and the code version, enough to compute the same assessment again
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    # provenance: the orbit solution this assessment was computed from
    solution_epoch_tdb_jd: float = float("nan")
    observation_set_hash: str = ""
    solution_code_version: str = ""
    code_version: str = dataclasses.field(default_factory=code_version)

    def __post_init__(self) -> None:
        if self.target_planes is None:  # a stored dict may carry null; older ones lack the key
            self.target_planes = []

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_json(self) -> dict[str, Any]:
        """The ``neodefense monitor --json`` contract (plus extras)."""
        return {
            "designation": self.designation,
            "status": self.status,
            "message": self.message,
            "method": self.method,
            "n_samples": int(self.n_samples),
            "seed": self.seed,
            "years": float(self.years),
            "bodies": list(self.bodies),
            "horizon_tdb_jd": _num(self.horizon_tdb_jd),
            "assessed_utc": self.assessed_utc,
            "cumulative_ip": float(self.cumulative_ip),
            "palermo_cum": _num(self.palermo_cum),
            "palermo_max": _num(self.palermo_max),
            "torino_max": int(self.torino_max),
            "iawn_notify": bool(self.iawn_notify),
            "smpag": bool(self.smpag),
            "H": _num(self.H),
            "diameter_m": _num(self.diameter_m),
            "virtual_impactors": [vi.as_json() for vi in self.virtual_impactors],
            "close_approaches": self.close_approaches,
            "cross_check": self.cross_check,
            "target_planes": self.target_planes,
            "runtime_s": float(self.runtime_s),
            "settings": self.settings,
            "solution_epoch_tdb_jd": _num(self.solution_epoch_tdb_jd),
            "observation_set_hash": self.observation_set_hash,
            "solution_code_version": self.solution_code_version,
            "code_version": self.code_version,
        }
