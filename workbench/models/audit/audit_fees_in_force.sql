-- produces: audit_fees_in_force
-- reads: audit_attempt_orders, audit_attempts, payload_client, payload_trader
-- One row per assignment attempt: the client's `fee_bps` and the trader's `reward_bps` in force
-- just before it, at which the catalog (section 2) says the attempt's platform fee and trader
-- reward are priced. FEE_MISMATCH reads it. The rule, as the fold applies it
-- (`World.bps_in_force`, asked just before the assignment is folded, which is how the processors
-- price): in `(position, event_id)` order, the fee of the client's latest `client.registered` or
-- `client.fee_changed` before the assignment and the reward of the trader's latest
-- `trader.registered` before it; NULL where there is none. The client is the order's as it
-- stood just before the assignment (`audit_attempt_orders`). `tests/audit/test_fees_in_force.py` holds the model and the fold to each
-- other.
--
-- There are a few fee and registration events per client and trader, so each is given the
-- `(position, event_id)` until which it holds (the next one's) and joined by key with the
-- assignments it covers: an `ASOF` join would sort every assignment, and compares one column
-- only, so two events at one position would be ordered by chance.
{%- macro before(p, e, q, f) -%}
({{ p }} < {{ q }} OR {{ p }} = {{ q }} AND {{ e }} < {{ f }})
{%- endmacro %}
{%- macro in_force(s) -%}
{{ before(s ~ ".pos", s ~ ".event_id", "a.pos", "a.assigned_event_id") }}
    AND ({{ s }}.until_pos IS NULL OR {{ before("a.pos", "a.assigned_event_id", s ~ ".until_pos", s ~ ".until_id") }})
{%- endmacro %}
WITH a AS (
    SELECT a.order_id, a.attempt, a.assigned_event_id, a.assigned_pos AS pos, o.client_id,
           a.trader_id
    FROM audit_attempts a
    JOIN audit_attempt_orders o ON o.k = a.rowid
),
fees AS (
    SELECT aggregate_id AS client_id, pos, event_id, fee_bps::BIGINT AS fee_bps,
           lead(pos) OVER w AS until_pos, lead(event_id) OVER w AS until_id
    FROM {{ typed_of("client", "client.registered", "client.fee_changed") }}
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY pos, event_id)
),
rewards AS (
    SELECT aggregate_id AS trader_id, pos, event_id, reward_bps::BIGINT AS reward_bps,
           lead(pos) OVER w AS until_pos, lead(event_id) OVER w AS until_id
    FROM {{ typed_of("trader", "trader.registered") }}
    WINDOW w AS (PARTITION BY aggregate_id ORDER BY pos, event_id)
)
SELECT a.order_id, a.attempt, a.assigned_event_id, a.client_id, a.trader_id, f.fee_bps,
       r.reward_bps
FROM a
LEFT JOIN fees f ON f.client_id = a.client_id AND {{ in_force("f") }}
LEFT JOIN rewards r ON r.trader_id = a.trader_id AND {{ in_force("r") }}
