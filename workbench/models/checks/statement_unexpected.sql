-- check: STATEMENT_UNEXPECTED
-- severity: high
-- needs: statement_lines
-- reads: statement_matches
-- Money out on a statement that no payout explains: a line of money out (`amount_minor` < 0)
-- that no rule matched (`statement_matches`), or that is ambiguous (two payouts fit it alike, or
-- it and another line fit one payout alike: never guessed). No payout is involved, so the
-- subject is `statement_line:<line_id>` and so is the offending "event" (a line is not an event;
-- it is named the way `MALFORMED_EVENT` names a row with no id), then the `payout.created` of
-- the payouts an ambiguous line fits; `amount_delta` is the money out.
SELECT 'STATEMENT_UNEXPECTED', 'statement_line:' || line_id, 'statement_line:' || line_id,
       ['statement_line:' || line_id] || coalesce(candidate_events, []),
       TRY_CAST(-amount_minor::HUGEINT AS BIGINT), currency,
       format('statement line {} ({}) shows {} out{}{} that no payout explains{}',
              line_id, strftime(value_date, '%Y-%m-%d'),
              {{ money.text("-amount_minor::HUGEINT", "currency") }},
              coalesce(' to ' || counterparty, ''),
              coalesce(' under reference ' || reference, ' without a reference'),
              CASE WHEN len(candidates) > 1
                   THEN '; payouts ' || array_to_string(candidates, ', ')
                        || ' fit it alike (ambiguous: not matched)'
                   WHEN len(candidates) = 1
                   THEN '; it and another line fit payout ' || candidates[1]
                        || ' alike (ambiguous: not matched)'
                   ELSE '' END)
FROM statement_matches
WHERE amount_minor < 0 AND status <> 'matched'
