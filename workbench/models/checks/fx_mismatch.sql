-- check: FX_MISMATCH
-- severity: high
-- reads: audit_attempt_pricing, audit_attempts, payment_orders
-- An attempt whose settlement amount is not the catalog's `round_half_even(amount / 10^exp_fiat
-- / rate * 10^exp_settle)` for its order (the formula is the domain's, as exact integer SQL:
-- `money.settlement`, computed once for every attempt in `audit_attempt_pricing`), or whose rate
-- is not a plain positive decimal. The offending event is the `assigned` event; `amount_delta` is
-- the settlement amount less the formula's.
WITH x AS (  -- the few attempts priced otherwise (`audit_attempt_pricing` priced them all once)
    SELECT a.order_id, a.attempt, a.rate, a.settlement_currency, a.settlement_amount,
           a.assigned_event_id, o.amount, o.currency, p.expected
    FROM (SELECT k, expected FROM audit_attempt_pricing WHERE NOT priced_right) p
    JOIN (SELECT rowid AS k, * FROM audit_attempts) a USING (k)
    JOIN payment_orders o USING (order_id)
)
SELECT 'FX_MISMATCH', 'payment_order:' || order_id, assigned_event_id, [assigned_event_id],
       TRY_CAST(settlement_amount::HUGEINT - expected AS BIGINT), settlement_currency,
       format('attempt {}: settlement {} for {} at rate {}, the formula gives {}',
              attempt, {{ money.text("settlement_amount", "settlement_currency") }},
              {{ money.text("amount", "currency") }}, rate,
              coalesce({{ money.text("expected", "settlement_currency") }}, 'nothing'))
FROM x
WHERE expected IS NULL OR settlement_amount <> expected
