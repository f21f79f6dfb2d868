"""The catalog's tables as SQLAlchemy 2 models. The schema itself is created by the Alembic
migrations in ``catalog/migrations/versions``; a test compares the two so they cannot drift.

Conventions
-----------
* Observation columns carry the ADES names of :data:`neodefense.observations.batch.COLUMNS`
  (mixed case: quote them in hand-written SQL). Missing strings are ``''`` (columns are NOT NULL),
  missing numbers are NULL (NaN in a batch).
* Every observation is stored once. Its identity is (object, ``stn``, ``trx``, ``rcv``, time,
  ``k_a``, ``k_b``): optical rows key on RA/Dec, radar rows on delay/Doppler (see
  :func:`dedup_keys`). Values are first snapped to the precision the observer reported (when the
  record carries it), then put on integer grids fine enough that every decimal the formats carry
  (7 decimals of a day, 4 of a second of time, 8 of a degree, 6 of an arcsec) lands exactly on a
  grid point. So the same value written with more or fewer trailing digits, in obs80 sexagesimal
  or ADES decimal degrees, or rounded to another unit with its precision alongside, gives the
  same key, while float noise (~1e-11 day, ~1e-13 deg) stays far below half a grid step.
* Times are UTC; ``received_at`` is timezone-aware UTC (SQLite hands it back naive: UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from neodefense.observations.batch import COLUMNS

#: Submission status values. Later stages add their own ('fitted', 'monitored').
STORED, INGESTED, FAILED = "stored", "ingested", "failed"

#: Time key step: 20 µs. Decimal days to 1e-7 (8.64 ms = 432 steps) and decimal seconds to 1e-4
#: (5 steps) are exact multiples; 1e-8 day (43.2 steps) is 0.3 step away from a rounding edge.
KEY_TIME_PER_DAY = 86_400 * 50_000
#: RA key step: 1e-7 s of time (= 1.5 µas). 1e-8 deg = 24 steps; 0.0001 s = 1000 steps.
KEY_RA_PER_S = 10_000_000
#: Dec key step: 1e-7 arcsec. 1e-9 deg = 36 steps; 0.001 arcsec = 10,000 steps.
KEY_DEC_PER_ARCSEC = 10_000_000
#: Radar times key on whole seconds: echoes are timed to the second, obs80 carries them to
#: 1e-6 day (86 ms) and ADES to 0.01 s without a precision, and the delay or Doppler value
#: already tells two measurements apart.
RADAR_TIME_STEP_S = 1.0
#: Radar delay key step: 1 ps (obs80 gives 0.1 ns). Doppler key step: 1 µHz (obs80 gives 0.1 mHz).
KEY_DELAY_PER_S = 1_000_000_000_000
KEY_DOPPLER_PER_HZ = 1_000_000
#: Key value for a quantity the record does not carry (NULL would never conflict in an index).
KEY_MISSING = -(2**62)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY = rowid
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class Observatory(Base):
    """The MPC observatory-code table (refreshed from the shipped copy at every connect)."""

    __tablename__ = "observatories"
    code: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, server_default="")
    longitude_deg: Mapped[float | None] = mapped_column(sa.Double)
    rho_cos_phi: Mapped[float | None] = mapped_column(sa.Double)
    rho_sin_phi: Mapped[float | None] = mapped_column(sa.Double)
    observations_type: Mapped[str] = mapped_column(sa.Text, server_default="")


class RawBlob(Base):
    """Submitted bytes, content-addressed; the bytes themselves are in ``raw_chunks``."""

    __tablename__ = "raw_blobs"
    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    n_chunks: Mapped[int] = mapped_column(sa.Integer)
    chunk_bytes: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class RawChunk(Base):
    """One piece (``chunk_bytes`` long, the last one shorter) of a raw blob, in order of ``seq``."""

    __tablename__ = "raw_chunks"
    sha256: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("raw_blobs.sha256", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Submission(Base):
    """One file received from an observatory or inbox, and what its ingest made of it."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("raw_blobs.sha256"),
                                        index=True)
    filename: Mapped[str] = mapped_column(sa.Text, server_default="")
    submitter: Mapped[str] = mapped_column(sa.Text, server_default="")
    received_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    format: Mapped[str] = mapped_column(sa.String(16), server_default="")
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    n_lines: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    n_accepted: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    n_duplicates: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    n_rejected: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    receipt: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[str] = mapped_column(sa.Text, server_default="")
    duplicate_of: Mapped[int | None] = mapped_column(sa.ForeignKey("submissions.id"))
    ingested_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    #: The observatory account that POSTed it through the API (migration 0005); NULL for inbox
    #: and command-line submissions. (Accounts are deactivated, never deleted.)
    account_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("observatory_accounts.id"), index=True)


