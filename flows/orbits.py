"""Orbit flow: refit every object whose observation set changed, the fits fanned out over Dask.

1. :func:`neodefense.catalog.solutions.objects_to_fit` lists the objects whose current fit set
   (non-deprecated observations) differs from the one their newest solution was fitted to.
2. One coarse Prefect task opens the Dask client (:func:`neodefense.compute.client`: a
   LocalCluster, or the cluster at ``dask.address``) and keeps a bounded number of fits in
   flight: it loads an object's observations in this process, submits
   :func:`neodefense.orbits.fit.fit_orbit` to a worker (raw Dask: a Prefect task per object
   would cost ~70 ms each) and stores each solution as it comes back, as the object's next
   version — a failed fit too, with its status (the catalog keeps the previous good one current).
   Observations excluded by hand in the newest solution (``settings["exclude"]``: a dashboard
   re-fit, :mod:`neodefense.refit`) stay excluded when they are still in the fit set
   (:func:`neodefense.catalog.solutions.exclusions_to_carry`).
3. Returns one summary dict per object.

Runs embedded (no Prefect server needed); point ``PREFECT_API_URL`` at a server for production.
No science and no SQL here: both live in the package.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from neodefense import config
from neodefense.catalog.errors import is_transient

#: Retries of a solution store after a transient database error, and the waits between them (s).
STORE_RETRY_DELAYS_S = (1.0, 2.0, 4.0)


def fit_options(settings: config.Settings) -> dict[str, Any]:
    """The ``[orbits]`` section of the settings (defaults in config/neodefense.toml)."""
    return dict(settings.raw["orbits"])


@task(name="find-objects-to-fit", cache_policy=NO_CACHE)
def find_objects_to_fit(catalog_url: str) -> list[tuple[int, str]]:
    from neodefense.catalog import db, solutions

    engine = db.connect(catalog_url)
    try:
        return solutions.objects_to_fit(engine)
    finally:
        engine.dispose()


def _store(engine, object_id: int, solution, ids, settings: dict[str, Any]) -> int:  # noqa: ANN001
    from neodefense.catalog import solutions

    for delay in (*STORE_RETRY_DELAYS_S, None):
        try:
            return solutions.store_solution(engine, object_id, solution, ids, settings)
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _outcome(future, designation: str):  # noqa: ANN001, ANN202 - Dask future -> OrbitSolution
    """The fit's solution, or a 'failed' one naming the error if the task itself failed (a
    worker died, a bug): the object is recorded as tried on this observation set."""
    from neodefense.orbits.solution import FAILED, OrbitSolution

    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - KilledWorker, CancelledError, a bug: record it
        message = f"{type(exc).__name__}: {exc}"
    return OrbitSolution(designation=designation, status=FAILED, message=f"worker: {message}")


@task(name="fit-and-store", cache_policy=NO_CACHE)
def fit_and_store(catalog_url: str, todo: list[tuple[int, str]], settings: config.Settings,
                  options: dict[str, Any]) -> list[dict[str, Any]]:
    """Fit ``todo`` objects on Dask and store every solution; summaries in completion order."""
    from distributed import as_completed

    from neodefense import compute
    from neodefense.catalog import db, solutions
    from neodefense.orbits.fit import fit_orbit

    logger = get_run_logger()
    fit_settings = {"nongrav": options["nongrav"], "exclude": [], "epoch_tdb_jd": None,
                    "requested_by": "flow fit-changed-objects"}
    engine = db.connect(catalog_url)
    summaries: list[dict[str, Any]] = []
    try:
        with compute.client(settings) as client:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
            cap = max(1, int(options["in_flight_per_worker"]) * n_workers)
            pending = iter(todo)
            in_flight: dict[Any, tuple[int, str, Any, list[int]]] = {}
            done = as_completed()

            def submit_next() -> bool:
                for object_id, designation in pending:
                    try:
                        batch, ids = solutions.observations_with_ids(engine, object_id)
                    except LookupError:  # merged away since the list was made
                        logger.warning("%s: no longer in the catalog, skipped", designation)
                        continue
                    # observations a scientist excluded (a dashboard re-fit) stay excluded
                    exclude = solutions.exclusions_to_carry(engine, object_id, ids)
                    if exclude:
                        batch = solutions.batch_with_id_lines(batch, ids)
                    future = client.submit(fit_orbit, batch, designation,
                                           nongrav=options["nongrav"],
                                           time_limit_s=float(options["time_limit_s"]),
                                           exclude=set(exclude) or None, pure=False)
                    in_flight[future] = (object_id, designation, ids, exclude)
                    done.add(future)
                    return True
                return False

            for _ in range(cap):
                if not submit_next():
                    break
            for future in done:
                object_id, designation, ids, exclude = in_flight.pop(future)
                solution = _outcome(future, designation)
                future.release()
                solution_id = _store(engine, object_id, solution, ids,
                                     {**fit_settings, "exclude": exclude})
                summaries.append({
                    "object_id": object_id, "designation": designation,
                    "solution_id": solution_id, "status": solution.status,
                    "message": solution.message, "rms_arcsec": solution.rms_arcsec,
                    "n_obs": solution.n_obs, "n_used": solution.n_used,
                    "n_rejected": solution.n_rejected, "runtime_s": solution.runtime_s,
                    "observation_set_hash": solution.observation_set_hash,
                })
                log = logger.info if solution.ok else logger.warning
                log("%s: %s (solution %d) %s", designation, solution.status, solution_id,
                    solution.message)
                submit_next()
    finally:
        engine.dispose()
    return summaries


@flow(name="fit-changed-objects", log_prints=True)
def fit_changed_objects(catalog_url: str | None = None,
                        config_path: str | None = None) -> list[dict[str, Any]]:
    """Refit every object whose observations changed since its newest solution (or that has
    none); store each solution as a new version. Returns one summary per object fitted."""
    settings = config.load(config_path)
    url = catalog_url or settings.catalog_url
    logger = get_run_logger()
    todo = find_objects_to_fit(url)
    if not todo:
        logger.info("no object has a new observation set: nothing to fit")
        return []
    logger.info("%d object(s) to fit", len(todo))
    return fit_and_store(url, todo, settings, fit_options(settings))


if __name__ == "__main__":
    fit_changed_objects()
