"""SQL of the entity projections (clients, traders, receipts, payouts, ratings, ledger)."""

from __future__ import annotations

SQL: dict[str, str] = {}
