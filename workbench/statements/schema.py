"""Where the payout provider's statements live, and in what shape: the contract between the
importer (:mod:`workbench.statements.importer`), the matching and checks (the statement models)
and the generator's statement writer.

Statements are the analysts' input, not the platform's events, so they live in the analyst
database beside the projections (:func:`workbench.replay.snapshots.analyst_db`), like audit runs
and triage: a live follower's snapshots never replace them, and importing never waits for the
follower. Readers see them as tables of the same names (:data:`TABLES` is added to
``workbench.replay.readers.ANALYST_TABLES``), so the audit's statement checks read
``statement_lines`` like any projection.

Money is exact: ``amount_minor`` is integer minor units at the catalog's exponent for
``currency``, negative for money leaving the platform (a payout paid out), positive for money
coming back (a return). A line whose amount has more decimals than its currency allows is
quarantined, never rounded.
"""

from __future__ import annotations

from typing import Final

#: Formats a statement file can be in.
FORMATS: Final = ("csv", "camt053", "mt940")

DDL: Final = (
    # One row per file imported (by content: the same bytes twice are one file).
    """CREATE TABLE IF NOT EXISTS statement_files (
        file_sha256 VARCHAR PRIMARY KEY,   -- hex SHA-256 of the file's bytes
        path VARCHAR NOT NULL,             -- as given when first imported
        format VARCHAR NOT NULL,           -- one of FORMATS
        period_from DATE,                  -- the period the statement covers (camt.053 FrToDt,
        period_to DATE,                    --   MT940 :60F:/:62F: dates, CSV: min/max value_date)
        imported_at TIMESTAMPTZ NOT NULL,
        lines_in BIGINT NOT NULL,          -- = stored + duplicates + quarantined + conflicts
        stored BIGINT NOT NULL,
        duplicates BIGINT NOT NULL,        -- a line id seen before with the same content
        quarantined BIGINT NOT NULL,
        conflicts BIGINT NOT NULL          -- a line id seen before with other content
    )""",
    # One row per statement line (by line_id, first seen wins; never overwritten).
    """CREATE TABLE IF NOT EXISTS statement_lines (
        line_id VARCHAR PRIMARY KEY,       -- the provider's line id (CSV line_id, camt.053
                                           --   NtryRef/AcctSvcrRef, MT940 :61: bank reference)
        file_sha256 VARCHAR NOT NULL,
        line_no BIGINT NOT NULL,           -- 1-based position in its file (record, entry)
        value_date DATE NOT NULL,
        booked_at TIMESTAMPTZ,             -- NULL where the format only gives a date
        amount_minor BIGINT NOT NULL,      -- signed: negative = money out of the platform
        currency VARCHAR NOT NULL,         -- a catalog currency
        reference VARCHAR,                 -- the payout's bank_ref, when the provider kept it
        counterparty VARCHAR,              -- compared with payout.created's destination_masked
        raw VARCHAR NOT NULL               -- the line (or entry's XML) as read
    )""",
    # A line that could not be read: kept with the raw text and why.
    """CREATE TABLE IF NOT EXISTS statement_quarantine (
        file_sha256 VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        line_no BIGINT NOT NULL,           -- 0 for a file that is not a statement at all
        raw VARCHAR NOT NULL,
        field VARCHAR,                     -- the field at fault, where one is
        reason VARCHAR NOT NULL,           -- bad_date, bad_amount, too_many_decimals,
                                           --   unknown_currency, missing_reference, missing_field,
                                           --   not_a_statement, ...
        detail VARCHAR NOT NULL            -- one sentence for a person
    )""",
    # A line id seen again with other content: kept and reported, the first one stays.
    """CREATE TABLE IF NOT EXISTS statement_conflicts (
        line_id VARCHAR NOT NULL,
        file_sha256 VARCHAR NOT NULL,
        line_no BIGINT NOT NULL,
        raw VARCHAR NOT NULL,
        kept_file_sha256 VARCHAR NOT NULL  -- the file whose line with this id is stored
    )""",
)

#: The analyst database's statement tables, copied into every reader's connection.
TABLES: Final = (
    "statement_files",
    "statement_lines",
    "statement_quarantine",
    "statement_conflicts",
)
