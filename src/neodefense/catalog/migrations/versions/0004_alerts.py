"""The risk list, its removals, alerts (a chain per object), subscribers with their channels, and
the delivery outbox with every attempt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Migrations are frozen snapshots: spell columns out here, never import neodefense models.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("designation", sa.Text(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        _time("issued_at"),
        _time("created_at"),
        sa.Column("kinds", sa.Text(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("voevent", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["assessment_id"], ["impact_assessments.id"],
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["supersedes_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id"),
    )
    op.create_index(op.f("ix_alerts_object_id"), "alerts", ["object_id"], unique=False)
    op.create_index(op.f("ix_alerts_issued_at"), "alerts", ["issued_at"], unique=False)

    op.create_table(
        "alert_states",
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("last_alert_id", sa.Integer(), nullable=True),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["last_alert_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("object_id"),
    )

    op.create_table(
        "risk_list",
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        _time("added_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["assessment_id"], ["impact_assessments.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("object_id"),
    )
    op.create_index(op.f("ix_risk_list_assessment_id"), "risk_list", ["assessment_id"],
                    unique=False)

    op.create_table(
        "risk_list_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("designation", sa.Text(), nullable=False),
        _time("removed_at"),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("last_assessment_id", sa.Integer(), nullable=True),
        sa.Column("removing_assessment_id", sa.Integer(), nullable=True),
        sa.Column("last_values", _json(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["last_assessment_id"], ["impact_assessments.id"],
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["removing_assessment_id"], ["impact_assessments.id"],
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_risk_list_removals_object_id"), "risk_list_removals",
                    ["object_id"], unique=False)
    op.create_index(op.f("ix_risk_list_removals_removed_at"), "risk_list_removals",
                    ["removed_at"], unique=False)

    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("criteria", _json(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _time("created_at"),
        _time("removed_at", nullable=True),
        sa.Column("token_hash", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )

    op.create_table(
        "subscriber_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), server_default="", nullable=False),
        sa.Column("format", sa.String(length=16), server_default="json", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("paused_reason", sa.Text(), server_default="", nullable=False),
        _time("paused_at", nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_subscriber_channels_subscriber_id"), "subscriber_channels",
                    ["subscriber_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        _time("created_at"),
        _time("next_attempt_at"),
        _time("claimed_until", nullable=True),
        sa.Column("claim_token", sa.String(length=32), server_default="", nullable=False),
        _time("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["subscriber_channels.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "channel_id", name="uq_deliveries_alert_channel"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"],
                    unique=False)
    op.create_index(op.f("ix_deliveries_channel_id"), "deliveries", ["channel_id"], unique=False)
    op.create_index(op.f("ix_deliveries_subscriber_id"), "deliveries", ["subscriber_id"],
                    unique=False)

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("delivery_id", _big_id(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _time("attempted_at"),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("duration_s", sa.Double(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_delivery_attempts_delivery_id"), "delivery_attempts",
                    ["delivery_id"], unique=False)


def downgrade() -> None:
    for table in ("delivery_attempts", "deliveries", "subscriber_channels", "subscribers",
                  "risk_list_removals", "risk_list", "alert_states", "alerts"):
        op.drop_table(table)
