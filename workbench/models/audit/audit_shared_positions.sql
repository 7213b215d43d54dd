-- produces: audit_shared_positions
-- reads: audit_attempts, audit_trader_events, events
-- The positions two of the events the scheduler's rules order share (an assignment, the end of an
-- attempt, a trader event), or an assignment and a ledger event: none in a valid log, where
-- positions are unique (strictly increasing, says the catalog). Where none is shared, ordering by
-- position is ordering by `(position, event_id)`, on integers: the deposit's series
-- (`audit_trader_deposit`) and the client balance (`audit_assignment_rules`) are ordered by
-- position, and by `event_id` too only around these.
{%- set LEDGER_MOVES = ("ledger_plan.batch_held", "ledger_plan.committed", "ledger_plan.rolled_back") %}
SELECT pos
FROM (SELECT assigned_pos AS pos FROM audit_attempts
      UNION ALL  -- an attempt ended by the next assignment: that event is counted once, above
      SELECT end_pos FROM audit_attempts WHERE end_kind <> 'payment_order.assigned'
      UNION ALL
      SELECT pos FROM audit_trader_events)
GROUP BY pos HAVING count(*) > 1
UNION
(SELECT assigned_pos FROM audit_attempts INTERSECT SELECT pos FROM {{ events_of(*LEDGER_MOVES) }})
