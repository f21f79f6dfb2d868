"""``GET /v1/followup?stn=XXX``: what a station should observe tonight, and in which order.

Open (no authentication). The science — the night, the predicted positions and 3σ ellipses, the
ranking by how much one observation would shrink the uncertainty along the line of variations
where the virtual impactors lie — is :mod:`neodefense.followup` (its module docstring documents
the method). Settings: ``[followup]`` of the configuration.

Errors: an unknown station code → 404 naming it; a station without a fixed site (satellite,
roving, the geocentre: no parallax constants, no horizon) → 422; a malformed ``night`` or a night
outside the planetary ephemeris → 422.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from neodefense import config
from neodefense import followup as science
from neodefense.api.deps import get_engine, get_settings

router = APIRouter(tags=["open data"])

#: the longest station code accepted (MPC codes are 3 characters)
MAX_STATION_CHARS = 8
#: the most objects one answer lists
MAX_LIMIT = 1000


def _strict(value: Any) -> Any:
    """Strict JSON values: NaN and infinities → null (nested dicts and lists)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@router.get("/v1/followup", summary="Follow-up list for one station and night")
async def followup(
    stn: Annotated[str, Query(min_length=1, max_length=MAX_STATION_CHARS,
                              description="MPC observatory code of a ground station, e.g. 568")],
    engine: Annotated[Engine, Depends(get_engine)],
    settings: Annotated[config.Settings, Depends(get_settings)],
    night: Annotated[dt.date | None, Query(
        description="YYYY-MM-DD: the local night starting on that evening (local mean time at "
                    "the station). Default: the night in progress or the next one")] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT,
                                       description="at most this many objects")] = None,
) -> JSONResponse:
    """Risk-list objects observable from station ``stn`` in the night: Sun below
    ``followup.sun_altitude_deg``, object above ``followup.min_altitude_deg``.

    Answer (JSON): ``station`` {code, name, longitude_deg, latitude_deg, height_m};
    ``night`` {date, start_utc, end_utc, start_mjd_utc, end_mjd_utc, n_samples, note};
    ``settings`` (the [followup] values used); ``ranking`` (how ``score`` is defined);
    ``generated_utc``; ``count``; ``objects``, ranked: {rank, designation, score,
    sigma_lov_shrink, lov_1sigma_arcsec, lov_time_utc, best_time_utc, best_time_mjd_utc,
    observable_from_utc, observable_until_utc, ra_deg, dec_deg, ra_hms, dec_dms (astrometric
    ICRF, topocentric), altitude_deg, azimuth_deg, v_mag, rate_arcsec_per_min, rate_pa_deg,
    delta_au, r_au, phase_deg, ellipse_3sigma {semi_major_arcsec, semi_minor_arcsec, pa_deg
    (east of north)}, note, solution {id, version, epoch_tdb_jd}, risk {rank, cumulative_ip,
    palermo_cum, palermo_max, torino_max, n_vi, year_range, assessment_id, H, diameter_m}};
    ``not_observable``: [{designation, max_altitude_deg, max_altitude_utc, reason, risk}];
    ``skipped``: [{designation, reason, risk}] (e.g. ranging-only short-arc solutions).

    ``score`` = 1 − ``sigma_lov_shrink``: the fractional reduction of the 1σ extent along the
    line of variations that one observation at the best time (``assumed_sigma_arcsec``) gives.
    """
    code = stn.strip().upper()
    options = science.FollowupSettings.from_mapping(settings.raw.get("followup"))
    try:
        plan = await run_in_threadpool(science.followup_plan, engine, code, night, options,
                                       None, limit)
    except science.UnknownStation as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except science.NoFixedSite as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except ValueError as exc:  # e.g. a night outside DE440
        raise HTTPException(status_code=422, detail=f"cannot plan this night: {exc}") from None
    return JSONResponse(_strict(plan))
