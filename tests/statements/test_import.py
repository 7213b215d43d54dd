"""Importing statements loses nothing and changes nothing: every line of a file is stored, a
duplicate, quarantined (raw text, field, reason) or a conflict, and the counts add up; the same
file twice adds nothing; a line id seen again with other content never overwrites the first.

Files are written by the tests (a camt.053 and an MT940 by hand, see :mod:`samples`), imported
into a real DuckDB file, and read back with plain DuckDB."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.cli import main
from workbench.replay import readers
from workbench.statements import CsvLayout, import_statements

from . import stmt_samples as samples
from .stmt_db import Rows, everything, make_db, table

Write = Callable[[str, str | bytes], Path]
Tables = dict[str, Rows]
HEADER = "line_id,value_date,booked_at,amount,currency,reference,counterparty\n"


def stored(db: Path | Tables) -> list[tuple[object, ...]]:
    """The stored lines (by line id) as the bank means them."""
    rows = (db if isinstance(db, dict) else everything(db))["statement_lines"]
    return [
        (r["line_id"], r["value_date"], r["amount_minor"], r["currency"], r["reference"],
         r["counterparty"])
        for r in rows
    ]  # fmt: skip


def quarantined(db: Path | Tables) -> list[tuple[object, ...]]:
    """The quarantined lines (by line number): where, why, and the raw text."""
    rows = (db if isinstance(db, dict) else everything(db))["statement_quarantine"]
    return sorted((r["line_no"], r["reason"], r["field"], r["raw"]) for r in rows)


# --- each format --------------------------------------------------------------------------------


def test_a_camt053_is_imported_as_the_bank_wrote_it(db: Path, write: Write) -> None:
    summary = import_statements([write("day.xml", samples.CAMT053)], db)
    assert stored(db) == samples.EXPECTED
    lines = table(db, "statement_lines")
    assert [r["booked_at"] for r in lines] == samples.CAMT_BOOKED
    assert [r["line_no"] for r in lines] == [1, 2, 3, 4, 5]  # the n-th Ntry
    assert lines[0]["raw"].startswith("<Ntry>\n        <NtryRef>BR-2611050001</NtryRef>")
    assert lines[0]["raw"].endswith("</Ntry>") and "Anna Schmidt" in lines[0]["raw"]
    (f,) = table(db, "statement_files")
    assert (f["format"], f["lines_in"], f["stored"], f["quarantined"]) == ("camt053", 5, 5, 0)
    assert (str(f["period_from"]), str(f["period_to"])) == ("2026-11-05", "2026-11-05")
    assert summary.exit_code == 0


def test_an_mt940_is_imported_as_the_bank_wrote_it(db: Path, write: Write) -> None:
    import_statements([write("day.sta", samples.MT940)], db)
    assert stored(db) == samples.EXPECTED
    lines = table(db, "statement_lines")
    assert [r["booked_at"] for r in lines] == [None] * 5  # MT940 gives no time
    assert [r["line_no"] for r in lines] == [6, 9, 11, 13, 15]  # the :61: lines
    text = samples.MT940.splitlines()
    assert lines[4]["raw"] == "\n".join(text[14:18])  # the :61: and its 3-line :86:
    (f,) = table(db, "statement_files")
    assert (f["format"], str(f["period_from"]), str(f["period_to"])) == (
        "mt940",
        "2026-11-05",
        "2026-11-05",
    )


def test_the_same_day_from_camt053_and_mt940_is_one_set_of_lines(db: Path, write: Write) -> None:
    """Two parsers, two layouts, one bank day: the second file's lines are all duplicates."""
    import_statements([write("day.xml", samples.CAMT053)], db)
    summary = import_statements([write("day.sta", samples.MT940)], db)
    (f,) = summary.files
    assert (f.lines_in, f.stored, f.duplicates, f.conflicts) == (5, 0, 5, 0)


def test_a_csv_in_the_default_columns(db: Path, write: Write) -> None:
    body = "".join(
        f"{i},{d},,{_major(m)},{c},{r or ''},{p}\n" for i, d, m, c, r, p in samples.EXPECTED
    )
    import_statements([write("day.csv", HEADER + body)], db)
    assert stored(db) == samples.EXPECTED


