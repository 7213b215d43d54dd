-- produces: statement_totals
-- reads: statement_files, statement_matches, statement_payouts
-- Each payout beside the statement lines matched to it (`statement_matches`): the lines of money
-- out (`out_lines`, those matched by a reference rule `ref_lines`, their sum in the payout's
-- currency `out_minor`, the lines in another currency `foreign_lines`), the money back in its
-- currency (`back_minor`), the lines named as a person reads them (`out_text`, `back_text`), the
-- ambiguous lines that fit it (`rival_lines`, with their candidates' `payout.created` in
-- `rival_events`), and whether the statements imported cover the window in which its lines
-- belong. A payout is judged only where they do: a day is covered when a statement's period
-- (`statement_files`) holds it, and `sent_due` says every day from `sent_on` to
-- `statement_window_days` after it is covered (a line may still come on a day not yet seen:
-- until then the payout is not missing; an audit `--as-of` counts the days ended by then);
-- `return_due` the same from the day it ended. Every
-- statement check but STATEMENT_UNEXPECTED reads this one table.
WITH periods AS (  -- an audit --as-of knows the days that had ended by then
    SELECT period_from,
           CASE WHEN {{ statement_as_of }} IS NULL THEN period_to
                ELSE least(period_to, ({{ statement_as_of }} AT TIME ZONE 'UTC')::DATE - 1) END
               AS period_to
    FROM statement_files
),
days AS (
    SELECT DISTINCT unnest(generate_series(period_from::TIMESTAMP, period_to::TIMESTAMP,
                                           INTERVAL 1 DAY))::DATE AS day
    FROM periods WHERE period_from <= period_to
),
runs AS (  -- the covered days as runs of consecutive days
    SELECT min(day) AS run_from, max(day) AS run_to
    FROM (SELECT day, day - (row_number() OVER (ORDER BY day))::INTEGER AS island FROM days)
    GROUP BY island
),
mine AS (
    SELECT m.payout_id,
           count(*) FILTER (WHERE m.amount_minor < 0) AS out_lines,
           count(*) FILTER (WHERE m.amount_minor < 0 AND m.rule <> 'amount_counterparty')
               AS ref_lines,
           coalesce(sum(-m.amount_minor::HUGEINT)
                    FILTER (WHERE m.amount_minor < 0 AND m.currency = p.currency), 0) AS out_minor,
           count(*) FILTER (WHERE m.amount_minor < 0 AND m.currency IS DISTINCT FROM p.currency)
               AS foreign_lines,
           coalesce(sum(m.amount_minor::HUGEINT)
                    FILTER (WHERE m.amount_minor > 0 AND m.currency = p.currency), 0) AS back_minor,
           string_agg(m.line_id || ' (' || strftime(m.value_date, '%Y-%m-%d') || ') '
                      || {{ money.text("-m.amount_minor::HUGEINT", "m.currency") }}, ', '
                      ORDER BY m.value_date, m.line_id) FILTER (WHERE m.amount_minor < 0)
               AS out_text,
           string_agg(m.line_id || ' (' || strftime(m.value_date, '%Y-%m-%d') || ') '
                      || {{ money.text("m.amount_minor", "m.currency") }}, ', '
                      ORDER BY m.value_date, m.line_id) FILTER (WHERE m.amount_minor > 0)
               AS back_text
    FROM statement_matches m JOIN statement_payouts p USING (payout_id)
    WHERE m.status = 'matched'
    GROUP BY m.payout_id
),
rivals AS (
    SELECT payout_id, string_agg(DISTINCT line_id, ', ' ORDER BY line_id) AS rival_lines,
           list_distinct(flatten(list(candidate_events))) AS rival_events
    FROM (SELECT line_id, unnest(candidates) AS payout_id, candidate_events
          FROM statement_matches WHERE status = 'ambiguous' AND amount_minor < 0)
    GROUP BY payout_id
)
SELECT p.*,
       coalesce(m.out_lines, 0) AS out_lines, coalesce(m.ref_lines, 0) AS ref_lines,
       coalesce(m.out_minor, 0) AS out_minor, coalesce(m.foreign_lines, 0) AS foreign_lines,
       coalesce(m.back_minor, 0) AS back_minor, m.out_text, m.back_text,
       r.rival_lines, r.rival_events,
       EXISTS (SELECT 1 FROM runs WHERE run_from <= p.sent_on
                 AND p.sent_on + {{ statement_window_days | int }} <= run_to) AS sent_due,
       EXISTS (SELECT 1 FROM runs WHERE run_from <= p.ended_on
                 AND p.ended_on + {{ statement_window_days | int }} <= run_to) AS return_due
FROM statement_payouts p
LEFT JOIN mine m USING (payout_id)
LEFT JOIN rivals r USING (payout_id)
