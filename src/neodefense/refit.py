"""Re-fit one object's orbit on request, keeping chosen observations out of the fit.

A scientist who judges some observations bad (a wrong station, a blended image, a timing error
the automatic outlier rejection did not catch) asks for a re-fit without them (the dashboard's
form on the object page, or :func:`refit` directly). The re-fit:

1. loads the object's current fit set with the catalog observation ids
   (:func:`neodefense.catalog.solutions.observations_with_ids`) and puts the ids in the batch's
   ``line`` column (:func:`~neodefense.catalog.solutions.batch_with_id_lines`): file line numbers
   repeat across submissions, ids do not;
2. fits it from scratch with :func:`neodefense.orbits.fit.fit_orbit` and ``exclude`` = the ids
   (the excluded observations keep their residuals, marked not used);
3. stores the result as the object's next solution version
   (:func:`~neodefense.catalog.solutions.store_solution`) with the settings
   ``{"exclude": ids, "requested_by": ..., "nongrav": ..., "epoch_tdb_jd": None}`` — every
   observation id is given (the fitted set is unchanged, so the orbit flow does not see new work),
   and the previous versions stay. A failed fit is stored too, with its status; the catalog keeps
   the newest converged one current.

The orbit flow (``flows/orbits.py``) carries the exclusions forward when new observations arrive
(:func:`~neodefense.catalog.solutions.exclusions_to_carry`). Monitoring picks the new converged
solution up like any other (it has no assessment yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from neodefense.catalog import queries, solutions
from neodefense.orbits.fit import NONGRAV_MODELS, fit_orbit

__all__ = ["refit", "resolve_nongrav"]


def resolve_nongrav(engine: Engine, object_id: int, nongrav: str | None) -> str:
    """The non-gravitational model of a re-fit: ``nongrav`` when given (checked against
    :data:`~neodefense.orbits.fit.NONGRAV_MODELS`), else the one the object's newest solution
    was fitted with, else "none"."""
    if nongrav is None:
        history = solutions.solution_history(engine, object_id)
        nongrav = str((history[-1]["settings"] or {}).get("nongrav") or "none") if history \
            else "none"
    if nongrav not in NONGRAV_MODELS:
        raise ValueError(f"nongrav must be one of {sorted(NONGRAV_MODELS)}, got {nongrav!r}")
    return nongrav


def refit(engine: Engine, designation: str, exclude_observation_ids: Sequence[int],
          requested_by: str, nongrav: str | None = None,
          time_limit_s: float = 120.0) -> dict[str, Any]:
    """Fit the object ``designation`` (any alias) again without the observations
    ``exclude_observation_ids`` (catalog ids) and store the result as its next solution version.

    ``requested_by``: who asked (stored in the settings); ``nongrav``: the non-grav model (None:
    the newest solution's). Returns a summary: designation, object_id, solution_id, version,
    status, message, rms_arcsec, n_obs, n_used, n_rejected, exclude, nongrav, runtime_s.
    Raises :class:`~neodefense.catalog.queries.UnknownDesignation`, and ValueError when an id is
    not one of the object's current (non-deprecated) observations or ``nongrav`` is unknown.
    """
    info = queries.object_info(engine, designation)
    object_id, name = int(info["id"]), str(info["designation"])
    batch, ids = solutions.observations_with_ids(engine, object_id)
    exclude = sorted({int(v) for v in exclude_observation_ids})
    known = {int(v) for v in ids}
    unknown = [v for v in exclude if v not in known]
    if unknown:
        raise ValueError(f"observations {unknown[:10]} are not current observations of "
                         f"{designation}")
    model = resolve_nongrav(engine, object_id, nongrav)
    solution = fit_orbit(solutions.batch_with_id_lines(batch, ids), name, nongrav=model,
                         time_limit_s=float(time_limit_s), exclude=set(exclude) or None)
    settings = {"nongrav": model, "exclude": exclude, "epoch_tdb_jd": None,
                "requested_by": str(requested_by)}
    solution_id = solutions.store_solution(engine, object_id, solution, ids, settings)
    version = next(s["version"] for s in reversed(solutions.solution_history(engine, object_id))
                   if s["id"] == solution_id)
    return {"designation": name, "object_id": object_id, "solution_id": solution_id,
            "version": version, "status": solution.status, "message": solution.message,
            "rms_arcsec": solution.rms_arcsec, "n_obs": solution.n_obs,
            "n_used": solution.n_used, "n_rejected": solution.n_rejected, "exclude": exclude,
            "nongrav": model, "runtime_s": solution.runtime_s}
