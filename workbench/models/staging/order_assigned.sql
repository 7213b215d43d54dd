-- produces: order_assigned
-- reads: ev
-- Every `payment_order.assigned`, its payload typed once: the orders, their attempts and the
-- attempt-number rule read it.
SELECT aggregate_id, ord, event_id, occurred_at,
    j.attempt, j.trader_id, j.rate, j.settlement_currency, j.settlement_amount, j.platform_fee,
    j.trader_reward, j.accept_by
FROM (
    SELECT aggregate_id, ord, event_id, occurred_at,
        json_transform(payload, '{"attempt": "BIGINT", "trader_id": "VARCHAR", "rate": "VARCHAR", "settlement_currency": "VARCHAR", "settlement_amount": "BIGINT", "platform_fee": "BIGINT", "trader_reward": "BIGINT", "accept_by": "VARCHAR"}') AS j
    FROM ev
    WHERE kind = 'payment_order.assigned'
)
