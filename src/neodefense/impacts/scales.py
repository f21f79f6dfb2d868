"""Impactor size and energy, and the risk scales: Palermo, Torino, IAWN and SMPAG criteria.

Size and energy
---------------
* Diameter from the absolute magnitude: D = 1329 km / √p · 10^(−H/5) (Harris & Harris 1997;
  Pravec & Harris 2007), albedo p = 0.154 by default (:data:`ALBEDO_DEFAULT`, the value CNEOS
  Sentry uses). H = 22 gives 134.8 m.
* Mass of a sphere of density 2.6 g/cm³ (:data:`DENSITY_DEFAULT_KG_M3`) unless told otherwise.
* Impact speed v_imp = √(v∞² + v_esc²), v_esc = √(2 GM / R) with the DE440 GM and the radius of
  :mod:`neodefense.impacts.bplane` (Earth: 11.180 km/s with the equatorial radius; the often
  quoted 11.186 km/s uses the mean radius 6371 km).
* Energy ½ m v_imp² in megatons of TNT (1 Mt = 4.184e15 J, :data:`MT_TNT_J`).

Palermo scale (Chesley et al. 2002, Icarus 159, 423)
-----------------------------------------------------
PS = log10(IP / (f_B ΔT)) with the background frequency of impacts at least as energetic
f_B = 0.03 E^(−4/5) per year (E in Mt) and ΔT the time to the impact in years. ΔT is floored at
one day (:data:`PALERMO_MIN_YEARS`) so that imminent (or, in a replay, already past) impacts
do not divide by zero; the cumulative value is log10 Σ 10^PS.

Torino scale (Binzel 2000, Planet. Space Sci. 48, 297; 2005 wording at CNEOS)
------------------------------------------------------------------------------
The chart (https://cneos.jpl.nasa.gov/sentry/torino_scale.html, not reachable offline) has
log10 P (1e-8 .. 1) against log10 E (1 .. 1e8 Mt). It is reconstructed here as a table of lines
in the (x = log10 P, y = log10 E) plane; every sloped boundary is one of the family

    g_c(x, y) = (y + c)/3 + (x + 2)/2 = 0,   c ∈ {+1, −2, −5, −8},

i.e. P ∝ E^(−2/3), two decades of P apart (the 0|1, 1|2 and 2|"orange" lines are published in
this form; the scale text's background rates — once per 50 years at ~1 Mt, per 1,000 years at
~100 Mt, per 100,000 years at ~1e5 Mt — follow the same E^(−2/3) law, which fixes the red-zone
energies 1e2 and 1e5 Mt where the g_−5 and g_−8 lines reach P = 1). Regions (:data:`TORINO_TABLE`):

* E < 1 Mt (would not reach the ground intact as a damaging impact) or P = 0: **0**, whatever P.
* P ≥ 0.99 (certain collision): **8** if E < 1e2 Mt, **9** if E < 1e5 Mt, else **10**.
* 0.01 ≤ P < 0.99: **3** below g_−2 (localized), **4** between g_−2 and g_−5 (regional),
  **5** above g_−5 with E < 1e5 Mt, **6** for E ≥ 1e5 Mt below g_−8, **7** above g_−8.
* P < 0.01: **0** below g_+1 (well below the background chance), **1** up to g_−2, **2** up to
  g_−5, and **6** above g_−5 (only reached for E > 1e5 Mt: large objects at P ≳ 1e-4 .. 1e-2).

The 3|4 and 6|7 boundaries are this reconstruction's continuation of the line family; the
published ratings checked in ``tests/test_scales.py`` (2024 YR4, Apophis 2004, 2011 AG5,
2007 VK184, 2013 TV135, 2008 TC3) do not depend on them except Apophis at 2.7 % (4 with
either a sloped or a horizontal 3|4 boundary). Torino is defined for impacts within 100 years:
``torino(..., years_to_impact=...)`` returns 0 beyond.

IAWN and SMPAG (issue 4): notify when IP > 1 %, D > 10 m (IAWN) or D > 50 m (SMPAG) and the
impact is within 50 years.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

from neodefense.impacts.bplane import GM_KM3_S2, RADIUS_KM

__all__ = [
    "ALBEDO_DEFAULT",
    "DENSITY_DEFAULT_KG_M3",
    "MT_TNT_J",
    "PALERMO_MIN_YEARS",
    "TORINO_TABLE",
    "background_frequency_per_year",
    "diameter_m_from_H",
    "escape_speed_km_s",
    "iawn_notify",
    "impact_energy_mt",
    "impact_speed_km_s",
    "mass_kg",
    "palermo",
    "palermo_cumulative",
    "smpag_criterion",
    "torino",
]

ALBEDO_DEFAULT = 0.154
DENSITY_DEFAULT_KG_M3 = 2600.0
MT_TNT_J = 4.184e15
#: Palermo ΔT floor: one day in years
PALERMO_MIN_YEARS = 1.0 / 365.25
#: Torino: within this many years only
TORINO_MAX_YEARS = 100.0

#: The Torino chart as lines g_c(x, y) = (y + c)/3 + (x + 2)/2 (x = log10 P, y = log10 E in Mt)
#: and straight cuts; see the module docstring. Keys are the boundaries' names.
TORINO_TABLE: dict[str, float] = {
    "c_0|1": 1.0,  # g_+1: rating 0 below, 1 above (P < 1 %)
    "c_1|2 and 3|4": -2.0,  # g_−2
    "c_2|6 and 4|5": -5.0,  # g_−5
    "c_6|7": -8.0,  # g_−8
    "log10_P_yellow": -2.0,  # P = 1 %
    "log10_P_red": math.log10(0.99),  # certain collision
    "log10_E_min": 0.0,  # 1 Mt: below, rating 0
    "log10_E_8|9": 2.0,  # 100 Mt
    "log10_E_global": 5.0,  # 1e5 Mt: 5|6 and 9|10
}


def diameter_m_from_H(H: ArrayLike, albedo: ArrayLike = ALBEDO_DEFAULT) -> np.ndarray | float:
    """Diameter (m) from absolute magnitude H and geometric albedo: 1329 km/√p · 10^(−H/5)."""
    out = 1329e3 / np.sqrt(np.asarray(albedo, dtype=float)) * 10.0 ** (-np.asarray(H, dtype=float) / 5.0)
    return out[()] if np.ndim(out) == 0 else out


def mass_kg(diameter_m: ArrayLike, density_kg_m3: ArrayLike = DENSITY_DEFAULT_KG_M3) -> np.ndarray | float:
    """Mass of a homogeneous sphere: ρ π D³ / 6."""
    d = np.asarray(diameter_m, dtype=float)
    out = np.asarray(density_kg_m3, dtype=float) * math.pi * d**3 / 6.0
    return out[()] if np.ndim(out) == 0 else out


def escape_speed_km_s(body: str = "earth") -> float:
    """√(2 GM / R) at the surface of ``body`` ("earth" or "moon"), km/s."""
    key = body.strip().lower()
    return math.sqrt(2.0 * GM_KM3_S2[key] / RADIUS_KM[key])


def impact_speed_km_s(v_inf_km_s: ArrayLike, body: str = "earth") -> np.ndarray | float:
    """Impact speed √(v∞² + v_esc²) (km/s) of a hyperbolic approach to ``body``."""
    v = np.asarray(v_inf_km_s, dtype=float)
    out = np.sqrt(v * v + escape_speed_km_s(body) ** 2)
    return out[()] if np.ndim(out) == 0 else out


def impact_energy_mt(v_imp_km_s: ArrayLike, *, H: ArrayLike | None = None,
                     diameter_m: ArrayLike | None = None, albedo: ArrayLike = ALBEDO_DEFAULT,
                     density_kg_m3: ArrayLike = DENSITY_DEFAULT_KG_M3) -> np.ndarray | float:
    """Kinetic energy ½ m v_imp² in Mt TNT. A known (finite) ``diameter_m`` overrides the one from
    ``H`` and ``albedo``; NaN where neither is known."""
    d_known = np.asarray(np.nan if diameter_m is None else diameter_m, dtype=float)
    d_from_h = np.asarray(np.nan if H is None else diameter_m_from_H(H, albedo), dtype=float)
    d = np.where(np.isfinite(d_known), d_known, d_from_h)
    v_m_s = np.asarray(v_imp_km_s, dtype=float) * 1e3
    out = 0.5 * np.asarray(mass_kg(d, density_kg_m3)) * v_m_s**2 / MT_TNT_J
    return out[()] if np.ndim(out) == 0 else out


def background_frequency_per_year(energy_mt: ArrayLike) -> np.ndarray | float:
    """f_B = 0.03 E^(−0.8) per year: annual chance of an impact at least as energetic (Chesley et
    al. 2002)."""
    out = 0.03 * np.asarray(energy_mt, dtype=float) ** -0.8
    return out[()] if np.ndim(out) == 0 else out


def palermo(ip: ArrayLike, energy_mt: ArrayLike, years_to_impact: ArrayLike) -> np.ndarray | float:
    """Palermo scale log10(IP / (f_B ΔT)) (vectorized); ΔT floored at one day; −inf for IP = 0,
    NaN where the energy is unknown."""
    ip_a = np.asarray(ip, dtype=float)
    dt = np.maximum(np.asarray(years_to_impact, dtype=float), PALERMO_MIN_YEARS)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(ip_a / (background_frequency_per_year(energy_mt) * dt))
    return out[()] if np.ndim(out) == 0 else out


def palermo_cumulative(palermo_values: Iterable[float | None] | ArrayLike) -> float | None:
    """log10 Σ 10^PS over an object's virtual impactors; None for none (None entries skipped),
    −inf if every term is −inf, NaN if any is NaN."""
    vals = np.asarray([v for v in np.ravel(np.asarray(palermo_values, dtype=object)) if v is not None],
                      dtype=float)
    if vals.size == 0:
        return None
    if np.isnan(vals).any():
        return float("nan")
    top = float(vals.max())
    if not math.isfinite(top):
        return top
    return top + math.log10(float(np.sum(10.0 ** (vals - top))))


def _torino_line(log_p: np.ndarray, log_e: np.ndarray, c: float) -> np.ndarray:
    return (log_e + c) / 3.0 + (log_p + 2.0) / 2.0


def torino(ip: ArrayLike, energy_mt: ArrayLike, *,
           years_to_impact: ArrayLike | None = None) -> int | np.ndarray:
    """Torino scale rating (0-10) of an impact probability and energy (Mt), from the chart table
    of the module docstring (:data:`TORINO_TABLE`). Scalars give an int, arrays an int array.
    ``years_to_impact`` (optional): 0 beyond 100 years, where the scale is not defined.
    NaN probability or energy gives 0."""
    p = np.asarray(ip, dtype=float)
    e = np.asarray(energy_mt, dtype=float)
    t = TORINO_TABLE
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log10(p)
        y = np.log10(e)
    g = {c: _torino_line(x, y, c) for c in (1.0, -2.0, -5.0, -8.0)}
    red = x >= t["log10_P_red"]
    yellow = ~red & (x >= t["log10_P_yellow"])
    low = ~red & ~yellow
    global_e = y >= t["log10_E_global"]
    conditions = [
        ~(p > 0.0) | ~(y >= t["log10_E_min"]),  # no chance, too small, or NaN
        red & (y < t["log10_E_8|9"]), red & ~global_e, red,
        yellow & (g[-2.0] < 0), yellow & (g[-5.0] < 0), yellow & ~global_e,
        yellow & (g[-8.0] < 0), yellow,
        low & (g[1.0] < 0), low & (g[-2.0] < 0), low & (g[-5.0] < 0),
        low & (g[-8.0] < 0), low,
    ]
    choices = [0, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 6, 7]
    out = np.select(conditions, choices, default=0).astype(int)
    if years_to_impact is not None:
        out = np.where(np.asarray(years_to_impact, dtype=float) <= TORINO_MAX_YEARS, out, 0)
    return int(out) if np.ndim(out) == 0 else out


def _criterion(ip: ArrayLike, diameter_m: ArrayLike, years_to_impact: ArrayLike,
               min_diameter_m: float) -> bool | np.ndarray:
    with np.errstate(invalid="ignore"):
        out = ((np.asarray(ip, dtype=float) > 0.01)
               & (np.asarray(diameter_m, dtype=float) > min_diameter_m)
               & (np.asarray(years_to_impact, dtype=float) <= 50.0))
    return bool(out) if np.ndim(out) == 0 else out


def iawn_notify(ip: ArrayLike, diameter_m: ArrayLike, years_to_impact: ArrayLike) -> bool | np.ndarray:
    """IAWN notification criterion: IP > 1 %, D > 10 m, impact within 50 years (ΔT ≤ 50; a
    negative ΔT — impact before the reference time, as in a replay — counts as within)."""
    return _criterion(ip, diameter_m, years_to_impact, 10.0)


def smpag_criterion(ip: ArrayLike, diameter_m: ArrayLike, years_to_impact: ArrayLike
                    ) -> bool | np.ndarray:
    """SMPAG (mission planning) criterion: IP > 1 %, D > 50 m, impact within 50 years."""
    return _criterion(ip, diameter_m, years_to_impact, 50.0)
