"""Initial schema: observatories, raw submissions, submissions, objects and their designations,
observations (ADES columns, unique dedup key) and rejections.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Migrations are frozen snapshots: spell columns out here, never import neodefense models.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("designation", sa.Text(), nullable=False),
        sa.Column("permid", sa.Text(), nullable=True),
        sa.Column("provid", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("designation"),
        sa.UniqueConstraint("permid"),
    )
    op.create_table(
        "observations",
        # SQLite: INTEGER PRIMARY KEY is the rowid
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        # not declared foreign keys (bulk-insert speed): see neodefense.catalog.models
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        # dedup key parts (time, RA or delay, Dec or Doppler on integer grids): see models
        sa.Column("k_time", sa.BigInteger(), nullable=False),
        sa.Column("k_a", sa.BigInteger(), nullable=False),
        sa.Column("k_b", sa.BigInteger(), nullable=False),
        sa.Column("permID", sa.Text(), server_default="", nullable=False),
        sa.Column("provID", sa.Text(), server_default="", nullable=False),
        sa.Column("trkSub", sa.Text(), server_default="", nullable=False),
        sa.Column("obsID", sa.Text(), server_default="", nullable=False),
        sa.Column("trkID", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.Text(), server_default="", nullable=False),
        sa.Column("mode", sa.Text(), server_default="", nullable=False),
        sa.Column("stn", sa.Text(), server_default="", nullable=False),
        sa.Column("prog", sa.Text(), server_default="", nullable=False),
        sa.Column("sys", sa.Text(), server_default="", nullable=False),
        sa.Column("ctr", sa.Text(), server_default="", nullable=False),
        sa.Column("pos1", sa.Double(), nullable=True),
        sa.Column("pos2", sa.Double(), nullable=True),
        sa.Column("pos3", sa.Double(), nullable=True),
        sa.Column("obsTime_mjd", sa.Double(), nullable=True),
        sa.Column("precTime", sa.Double(), nullable=True),
        sa.Column("ra", sa.Double(), nullable=True),
        sa.Column("dec", sa.Double(), nullable=True),
        sa.Column("precRA", sa.Double(), nullable=True),
        sa.Column("precDec", sa.Double(), nullable=True),
        sa.Column("rmsRA", sa.Double(), nullable=True),
        sa.Column("rmsDec", sa.Double(), nullable=True),
        sa.Column("rmsCorr", sa.Double(), nullable=True),
        sa.Column("astCat", sa.Text(), server_default="", nullable=False),
        sa.Column("mag", sa.Double(), nullable=True),
        sa.Column("rmsMag", sa.Double(), nullable=True),
        sa.Column("band", sa.Text(), server_default="", nullable=False),
        sa.Column("photCat", sa.Text(), server_default="", nullable=False),
        sa.Column("delay", sa.Double(), nullable=True),
        sa.Column("rmsDelay", sa.Double(), nullable=True),
        sa.Column("doppler", sa.Double(), nullable=True),
        sa.Column("rmsDoppler", sa.Double(), nullable=True),
        sa.Column("frq", sa.Double(), nullable=True),
        sa.Column("trx", sa.Text(), server_default="", nullable=False),
        sa.Column("rcv", sa.Text(), server_default="", nullable=False),
        sa.Column("com", sa.Text(), server_default="", nullable=False),
        sa.Column("disc", sa.Text(), server_default="", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("remarks", sa.Text(), server_default="", nullable=False),
        sa.Column("ref", sa.Text(), server_default="", nullable=False),
        sa.Column("deprecated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("line", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("raw", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_observations_submission", "observations", ["submission_id"],
                    unique=False, postgresql_using="brin")
    op.create_index("uq_observations_key", "observations",
                    ["object_id", "k_time", "stn", "k_a", "k_b", "trx", "rcv"], unique=True)

    op.create_table(
        "observatories",
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("longitude_deg", sa.Double(), nullable=True),
        sa.Column("rho_cos_phi", sa.Double(), nullable=True),
        sa.Column("rho_sin_phi", sa.Double(), nullable=True),
        sa.Column("observations_type", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "raw_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("chunk_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "designations",
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["objects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alias"),
    )
    op.create_index(op.f("ix_designations_object_id"), "designations", ["object_id"], unique=False)

    op.create_table(
        "raw_chunks",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["raw_blobs.sha256"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sha256", "seq"),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.Text(), server_default="", nullable=False),
        sa.Column("submitter", sa.Text(), server_default="", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=16), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n_lines", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("n_accepted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("n_duplicates", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("n_rejected", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("receipt", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                   "postgresql"), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["duplicate_of"], ["submissions.id"], ),
        sa.ForeignKeyConstraint(["sha256"], ["raw_blobs.sha256"], ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_submissions_sha256"), "submissions", ["sha256"], unique=False)
    op.create_index(op.f("ix_submissions_status"), "submissions", ["status"], unique=False)

    op.create_table(
        "rejections",
        # SQLite: INTEGER PRIMARY KEY is the rowid
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.Text(), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("raw", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_rejections_submission_id"), "rejections", ["submission_id"],
                    unique=False)


def downgrade() -> None:
    for table in ("rejections", "submissions", "raw_chunks", "designations", "raw_blobs",
                  "observatories", "observations", "objects"):
        op.drop_table(table)
