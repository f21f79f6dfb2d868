"""Impact assessments (versioned per object, linked to the orbit solution they were computed
from) and their virtual impactors.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Migrations are frozen snapshots: spell columns out here, never import neodefense models.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "impact_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("solution_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("method", sa.String(length=16), server_default="", nullable=False),
        sa.Column("n_samples", sa.Integer(), server_default="0", nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("years", sa.Double(), nullable=False),
        sa.Column("bodies", sa.Text(), server_default="", nullable=False),
        sa.Column("horizon_tdb_jd", sa.Double(), nullable=True),
        sa.Column("cumulative_ip", sa.Double(), nullable=True),
        sa.Column("palermo_cum", sa.Double(), nullable=True),
        sa.Column("palermo_max", sa.Double(), nullable=True),
        sa.Column("torino_max", sa.Integer(), server_default="0", nullable=False),
        sa.Column("iawn_notify", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("smpag", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("H", sa.Double(), nullable=True),
        sa.Column("diameter_m", sa.Double(), nullable=True),
        sa.Column("n_vi", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_year", sa.Integer(), nullable=True),
        sa.Column("last_year", sa.Integer(), nullable=True),
        sa.Column("runtime_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("code_version", sa.Text(), server_default="", nullable=False),
        sa.Column("observation_set_hash", sa.String(length=64), server_default="",
                  nullable=False),
        sa.Column("is_current", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("result", _json(), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["solution_id"], ["orbit_solutions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("object_id", "version", name="uq_impact_assessments_object_version"),
    )
    # the current assessments (risk list), and which solutions have been monitored
    op.create_index(op.f("ix_impact_assessments_is_current"), "impact_assessments",
                    ["is_current"], unique=False)
    op.create_index(op.f("ix_impact_assessments_solution_id"), "impact_assessments",
                    ["solution_id"], unique=False)

    op.create_table(
        "virtual_impactors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=16), nullable=False),
        sa.Column("time_tdb_jd", sa.Double(), nullable=False),
        sa.Column("date_utc", sa.Text(), server_default="", nullable=False),
        sa.Column("ip", sa.Double(), nullable=False),
        sa.Column("ip_sigma", sa.Double(), nullable=True),
        sa.Column("palermo", sa.Double(), nullable=True),
        sa.Column("torino", sa.Integer(), server_default="0", nullable=False),
        sa.Column("v_inf_km_s", sa.Double(), nullable=True),
        sa.Column("v_imp_km_s", sa.Double(), nullable=True),
        sa.Column("energy_mt", sa.Double(), nullable=True),
        sa.Column("diameter_m", sa.Double(), nullable=True),
        sa.Column("sigma_lov", sa.Double(), nullable=True),
        sa.Column("b_km", sa.Double(), nullable=True),
        sa.Column("b_impact_km", sa.Double(), nullable=True),
        sa.Column("method", sa.String(length=16), server_default="", nullable=False),
        sa.Column("entry", _json(), nullable=True),
        sa.Column("corridor", _json(), nullable=True),
        sa.ForeignKeyConstraint(["assessment_id"], ["impact_assessments.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_virtual_impactors_assessment_id"), "virtual_impactors",
                    ["assessment_id"], unique=False)


def downgrade() -> None:
    op.drop_table("virtual_impactors")
    op.drop_table("impact_assessments")