def test_a_csv_in_another_bank_s_layout(db: Path, write: Write) -> None:
    """Semicolons, decimal comma, thousands dot, German headers in another order, dates as
    05.11.2026, an extra column, quoted fields, a byte-order mark."""
    german = {
        "line_id": "Buchungs-ID",
        "value_date": "Valuta",
        "amount": "Betrag",
        "currency": "Währung",
        "reference": "Verwendungszweck",
        "counterparty": "IBAN Empfänger",
    }
    head = "Valuta;Betrag;Währung;Buchungs-ID;Verwendungszweck;IBAN Empfänger;Saldo\n"
    amounts = ["-1.250,00", "-4.999,99", "-1.234.567,89", "-0,50", "4.999,99"]
    body = "".join(
        f'05.11.2026;{a};{c};"{i}";{r or ""};{p};"1.000,00"\n'
        for a, (i, _, _, c, r, p) in zip(amounts, samples.EXPECTED, strict=True)
    )
    layout = CsvLayout(
        columns=german, decimal=",", thousands=".", delimiter=";", date_format="%d.%m.%Y"
    )
    path = write("bank.csv", b"\xef\xbb\xbf" + (head + body).encode())
    summary = import_statements([path], db, csv_layout=layout)
    assert summary.exit_code == 0
    assert stored(db) == samples.EXPECTED
    # the same file in the default layout is not a statement: no amount column
    assert import_statements([path], make_db(db.parent / "other")).exit_code == 2


def test_a_csv_in_another_encoding(db: Path, write: Write) -> None:
    text = "Id;Valuta;Betrag;Währung;Zweck\nX1;2026-11-05;-1.234,50;EUR;Überweisung PO-1\n"
    layout = CsvLayout(
        columns={"line_id": "Id", "value_date": "Valuta", "amount": "Betrag",
                 "currency": "Währung", "reference": "Zweck"},
        delimiter=";", decimal=",", thousands=".", encoding="cp1252",
    )  # fmt: skip
    summary = import_statements([write("w.csv", text.encode("cp1252"))], db, csv_layout=layout)
    assert summary.exit_code == 0
    assert stored(db) == [("X1", samples.DAY, -123_450, "EUR", "Überweisung PO-1", None)]
    # read as UTF-8 it is not a statement: the header's "ä" is not UTF-8; kept as read
    other = make_db(db.parent / "utf8")
    assert import_statements([write("w2.csv", text.encode("cp1252"))], other).exit_code == 2
    assert quarantined(other) == [
        (0, "not_a_statement", None, text.replace("ä", "\\xe4").replace("Ü", "\\xdc"))
    ]


def test_the_format_is_told_by_content_not_by_name(db: Path, write: Write) -> None:
    summary = import_statements(
        [write("a.txt", samples.CAMT053), write("b.csv", samples.MT940)], db
    )
    assert [f.format for f in summary.files] == ["camt053", "mt940"]


