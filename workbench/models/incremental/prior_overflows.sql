-- produces: prior_overflows
-- reads: violations
-- The AMOUNT_OVERFLOW violations already on record: a figure overflows once, so the overflow
-- rule does not report it again. Empty in a full build.
SELECT subject, detail FROM violations WHERE code = 'AMOUNT_OVERFLOW'
