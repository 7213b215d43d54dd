-- produces: audit_attempt_orders
-- reads: audit_attempts, payload_payment_order, payment_orders
-- The order of each attempt as it stood just before its assignment (`k`: its row in
-- `audit_attempts`): the client, direction, amount and currency of the order's latest
-- `payment_order.created` before the `assigned` event in the fold's `(position, event_id)`
-- order, as the fold has them when the scheduler's rules are asked (the order before the event is
-- folded); the empty order (no client, direction or currency, amount 0) where there is none yet.
-- The scheduler's rules (`audit_assignment_rules`), the pricing (`audit_attempt_pricing`) and the
-- fees in force (`audit_fees_in_force`) read it, not `payment_orders`, which has the order as it
-- ends: an order created, or created again, after an assignment had other figures when it was
-- assigned. So an assignment is judged on the events before it only, which is also what lets
-- the full build store POLICY_DEVIATION's judgments (`audit_policy_pick`).
--
-- Almost every order is created once, at a position before its assignments: those take the
-- projection's figures (its one creation's); only the others look among the order's creations.
WITH once AS (  -- the orders created once, and where (integers only: cheap to group)
    SELECT aggregate_id AS order_id, max(position) AS pos
    FROM payload_payment_order WHERE kind = 'payment_order.created'
    GROUP BY aggregate_id HAVING count(*) = 1
),
a AS (
    SELECT a.rowid AS k, a.order_id, a.assigned_pos AS pos, a.assigned_event_id AS event_id,
           coalesce(c.pos < a.assigned_pos, FALSE) AS settled
    FROM audit_attempts a LEFT JOIN once c USING (order_id)
),
before AS (  -- the others: the order's latest creation before the assignment, if any
    SELECT a.k, arg_max(c, {'pos': c.position, 'event_id': c.event_id}) AS c
    FROM (SELECT * FROM a WHERE NOT settled) a
    LEFT JOIN (SELECT * FROM payload_payment_order WHERE kind = 'payment_order.created') c
      ON c.aggregate_id = a.order_id
     AND (c.position < a.pos OR c.position = a.pos AND c.event_id < a.event_id)
    GROUP BY a.k
)
SELECT a.k, o.client_id, o.direction, o.amount, o.currency
FROM (SELECT k, order_id FROM a WHERE settled) a JOIN payment_orders o USING (order_id)
UNION ALL
SELECT k, {{ order_figures("c") }} FROM before