class Object(Base):
    """A solar-system object. ``designation`` is its best designation: the permanent number
    if it has one, else its (first) provisional designation, else a tracklet id."""

    __tablename__ = "objects"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    designation: Mapped[str] = mapped_column(sa.Text, unique=True)
    permid: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    provid: Mapped[str | None] = mapped_column(sa.Text)
    name: Mapped[str | None] = mapped_column(sa.Text)


class Designation(Base):
    """Every form under which an object has been seen: '99942', '2004 MN4', 'Apophis', and
    tracklet ids as 'trkSub:<stn>:<trkSub>' (observer-assigned, so only unique per station)."""

    __tablename__ = "designations"
    alias: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    object_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(8))  # 'permID' | 'provID' | 'trkSub' | 'name'


class Rejection(Base):
    """A line of a submission that did not become an observation, and why."""

    __tablename__ = "rejections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        sa.ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column(sa.BigInteger)
    field: Mapped[str] = mapped_column(sa.Text, server_default="")
    reason: Mapped[str] = mapped_column(sa.Text, server_default="")
    raw: Mapped[str] = mapped_column(sa.Text, server_default="")


def _observation_column(name: str, kind: str) -> sa.Column:
    if kind == "U":
        return sa.Column(name, sa.Text, nullable=False, server_default="")
    if kind == "f":
        return sa.Column(name, sa.Double, nullable=True)
    if kind == "b":
        return sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false())
    if kind == "i":
        return sa.Column(name, sa.BigInteger, nullable=False, server_default="-1")
    raise ValueError(f"unknown column kind {kind!r} for {name!r}")


#: Dedup key columns, in the order of the unique index (object first: per-object scans use it).
KEY_COLUMNS = ("object_id", "k_time", "stn", "k_a", "k_b", "trx", "rcv")

observations_table = sa.Table(
    "observations",
    Base.metadata,
    sa.Column("id", BigId, primary_key=True),
    # object_id -> objects.id and submission_id -> submissions.id are not declared foreign keys:
    # PostgreSQL checks those with a trigger per row, which halves the bulk-insert rate. The
    # catalog is the only writer and references only rows it holds in the same transaction;
    # queries.check_integrity() verifies there are no orphans (the tests run it).
    sa.Column("object_id", sa.Integer, nullable=False),
    sa.Column("submission_id", sa.Integer, nullable=False),
    sa.Column("k_time", sa.BigInteger, nullable=False),
    sa.Column("k_a", sa.BigInteger, nullable=False),
    sa.Column("k_b", sa.BigInteger, nullable=False),
    *(_observation_column(name, kind) for name, kind in COLUMNS.items()),
    # The dedup key is also the (object, time) index: k_time is obsTime_mjd on a 20 µs grid.
    sa.Index("uq_observations_key", *KEY_COLUMNS, unique=True),
    # Rows arrive grouped by submission, so on PostgreSQL a BRIN index (nearly free) suffices.
    sa.Index("ix_observations_submission", "submission_id", postgresql_using="brin"),
)


class Observation(Base):
    """One normalized observation (ADES column names), linked to its object and submission."""

    __table__ = observations_table