def _major(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


# --- every kind of bad line ---------------------------------------------------------------------

GOOD = "G1,2026-11-05,2026-11-05T10:00:00Z,-10.00,EUR,PO-1,DE89\n"
BAD_CSV = [
    ("B1,2026-11-31,,-1.00,EUR,PO-2,", "bad_date", "value_date"),
    ("B1,05/11/2026,,-1.00,EUR,PO-2,", "bad_date", "value_date"),
    ("B1,2026-11-05,2026-11-05 10:00:00,-1.00,EUR,PO-2,", "bad_date", "booked_at"),  # no offset
    ("B1,2026-11-05,2026-11-05T10:00:00.1234567Z,-1.00,EUR,PO-2,", "bad_date", "booked_at"),
    ("B1,2026-11-05,,-1.0.0,EUR,PO-2,", "bad_amount", "amount"),
    ("B1,2026-11-05,,1e3,EUR,PO-2,", "bad_amount", "amount"),
    ("B1,2026-11-05,,-1.005,EUR,PO-2,", "too_many_decimals", "amount"),
    ("B1,2026-11-05,,-1.0000001,USDT,PO-2,", "too_many_decimals", "amount"),
    ("B1,2026-11-05,,-1.00,XXX,PO-2,", "unknown_currency", "currency"),
    ("B1,2026-11-05,,-1.00,eur,PO-2,", "unknown_currency", "currency"),
    (",2026-11-05,,-1.00,EUR,,DE89", "missing_reference", "line_id"),
    ("B1,,,-1.00,EUR,PO-2,", "missing_field", "value_date"),
    ("B1,2026-11-05,,,EUR,PO-2,", "missing_field", "amount"),
    ("B1,2026-11-05,,-1.00,,PO-2,", "missing_field", "currency"),
    ("B1,2026-11-05,,-1.00,EUR", "bad_line", None),
    ('B1,2026-11-05,,"-1.00,EUR,PO-2,', "bad_line", None),  # an unclosed quote to the end
]


@pytest.mark.parametrize(("line", "reason", "field"), BAD_CSV, ids=[b[0] for b in BAD_CSV])
def test_each_bad_csv_line_is_quarantined_with_its_reason(
    db: Path, write: Write, line: str, reason: str, field: str | None
) -> None:
    summary = import_statements([write("x.csv", HEADER + GOOD + line + "\n")], db)
    tables = everything(db)
    assert quarantined(tables) == [(3, reason, field, line)]
    assert [r[0] for r in stored(tables)] == ["G1"]
    (f,) = summary.files
    assert (f.lines_in, f.stored, f.quarantined, f.reasons) == (2, 1, 1, {reason: 1})
    assert summary.exit_code == 1


def test_bytes_that_are_not_text_are_quarantined_as_read(db: Path, write: Write) -> None:
    bad = b"B1,2026-11-05,,-1.00,EUR,PO-\xff,"
    import_statements([write("x.csv", (HEADER + GOOD).encode() + bad + b"\n")], db)
    assert quarantined(db) == [(3, "bad_encoding", None, "B1,2026-11-05,,-1.00,EUR,PO-\\xff,")]


def _camt(entry: str) -> str:
    """The sample camt.053 with its second entry replaced by ``entry``."""
    start = samples.CAMT053.index("      <Ntry>\n        <NtryRef>BR-2611050002")
    end = samples.CAMT053.index("      <Ntry>\n        <NtryRef>BR-2611050003")
    return samples.CAMT053[:start] + entry + samples.CAMT053[end:]


def _entry(**parts: str) -> str:
    fields = {
        "NtryRef": "<NtryRef>BR-X</NtryRef>",
        "Amt": '<Amt Ccy="EUR">10.00</Amt>',
        "CdtDbtInd": "<CdtDbtInd>DBIT</CdtDbtInd>",
        "Sts": "<Sts><Cd>BOOK</Cd></Sts>",
        "BookgDt": "<BookgDt><DtTm>2026-11-05T10:00:00Z</DtTm></BookgDt>",
        "ValDt": "<ValDt><Dt>2026-11-05</Dt></ValDt>",
        "NtryDtls": "<NtryDtls><TxDtls><Refs><EndToEndId>PO-9</EndToEndId></Refs></TxDtls></NtryDtls>",
        **parts,
    }
    return "<Ntry>" + "".join(fields.values()) + "</Ntry>"


BAD_CAMT = [
    ({"ValDt": "<ValDt><Dt>2026-02-30</Dt></ValDt>"}, "bad_date", "ValDt"),
    ({"BookgDt": "<BookgDt><DtTm>2026-11-05T10:00:00</DtTm></BookgDt>"}, "bad_date", "BookgDt/DtTm"),
    ({"Amt": '<Amt Ccy="EUR">1,000.00</Amt>'}, "bad_amount", "Amt"),
    ({"Amt": '<Amt Ccy="EUR">-10.00</Amt>'}, "bad_amount", "Amt"),
    ({"Amt": '<Amt Ccy="EUR">10.001</Amt>'}, "too_many_decimals", "Amt"),
    ({"Amt": '<Amt Ccy="GBP">10.00</Amt>'}, "unknown_currency", "currency"),
    ({"Amt": "<Amt>10.00</Amt>"}, "missing_field", "Amt/@Ccy"),
    ({"NtryRef": "", "NtryDtls": ""}, "missing_reference", "line_id"),
    ({"ValDt": ""}, "missing_field", "ValDt"),
    ({"CdtDbtInd": ""}, "missing_field", "CdtDbtInd"),
    ({"CdtDbtInd": "<CdtDbtInd>DEBIT</CdtDbtInd>"}, "bad_mark", "CdtDbtInd"),
    ({"Sts": "<Sts><Cd>PDNG</Cd></Sts>"}, "not_booked", "Sts"),
    (
        {"NtryDtls": "<NtryDtls><TxDtls><Refs><EndToEndId>A</EndToEndId></Refs></TxDtls>"
         "<TxDtls><Refs><EndToEndId>B</EndToEndId></Refs></TxDtls></NtryDtls>"},
        "batch_entry",
        "TxDtls",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("parts", "reason", "field"), BAD_CAMT, ids=[b[1] for b in BAD_CAMT])
def test_each_bad_camt053_entry_is_quarantined_with_its_reason(
    db: Path, write: Write, parts: dict[str, str], reason: str, field: str
) -> None:
    entry = _entry(**parts)
    summary = import_statements([write("x.xml", _camt(entry))], db)
    tables = everything(db)
    assert quarantined(tables) == [(2, reason, field, entry)]
    assert stored(tables) == [e for e in samples.EXPECTED if e[0] != "BR-2611050002"]
    assert summary.files[0].lines_in == 5


def _mt940(line: str) -> str:
    """The sample MT940 with its second :61: (and :86:) replaced by ``line``."""
    text = samples.MT940.splitlines(keepends=True)
    return "".join([*text[:8], line + "\n", *text[10:]])


BAD_MT940 = [
    (":61:2611311105D10,00NTRFPO-9//BR-X", "bad_date", "value date"),
    (":61:2611051399D10,00NTRFPO-9//BR-X", "bad_date", "entry date"),
    (":61:2611051105D10,001NTRFPO-9//BR-X", "too_many_decimals", "amount"),
    (":61:2611051105D1,0,0NTRFPO-9//BR-X", "bad_amount", "amount"),
    (":61:2611051105X10,00NTRFPO-9//BR-X", "bad_line", ":61:"),
    (":61:2611051105d10,00NTRFPO-9//BR-X", "bad_mark", "mark"),
    (":61:2611051105D10,00NMSCNONREF", "missing_reference", "line_id"),
    (":61:NOT A LINE", "bad_line", ":61:"),
    (":61:2611051105D10,00NTRFPO-7781-K2-TOO-LONG//BR-X", "bad_line", ":61:"),
    (":61:2611051105D10,00NTRFPO-9//BR-X-" + "9" * 30, "bad_line", ":61:"),
]


@pytest.mark.parametrize(("line", "reason", "field"), BAD_MT940, ids=[b[0] for b in BAD_MT940])
def test_each_bad_mt940_line_is_quarantined_with_its_reason(
    db: Path, write: Write, line: str, reason: str, field: str
) -> None:
    import_statements([write("x.sta", _mt940(line))], db)
    tables = everything(db)
    assert quarantined(tables) == [(9, reason, field, line)]
    assert stored(tables) == [e for e in samples.EXPECTED if e[0] != "BR-2611050002"]


def test_an_mt940_currency_the_catalog_does_not_know(db: Path, write: Write) -> None:
    summary = import_statements([write("x.sta", samples.MT940.replace("EUR", "GBP"))], db)
    assert summary.files[0].reasons == {"unknown_currency": 5}
    assert stored(db) == []


def test_mt940_reversals_are_signed_by_where_the_money_goes(db: Path, write: Write) -> None:
    lines = [
        ":61:2611051105RD4999,99NRTIPO-7782-Q9//BR-R1",  # a debit reversed: money back
        ":61:2611051105RC0,50NMSCFEE-1//BR-R2",  # a credit reversed: money out
        ":61:2611051105CD7,00NTRFPO-8//BR-R3",  # D as funds code: a credit of 7.00
        "SUPPLEMENTARY DETAILS",  # the :61:'s optional second line
    ]
    import_statements([write("x.sta", _mt940("\n".join(lines)))], db)
    tables = everything(db)
    got = {r[0]: r[2] for r in stored(tables)}
    assert (got["BR-R1"], got["BR-R2"], got["BR-R3"]) == (499_999, -50, 700)
    raw = {r["line_id"]: r["raw"] for r in tables["statement_lines"]}
    assert raw["BR-R3"] == "\n".join(lines[2:])
    assert quarantined(tables) == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("pain.xml", samples.CAMT053.replace("camt.053.001.08", "pain.001.001.09"), "not_a_statement"),
        ("feed.xml", '<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "not_a_statement"),
        ("cut.xml", samples.CAMT053[:900], "not_a_statement"),
        ("nons.xml", samples.CAMT053.replace(' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"', ""), "not_a_statement"),
        (
            "bomb.xml",
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&b;</Document>',
            "unsafe_xml",
        ),
        (
            "xxe.xml",
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&x;</Document>',
            "unsafe_xml",
        ),
        ("notes.sta", ":20:X\nsome text the bank added\n:61:2611051105D1,00//R", "not_a_statement"),
        ("empty.csv", "", "not_a_statement"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_statement_is_quarantined_whole(
    db: Path, write: Write, name: str, content: str, reason: str
) -> None:
    path = write(name, content)
    summary = import_statements([path], db)
    assert quarantined(db) == [(0, reason, None, content)]
    (f,) = table(db, "statement_files")
    assert (f["lines_in"], f["stored"], f["quarantined"]) == (1, 0, 1)
    assert summary.exit_code == 2
    # and again: recognized by its bytes, nothing added
    before = everything(db)
    assert import_statements([path], db).files[0].already_imported
    assert everything(db) == before


def test_a_csv_without_a_needed_column_is_not_a_statement(db: Path, write: Write) -> None:
    content = "line_id,value_date,amount,reference\nA,2026-11-05,-1.00,PO-1\n"
    summary = import_statements([write("x.csv", content)], db)
    assert quarantined(db) == [(0, "not_a_statement", "currency", content)]
    assert summary.exit_code == 2


# --- the same file twice, the same line again ---------------------------------------------------


def test_the_same_file_twice_adds_nothing(db: Path, write: Write) -> None:
    bad = "B1,2026-11-05,,-1.005,EUR,PO-2,\n"
    first = write("day.csv", HEADER + GOOD + bad)
    import_statements([first], db)
    before = everything(db)
    assert len(before["statement_lines"]) == 1 and len(before["statement_quarantine"]) == 1
    again = import_statements([first, write("copy-under-another-name.csv", first.read_bytes())], db)
    assert [f.already_imported for f in again.files] == [True, True]
    assert again.exit_code == 0 and again.lines_in == 0
    assert everything(db) == before
    # one call with the same file twice: the second is the first
    other = make_db(db.parent / "other")
    twice = import_statements([first, first], other)
    assert [f.already_imported for f in twice.files] == [False, True]
    assert len(table(other, "statement_files")) == 1


def test_a_line_id_seen_again_with_other_content_is_a_conflict_and_the_first_stays(
    db: Path, write: Write
) -> None:
    import_statements([write("a.csv", HEADER + GOOD)], db)
    changed = GOOD.replace("-10.00", "-10.01")
    summary = import_statements([write("b.csv", HEADER + GOOD + changed)], db)
    (f,) = summary.files
    assert (f.lines_in, f.stored, f.duplicates, f.quarantined, f.conflicts) == (2, 0, 1, 0, 1)
    assert summary.exit_code == 1
    assert stored(db) == [("G1", _day(), -1000, "EUR", "PO-1", "DE89")]
    (c,) = table(db, "statement_conflicts")
    a_sha = next(
        r["file_sha256"] for r in table(db, "statement_files") if r["path"].endswith("a.csv")
    )
    assert (c["line_id"], c["line_no"], c["raw"], c["kept_file_sha256"]) == (
        "G1",
        3,
        changed.rstrip("\n"),
        a_sha,
    )


def test_a_conflict_inside_one_file_keeps_its_first_line(db: Path, write: Write) -> None:
    other = GOOD.replace("PO-1", "PO-7")
    import_statements([write("a.csv", HEADER + GOOD + GOOD + other)], db)
    assert stored(db) == [("G1", _day(), -1000, "EUR", "PO-1", "DE89")]
    (f,) = table(db, "statement_files")
    assert (f["lines_in"], f["stored"], f["duplicates"], f["conflicts"]) == (3, 1, 1, 1)


def test_lines_without_an_id_but_with_a_reference_are_kept_apart(db: Path, write: Write) -> None:
    """Two equal transfers in one file are two lines (a payout paid twice must show); the same
    one in an overlapping file is a duplicate."""
    line = ",2026-11-05,,-10.00,EUR,PO-1,DE89\n"
    import_statements([write("a.csv", HEADER + line + line)], db)
    ids = [r[0] for r in stored(db)]
    assert len(ids) == 2 and len(set(ids)) == 2
    summary = import_statements([write("b.csv", HEADER + line + GOOD)], db)
    f = summary.files[0]
    assert (f.stored, f.duplicates) == (1, 1)


def _day() -> object:
    return samples.DAY


# --- the counts add up, whatever the mix ---------------------------------------------------------

KINDS = ("good", "bad", "duplicate", "conflict", "blank")
_EXAMPLES = iter(range(10**9))


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 5)), min_size=0, max_size=30))
def test_lines_in_is_stored_plus_duplicates_plus_quarantined_plus_conflicts(
    tmp_path_factory: pytest.TempPathFactory, mix: list[tuple[str, int]]
) -> None:
    """A CSV of random good, bad, repeated and changed lines: each lands where the test knows
    it must, and the counts (printed, stored) add up. One database for every example: each
    example's line ids are its own, so its file's rows are told apart by the file's hash."""
    run_id = next(_EXAMPLES)
    rows: list[str] = []
    content: dict[str, str] = {}
    want = dict.fromkeys(("stored", "duplicates", "quarantined", "conflicts"), 0)
    for n, (kind, k) in enumerate(mix):
        if kind == "blank":
            rows.append(",,,,,,")
            continue
        if kind == "bad":
            rows.append(BAD_CSV[k][0].replace("B1", f"E{run_id}-B{n}"))
            want["quarantined"] += 1
            continue
        line_id = f"E{run_id}-L{k}"
        known = content.get(line_id)
        if kind == "good" or known is None:
            line = f"{line_id},2026-11-05,,-{n}.00,EUR,PO-{n},DE89"
            if known is None:
                content[line_id] = line
                want["stored"] += 1
            elif line == known:
                want["duplicates"] += 1
            else:
                want["conflicts"] += 1
        elif kind == "duplicate":
            line = known
            want["duplicates"] += 1
        else:
            line = known.replace(",EUR,", ",USD,")
            want["conflicts"] += 1
        rows.append(line)
    db = _shared_db(tmp_path_factory)
    path = db.parent / f"mix-{run_id}.csv"
    data = (HEADER + "".join(r + "\n" for r in rows) + f"E{run_id},,,,,,\n").encode()
    path.write_bytes(data)
    want["quarantined"] += 1  # the last line: an id, nothing else (missing_field)
    (f,) = import_statements([path], db).files
    assert {k: getattr(f, k) for k in want} == want
    blank = sum(k == "blank" for k, _ in mix)
    assert f.lines_in == sum(want.values()) == len(rows) - blank + 1
    sha = hashlib.sha256(data).hexdigest()
    tables = everything(db)
    (row,) = [r for r in tables["statement_files"] if r["file_sha256"] == sha]
    assert {k: row[k] for k in want} == want and row["lines_in"] == f.lines_in
    for name, key in (
        ("statement_lines", "stored"),
        ("statement_quarantine", "quarantined"),
        ("statement_conflicts", "conflicts"),
    ):
        assert sum(r["file_sha256"] == sha for r in tables[name]) == want[key]


