-- produces: batch_trader_violations
-- reads: batch_traders, trader_exact, trader_holds, traders, violations
-- The batch's trader events judged from each trader's row and holds before the batch: the rules
-- of `sequence_violations` (sequence, registration, blocking), `hold_violations`,
-- `clock_violations` and the deposit's AMOUNT_OVERFLOW of `overflow_violations`, run on from
-- the stored state (the deposit balance exact from `trader_exact` where the row holds NULL
-- because it is past int64). Valid because the batch comes after every stored event: each rule
-- only looks back. Tied to the full build by tests/stream/test_incremental.py.
WITH e AS (
    SELECT b.*, o.version AS o_version, coalesce(o.registered, false) AS o_registered,
        coalesce(o.status = 'blocked', false) AS o_blocked
    FROM batch_traders b LEFT JOIN traders o ON o.trader_id = b.aggregate_id
),
w AS (
    SELECT *,
        greatest(coalesce(o_version, 0), coalesce(max(seq) OVER wp, 0)) AS ver,
        o_registered OR coalesce(bool_or(kind = 'trader.registered') OVER wp, false) AS reg_before
    FROM e
    WINDOW wp AS (PARTITION BY aggregate_id ORDER BY ord
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
hb AS (
    SELECT aggregate_id, ord, event_id, kind, j.ref AS ref, j.amount AS amount,
        CASE kind WHEN 'trader.hold_released' THEN 'release' ELSE 'capture' END AS verb
    FROM batch_traders
    WHERE kind IN ({{ HOLD_KINDS }})
),
hw AS (
    SELECT hb.*,
        coalesce(lag(hb.kind) OVER wr = 'trader.hold_placed',
                 CASE WHEN lag(hb.kind) OVER wr IS NULL
                      THEN s.last_kind = 'trader.hold_placed' END,
                 false) AS was_open,
        CASE WHEN lag(hb.kind) OVER wr IS NULL THEN s.amount ELSE lag(hb.amount) OVER wr END
            AS held
    FROM hb LEFT JOIN trader_holds s ON s.trader_id = hb.aggregate_id AND s.ref = hb.ref
    WINDOW wr AS (PARTITION BY hb.aggregate_id, hb.ref ORDER BY hb.ord)
),
-- the deposit's figures after each money event of the batch, from those before it
m AS (
    SELECT b.aggregate_id, b.ord, b.event_id, b.kind, b.j.ref AS ref,
        b.j.amount::HUGEINT AS amount,
        CASE WHEN b.kind = 'trader.hold_placed' THEN b.j.amount::HUGEINT ELSE 0 END
            - CASE WHEN h.was_open THEN h.held::HUGEINT ELSE 0 END AS d_held
    FROM batch_traders b LEFT JOIN hw h ON h.event_id = b.event_id
    WHERE b.kind IN ({{ MONEY_KINDS }})
),
held0 AS (
    SELECT trader_id, sum(amount::HUGEINT) AS held
    FROM trader_holds
    WHERE last_kind = 'trader.hold_placed' AND trader_id IN (SELECT aggregate_id FROM m)
    GROUP BY trader_id
),
mrun AS (
    SELECT m.aggregate_id, m.ord, m.event_id, m.kind, m.ref,
        coalesce(x.balance, o.deposit_balance, 0) + sum({{ D_BALANCE }}) OVER w AS balance,
        coalesce(h0.held, 0) + sum(m.d_held) OVER w AS held
    FROM m
    LEFT JOIN traders o ON o.trader_id = m.aggregate_id
    LEFT JOIN trader_exact x ON x.trader_id = m.aggregate_id
    LEFT JOIN held0 h0 ON h0.trader_id = m.aggregate_id
    WINDOW w AS (PARTITION BY m.aggregate_id ORDER BY m.ord ROWS UNBOUNDED PRECEDING)
),
mover AS (
    SELECT * FROM mrun r
    WHERE {{ out_of_int64("r.balance", "r.held") }}
        AND NOT EXISTS (
            SELECT 1 FROM violations v
            WHERE v.code = 'AMOUNT_OVERFLOW' AND v.subject = 'trader:' || r.aggregate_id
                AND starts_with(v.detail, 'deposit_balance '))
    QUALIFY row_number() OVER (PARTITION BY aggregate_id ORDER BY ord) = 1
)
SELECT CASE WHEN seq > ver::BIGINT + 1 THEN 'SEQUENCE_GAP' ELSE 'CONFLICTING_DUPLICATE' END AS code,
    event_id, 'trader:' || aggregate_id AS subject,
    CASE
        WHEN seq = ver::BIGINT + 2 THEN 'seq ' || (ver::BIGINT + 1) || ' missing before seq ' || seq
        WHEN seq > ver::BIGINT + 2
            THEN 'seq ' || (ver::BIGINT + 1) || '..' || (seq - 1) || ' missing before seq ' || seq
        ELSE 'seq ' || seq || ' was already taken (the aggregate is at seq ' || ver || ')'
    END AS detail
FROM w
WHERE seq <> ver::BIGINT + 1
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    kind || ' is not allowed in status ' || CASE WHEN reg_before THEN 'registered' ELSE 'unregistered' END
FROM w
WHERE (kind = 'trader.registered') = reg_before
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    kind || ' is not allowed in status ' || CASE WHEN blocked_prev THEN 'blocked' ELSE 'active' END
FROM (
    SELECT event_id, aggregate_id, kind,
        coalesce(lag(kind) OVER (PARTITION BY aggregate_id ORDER BY ord) = 'trader.blocked',
                 o_blocked) AS blocked_prev
    FROM e
    WHERE kind IN ('trader.blocked', 'trader.unblocked')
)
WHERE (kind = 'trader.blocked') = blocked_prev
UNION ALL
SELECT 'INVALID_TRANSITION', event_id, 'trader:' || aggregate_id,
    CASE WHEN kind = 'trader.hold_placed' THEN 'a hold on ' || ref || ' is already open'
        ELSE verb || ' of ' || ref || ', which has no open hold'
    END
FROM hw
WHERE was_open = (kind = 'trader.hold_placed')
UNION ALL
SELECT 'TRADER_LEDGER_DRIFT', event_id, 'trader:' || aggregate_id,
    verb || ' ' || amount || ' of ' || ref || ', but ' || held || ' was held'
FROM hw
WHERE kind <> 'trader.hold_placed' AND was_open AND held <> amount
UNION ALL
{{ clock_rows("batch_traders", "'trader:' || aggregate_id") }}
UNION ALL
SELECT 'AMOUNT_OVERFLOW', event_id, 'trader:' || aggregate_id,
    {{ deposit_overflow_detail("balance", "held", "kind", "ref") }}
FROM mover
