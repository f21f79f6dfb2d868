"""Orbit solutions (versioned per object) and their per-observation residuals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Migrations are frozen snapshots: spell columns out here, never import neodefense models.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "orbit_solutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("observation_set_hash", sa.String(length=64), nullable=False),
        sa.Column("code_version", sa.Text(), server_default="", nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("epoch_tdb_jd", sa.Double(), nullable=True),
        sa.Column("state_icrf_au", _json(), nullable=True),
        sa.Column("covariance", _json(), nullable=True),
        sa.Column("nongrav", _json(), nullable=True),
        sa.Column("nongrav_sigmas", _json(), nullable=True),
        sa.Column("elements", _json(), nullable=True),
        sa.Column("sigmas", _json(), nullable=True),
        sa.Column("rms_arcsec", sa.Double(), nullable=True),
        sa.Column("rms_normalized", sa.Double(), nullable=True),
        sa.Column("chi2", sa.Double(), nullable=True),
        sa.Column("n_obs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("n_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("n_rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("H", sa.Double(), nullable=True),
        sa.Column("moid_au", sa.Double(), nullable=True),
        sa.Column("close_approaches", _json(), nullable=True),
        sa.Column("ranging", _json(), nullable=True),
        sa.Column("iterations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("runtime_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("supersedes", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["supersedes"], ["orbit_solutions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("object_id", "version", name="uq_orbit_solutions_object_version"),
    )
    op.create_index(op.f("ix_orbit_solutions_observation_set_hash"), "orbit_solutions",
                    ["observation_set_hash"], unique=False)

    op.create_table(
        "orbit_residuals",
        sa.Column("solution_id", sa.Integer(), nullable=False),
        sa.Column("observation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("ra_arcsec", sa.Double(), nullable=True),
        sa.Column("dec_arcsec", sa.Double(), nullable=True),
        sa.Column("sigma_ra_arcsec", sa.Double(), nullable=True),
        sa.Column("sigma_dec_arcsec", sa.Double(), nullable=True),
        sa.Column("chi2", sa.Double(), nullable=True),
        sa.Column("rejected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("used", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["observation_id"], ["observations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["solution_id"], ["orbit_solutions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("solution_id", "observation_id"),
    )
    # which solutions used an observation (provenance), and the FK check when one is deleted
    op.create_index(op.f("ix_orbit_residuals_observation_id"), "orbit_residuals",
                    ["observation_id"], unique=False)


def downgrade() -> None:
    op.drop_table("orbit_residuals")
    op.drop_table("orbit_solutions")
