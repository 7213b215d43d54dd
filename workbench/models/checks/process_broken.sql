-- check: PROCESS_BROKEN
-- severity: medium
-- reads: events, payload_trader, quarantine
-- A business process (`correlation_id`) that cannot be followed as one story
-- (`workbench/domain/process.py` defines both rules; a differential test ties this SQL to it):
-- a dangling cause, an event whose `causation_id` names no event of the log nor a quarantined
-- row (judged only in a process whose first event, by `(position, event_id)`, has no cause: an
-- export may start mid-process; an event with no process is always judged); and a compensation
-- outside its process, a plan's `committed`/`rolled_back` or a trader hold's
-- `hold_captured`/`hold_released` recorded under another correlation than the latest opening of
-- the same plan (`batch_held`) or trader and ref (`hold_placed`) before it. A compensation that
-- never came is HOLD_LEAK's, not reported twice. The offending event is the caused event or the
-- compensation; the opening step is the second piece of evidence.
WITH dangling AS MATERIALIZED (  -- caused by an event neither the log nor the quarantine has
    SELECT e.event_id, e.position AS pos, e.stream, e.aggregate_id, e.kind,
           e.correlation_id AS corr, e.causation_id
    FROM events e
    ANTI JOIN events c ON c.event_id = e.causation_id
    WHERE e.causation_id IS NOT NULL
      AND e.causation_id NOT IN (SELECT event_id FROM quarantine WHERE event_id IS NOT NULL)
),
starts AS (  -- does the log hold the process's beginning? (only the few processes in question)
    SELECT correlation_id AS corr,
           arg_min(causation_id IS NULL, {'pos': position, 'event_id': event_id}) AS from_start
    FROM events WHERE correlation_id IN (SELECT corr FROM dangling) GROUP BY ALL
),
steps AS (  -- openings and compensations, keyed by the plan, or by the trader and ref of a hold
    -- (the range on `kind` is pushed into the scan as a real filter, as `events_of` does)
    SELECT event_id, position AS pos, stream, aggregate_id, '' AS ref, kind,
           correlation_id AS corr
    FROM events
    WHERE kind BETWEEN {{ kind_range("ledger_plan") }}
      AND kind IN ({{ process_kinds("ledger_plan", "steps") }})
    UNION ALL
    SELECT e.event_id, e.position, e.stream, e.aggregate_id, t.ref, e.kind, e.correlation_id
    FROM events e JOIN payload_trader t USING (event_id)
    WHERE t.ref IS NOT NULL AND e.kind BETWEEN {{ kind_range("trader") }}
      AND e.kind IN ({{ process_kinds("trader", "steps") }})
),
mixed AS (  -- the steps seen under more than one correlation (almost none): only they can break
    -- (grouped by a hash of the step: a collision only merges two steps, which can only add
    -- correlations to the group, so no mixed step is missed; the window below is exact)
    SELECT hash(stream, aggregate_id, ref) AS h FROM steps GROUP BY h
    HAVING min(corr) <> max(corr) OR (count(corr) <> count(*) AND count(corr) > 0)
),
paired AS (  -- each compensation with the latest opening of its step before it
    SELECT *, kind IN ({{ process_kinds("ledger_plan", "openings") }},
                       {{ process_kinds("trader", "openings") }}) AS opening,
           last_value(CASE WHEN kind IN ({{ process_kinds("ledger_plan", "openings") }},
                                         {{ process_kinds("trader", "openings") }})
                           THEN {'event_id': event_id, 'corr': corr, 'kind': kind} END IGNORE NULLS)
               OVER (PARTITION BY stream, aggregate_id, ref ORDER BY pos, event_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS opened
    FROM steps WHERE hash(stream, aggregate_id, ref) IN (SELECT h FROM mixed)
)
SELECT 'PROCESS_BROKEN', d.stream || ':' || d.aggregate_id, d.event_id, [d.event_id],
       NULL::BIGINT, NULL,
       format('{} caused by {}, an event neither in the log nor quarantined (process {})',
              d.kind, d.causation_id, coalesce(d.corr, 'none'))
FROM dangling d LEFT JOIN starts s USING (corr)
WHERE d.corr IS NULL OR s.from_start
UNION ALL
SELECT 'PROCESS_BROKEN', stream || ':' || aggregate_id, event_id, [event_id, opened.event_id],
       NULL::BIGINT, NULL,
       format('{} of {} recorded in process {}, but its {} {} was in process {}: the step is '
              'never closed in its own process', kind,
              CASE WHEN stream = 'ledger_plan' THEN 'ledger_plan:' || aggregate_id
                   ELSE 'trader:' || aggregate_id || ' ' || ref END,
              coalesce(corr, 'none'),
              opened.kind, opened.event_id, coalesce(opened.corr, 'none'))
FROM paired
WHERE NOT opening AND opened IS NOT NULL AND opened.corr IS DISTINCT FROM corr
