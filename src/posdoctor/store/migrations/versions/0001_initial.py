"""Initial schema: registry, keys, cards, decline rules, journal, transactions, events.

Revision ID: 0001
Revises:
Create Date: 2024-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", BIG_ID, primary_key=True, autoincrement=True)


def _registry() -> None:
    op.create_table(
        "merchants",
        sa.Column("mid", sa.String(15), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(200)),
        _when("created_at"),
        sa.PrimaryKeyConstraint("mid", name="pk_merchants"),
    )
    op.create_table(
        "devices",
        sa.Column("serial", sa.String(32), nullable=False),
        sa.Column("model", sa.String(32)),
        _when("created_at"),
        sa.PrimaryKeyConstraint("serial", name="pk_devices"),
    )
    op.create_table(
        "terminals",
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("mid", sa.String(15), nullable=False),
        sa.Column("serial", sa.String(32), nullable=False),
        sa.Column("model", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(200)),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        _when("last_signin_at", nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tid", name="pk_terminals"),
        sa.ForeignKeyConstraint(["mid"], ["merchants.mid"], name="fk_terminals_mid_merchants"),
        sa.ForeignKeyConstraint(
            ["serial"], ["devices.serial"], name="fk_terminals_serial_devices"
        ),
    )
    op.create_index("ix_terminals_mid", "terminals", ["mid"])
    op.create_index("ix_terminals_serial", "terminals", ["serial"])
    op.create_table(
        "terminal_keys",
        _id(),
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(4), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("kcv", sa.LargeBinary(16), nullable=False),
        sa.Column("alg", sa.String(8), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        _when("issued_at"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_terminal_keys"),
        sa.ForeignKeyConstraint(["tid"], ["terminals.tid"], name="fk_terminal_keys_tid_terminals"),
    )
    op.create_index(
        "ix_terminal_keys_tid_kind_active", "terminal_keys", ["tid", "kind", "active"]
    )


def _issuer() -> None:
    op.create_table(
        "accounts",
        _id(),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_table(
        "cards",
        _id(),
        sa.Column("pan_hash", sa.String(64), nullable=False),
        sa.Column("pan_masked", sa.String(19), nullable=False),
        sa.Column("pin_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expiry", sa.String(4)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("single_limit", sa.BigInteger()),
        sa.Column("daily_limit", sa.BigInteger()),
        sa.Column("pin_tries", sa.Integer(), nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
        sa.UniqueConstraint("pan_hash", name="uq_cards_pan_hash"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_cards_account_id_accounts"),
    )
    op.create_index("ix_cards_account_id", "cards", ["account_id"])
    op.create_table(
        "decline_rules",
        _id(),
        sa.Column("tid", sa.String(8)),
        sa.Column("amount_eq", sa.BigInteger()),
        sa.Column("amount_pattern", sa.String(32)),
        sa.Column("pan_hash", sa.String(64)),
        sa.Column("respond_code", sa.String(2)),
        sa.Column("delay_ms", sa.Integer()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(200)),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_decline_rules"),
    )
    op.create_index("ix_decline_rules_tid", "decline_rules", ["tid"])


def _evidence() -> None:
    op.create_table(
        "journal",
        _id(),
        _when("at"),
        sa.Column("tid", sa.String(8)),
        sa.Column("mid", sa.String(15)),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("route", sa.String(32)),
        sa.Column("mti", sa.String(4)),
        sa.Column("stan", sa.String(6)),
        sa.Column("rc", sa.String(2)),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("raw_hex", sa.Text()),
        sa.Column("peer", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
    )
    op.create_index("ix_journal_tid_at", "journal", ["tid", "at"])
    op.create_index("ix_journal_at", "journal", ["at"])
    op.create_table(
        "events",
        _id(),
        _when("at"),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("tid", sa.String(8)),
        sa.Column("code", sa.String(32)),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_tid_at", "events", ["tid", "at"])
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])
    op.create_index("ix_events_at", "events", ["at"])


def _money() -> None:
    op.create_table(
        "txns",
        _id(),
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("mid", sa.String(15), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("stan", sa.String(6), nullable=False),
        sa.Column("rrn", sa.String(12)),
        sa.Column("auth_code", sa.String(6)),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("pan_masked", sa.String(19)),
        sa.Column("pan_hash", sa.String(64)),
        sa.Column("card_id", BIG_ID),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("rc", sa.String(2)),
        sa.Column("orig_txn_id", BIG_ID),
        _when("at"),
        sa.PrimaryKeyConstraint("id", name="pk_txns"),
        sa.UniqueConstraint(
            "tid", "batch_no", "stan", "kind", name="uq_txns_tid_batch_no_stan_kind"
        ),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name="fk_txns_card_id_cards"),
        sa.ForeignKeyConstraint(["orig_txn_id"], ["txns.id"], name="fk_txns_orig_txn_id_txns"),
    )
    op.create_index("ix_txns_tid_batch_no", "txns", ["tid", "batch_no"])
    op.create_index("ix_txns_card_id_at", "txns", ["card_id", "at"])
    op.create_index("ix_txns_rrn", "txns", ["rrn"])
    op.create_table(
        "batches",
        _id(),
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        _when("opened_at"),
        _when("settled_at", nullable=True),
        sa.Column("debit_amount", sa.BigInteger(), nullable=False),
        sa.Column("debit_count", sa.Integer(), nullable=False),
        sa.Column("credit_amount", sa.BigInteger(), nullable=False),
        sa.Column("credit_count", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(1)),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint("tid", "batch_no", name="uq_batches_tid_batch_no"),
    )
    op.create_table(
        "reversals",
        _id(),
        sa.Column("tid", sa.String(8), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("stan", sa.String(6), nullable=False),
        sa.Column("orig_txn_id", BIG_ID),
        sa.Column("reason", sa.String(2)),
        sa.Column("amount", sa.BigInteger()),
        _when("at"),
        sa.PrimaryKeyConstraint("id", name="pk_reversals"),
        sa.ForeignKeyConstraint(
            ["orig_txn_id"], ["txns.id"], name="fk_reversals_orig_txn_id_txns"
        ),
    )
    op.create_index("ix_reversals_tid_at", "reversals", ["tid", "at"])


def upgrade() -> None:
    _registry()
    _issuer()
    _evidence()
    _money()


def downgrade() -> None:
    for table in (
        "reversals", "batches", "txns", "events", "journal", "decline_rules",
        "cards", "accounts", "terminal_keys", "terminals", "devices", "merchants",
    ):
        op.drop_table(table)
