"""The MPC observatory-code table shipped with the package (data/mpc_obscodes.json)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from importlib import resources


@dataclasses.dataclass(frozen=True, slots=True)
class Observatory:
    code: str
    name: str
    longitude_deg: float  # east longitude; NaN for space-based / roving codes
    rho_cos_phi: float  # parallax constant rho·cos φ′ in Earth equatorial radii; NaN if none
    rho_sin_phi: float  # parallax constant rho·sin φ′ in Earth equatorial radii; NaN if none
    observations_type: str  # "optical", "satellite", "roving", "radar", "occultation", ...

    @property
    def is_fixed(self) -> bool:
        """True when the parallax constants place the station on the Earth's surface."""
        return not (
            math.isnan(self.longitude_deg)
            or math.isnan(self.rho_cos_phi)
            or math.isnan(self.rho_sin_phi)
        )


def _f(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@functools.cache
def observatories() -> dict[str, Observatory]:
    """All MPC observatory codes, keyed by code."""
    raw = json.loads(resources.files("neodefense.data").joinpath("mpc_obscodes.json").read_text())
    out: dict[str, Observatory] = {}
    for code, row in raw.items():
        out[code] = Observatory(
            code=code,
            name=(row.get("name_utf8") or row.get("name") or "").strip(),
            longitude_deg=_f(row.get("longitude")),
            rho_cos_phi=_f(row.get("rhocosphi")),
            rho_sin_phi=_f(row.get("rhosinphi")),
            observations_type=row.get("observations_type") or "",
        )
    return out


@functools.cache
def known_codes() -> frozenset[str]:
    return frozenset(observatories())
