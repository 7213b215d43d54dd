-- produces: statement_payouts
-- reads: ledger_plans, payload_payout, payouts, statement_lines
-- The payouts as the statement matching and checks see them: amount, currency, destination and
-- `bank_ref` (the `payouts` projection), the status, the events that prove each step, `sent_on`
-- (the UTC day the platform says the money left: its `payout.paid`, else its
-- `payout.confirmed`) and whether a cancel after confirmation booked its revert plan
-- (`revert:<plan_id>` committed). Empty when no statement line was imported: with nothing to
-- compare, every statement check then costs a count.
WITH steps AS (  -- the last event of each step, as the projection takes its fields
    SELECT aggregate_id AS payout_id,
           arg_max(event_id, pos) FILTER (WHERE kind = 'payout.created') AS created_event,
           arg_max(event_id, pos) FILTER (WHERE kind = 'payout.paid') AS paid_event,
           arg_max(event_id, pos) FILTER (WHERE kind = 'payout.confirmed') AS confirmed_event,
           arg_max(event_id, pos) FILTER (WHERE kind IN ('payout.cancelled', 'payout.failed'))
               AS ended_event
    FROM {{ typed_of("payout", "payout.created", "payout.paid", "payout.confirmed", "payout.cancelled", "payout.failed") }}
    WHERE EXISTS (SELECT 1 FROM statement_lines)
    GROUP BY aggregate_id
)
SELECT p.payout_id, p.owner, p.amount, p.currency, p.destination_masked, p.bank_ref, p.status,
       p.cancelled_from,
       (coalesce(p.paid_at, p.confirmed_at) AT TIME ZONE 'UTC')::DATE AS sent_on,
       (p.ended_at AT TIME ZONE 'UTC')::DATE AS ended_on,
       s.created_event, s.paid_event, s.confirmed_event, s.ended_event,
       coalesce(s.paid_event, s.confirmed_event) AS sent_event,
       coalesce(rv.status = 'committed', false) AS revert_booked
FROM steps s
JOIN payouts p USING (payout_id)
LEFT JOIN ledger_plans rv ON rv.plan_id = 'revert:' || p.plan_id
