-- produces: sequence_violations
-- scope: aggregate
-- reads: ev, order_assigned, payload_payment_order, prior_traders
-- Sequence and state-machine rules, each over one aggregate's own events: a `seq` that skips
-- (SEQUENCE_GAP) or is taken (CONFLICTING_DUPLICATE), a kind not allowed in the status its
-- aggregate was in (INVALID_TRANSITION; the allowed statuses are the domain's state machines,
-- through `kinds_table()`), a block while blocked, an attempt number out of turn.
-- The per-aggregate window is partitioned by `hash_expr`, a hash of (stream, aggregate_id):
-- sorting on one integer is much cheaper than on two strings. Partitions that mix aggregates
-- (a collision) are detected (`mixed`) and checked again with the exact partition, so the
-- result never depends on the hash (the tests use a hash with many collisions). The last
-- status before an event is the largest `ord * 32 + status` before it (a max is cheaper than a
-- last_value). A trader's stored row (`prior_traders`, empty in a full build) gives its version
-- and status before its first event here, when the live stream appends a batch.
{%- macro event_checks(name, where, partition) %}
{{ name }} AS (
    SELECT ord, seq, h, mask,
        greatest(coalesce(p_ver, 0), coalesce(max(seq) OVER wp, 0)) AS ver,
        coalesce((max(st_at) OVER wp) % 32, p_st) AS st_prev,
        coalesce(lag(aggregate_id) OVER wl <> aggregate_id OR lag(sc) OVER wl <> sc, false)
            AS mixed
    FROM (
        SELECT ord, seq, aggregate_id, {{ hash_expr }} AS h, {{ stream_code() }} AS sc,
            ord * 32 + coalesce(kinds.st,
                CASE WHEN ev.kind = 'payment_order.dispute_resolved'
                     THEN CASE WHEN res.outcome = 'upheld'
                               THEN {{ status_code('completed') }}
                               ELSE {{ status_code('cancelled') }} END END) AS st_at,
            kinds.mask AS mask, p.version AS p_ver,
            CASE WHEN p.registered THEN {{ status_code('registered') }} END AS p_st
        FROM ev
        LEFT JOIN {{ kinds_table() }} ON kinds.kind = ev.kind
        LEFT JOIN prior_traders p ON ev.stream = 'trader' AND p.trader_id = ev.aggregate_id
        LEFT JOIN (SELECT event_id, outcome FROM payload_payment_order
                   WHERE kind = 'payment_order.dispute_resolved') res ON res.event_id = ev.event_id
        WHERE {{ where }}
    )
    WINDOW wl AS (PARTITION BY {{ partition }} ORDER BY ord),
           wp AS (wl ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
{{ name }}_flagged AS MATERIALIZED (
    SELECT *
    FROM (
        SELECT *, seq <> ver::BIGINT + 1 AS bad_seq,
            (mask >> coalesce(st_prev, 0)) & 1 = 0 AS bad_state
        FROM {{ name }}
    )
    WHERE bad_seq OR bad_state OR mixed
)
{%- endmacro %}
WITH {{ event_checks("fast", "true", "h") }},
mixed_h AS (SELECT DISTINCT h FROM fast_flagged WHERE mixed),
{{ event_checks("exact", hash_expr ~ " IN (SELECT h FROM mixed_h)", "sc, aggregate_id") }},
flagged AS (
    SELECT f.*, e.event_id, e.stream, e.kind, e.stream || ':' || e.aggregate_id AS subject
    FROM (
        SELECT * FROM fast_flagged WHERE h NOT IN (SELECT h FROM mixed_h)
        UNION ALL
        SELECT * FROM exact_flagged
    ) f
    JOIN ev e ON e.ord = f.ord
)
SELECT
    CASE WHEN seq > ver::BIGINT + 1 THEN 'SEQUENCE_GAP' ELSE 'CONFLICTING_DUPLICATE' END AS code,
    event_id,
    subject,
    CASE
        WHEN seq = ver::BIGINT + 2 THEN 'seq ' || (ver::BIGINT + 1) || ' missing before seq ' || seq
        WHEN seq > ver::BIGINT + 2
            THEN 'seq ' || (ver::BIGINT + 1) || '..' || (seq - 1) || ' missing before seq ' || seq
        ELSE 'seq ' || seq || ' was already taken (the aggregate is at seq ' || ver || ')'
    END AS detail
FROM flagged
WHERE bad_seq
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, subject,
    kind || ' is not allowed in status ' || CASE
        WHEN stream NOT IN ('client', 'trader') THEN {{ status_name('st_prev') }}
        WHEN st_prev IS NULL THEN 'unregistered'
        ELSE 'registered'
    END
FROM flagged
WHERE bad_state
UNION ALL
-- trader.apply: blocked while blocked, unblocked while active
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    kind || ' is not allowed in status ' || CASE WHEN blocked_prev THEN 'blocked' ELSE 'active' END
FROM (
    SELECT event_id, aggregate_id, kind,
        coalesce(lag(kind) OVER (PARTITION BY aggregate_id ORDER BY ord) = 'trader.blocked',
                 p.status = 'blocked', false) AS blocked_prev
    FROM ev
    LEFT JOIN prior_traders p ON p.trader_id = ev.aggregate_id
    WHERE kind IN ('trader.blocked', 'trader.unblocked')
)
WHERE (kind = 'trader.blocked') = blocked_prev
UNION ALL
-- payment_order.apply: an assignment's attempt number follows the attempts before it
SELECT 'INVALID_TRANSITION', event_id, 'payment_order:' || aggregate_id,
    'attempt ' || attempt || ' follows attempt ' || before
FROM (
    SELECT event_id, aggregate_id, attempt,
        row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) - 1 AS before
    FROM order_assigned
)
WHERE attempt <> before + 1
