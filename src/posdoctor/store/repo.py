"""``Store``: the one facade services use to reach the database.

Conventions: ``get_*`` raises :class:`NotFound`; ``find_*`` returns None; ``add_*``
raises :class:`AlreadyExists` for a taken key and :class:`InvalidValue` for bad input.
Rows come back as detached model objects (attributes loaded; changing them changes
nothing). Each method is its own transaction; ``apply_host_batch`` groups many writes
into one. Writes on SQLite take the write lock up front (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from posdoctor.store.cards import CardsMixin, rule_matches
from posdoctor.store.evidence import EvidenceMixin
from posdoctor.store.lifecycle import LifecycleMixin
from posdoctor.store.payouts import PayoutsMixin
from posdoctor.store.registry import RegistryMixin
from posdoctor.store.tms import TmsMixin
from posdoctor.store.tmsconfig import ConfigMixin


class Store(RegistryMixin, LifecycleMixin, ConfigMixin, PayoutsMixin, CardsMixin, EvidenceMixin, TmsMixin):
    """``Store(engine, lmk)``; usually built by ``posdoctor.store.db.open_store``.

    Registry: ``add_merchant``, ``get_merchant``, ``list_merchants``,
    ``set_merchant_status``, ``add_device``, ``get_device``, ``add_terminal``,
    ``get_terminal``, ``list_terminals``, ``terminals_by_serial``, ``update_terminal``,
    ``set_terminal_keys``, ``get_terminal_keys``, ``terminal_key_rows``.

    Lifecycle (``lifecycle``, ``tmsconfig``, ``payouts``): ``change_merchant_status``,
    ``change_terminal_status``, ``change_account_status``, ``change_device_status``,
    ``change_operator_status``, ``status_history``, ``set_settlement_account``,
    ``set_terminal_allowed_types``, ``set_merchant_mcc``, ``record_terminal_report``,
    ``notify_host`` / ``host_changes_after`` (the change feed), ``set_param``,
    ``effective_params``, ``set_policy``, ``policies``, operators, payouts.

    Issuer: ``add_account``, ``get_account``, ``add_card``, ``find_card_by_pan``,
    ``find_card_by_hash``, ``get_card``, ``card_pin``, ``pan_hash``, ``set_card_status``,
    ``card_spent_since``, ``add_decline_rule``, ``decline_rules``,
    ``match_decline_rule``, ``set_decline_rule_active``.

    Evidence: ``record_journal``, ``record_events``, ``apply_host_batch``, ``journal``,
    ``events``, ``find_txn``, ``get_txn``, ``find_txns_by_rrn``, ``txns_in_batch``,
    ``txns``, ``find_batch``, ``batches``, ``reversals``.
    """


__all__ = ["Store", "rule_matches"]
