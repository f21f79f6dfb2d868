"""Recompute a stored impact assessment from its provenance and compare.

Every stored assessment names the orbit solution it was computed from, whose residual rows are
the exact observations fitted, and records the monitor's settings (method, samples, seed, years,
bodies, …) and the code version. :func:`reproduce` loads exactly those, runs the monitor again and
compares the result with the stored one: same inputs and same code must give the same virtual
impactors and probabilities. The Palermo values are not compared (they depend on the time of
the assessment through ΔT), nor runtimes.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.engine import Engine

__all__ = ["reproduce"]

#: relative tolerance on probabilities: the computation is deterministic, only the summation
#: order of floating-point sums may differ between processes (Dask workers)
RTOL = 1e-9


def _close(a: float | None, b: float | None, rtol: float = RTOL) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-300)


def reproduce(engine: Engine, assessment_id: int, client: Any = None) -> dict[str, Any]:
    """Recompute stored assessment ``assessment_id`` from its orbit solution, exact observation
    set and settings; returns ``{"assessment_id", "identical", "differences": [...],
    "stored": {...}, "recomputed": {...}, "code_version": {"stored", "now"}}`` where the summaries
    hold status, method, n_samples, cumulative_ip and the virtual impactors (body, date, ip).
    Raises LookupError for an unknown assessment."""
    from neodefense.catalog import assessments, solutions
    from neodefense.impacts.monitor import monitor_solution
    from neodefense.orbits.solution import code_version

    stored = assessments.assessment_by_id(engine, assessment_id)
    settings = dict(stored.get("settings") or {})
    solution = solutions.load_solution(engine, stored["solution_id"])
    batch, _ = solutions.solution_observations(engine, stored["solution_id"])
    if not settings:  # stored before the settings were recorded: the columns hold most of it
        settings = {"method": stored["method"], "n_samples": stored["n_samples"],
                    "years": stored["years"], "bodies": stored["bodies"],
                    "seed": stored["seed"] or 0,
                    "cross_check": stored.get("cross_check") is not None}
    again = monitor_solution(
        solution, batch=batch, method=settings["method"], years=float(settings["years"]),
        n_samples=settings.get("n_samples"), bodies=tuple(settings["bodies"]),
        seed=int(settings.get("seed") or 0),
        entry_altitude_km=float(settings.get("entry_altitude_km", 100.0)),
        cross_check=bool(settings.get("cross_check", False)),
        cross_check_samples=settings.get("cross_check_samples"),
        diameter_m=settings.get("diameter_m"), is_samples=settings.get("is_samples"),
        client=client).as_json()

    def summary(a: dict[str, Any]) -> dict[str, Any]:
        return {"status": a["status"], "method": a["method"], "n_samples": a["n_samples"],
                "cumulative_ip": a["cumulative_ip"],
                "virtual_impactors": [{"body": v["body"], "date_utc": v["date_utc"],
                                       "ip": v["ip"]} for v in a["virtual_impactors"]]}

    old, new = summary(stored), summary(again)
    differences = [f"{key}: stored {old[key]!r}, recomputed {new[key]!r}"
                   for key in ("status", "method", "n_samples") if old[key] != new[key]]
    if not _close(old["cumulative_ip"], new["cumulative_ip"]):
        differences.append(f"cumulative_ip: stored {old['cumulative_ip']!r}, recomputed "
                           f"{new['cumulative_ip']!r}")
    if len(old["virtual_impactors"]) != len(new["virtual_impactors"]):
        differences.append(f"virtual impactors: stored {len(old['virtual_impactors'])}, "
                           f"recomputed {len(new['virtual_impactors'])}")
    else:
        for k, (a, b) in enumerate(zip(old["virtual_impactors"], new["virtual_impactors"])):
            if a["body"] != b["body"] or a["date_utc"] != b["date_utc"] or not _close(a["ip"],
                                                                                      b["ip"]):
                differences.append(f"virtual impactor {k}: stored {a}, recomputed {b}")
    return {"assessment_id": assessment_id, "designation": stored["designation"],
            "solution_id": stored["solution_id"], "identical": not differences,
            "differences": differences, "stored": old, "recomputed": new,
            "code_version": {"stored": stored.get("code_version"), "now": code_version()}}
