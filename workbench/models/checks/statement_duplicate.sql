-- check: STATEMENT_DUPLICATE
-- severity: high
-- needs: statement_lines
-- reads: statement_totals
-- One payout paid out more than once: several lines of money out under its reference, in its
-- currency, that sum past its amount. The offending event is the `payout.paid` that gave the
-- reference, then its `payout.created`; `amount_delta` is the money out past the amount.
SELECT 'STATEMENT_DUPLICATE', 'payout:' || payout_id, coalesce(paid_event, sent_event),
       list_filter([coalesce(paid_event, sent_event), created_event], lambda v: v IS NOT NULL),
       TRY_CAST(out_minor - amount AS BIGINT), currency,
       format('payout {} of {} (bank_ref {}) left {} times: {}, {} more than the payout',
              payout_id, {{ money.text("amount", "currency") }}, coalesce(bank_ref, 'none'),
              out_lines, out_text, {{ money.text("out_minor - amount", "currency") }})
FROM statement_totals
WHERE out_lines > 1 AND foreign_lines = 0 AND out_minor > amount