def _quantize(values: np.ndarray, per_unit: float, step: np.ndarray | None = None) -> np.ndarray:
    """Round ``values`` (in some unit) onto a grid of ``per_unit`` points per unit, as int64.

    Where ``step`` (the reported precision, same unit) is finite and positive the value is first
    snapped to a multiple of it, so a value written again with more digits, or converted to
    another unit and rounded there (obs80 seconds of RA → ADES degrees), keys the same as long as
    the precision travels with it. NaN values become :data:`KEY_MISSING`."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if step is not None:
            snap = np.isfinite(step) & (step > 0)
            values = np.where(snap, np.rint(values / np.where(snap, step, 1.0)) * step, values)
        scaled = np.rint(values * per_unit)
    out = np.full(len(values), KEY_MISSING, dtype=np.int64)
    ok = np.isfinite(scaled)
    out[ok] = scaled[ok].astype(np.int64)
    return out


def dedup_keys(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k_time, k_a, k_b) int64 keys of a batch's columns: optical rows key RA and Dec, radar rows
    delay and Doppler (each on the grids of the module constants). Time, RA and Dec are snapped
    to the reported precision (``precTime``, ``precRA``, ``precDec``) where there is one; radar
    times to :data:`RADAR_TIME_STEP_S`."""
    radar = columns["kind"] == "radar"
    time_step_day = np.where(radar, RADAR_TIME_STEP_S / 86_400, columns["precTime"] * 1e-6)
    k_time = _quantize(columns["obsTime_mjd"], KEY_TIME_PER_DAY, time_step_day)
    ra_s = columns["ra"] * 240.0  # seconds of time, the unit of precRA
    dec_arcsec = columns["dec"] * 3600.0
    k_a = np.where(radar, _quantize(columns["delay"], KEY_DELAY_PER_S),
                   _quantize(ra_s, KEY_RA_PER_S, columns["precRA"]))
    k_b = np.where(radar, _quantize(columns["doppler"], KEY_DOPPLER_PER_HZ),
                   _quantize(dec_arcsec, KEY_DEC_PER_ARCSEC, columns["precDec"]))
    return k_time, k_a, k_b


# -- orbit solutions (migration 0002) ---------------------------------------------------------------

