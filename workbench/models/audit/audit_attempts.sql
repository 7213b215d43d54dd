-- produces: audit_attempts
-- reads: order_attempts
-- Each assignment attempt with the events that opened, accepted and ended it: the replay's
-- `order_attempts` (the fold's rule, kept at ingest), with the end's kind as the checks read it
-- (`end_kind`: the event's, where the projection names the outcome). Most checks read it and
-- number the attempts by its `rowid` (`k`), so the audit copies it once, as a temp table.
SELECT order_id, attempt, trader_id, assigned_event_id, assigned_pos, rate, settlement_currency,
       assigned_at, accept_by, settlement_amount, trader_reward, platform_fee, end_pos,
       end_event_id,
       {{ outcome_kind("outcome") }} AS end_kind,
       ended_at, accepted_event_id, accepted_at, complete_by, review_event_id, review_pos
FROM order_attempts
