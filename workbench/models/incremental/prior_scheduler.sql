-- produces: prior_scheduler
-- reads: order_attempts, payload_trader_rating, traders
-- What the scheduler reads of every trader as the database stands, from the stored projections:
-- what the scheduler's rules and the policy read of the state the audit's `audit_trader_states`,
-- `audit_trader_timeline` and `audit_trader_deposit` reach after a trader's last event (its
-- registration, its limits once registered, its presence and block, FALSE where it never had
-- one, its latest published score, its active orders and its available deposit, NULL past
-- int64). The first step of judging POLICY_DEVIATION at ingest, not read by the replay yet: a
-- batch judged there would start from it, for every trader (the production policy ranks them
-- all, not only a batch's scope). `tests/audit/test_prior_scheduler.py` holds it to the audit's
-- folds at the end of edited histories. The active orders are the open attempts (as the audit's
-- timeline counts them, not `traders.active_orders`, which counts orders by status) and the
-- score is the latest rating in `(position, event_id)` order (as the audit reads it, not by
-- `seq`).
WITH rated AS (
    SELECT aggregate_id AS trader_id,
           arg_max({'score': score, 'event_id': event_id}, {'pos': position, 'event_id': event_id}) AS r
    FROM payload_trader_rating
    WHERE kind = 'trader_rating.published'
    GROUP BY aggregate_id
),
open AS (
    SELECT trader_id, count(*) AS active
    FROM order_attempts WHERE outcome IS NULL AND trader_id IS NOT NULL
    GROUP BY trader_id
),
ids AS (
    SELECT trader_id FROM traders UNION SELECT trader_id FROM rated UNION SELECT trader_id FROM open
)
SELECT i.trader_id,
       CASE WHEN t.registered
            THEN {'fiat_currency': t.fiat_currency, 'settlement_currency': t.settlement_currency,
                  'reward_bps': t.reward_bps::BIGINT} END AS reg,
       CASE WHEN t.registered  -- a registration sets limits; an unregistered trader is judged by that
            THEN {'min_amount': t.min_amount::BIGINT, 'max_amount': t.max_amount::BIGINT,
                  'cap': t.max_active_orders::BIGINT} END AS lim,
       t.online, t.status = 'blocked' AS blocked,
       r.r.score::DECIMAL(18, 6) AS score, r.r.event_id AS rated_by,
       coalesce(o.active, 0) AS active, t.available
FROM ids i
LEFT JOIN traders t USING (trader_id)
LEFT JOIN rated r USING (trader_id)
LEFT JOIN open o USING (trader_id)