class OrbitSolutionRecord(Base):
    """One orbit fit of an object: ``version`` 1, 2, … per object, never overwritten.

    Failed fits are stored too (``status`` ≠ 'converged', with their ``message``); the current
    orbit of an object is its newest converged version. The vectors and matrices are JSON arrays
    in the units of :class:`neodefense.orbits.solution.OrbitSolution` (NaN stored as null).
    ``observation_set_hash`` identifies the observation set fitted; the exact observation rows
    are the solution's ``orbit_residuals``. ``supersedes``: the object's previous solution.
    Deleting an object (a merge) deletes its solutions.
    """

    __tablename__ = "orbit_solutions"
    __table_args__ = (
        sa.UniqueConstraint("object_id", "version", name="uq_orbit_solutions_object_version"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    object_id: Mapped[int] = mapped_column(sa.ForeignKey("objects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    status: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text, server_default="")
    observation_set_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    code_version: Mapped[str] = mapped_column(sa.Text, server_default="")
    settings: Mapped[dict[str, Any]] = mapped_column(Json)
    epoch_tdb_jd: Mapped[float | None] = mapped_column(sa.Double)
    state_icrf_au: Mapped[list[float] | None] = mapped_column(Json)
    covariance: Mapped[list[list[float]] | None] = mapped_column(Json)
    nongrav: Mapped[dict[str, float] | None] = mapped_column(Json)
    nongrav_sigmas: Mapped[dict[str, float] | None] = mapped_column(Json)
    elements: Mapped[dict[str, float] | None] = mapped_column(Json)
    sigmas: Mapped[dict[str, float] | None] = mapped_column(Json)
    rms_arcsec: Mapped[float | None] = mapped_column(sa.Double)
    rms_normalized: Mapped[float | None] = mapped_column(sa.Double)
    chi2: Mapped[float | None] = mapped_column(sa.Double)
    n_obs: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    n_used: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    n_rejected: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    H: Mapped[float | None] = mapped_column(sa.Double)
    moid_au: Mapped[float | None] = mapped_column(sa.Double)
    close_approaches: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    ranging: Mapped[dict[str, Any] | None] = mapped_column(Json)
    iterations: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    runtime_s: Mapped[float] = mapped_column(sa.Double, server_default="0")
    supersedes: Mapped[int | None] = mapped_column(
        sa.ForeignKey("orbit_solutions.id", ondelete="SET NULL"))


class OrbitResidual(Base):
    """A solution's outcome for one stored observation: O − C in arcsec (RA·cos Dec, Dec; null
    for radar), the σ used for weighting, its χ² contribution, whether it was rejected as an
    outlier and whether it entered the fit (``used``: not rejected, excluded, radar or failed).

    The rows of a solution are the exact observation set it was fitted to, so solution →
    observations → submissions is a join. An observation deleted by an object merge takes its
    residual rows with it (the merged-away object's solutions go too)."""

    __tablename__ = "orbit_residuals"
    solution_id: Mapped[int] = mapped_column(
        sa.ForeignKey("orbit_solutions.id", ondelete="CASCADE"), primary_key=True)
    observation_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("observations.id", ondelete="CASCADE"), primary_key=True,
        index=True)
    ra_arcsec: Mapped[float | None] = mapped_column(sa.Double)
    dec_arcsec: Mapped[float | None] = mapped_column(sa.Double)
    sigma_ra_arcsec: Mapped[float | None] = mapped_column(sa.Double)
    sigma_dec_arcsec: Mapped[float | None] = mapped_column(sa.Double)
    chi2: Mapped[float | None] = mapped_column(sa.Double)
    rejected: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    used: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())


# -- impact assessments (migration 0003) ------------------------------------------------------------

class ImpactAssessmentRecord(Base):
    """One impact-monitoring run of an object: ``version`` 1, 2, … per object, never overwritten.

    ``solution_id``: the orbit solution it was computed from (provenance). Every run is stored,
    whatever its status; ``is_current`` marks the object's newest assessment with status 'ok'
    (a failed or degenerate run leaves the previous one current). The risk summary is in
    columns (what the risk list sorts and filters on); ``result`` holds the rest of
    :meth:`neodefense.impacts.assessment.ImpactAssessment.as_json` (close approaches, cross
    check, …) except the virtual impactors, which are rows of ``virtual_impactors``.
    ``first_year``/``last_year``: calendar years (UTC) of the earliest and latest virtual
    impactor (null when there is none). NaN is stored as null. Deleting the object or the
    solution deletes its assessments.
    """

    __tablename__ = "impact_assessments"
    __table_args__ = (
        sa.UniqueConstraint("object_id", "version", name="uq_impact_assessments_object_version"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    object_id: Mapped[int] = mapped_column(sa.ForeignKey("objects.id", ondelete="CASCADE"))
    solution_id: Mapped[int] = mapped_column(
        sa.ForeignKey("orbit_solutions.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    status: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.Text, server_default="")
    method: Mapped[str] = mapped_column(sa.String(16), server_default="")
    n_samples: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    seed: Mapped[int | None] = mapped_column(sa.BigInteger)
    years: Mapped[float] = mapped_column(sa.Double)
    bodies: Mapped[str] = mapped_column(sa.Text, server_default="")  # comma-separated
    horizon_tdb_jd: Mapped[float | None] = mapped_column(sa.Double)
    cumulative_ip: Mapped[float | None] = mapped_column(sa.Double)
    palermo_cum: Mapped[float | None] = mapped_column(sa.Double)
    palermo_max: Mapped[float | None] = mapped_column(sa.Double)
    torino_max: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    iawn_notify: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    smpag: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    H: Mapped[float | None] = mapped_column(sa.Double)
    diameter_m: Mapped[float | None] = mapped_column(sa.Double)
    n_vi: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    first_year: Mapped[int | None] = mapped_column(sa.Integer)
    last_year: Mapped[int | None] = mapped_column(sa.Integer)
    runtime_s: Mapped[float] = mapped_column(sa.Double, server_default="0")
    code_version: Mapped[str] = mapped_column(sa.Text, server_default="")
    observation_set_hash: Mapped[str] = mapped_column(sa.String(64), server_default="")
    is_current: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false(), index=True)
    result: Mapped[dict[str, Any]] = mapped_column(Json)


class VirtualImpactorRecord(Base):
    """One virtual impactor of an assessment (the fields of
    :class:`neodefense.impacts.assessment.VirtualImpactor`; NaN stored as null, ``entry`` and
    ``corridor`` null unless the impactor is imminent). Rows keep the assessment's order (id)."""

    __tablename__ = "virtual_impactors"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    assessment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("impact_assessments.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(sa.String(16))
    time_tdb_jd: Mapped[float] = mapped_column(sa.Double)
    date_utc: Mapped[str] = mapped_column(sa.Text, server_default="")
    ip: Mapped[float] = mapped_column(sa.Double)
    ip_sigma: Mapped[float | None] = mapped_column(sa.Double)
    palermo: Mapped[float | None] = mapped_column(sa.Double)
    torino: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    v_inf_km_s: Mapped[float | None] = mapped_column(sa.Double)
    v_imp_km_s: Mapped[float | None] = mapped_column(sa.Double)
    energy_mt: Mapped[float | None] = mapped_column(sa.Double)
    diameter_m: Mapped[float | None] = mapped_column(sa.Double)
    sigma_lov: Mapped[float | None] = mapped_column(sa.Double)
    b_km: Mapped[float | None] = mapped_column(sa.Double)
    b_impact_km: Mapped[float | None] = mapped_column(sa.Double)
    method: Mapped[str] = mapped_column(sa.String(16), server_default="")
    entry: Mapped[dict[str, Any] | None] = mapped_column(Json)
    corridor: Mapped[dict[str, Any] | None] = mapped_column(Json)


# -- risk list, alerts, subscribers and the delivery outbox (migration 0004) -----------------------

class AlertStateRecord(Base):
    """The alert rules' memory of one object (:class:`neodefense.alerts.rules.AlertState` as JSON):
    what the last evaluation saw (on the risk list, Torino, IP level for the hysteresis, …) and
    the object's newest alert (the one the next alert supersedes)."""

    __tablename__ = "alert_states"
    object_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    last_alert_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class RiskListEntry(Base):
    """An object on the current risk list, and the assessment that put or keeps it there (its
    current assessment). Kept in the same transaction as the assessment."""

    __tablename__ = "risk_list"
    object_id: Mapped[int] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True)
    assessment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("impact_assessments.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class RiskListRemoval(Base):
    """An object leaving the risk list: when, why (``reason``: a key of
    :data:`neodefense.alerts.rules.REMOVAL_REASONS`), its last values on the list and the
    assessment behind them, and the removal alert. Kept when the object itself is merged away."""

    __tablename__ = "risk_list_removals"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    object_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="SET NULL"), index=True)
    designation: Mapped[str] = mapped_column(sa.Text)
    removed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    reason: Mapped[str] = mapped_column(sa.String(32))
    note: Mapped[str] = mapped_column(sa.Text, server_default="")
    last_assessment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("impact_assessments.id", ondelete="SET NULL"))
    removing_assessment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("impact_assessments.id", ondelete="SET NULL"))
    last_values: Mapped[dict[str, Any] | None] = mapped_column(Json)
    alert_id: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))


