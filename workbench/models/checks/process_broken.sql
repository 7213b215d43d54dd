-- check: PROCESS_BROKEN
-- severity: medium
-- reads: events, payload_ledger_plan, payload_trader, quarantine
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
    -- (the anti-joins carry only the row and its cause; the few rows left are fetched whole)
    SELECT event_id, position AS pos, stream, aggregate_id, kind,
           correlation_id AS corr, causation_id
    FROM events
    WHERE rowid IN (
        SELECT r FROM (SELECT rowid AS r, causation_id FROM events WHERE causation_id IS NOT NULL) e
        ANTI JOIN events c ON c.event_id = e.causation_id
        ANTI JOIN (SELECT event_id FROM quarantine WHERE event_id IS NOT NULL) q
            ON q.event_id = e.causation_id)
),
starts AS (  -- does the log hold the process's beginning? (only the few processes in question)
    SELECT correlation_id AS corr,
           arg_min(causation_id IS NULL, {'pos': position, 'event_id': event_id}) AS from_start
    FROM events WHERE correlation_id IN (SELECT corr FROM dangling) GROUP BY ALL
),
rows AS NOT MATERIALIZED (  -- every opening and compensation, from its typed table (which
    -- carries the event's process): a hash of its step (the plan; the trader and the hold's ref)
    SELECT 'ledger_plan' AS stream, aggregate_id, '' AS ref, correlation_id AS corr, event_id,
           position AS pos, kind, hash(aggregate_id) AS h
    FROM payload_ledger_plan
    WHERE kind BETWEEN {{ kind_range("ledger_plan") }}
      AND kind IN ({{ process_kinds("ledger_plan", "steps") }})
    UNION ALL
    SELECT 'trader', aggregate_id, ref, correlation_id, event_id, position, kind,
           hash(aggregate_id, ref)
    FROM payload_trader
    WHERE ref IS NOT NULL AND kind BETWEEN {{ kind_range("trader") }}
      AND kind IN ({{ process_kinds("trader", "steps") }})
),
mixed AS (  -- the steps seen under more than one correlation, NULL counted as one (almost none):
    -- only they can break. A superset is enough, as their events are taken whole below: a hash
    -- collision only merges two steps' correlations
    SELECT h FROM (SELECT DISTINCT h, corr FROM rows) GROUP BY h HAVING count(*) > 1
),
steps AS (  -- their events
    SELECT stream, aggregate_id, ref, corr, event_id, pos, kind
    FROM rows WHERE h IN (SELECT h FROM mixed)
),
paired AS (  -- each compensation with the latest opening of its step before it
    SELECT *, kind IN ({{ process_kinds("ledger_plan", "openings") }},
                       {{ process_kinds("trader", "openings") }}) AS opening,
           last_value(CASE WHEN kind IN ({{ process_kinds("ledger_plan", "openings") }},
                                         {{ process_kinds("trader", "openings") }})
                           THEN {'event_id': event_id, 'corr': corr, 'kind': kind} END IGNORE NULLS)
               OVER (PARTITION BY stream, aggregate_id, ref ORDER BY pos, event_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS opened
    FROM steps
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
