"""SQL of the order projections (payment_orders, order_attempts) and of the violations."""

from __future__ import annotations

SQL: dict[str, str] = {}
