-- check: MONEY_LEFT_AFTER_CANCEL
-- severity: high
-- needs: statement_lines
-- reads: statement_totals
-- A payout cancelled or failed before confirmation (its plan rolled back: the owner has the
-- money again) whose money still left: the lines of money out matched to it exceed the money
-- that came back under its reference. The offending event is the `payout.cancelled` or
-- `payout.failed`, then its `payout.paid` and `payout.created`; `amount_delta` is the money
-- still gone, in the payout's currency.
SELECT 'MONEY_LEFT_AFTER_CANCEL', 'payout:' || payout_id, ended_event,
       list_filter([ended_event, paid_event, created_event], lambda v: v IS NOT NULL),
       TRY_CAST(out_minor - back_minor AS BIGINT), currency,
       format('payout {} of {} {} on {}, but the statement shows {} out and {}: {} still gone',
              payout_id, {{ money.text("amount", "currency") }},
              CASE WHEN status = 'failed' THEN 'failed'
                   ELSE 'was cancelled from ' || coalesce(cancelled_from, 'no status') END,
              strftime(ended_on, '%Y-%m-%d'), out_text,
              coalesce(back_text || ' back', 'nothing back'),
              {{ money.text("out_minor - back_minor", "currency") }})
FROM statement_totals
WHERE (status = 'failed' OR (status = 'cancelled' AND cancelled_from IS DISTINCT FROM 'confirmed'))
  AND out_minor > back_minor
