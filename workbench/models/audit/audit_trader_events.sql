-- produces: audit_trader_events
-- reads: payload_trader
-- The trader stream's events with the payload fields the audit reads (typed once, at ingest:
-- `payload_trader`): the drift, the hold leaks and the scheduler's rules all read them, so the
-- audit keeps them in a temp table. Money events (`TRADER_MONEY`) have their `ref` and
-- `amount`; registrations and limit changes their fields in `state` (v2 nests the limits under
-- `limits`, v1 has them at top level: the one written is taken). Narrow, as it stays in memory:
-- the event is its `row` in `payload_trader` (its `rowid`), and the few ids needed (those a
-- finding shows, those that order two events at one position) are fetched by it.
SELECT row, pos, aggregate_id AS trader_id, kind,
       CASE WHEN kind IN ({{ names(TRADER_MONEY) }}) THEN ref END AS ref,
       CASE WHEN kind IN ({{ names(TRADER_MONEY) }}) THEN amount END AS amount,
       CASE WHEN kind IN ('trader.registered', 'trader.limits_changed') THEN {
           'fiat_currency': fiat_currency,
           'settlement_currency': settlement_currency,
           'min_amount': coalesce(limits.min_amount, min_amount),
           'max_amount': coalesce(limits.max_amount, max_amount),
           'max_active_orders': coalesce(limits.max_active_orders, max_active_orders)}
       END AS state
FROM {{ typed_of("trader", *(TRADER_MONEY + TRADER_STATE)) }}
