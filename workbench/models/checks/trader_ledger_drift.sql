-- check: TRADER_LEDGER_DRIFT
-- severity: high
-- reads: audit_trader_events, ledger_postings, payload_trader, traders
-- Per trader and `ref`: the trader stream's net effect on the deposit (top-ups, credits,
-- captures, debits) differs from what the ledger committed for that trader in plan `ref`, or the
-- hold placed differs from the debits the plan holds. The offending event is the trader event for
-- that `ref` that came last (else the ledger's); `amount_delta` is the stream's net less the
-- ledger's.
--
-- Sums first, over every (trader, ref): `t` the trader stream's money per (trader, ref), net
-- effect on the deposit and the amount held; `l` the ledger's postings on trader accounts
-- (`moves`, as (trader, plan) movements) per (trader account, plan), committed net and the debits
-- held. The events listed as evidence are gathered afterwards, for the drifting refs only
-- (listing them for the million refs that agree was most of the cost).
{% set ledger_moves %}
SELECT plan_id, substr(from_account, 8) AS trader_id, -amount AS amt, batch_status, batch_id,
       held_event_id, currency
FROM ledger_postings WHERE from_account LIKE 'trader:%'
UNION ALL
SELECT plan_id, substr(to_account, 8), amount, batch_status, batch_id, held_event_id, currency
FROM ledger_postings WHERE to_account LIKE 'trader:%'
{% endset %}
WITH t AS (
    SELECT trader_id, ref,
           sum(CASE WHEN kind IN ('trader.deposit_topped_up', 'trader.deposit_credited') THEN amount
                    WHEN kind IN ('trader.hold_captured', 'trader.deposit_debited') THEN -amount ELSE 0 END) AS net,
           sum(CASE WHEN kind = 'trader.hold_placed' THEN amount ELSE 0 END) AS placed,
           arg_max(row, pos) AS last_row, count(*) AS n
    FROM audit_trader_events
    WHERE kind IN ({{ names(TRADER_MONEY) }})
    GROUP BY ALL
),
l AS (
    SELECT trader_id, plan_id AS ref,
           sum(CASE WHEN batch_status = 'committed' THEN amt ELSE 0 END) AS net,
           sum(CASE WHEN amt < 0 THEN -amt ELSE 0 END) AS debits,
           any_value(currency) AS currency, count(*) AS n
    FROM ({{ ledger_moves }})
    GROUP BY ALL
),
j AS (
    SELECT coalesce(t.trader_id, l.trader_id) AS trader_id, coalesce(t.ref, l.ref) AS ref,
           coalesce(t.net, 0) AS t_net, coalesce(l.net, 0) AS l_net,
           coalesce(t.placed, 0) AS placed, coalesce(l.debits, 0) AS l_debits,
           t.last_row, l.currency,
           t.n IS NOT NULL AS has_t, l.n IS NOT NULL AS has_l,
           -- each side's own key, to fetch its evidence (NULL keys included)
           t.trader_id AS t_trader, t.ref AS t_ref, l.trader_id AS l_trader, l.ref AS l_ref,
           tr.settlement_currency
    FROM t FULL JOIN l ON t.trader_id = l.trader_id AND t.ref = l.ref
    LEFT JOIN traders tr ON tr.trader_id = coalesce(t.trader_id, l.trader_id)
),
drift AS (
    SELECT * FROM j
    WHERE t_net <> l_net
       OR (placed > 0 AND placed <> l_debits)
),
t_ev AS (
    SELECT d.t_trader, d.t_ref, list(e.event_id ORDER BY m.pos, e.event_id) AS events
    FROM (SELECT DISTINCT t_trader, t_ref FROM drift WHERE has_t) d
    JOIN audit_trader_events m  -- its money events (written as "not state" so DuckDB does not
      -- take this and the sums' scan for one subplan and materialize it, which costs more)
      ON m.trader_id IS NOT DISTINCT FROM d.t_trader AND m.ref IS NOT DISTINCT FROM d.t_ref
     AND m.kind NOT IN ({{ names(TRADER_STATE) }})
    JOIN payload_trader e ON e.rowid = m.row
    GROUP BY ALL
),
l_ev AS (  -- the batches held, in batch order
    SELECT d.l_trader, d.l_ref, list(m.held_event_id ORDER BY m.batch_id, m.held_event_id) AS events
    FROM (SELECT DISTINCT l_trader, l_ref FROM drift WHERE has_l) d
    JOIN (SELECT trader_id, plan_id, held_event_id, min(batch_id) AS batch_id
          FROM ({{ ledger_moves }})  -- the drifting plans' moves only, found by plan first
          WHERE plan_id IN (SELECT l_ref FROM drift) OR plan_id IS NULL
          GROUP BY ALL) m
      ON m.trader_id IS NOT DISTINCT FROM d.l_trader AND m.plan_id IS NOT DISTINCT FROM d.l_ref
    GROUP BY ALL
)
SELECT 'TRADER_LEDGER_DRIFT', 'trader:' || d.trader_id,
       coalesce(last.event_id, le.events[1]),
       list_distinct(list_concat(coalesce(te.events, []), coalesce(le.events, []))),
       TRY_CAST(d.t_net - d.l_net AS BIGINT), coalesce(d.currency, d.settlement_currency),
       format('ref {}: trader stream moves {} (held {}), ledger books {} for the trader (debits {})',
              d.ref, {{ money.text("d.t_net", "coalesce(d.currency, d.settlement_currency)") }},
              {{ money.text("d.placed", "coalesce(d.currency, d.settlement_currency)") }},
              {{ money.text("d.l_net", "coalesce(d.currency, d.settlement_currency)") }},
              {{ money.text("d.l_debits", "coalesce(d.currency, d.settlement_currency)") }})
FROM drift d
LEFT JOIN t_ev te ON d.has_t
     AND te.t_trader IS NOT DISTINCT FROM d.t_trader AND te.t_ref IS NOT DISTINCT FROM d.t_ref
LEFT JOIN l_ev le ON d.has_l
     AND le.l_trader IS NOT DISTINCT FROM d.l_trader AND le.l_ref IS NOT DISTINCT FROM d.l_ref
LEFT JOIN payload_trader last ON last.rowid = d.last_row