class AlertRecord(Base):
    """One alert: the rules' events for one change of an object's assessment (or a removal).

    ``alert_id`` is the stable public id ('NDA-<object id>-<sequence>'); ``supersedes_id`` the
    object's previous alert (a chain, as VOEvent citations). ``payload`` is the JSON every channel
    carries, ``voevent`` its VOEvent 2.0 document. Written in the transaction of the assessment
    that raised it, with its deliveries (the outbox)."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    object_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("objects.id", ondelete="SET NULL"), index=True)
    designation: Mapped[str] = mapped_column(sa.Text)
    assessment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("impact_assessments.id", ondelete="SET NULL"))
    sequence: Mapped[int] = mapped_column(sa.Integer)
    supersedes_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    issued_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    kinds: Mapped[str] = mapped_column(sa.Text)  # comma-separated event kinds
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    voevent: Mapped[str] = mapped_column(sa.Text)


class Subscriber(Base):
    """Someone who wants alerts: criteria (:class:`neodefense.alerts.criteria.Criteria` as JSON)
    and channels. Removing one keeps the row (``active`` false, ``removed_at``) and its delivery
    record; its undelivered deliveries are cancelled. ``token_hash``: for self-service later."""

    __tablename__ = "subscribers"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    criteria: Mapped[dict[str, Any]] = mapped_column(Json)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    removed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    token_hash: Mapped[str] = mapped_column(sa.Text, server_default="")


class SubscriberChannel(Base):
    """One way to reach a subscriber: ``kind`` 'webhook' (``target`` URL, ``secret`` the HMAC key,
    ``format`` 'json' or 'voevent') or 'email' (``target`` address). ``status`` 'active',
    'paused' (an endpoint that kept failing: ``paused_reason``; its deliveries are held until it
    is resumed) or 'removed'."""

    __tablename__ = "subscriber_channels"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    target: Mapped[str] = mapped_column(sa.Text)
    secret: Mapped[str] = mapped_column(sa.Text, server_default="")
    format: Mapped[str] = mapped_column(sa.String(16), server_default="json")
    status: Mapped[str] = mapped_column(sa.String(16), server_default="active")
    paused_reason: Mapped[str] = mapped_column(sa.Text, server_default="")
    paused_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    #: Webhook verification (migration 0005): the challenge sent to the endpoint, and when the
    #: endpoint echoed it back (NULL: not verified yet).
    challenge: Mapped[str] = mapped_column(sa.Text, server_default="")
    verified_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Delivery(Base):
    """The outbox: one alert for one subscriber channel. ``status`` 'pending' (due at
    ``next_attempt_at``; ``claimed_until``: a deliverer holds it until then), 'delivered'
    (``delivered_at``, recorded once), 'held' (channel paused) or 'cancelled' (subscriber
    removed). ``attempts``: all attempts made; ``failures``: failed attempts since the last
    success or resume (what pauses the channel)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("alert_id", "channel_id", name="uq_deliveries_alert_channel"),
        sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriber_channels.id", ondelete="CASCADE"), index=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    failures: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    next_attempt_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    claim_token: Mapped[str] = mapped_column(sa.String(32), server_default="")
    delivered_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(sa.Text, server_default="")


