-- produces: clock_violations
-- scope: aggregate
-- reads: ev
-- CLOCK_SKEW: implausible clocks, event by event (the tolerance and the era are the domain's,
-- `domain/clock.py`).
{{ clock_rows("ev", "stream || ':' || aggregate_id") }}
