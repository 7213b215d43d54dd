-- check: HOLD_LEAK
-- severity: high
-- reads: audit_attempts, audit_trader_events, events, ledger_plans, ledger_postings, payload_trader, trader_holds
-- A ledger plan still held, or a trader hold still open, after the attempt or payout it belongs
-- to ended (`order:<order>:<attempt>` ended by its attempt's end in `audit_attempts`;
-- `payout:<id>` by the payout's first `confirmed`, `cancelled` or `failed`). The offending event
-- is the event that ended the attempt or payout, then the plan's `batch_held` and the hold's
-- placement.
--
-- A trader hold is open as the catalog and the fold say ("held: sum of open holds by ref"): one
-- hold per ref, open when the last hold event on that ref placed it (`trader_holds`, the one
-- definition of an open hold). A ref placed twice and released once is closed (the second
-- placement is an INVALID_TRANSITION, reported as such). Only the evidence, the latest placement
-- on each open ref, is taken from the trader events.
WITH ends AS (  -- what ended each plan's business: an attempt, or a payout
    SELECT 'order:' || order_id || ':' || attempt AS ref, end_event_id AS event_id, end_kind AS how,
           'payment_order:' || order_id AS owner_subject
    FROM audit_attempts WHERE end_event_id IS NOT NULL
    UNION ALL
    SELECT 'payout:' || aggregate_id, arg_min(event_id, pos), arg_min(kind, pos), 'payout:' || aggregate_id
    FROM {{ events_of("payout.confirmed", "payout.cancelled", "payout.failed") }} GROUP BY aggregate_id
),
open_plans AS (  -- evidence: the plan's first batch held
    SELECT p.plan_id AS ref,
           arg_min(lp.held_event_id, {'batch_id': lp.batch_id, 'event_id': lp.held_event_id}) AS held_event_id
    FROM ledger_plans p JOIN ledger_postings lp USING (plan_id)
    WHERE p.status = 'held' GROUP BY p.plan_id
),
open_holds AS (  -- the open trader holds, with their latest placement as evidence
    SELECT h.ref, h.trader_id, e.event_id AS placed_event_id
    FROM (SELECT trader_id, ref FROM trader_holds WHERE last_kind = 'trader.hold_placed') h
    LEFT JOIN (SELECT * FROM audit_trader_events WHERE kind = 'trader.hold_placed') t
           ON t.trader_id = h.trader_id AND t.ref = h.ref
    LEFT JOIN payload_trader e ON e.rowid = t.row
    QUALIFY row_number() OVER (PARTITION BY h.trader_id, h.ref ORDER BY t.pos DESC, e.event_id DESC) = 1
),
leaks AS (
    SELECT e.ref, e.event_id, e.how, op.held_event_id, oh.placed_event_id, oh.trader_id
    FROM ends e
    LEFT JOIN open_plans op ON op.ref = e.ref
    LEFT JOIN open_holds oh ON oh.ref = e.ref
    WHERE op.ref IS NOT NULL OR oh.ref IS NOT NULL
)
SELECT 'HOLD_LEAK', 'ledger_plan:' || ref, event_id,
       list_filter([event_id, held_event_id, placed_event_id], lambda x: x IS NOT NULL),
       NULL::BIGINT, NULL,
       format('{} ended by {} but {} still open', ref, how,
              array_to_string(list_filter([CASE WHEN held_event_id IS NOT NULL THEN 'its ledger plan' END,
                                           CASE WHEN trader_id IS NOT NULL THEN 'the hold on trader:' || trader_id END],
                                          lambda x: x IS NOT NULL), ' and '))
FROM leaks
