-- produces: statement_matches
-- reads: statement_lines, statement_payouts
-- Every statement line with the payout it belongs to and the rule that matched it
-- (`RULES` in `workbench/statements/rules.py`), or why it has none: `ambiguous` (two payouts fit it
-- alike, or it and another line fit one payout alike: never guessed; `candidates` are the
-- payouts, `candidate_events` their `payout.created`) or `unmatched`. Money out (`amount_minor`
-- < 0) is tried first by reference, the payout's `bank_ref` (several lines with one reference
-- are one transfer in parts: `reference_parts` when they sum to it; lines that do not stay
-- linked by `reference`, the difference a finding), then, for a line without a usable reference
-- (none, or one no payout has), by exact amount, currency and counterparty
-- (`destination_masked`) with a value date from the payout's `sent_on` to
-- `statement_window_days` after it, among payouts no reference claimed. Money coming back is
-- matched by reference only: the payout's `bank_ref` or the reference of its money out. A
-- reference is compared trimmed; an empty one is none. An audit `--as-of` reads the lines booked
-- by then (`statement_as_of`; a line with no booking time counts from the end of its value day).
WITH lines AS (
    SELECT line_id, value_date, booked_at, amount_minor, currency,
           nullif(trim(reference), '') AS reference, nullif(trim(counterparty), '') AS counterparty
    FROM statement_lines
    WHERE {{ statement_as_of }} IS NULL  -- an audit --as-of: the lines booked by then
       OR coalesce(booked_at, (value_date + 1)::TIMESTAMPTZ) <= {{ statement_as_of }}
),
refs AS (  -- each bank_ref with the payouts that have it (one, unless the platform reused it)
    SELECT bank_ref, list(payout_id ORDER BY payout_id) AS payouts
    FROM statement_payouts WHERE bank_ref IS NOT NULL GROUP BY bank_ref
),
by_ref AS (  -- money out whose reference is a bank_ref
    SELECT l.line_id, r.payouts
    FROM lines l JOIN refs r ON r.bank_ref = l.reference
    WHERE l.amount_minor < 0
),
ref_out AS (  -- rule 1: by reference; parts when the lines sum exactly to the payout
    SELECT b.line_id, p.payout_id,
           CASE WHEN count(*) OVER w > 1 AND sum(l.amount_minor) OVER w = -p.amount
                     AND sum(CASE WHEN l.currency = p.currency THEN 0 ELSE 1 END) OVER w = 0
                THEN 'reference_parts' ELSE 'reference' END AS rule
    FROM by_ref b
    JOIN lines l USING (line_id)
    JOIN statement_payouts p ON p.payout_id = b.payouts[1]
    WHERE len(b.payouts) = 1
    WINDOW w AS (PARTITION BY p.payout_id)
),
cand AS (  -- rule 2's candidates: lines without a usable reference, payouts no reference claimed
    SELECT l.line_id, p.payout_id
    FROM lines l
    JOIN statement_payouts p
      ON p.amount = -l.amount_minor AND p.currency = l.currency
     AND p.destination_masked = l.counterparty
     AND l.value_date BETWEEN p.sent_on AND p.sent_on + {{ statement_window_days | int }}
    WHERE l.amount_minor < 0
      AND l.line_id NOT IN (SELECT line_id FROM by_ref)
      AND p.payout_id NOT IN (SELECT payout_id FROM ref_out)
),
fit AS (
    SELECT line_id, payout_id,
           count(*) OVER (PARTITION BY line_id) AS payouts_fit,
           count(*) OVER (PARTITION BY payout_id) AS lines_fit
    FROM cand
),
out_matched AS (
    SELECT line_id, payout_id, rule FROM ref_out
    UNION ALL
    SELECT line_id, payout_id, 'amount_counterparty' FROM fit WHERE payouts_fit = 1 AND lines_fit = 1
),
keys AS (  -- the references money coming back may carry, and whose money they name
    SELECT bank_ref AS reference, payout_id FROM statement_payouts WHERE bank_ref IS NOT NULL
    UNION
    SELECT l.reference, m.payout_id FROM out_matched m JOIN lines l USING (line_id)
    WHERE l.reference IS NOT NULL
),
back AS (
    SELECT l.line_id, list(DISTINCT k.payout_id ORDER BY k.payout_id) AS payouts
    FROM lines l JOIN keys k ON k.reference = l.reference
    WHERE l.amount_minor > 0
    GROUP BY l.line_id
),
decided AS (
    SELECT line_id, payout_id, rule, 'matched' AS status, NULL::VARCHAR[] AS candidates
    FROM out_matched
    UNION ALL
    SELECT line_id, payouts[1], 'return', 'matched', NULL FROM back WHERE len(payouts) = 1
    UNION ALL
    SELECT line_id, NULL, NULL, 'ambiguous', payouts FROM back WHERE len(payouts) > 1
    UNION ALL
    SELECT line_id, NULL, NULL, 'ambiguous', payouts FROM by_ref WHERE len(payouts) > 1
    UNION ALL
    SELECT line_id, NULL, NULL, 'ambiguous', list(payout_id ORDER BY payout_id)
    FROM fit WHERE payouts_fit > 1 OR lines_fit > 1 GROUP BY line_id
),
candidate_events AS (  -- the evidence an ambiguous line's finding names
    SELECT c.line_id, list(p.created_event ORDER BY p.payout_id) AS candidate_events
    FROM (SELECT line_id, unnest(candidates) AS payout_id FROM decided WHERE candidates IS NOT NULL) c
    JOIN statement_payouts p USING (payout_id)
    GROUP BY c.line_id
)
SELECT l.line_id, l.value_date, l.booked_at, l.amount_minor, l.currency, l.reference,
       l.counterparty, d.payout_id, d.rule, coalesce(d.status, 'unmatched') AS status,
       d.candidates, e.candidate_events
FROM lines l
LEFT JOIN decided d USING (line_id)
LEFT JOIN candidate_events e USING (line_id)
