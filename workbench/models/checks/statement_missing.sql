-- check: STATEMENT_MISSING
-- severity: high
-- needs: statement_lines
-- reads: statement_totals
-- A payout whose last state is `paid` or `confirmed` (money the platform books as gone) with no
-- line of money out matched to it, although the statements imported cover every day from the
-- day it was sent to the window's end (`statement_totals.sent_due`: a line may come on a later
-- day, so a payout is not missing before then). The offending event is the one that says it was
-- sent (`payout.paid`, else `payout.confirmed`), then its `payout.created` (and, where an
-- ambiguous line fits it, the other candidates' `payout.created`: the detail names the line);
-- `amount_delta` is the payout's amount.
SELECT 'STATEMENT_MISSING', 'payout:' || payout_id, sent_event,
       list_filter([sent_event, created_event], lambda v: v IS NOT NULL)
           || coalesce(rival_events, []),
       amount, currency,
       format('payout {} of {} to {}, now {}, was {} on {}, but no statement line from {} to {} matches it{}',
              payout_id, {{ money.text("amount", "currency") }},
              coalesce(destination_masked, 'no destination'), status,
              CASE WHEN paid_event IS NOT NULL THEN 'paid' ELSE 'confirmed' END,
              strftime(sent_on, '%Y-%m-%d')
                  || CASE WHEN paid_event IS NOT NULL THEN coalesce(' with bank_ref ' || bank_ref, '')
                          ELSE ' without a paid event' END,
              strftime(sent_on, '%Y-%m-%d'),
              strftime(sent_on + {{ statement_window_days | int }}, '%Y-%m-%d'),
              coalesce('; ' || rival_lines || ' fit it, but not it alone (ambiguous: not matched)', ''))
FROM statement_totals
WHERE status IN ('paid', 'confirmed') AND sent_due AND out_lines = 0
