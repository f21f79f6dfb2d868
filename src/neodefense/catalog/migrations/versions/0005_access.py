"""API access: observatory accounts and their station codes, API tokens, the API audit log, the
submitting account of each submission, and webhook verification fields of subscriber channels.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09

Migrations are frozen snapshots: spell columns out here, never import neodefense models.
SQLite adds the foreign-key column in place (``ALTER TABLE ... ADD COLUMN ... REFERENCES``):
rebuilding ``submissions`` (Alembic batch mode) would fire its children's ON DELETE CASCADE.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "observatory_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), server_default="", nullable=False),
        _time("created_at"),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )

    op.create_table(
        "observatory_stations",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("stn", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["observatory_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "stn"),
    )
    op.create_index(op.f("ix_observatory_stations_stn"), "observatory_stations", ["stn"],
                    unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        _time("last_used_at", nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["observatory_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_api_tokens_account_id"), "api_tokens", ["account_id"], unique=False)

    op.create_table(
        "api_audit",
        sa.Column("id", _big_id(), nullable=False),
        _time("at"),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("remote", sa.Text(), server_default="", nullable=False),
        sa.Column("actor", sa.Text(), server_default="", nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("body_sha256", sa.String(length=64), server_default="", nullable=False),
        sa.Column("body_size", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_api_audit_at"), "api_audit", ["at"], unique=False)
    op.create_index(op.f("ix_api_audit_submission_id"), "api_audit", ["submission_id"],
                    unique=False)

    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE submissions ADD COLUMN account_id INTEGER "
                   "REFERENCES observatory_accounts (id)")
    else:
        op.add_column("submissions", sa.Column("account_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_submissions_account_id", "submissions", "observatory_accounts",
                              ["account_id"], ["id"])
    op.create_index(op.f("ix_submissions_account_id"), "submissions", ["account_id"],
                    unique=False)

    op.add_column("subscriber_channels",
                  sa.Column("challenge", sa.Text(), server_default="", nullable=False))
    op.add_column("subscriber_channels", _time("verified_at", nullable=True))


def downgrade() -> None:
    op.drop_column("subscriber_channels", "verified_at")
    op.drop_column("subscriber_channels", "challenge")
    op.drop_index(op.f("ix_submissions_account_id"), table_name="submissions")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_submissions_account_id", "submissions", type_="foreignkey")
    op.drop_column("submissions", "account_id")  # SQLite ≥ 3.35 drops a child FK column in place
    for table in ("api_audit", "api_tokens", "observatory_stations", "observatory_accounts"):
        op.drop_table(table)
