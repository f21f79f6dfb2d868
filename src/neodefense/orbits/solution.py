"""The orbit solution: what a fit produces, stores and reports.

Every solution knows the hash of the exact observation set it was fitted to and the code version,
so a result can be traced to its inputs and recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from neodefense import __version__
from neodefense.observations.batch import ObservationBatch

#: element keys of the JSON contract (heliocentric ecliptic J2000)
ELEMENT_KEYS = ("a_au", "e", "i_deg", "node_deg", "argperi_deg", "M_deg", "q_au", "tp_tdb_jd")

#: fit outcomes
CONVERGED = "converged"
ARC_TOO_SHORT = "arc_too_short"  # no orbit: too few observations / too short an arc (ranging)
DIVERGED = "diverged"
FAILED = "failed"
STATUSES = (CONVERGED, ARC_TOO_SHORT, DIVERGED, FAILED)


def code_version() -> str:
    return f"neodefense {__version__}"


def observation_set_hash(batch: ObservationBatch) -> str:
    """sha256 over the observations' identifying values, independent of their order.

    Two batches hash alike exactly when they hold the same observations (station, time, position
    or radar measurement, to ~1e-8 of a day / degree), whatever file or order they came from.
    """
    c = batch.columns
    n = len(batch)
    if n == 0:
        return hashlib.sha256(b"").hexdigest()

    def q(values: np.ndarray, scale: float) -> np.ndarray:
        return np.where(np.isfinite(values), np.round(values * scale), -(2**62)).astype(np.int64)

    numeric = np.stack([q(c["obsTime_mjd"], 1e8), q(c["ra"], 1e8), q(c["dec"], 1e8),
                        q(c["delay"], 1e9), q(c["doppler"], 1e6)], axis=1)
    text = [f"{s}|{t}|{r}|{d}" for s, t, r, d in zip(c["stn"].tolist(), c["trx"].tolist(),
                                                      c["rcv"].tolist(),
                                                      c["deprecated"].tolist(), strict=True)]
    rows = sorted(zip(text, map(bytes, numeric), strict=True))
    digest = hashlib.sha256()
    for label, values in rows:
        digest.update(label.encode())
        digest.update(values)
    return digest.hexdigest()


_RADAR_FIELDS = ("delay_us", "doppler_hz", "sigma_delay_us", "sigma_doppler_hz")


@dataclasses.dataclass
class Residuals:
    """Per-observation outcome of a fit, in the order of the fitted batch.

    Optical rows: ``ra_arcsec`` is (O − C) in RA·cos δ and ``dec_arcsec`` in Dec; radar rows carry
    NaN there (and their own residuals when radar is fitted). ``chi2`` is each observation's
    χ² contribution (2 degrees of freedom for optical). ``rejected``: excluded as an outlier.
    """

    line: np.ndarray  # line in the source file (or catalog observation id)
    obs_time_mjd_utc: np.ndarray
    stn: np.ndarray
    ra_arcsec: np.ndarray
    dec_arcsec: np.ndarray
    sigma_ra_arcsec: np.ndarray
    sigma_dec_arcsec: np.ndarray
    chi2: np.ndarray
    rejected: np.ndarray
    used: np.ndarray | None = None  # True where the observation entered the fit
    # radar rows (NaN elsewhere), when radar was fitted: O − C and 1σ
    delay_us: np.ndarray | None = None
    doppler_hz: np.ndarray | None = None
    sigma_delay_us: np.ndarray | None = None
    sigma_doppler_hz: np.ndarray | None = None

    def as_json(self) -> list[dict[str, Any]]:
        out = []
        for i in range(len(self.line)):
            out.append({
                "line": int(self.line[i]),
                "obs_time_mjd_utc": float(self.obs_time_mjd_utc[i]),
                "stn": str(self.stn[i]),
                "ra_arcsec": _num(self.ra_arcsec[i]),
                "dec_arcsec": _num(self.dec_arcsec[i]),
                "sigma_ra_arcsec": _num(self.sigma_ra_arcsec[i]),
                "sigma_dec_arcsec": _num(self.sigma_dec_arcsec[i]),
                "chi2": _num(self.chi2[i]),
                "rejected": bool(self.rejected[i]),
                **({} if self.used is None else {"used": bool(self.used[i])}),
                **{name: _num(getattr(self, name)[i]) for name in _RADAR_FIELDS
                   if getattr(self, name) is not None and np.isfinite(getattr(self, name)[i])},
            })
        return out


def _num(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


@dataclasses.dataclass
class OrbitSolution:
    """A fitted orbit (or the reason there is none).

    ``state_icrf_au``: barycentric ICRF [x, y, z, vx, vy, vz] (au, au/day) at ``epoch_tdb_jd``.
    ``covariance``: (6+k)×(6+k) in the same units, then the fitted non-grav parameters (au/day²)
    in the order of ``nongrav`` keys. ``elements`` / ``sigmas``: heliocentric ecliptic J2000.
    """

    designation: str
    status: str
    message: str = ""
    epoch_tdb_jd: float = float("nan")
    state_icrf_au: np.ndarray = dataclasses.field(default_factory=lambda: np.full(6, np.nan))
    covariance: np.ndarray | None = None
    nongrav: dict[str, float] = dataclasses.field(default_factory=dict)
    nongrav_sigmas: dict[str, float] = dataclasses.field(default_factory=dict)
    elements: dict[str, float] = dataclasses.field(default_factory=dict)
    sigmas: dict[str, float] = dataclasses.field(default_factory=dict)
    rms_arcsec: float = float("nan")  # RMS of the used residuals (RA·cosδ and Dec), arcsec
    rms_normalized: float = float("nan")  # sqrt(χ² / 2N) of the used observations (JPL's "rms")
    chi2: float = float("nan")
    n_obs: int = 0
    n_used: int = 0
    n_rejected: int = 0
    H: float | None = None
    moid_au: float | None = None
    close_approaches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    residuals: Residuals | None = None
    iterations: int = 0
    runtime_s: float = 0.0
    observation_set_hash: str = ""
    code_version: str = dataclasses.field(default_factory=code_version)
    ranging: dict[str, Any] | None = None  # summary of the ranging result for short arcs

    @property
    def ok(self) -> bool:
        return self.status == CONVERGED

    def as_json(self, residuals: bool = False) -> dict[str, Any]:
        """The ``neodefense fit --json`` contract (plus extras)."""
        data: dict[str, Any] = {
            "designation": self.designation,
            "status": self.status,
            "message": self.message,
            "epoch_tdb_jd": _num(self.epoch_tdb_jd),
            "state_icrf_au": [_num(v) for v in np.asarray(self.state_icrf_au, dtype=float)],
            "covariance": (None if self.covariance is None
                           else [[_num(v) for v in row] for row in self.covariance]),
            "elements": {k: _num(self.elements[k]) for k in ELEMENT_KEYS if k in self.elements},
            "sigmas": {k: _num(self.sigmas[k]) for k in ELEMENT_KEYS if k in self.sigmas},
            "nongrav": {k: float(v) for k, v in self.nongrav.items()},
            "nongrav_sigmas": {k: float(v) for k, v in self.nongrav_sigmas.items()},
            "rms_arcsec": _num(self.rms_arcsec),
            "rms_normalized": _num(self.rms_normalized),
            "chi2": _num(self.chi2),
            "n_obs": int(self.n_obs),
            "n_used": int(self.n_used),
            "n_rejected": int(self.n_rejected),
            "H": None if self.H is None else _num(self.H),
            "moid_au": None if self.moid_au is None else _num(self.moid_au),
            "close_approaches": self.close_approaches,
            "iterations": int(self.iterations),
            "runtime_s": float(self.runtime_s),
            "observation_set_hash": self.observation_set_hash,
            "code_version": self.code_version,
        }
        if self.ranging is not None:
            data["ranging"] = self.ranging
        if residuals and self.residuals is not None:
            data["residuals"] = self.residuals.as_json()
        return data
