"""Registry lifecycle: status history, settlement accounts, operators, parameters, policies, payouts (issue 3).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _new_columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects each call (a Column binds to one table)."""
    return {
        "merchants": [sa.Column("mcc", sa.String(4))],
        "devices": [sa.Column("status", sa.String(16), nullable=False, server_default="active")],
        "terminals": [
            sa.Column("allowed_types", sa.String(64)),
            sa.Column("app_version", sa.String(32)),
            sa.Column("params_version", sa.Integer()),
        ],
    }


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", BIG_ID, primary_key=True, autoincrement=True)


def _lifecycle() -> None:
    op.create_table(
        "status_history",
        _id(),
        _when("at"),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("old", sa.String(16)),
        sa.Column("new", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("actor", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_status_history"),
    )
    op.create_index("ix_status_history_entity_key_at", "status_history", ["entity", "key", "at"])
    op.create_table(
        "settlement_accounts",
        sa.Column("mid", sa.String(15), nullable=False),
        sa.Column("number_masked", sa.String(40), nullable=False),
        sa.Column("number_hash", sa.String(64), nullable=False),
        sa.Column("bank", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(200)),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("mid", name="pk_settlement_accounts"),
        sa.ForeignKeyConstraint(["mid"], ["merchants.mid"], name="fk_settlement_accounts_mid_merchants"),
    )
    op.create_table(
        "operators",
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("opno", sa.String(4), nullable=False),
        sa.Column("pw_hash", sa.LargeBinary(64), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("locked_at", nullable=True),
        sa.Column("lock_source", sa.String(16)),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tid", "opno", name="pk_operators"),
        sa.ForeignKeyConstraint(["tid"], ["terminals.tid"], name="fk_operators_tid_terminals"),
    )


def _configuration() -> None:
    op.create_table(
        "param_values",
        _id(),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(15), nullable=False),
        sa.Column("name", sa.String(8), nullable=False),
        sa.Column("value", sa.String(200)),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("at"),
        sa.Column("actor", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_param_values"),
        sa.UniqueConstraint("scope", "owner", "name", name="uq_param_values_scope_owner_name"),
    )
    op.create_table(
        "policies",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        _when("updated_at"),
        sa.Column("actor", sa.String(64)),
        sa.Column("reason", sa.String(200)),
        sa.PrimaryKeyConstraint("name", name="pk_policies"),
    )
    op.create_table(
        "host_changes",
        _id(),
        _when("at"),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("tid", sa.String(8)),
        sa.Column("mid", sa.String(15)),
        sa.Column("value", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_host_changes"),
    )


def _payouts() -> None:
    op.create_table(
        "payouts",
        _id(),
        sa.Column("mid", sa.String(15), nullable=False),
        sa.Column("settle_day", sa.String(8), nullable=False),
        _when("due_at"),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("batch_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("hold_reason", sa.String(200)),
        _when("created_at"),
        _when("paid_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_payouts"),
    )
    op.create_index("ix_payouts_mid_settle_day", "payouts", ["mid", "settle_day"])
    op.create_index("ix_payouts_status_due_at", "payouts", ["status", "due_at"])
    op.create_table(
        "payout_batches",
        sa.Column("batch_id", BIG_ID, nullable=False),
        sa.Column("payout_id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_payout_batches"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_payout_batches_batch_id_batches"),
        sa.ForeignKeyConstraint(["payout_id"], ["payouts.id"], name="fk_payout_batches_payout_id_payouts"),
    )
    op.create_index("ix_payout_batches_payout_id", "payout_batches", ["payout_id"])


def upgrade() -> None:
    for table, columns in _new_columns().items():
        for column in columns:
            op.add_column(table, column)
    _lifecycle()
    _configuration()
    _payouts()


def downgrade() -> None:
    for table in ("payout_batches", "payouts", "host_changes", "policies", "param_values",
                  "operators", "settlement_accounts", "status_history"):
        op.drop_table(table)
    for table, columns in _new_columns().items():
        for column in columns:
            op.drop_column(table, column.name)
