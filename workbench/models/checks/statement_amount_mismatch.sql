-- check: STATEMENT_AMOUNT_MISMATCH
-- severity: high
-- needs: statement_lines
-- reads: statement_totals
-- A payout matched by reference (its `bank_ref` on the lines) whose money out on the statement
-- is not its `amount` (the fee stays with the platform) or is in another currency: one line of
-- another amount, or parts that sum short of it (parts that sum past it are
-- STATEMENT_DUPLICATE). The offending event is the `payout.paid` that gave the reference, then
-- its `payout.created`; `amount_delta` is the money out in the payout's currency less its
-- amount.
SELECT 'STATEMENT_AMOUNT_MISMATCH', 'payout:' || payout_id, coalesce(paid_event, sent_event),
       list_filter([coalesce(paid_event, sent_event), created_event], lambda v: v IS NOT NULL),
       TRY_CAST(out_minor - amount AS BIGINT), currency,
       format('payout {} of {} (bank_ref {}): the statement shows {} under its reference{}',
              payout_id, {{ money.text("amount", "currency") }}, coalesce(bank_ref, 'none'),
              out_text,
              CASE WHEN foreign_lines > 0 THEN ', not in ' || currency
                   ELSE ', ' || {{ money.text("out_minor - amount", "currency", signed=True) }}
                        || ' against the payout' END)
FROM statement_totals
WHERE ref_lines > 0
  AND (foreign_lines > 0 OR (out_minor <> amount AND NOT (out_lines > 1 AND out_minor > amount)))
