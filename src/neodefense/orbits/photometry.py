"""Absolute magnitude H from reported photometry (IAU H-G system, G = 0.15 by default).

Conventions
-----------
* Reported magnitudes are brought to Johnson V with the MPC's standard band offsets
  (``BAND_TO_V``, the MPC "BandConversion" table: V = mag + offset). Magnitudes with no band
  code are treated as B (−0.8) by that table; since a modern blank band is as often an
  unfiltered (≈ R) magnitude, blank-band values are used only when no observation of the object
  carries a band code (:func:`absolute_magnitude`).
* H-G phase function (Bowell et al. 1989): V = H + 5 log10(r Δ) − 2.5 log10[(1 − G) Φ1 + G Φ2],
  Φi = exp(−Ai tan(α/2)^Bi), A1 = 3.33, B1 = 0.63, A2 = 1.87, B2 = 1.22; r heliocentric and Δ
  observer distance in au, α the phase angle (Sun–object–observer) — from the fitted orbit.
* H is a robust mean: per-observation H values, iteratively clipped at 3σ (σ from the median
  absolute deviation, MAD × 1.4826, at least 0.05 mag) around the median, then averaged. Its
  quoted uncertainty is the clipped scatter over √n (the statistical part only; band offsets
  and the unknown G of a given object are worth ~0.1–0.3 mag more).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["BAND_TO_V", "HG_SLOPE", "HResult", "absolute_magnitude", "hg_phase_function",
           "phase_geometry", "v_band_magnitudes"]

#: default slope parameter G (the MPC / JPL default)
HG_SLOPE = 0.15

#: V − band offsets of the MPC BandConversion table (V = mag + offset); "" = blank band (as B)
BAND_TO_V: dict[str, float] = {
    "": -0.8, "U": -1.3, "B": -0.8, "g": -0.35, "V": 0.0, "v": 0.0, "r": 0.14, "R": 0.4,
    "C": 0.4, "W": 0.4, "i": 0.32, "z": 0.26, "I": 0.8, "J": 1.2, "w": -0.13, "y": 0.32,
    "L": 0.2, "H": 1.4, "K": 1.7, "Y": 0.7, "G": 0.28, "c": -0.05, "o": 0.33, "u": 2.5,
}

_CLIP_SIGMA = 3.0
_MAD_TO_SIGMA = 1.4826
#: floor of the clipping σ (mag): reported magnitudes are never better than this
_MIN_SPREAD_MAG = 0.05


class HResult(NamedTuple):
    H: float  # NaN when no usable magnitude
    sigma: float  # statistical 1σ of the mean (mag)
    n_used: int  # magnitudes kept after clipping
    n_available: int  # magnitudes with a known band offset and finite geometry
    values: np.ndarray  # per-observation H (NaN where not usable), in input order


def hg_phase_function(phase_rad: ArrayLike, slope: float = HG_SLOPE) -> np.ndarray:
    """(1 − G) Φ1(α) + G Φ2(α) of the H-G system (dimensionless, 1 at α = 0)."""
    half_tan = np.tan(0.5 * np.abs(np.asarray(phase_rad, dtype=float)))
    phi1 = np.exp(-3.33 * half_tan**0.63)
    phi2 = np.exp(-1.87 * half_tan**1.22)
    return (1.0 - slope) * phi1 + slope * phi2


def phase_geometry(object_bary_au: ArrayLike, observer_bary_au: ArrayLike,
                   sun_bary_au: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, Δ, α): heliocentric and observer distances (au) and phase angle (rad), (N,) each."""
    obj = np.atleast_2d(np.asarray(object_bary_au, dtype=float))
    to_sun = np.atleast_2d(np.asarray(sun_bary_au, dtype=float)) - obj
    to_obs = np.atleast_2d(np.asarray(observer_bary_au, dtype=float)) - obj
    r = np.linalg.norm(to_sun, axis=-1)
    delta = np.linalg.norm(to_obs, axis=-1)
    cos_a = np.sum(to_sun * to_obs, axis=-1) / (r * delta)
    return r, delta, np.arccos(np.clip(cos_a, -1.0, 1.0))


def v_band_magnitudes(mag: ArrayLike, band: ArrayLike, use_blank: bool = True) -> np.ndarray:
    """Reported magnitudes converted to V (NaN for unknown bands, or blank when not allowed)."""
    m = np.asarray(mag, dtype=float)
    bands = np.asarray(band, dtype=object)
    offset = np.array([BAND_TO_V.get(str(b).strip(), np.nan) if (use_blank or str(b).strip())
                       else np.nan for b in bands], dtype=float)
    return m + offset


def absolute_magnitude(mag: ArrayLike, band: ArrayLike, object_bary_au: ArrayLike,
                       observer_bary_au: ArrayLike, sun_bary_au: ArrayLike,
                       slope: float = HG_SLOPE, mask: ArrayLike | None = None) -> HResult:
    """Robust H from N reported magnitudes and the fitted geometry (see the module docstring).

    ``object_bary_au``: the object's barycentric position at emission (N, 3); observer and Sun
    barycentric positions (N, 3) at the observation. ``mask`` (N,) restricts the observations
    used (e.g. those kept by the orbit fit). Blank-band magnitudes count only when no magnitude
    with a band code is available.
    """
    m = np.asarray(mag, dtype=float)
    n = m.size
    bands = np.asarray(band, dtype=object)
    keep = np.ones(n, bool) if mask is None else np.asarray(mask, dtype=bool)
    coded = np.array([str(b).strip() != "" for b in bands], dtype=bool)
    has_coded = np.any(keep & coded & np.isfinite(m))
    v = v_band_magnitudes(m, bands, use_blank=not has_coded)
    r, delta, alpha = phase_geometry(object_bary_au, observer_bary_au, sun_bary_au)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = v - 5.0 * np.log10(r * delta) + 2.5 * np.log10(hg_phase_function(alpha, slope))
    h = np.where(keep & np.isfinite(h), h, np.nan)
    good = np.isfinite(h)
    n_avail = int(good.sum())
    if n_avail == 0:
        return HResult(float("nan"), float("nan"), 0, 0, h)
    sel = good.copy()
    for _ in range(10):
        center = float(np.median(h[sel]))
        spread = max(_MAD_TO_SIGMA * float(np.median(np.abs(h[sel] - center))), _MIN_SPREAD_MAG)
        new = good & (np.abs(h - center) <= _CLIP_SIGMA * spread)
        if np.array_equal(new, sel) or new.sum() < 1:
            break
        sel = new
    values = h[sel]
    mean = float(np.mean(values))
    sigma = float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")
    return HResult(mean, sigma, int(values.size), n_avail, h)
