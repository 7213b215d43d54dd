-- check: STATEMENT_RETURN_MISSING
-- severity: medium
-- needs: statement_lines
-- reads: statement_totals
-- A payout cancelled after confirmation with its revert plan booked (the owner was given the
-- money back) whose money left (lines of money out matched to it) and did not come back under
-- its reference, although the statements cover every day from the cancel to the window's end
-- (`statement_totals.return_due`). Medium: the platform is out of pocket, but a bank's return
-- is slower than its payment and is often only late. The offending event is the
-- `payout.cancelled`, then its `payout.confirmed`, `payout.paid` and `payout.created`;
-- `amount_delta` is the money not back.
SELECT 'STATEMENT_RETURN_MISSING', 'payout:' || payout_id, ended_event,
       list_filter([ended_event, confirmed_event, paid_event, created_event], lambda v: v IS NOT NULL),
       TRY_CAST(out_minor - back_minor AS BIGINT), currency,
       format('payout {} of {} was cancelled after confirmation on {} and its revert booked, but of {} out {} by {}: {} not returned',
              payout_id, {{ money.text("amount", "currency") }}, strftime(ended_on, '%Y-%m-%d'),
              out_text, coalesce('only ' || back_text || ' came back', 'nothing came back'),
              strftime(ended_on + {{ statement_window_days | int }}, '%Y-%m-%d'),
              {{ money.text("out_minor - back_minor", "currency") }})
FROM statement_totals
WHERE status = 'cancelled' AND cancelled_from = 'confirmed' AND revert_booked AND return_due
  AND out_minor > back_minor
