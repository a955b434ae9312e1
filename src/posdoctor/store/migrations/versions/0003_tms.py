"""TMS: device credentials, telemetry, firmware packages, upgrade campaigns (issue 3).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", BIG_ID, primary_key=True, autoincrement=True)


def _credentials_and_telemetry() -> None:
    op.create_table(
        "device_credentials",
        _id(),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("serial", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("issued_at"),
        _when("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_device_credentials"),
        sa.UniqueConstraint("token_hash", name="uq_device_credentials_token_hash"),
    )
    op.create_index("ix_device_credentials_tid_active", "device_credentials", ["tid", "active"])
    op.create_table(
        "telemetry",
        sa.Column("tid", sa.String(8), nullable=False),
        _when("at"),
        _when("received_at"),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("app_version", sa.String(32)),
        sa.Column("firmware_version", sa.String(32)),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("tid", name="pk_telemetry"),
    )


def _packages() -> None:
    op.create_table(
        "firmware_packages",
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("from_versions", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("settle_first", sa.Boolean(), nullable=False),
        sa.Column("resets", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("version", name="pk_firmware_packages"),
    )


def _campaigns() -> None:
    counters = [sa.Column(name, sa.Integer(), nullable=False) for name in (
        "wave", "wave_size", "wave_done", "wave_failed", "halt_base_done", "halt_base_failed")]
    totals = [sa.Column(name, sa.Integer(), nullable=False) for name in (
        "targeted", "succeeded", "failed", "rolled_back")]
    op.create_table(
        "campaigns",
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.String(200)),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("canary_pct", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("min_sample", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.String(5), nullable=False),
        sa.Column("window_end", sa.String(5), nullable=False),
        sa.Column("stagger_minutes", sa.Integer(), nullable=False),
        *counters,
        _when("wave_opened_at", nullable=True),
        *totals,
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.ForeignKeyConstraint(
            ["version"], ["firmware_packages.version"], name="fk_campaigns_version_firmware_packages"
        ),
    )
    op.create_table(
        "campaign_targets",
        _id(),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("stagger", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("from_version", sa.String(32)),
        sa.Column("last_step", sa.String(16)),
        sa.Column("reason", sa.String(200)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("updated_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_targets"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_targets_campaign_id_campaigns"
        ),
    )
    op.create_index(
        "ix_campaign_targets_campaign_id_tid", "campaign_targets", ["campaign_id", "tid"],
        unique=True,
    )
    op.create_index("ix_campaign_targets_tid_campaign_id", "campaign_targets", ["tid", "campaign_id"])
    op.create_index(
        "ix_campaign_targets_campaign_id_wave_state", "campaign_targets",
        ["campaign_id", "wave", "state"],
    )


def upgrade() -> None:
    _credentials_and_telemetry()
    _packages()
    _campaigns()


def downgrade() -> None:
    for table in (
        "campaign_targets", "campaigns", "firmware_packages", "telemetry", "device_credentials",
    ):
        op.drop_table(table)