class DeliveryAttempt(Base):
    """Every attempt to deliver, successful or not (``status_code``: HTTP status or SMTP reply
    code; ``error``: why it failed)."""

    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    attempted_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(sa.Boolean)
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str] = mapped_column(sa.Text, server_default="")
    duration_s: Mapped[float] = mapped_column(sa.Double, server_default="0")


# -- API access: observatory accounts, tokens, the audit log (migration 0005) ----------------------

class ObservatoryAccount(Base):
    """An observatory that submits through the API: its name (unique; it becomes the
    submissions' ``submitter``), a contact and its station codes (``observatory_stations``).
    Deactivating keeps the row (its submissions keep pointing at it); its tokens stop working."""

    __tablename__ = "observatory_accounts"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    contact: Mapped[str] = mapped_column(sa.Text, server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())


class ObservatoryStation(Base):
    """A station code (MPC observatory code) an observatory account may submit observations for."""

    __tablename__ = "observatory_stations"
    account_id: Mapped[int] = mapped_column(
        sa.ForeignKey("observatory_accounts.id", ondelete="CASCADE"), primary_key=True)
    stn: Mapped[str] = mapped_column(sa.String(8), primary_key=True, index=True)


class ApiToken(Base):
    """A bearer token ``nd_<id>_<secret>``: only the SHA-256 (hex) of the whole token is stored.
    ``role`` 'observatory' (with its ``account_id``), 'scientist' or 'admin'. Revoking sets
    ``revoked_at``; ``last_used_at`` is refreshed at most about once a minute."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.String(16))
    account_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("observatory_accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class ApiAudit(Base):
    """One API request worth remembering: every write (submission, admin action) and every
    refused request, with who (``actor``: 'token <id> <name>' or ''), from where, the answer's
    status and reason, the SHA-256 and size of the whole body and (for refused submissions) its
    first ``api.audit_body_bytes`` bytes. ``submission_id``: the submission it created."""

    __tablename__ = "api_audit"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    method: Mapped[str] = mapped_column(sa.String(16))
    path: Mapped[str] = mapped_column(sa.Text)
    remote: Mapped[str] = mapped_column(sa.Text, server_default="")
    actor: Mapped[str] = mapped_column(sa.Text, server_default="")
    status_code: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.Text, server_default="")
    body_sha256: Mapped[str] = mapped_column(sa.String(64), server_default="")
    body_size: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    body: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    submission_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("submissions.id", ondelete="SET NULL"), index=True)
