-- produces: order_assigned
-- reads: ev, payload_payment_order
-- Every `payment_order.assigned`, its payload typed once: the orders, their attempts and the
-- attempt-number rule read it.
SELECT aggregate_id, ord, event_id, position, occurred_at,
    j.attempt, j.trader_id, j.rate, j.settlement_currency, j.settlement_amount, j.platform_fee,
    j.trader_reward, j.accept_by
FROM (
    SELECT aggregate_id, ord, event_id, position, occurred_at,
        j
    FROM {{ typed("payment_order") }}
    WHERE kind = 'payment_order.assigned'
)