_SHARED: list[Path] = []


def _shared_db(factory: pytest.TempPathFactory) -> Path:
    if not _SHARED:
        _SHARED.append(make_db(factory.mktemp("mix")))
    return _SHARED[0]


# --- readers, the command line ------------------------------------------------------------------


def test_readers_see_the_statement_tables(db: Path, write: Write) -> None:
    import_statements([write("day.xml", samples.CAMT053)], db)
    con = readers.connect(db)
    try:
        got = con.execute("SELECT sum(amount_minor), count(*) FROM statement_lines").fetchall()
    finally:
        con.close()
    assert got == [(sum(e[2] for e in samples.EXPECTED), 5)]  # type: ignore[misc]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``workbench ARGS`` in this process: its exit code (a usage error's too), stdout, stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:  # argparse refusing an option
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_import_list_and_quarantine(
    db: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = write("day.xml", samples.CAMT053)
    code, out, err = run(capsys, "statements", "import", xml, "--db", db)
    assert (code, err) == (0, "")
    assert "5 in = 5 stored + 0 duplicate + 0 quarantined + 0 conflict" in out
    bad = write("bad.csv", HEADER + GOOD + BAD_CSV[6][0] + "\n")
    code, out, err = run(capsys, "statements", "import", bad, "--db", db, "--format", "csv")
    assert code == 1
    assert "2 in = 1 stored + 0 duplicate + 1 quarantined + 0 conflict (too_many_decimals 1)" in out
    assert "1 lines quarantined, 0 conflicts" in one_line(err)
    code, out, err = run(capsys, "statements", "list", "--db", db)
    assert code == 0 and "day.xml" in out and "2026-11-05" in out and "bad.csv" in out
    code, out, err = run(capsys, "statements", "quarantine", "--db", db, "--format", "csv")
    assert code == 0 and "too_many_decimals" in out and BAD_CSV[6][0] in out
    code, out, err = run(capsys, "statements", "import", xml, "--db", db)
    assert code == 0 and "already imported" in out


def test_cli_a_german_layout_from_options(
    db: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("bank.csv", "Id;Valuta;Betrag;Whg;Zweck\nX1;05.11.2026;-1.234,50;EUR;PO-1\n")
    code, _out, err = run(
        capsys, "statements", "import", path, "--db", db,
        "--csv-columns", "line_id=Id,value_date=Valuta,amount=Betrag,currency=Whg,reference=Zweck",
        "--delimiter", ";", "--decimal", ",", "--thousands", ".", "--date-format", "%d.%m.%Y",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert stored(db) == [("X1", _day(), -123_450, "EUR", "PO-1", None)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--format", "camt053"], "not a statement of its format"),
        (["--csv-columns", "amount"], "is not FIELD=HEADER"),
        (["--csv-columns", "betrag=Betrag"], "is not a field"),
        (["--decimal", ",", "--thousands", ","], "must be one character"),
        (["--format", "ofx"], "invalid choice"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    db: Path,
    write: Write,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    says: str,
) -> None:
    path = write("day.csv", HEADER + GOOD)
    code, _, err = run(capsys, "statements", "import", path, "--db", db, *args)
    assert code == 2 and says in one_line(err)


def test_cli_a_missing_file_imports_nothing(
    db: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write("day.csv", HEADER + GOOD)
    code, out, err = run(capsys, "statements", "import", good, db.parent / "nope.csv", "--db", db)
    assert code == 2 and "nope.csv" in one_line(err) and out == ""
    assert everything(db)["statement_lines"] == []
    code, _, err = run(capsys, "statements", "import", good, "--db", db.parent / "none.duckdb")
    assert code == 2 and "no such database" in one_line(err)


def test_cli_a_busy_database_is_exit_3(
    db: Path, write: Write, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write("day.csv", HEADER + GOOD)
    from workbench.replay.snapshots import analyst_db

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(analyst_db(db))],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(readers, "WAIT", 0.2)
        code, _out, err = run(capsys, "statements", "import", path, "--db", db)
        assert code == 3 and "database busy" in one_line(err)
    finally:
        holder.kill()
        holder.wait()
