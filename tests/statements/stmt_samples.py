"""Statement files as banks write them, by hand, for the import tests.

The camt.053 and the MT940 follow the standards' published layouts (a group header, the
account, opening and closing balances, several entries, a payout returned by the beneficiary's
bank) and describe the same day: four payouts out, one of them back. The amounts, references and
accounts are named once here, so a test compares what was stored with what the bank wrote, not
with what the importer produced.
"""

from __future__ import annotations

from datetime import date

#: (line id, value date, amount in minor units, currency, reference, counterparty) as the bank
#: means them: debits negative, the return positive.
DAY = date(2026, 11, 5)
EXPECTED = [
    ("BR-2611050001", DAY, -125_000, "EUR", "PO-7781-K2", "DE89370400440532013000"),
    ("BR-2611050002", DAY, -4_999_99, "EUR", "PO-7782-Q9", "FR1420041010050500013M02606"),
    ("BR-2611050003", DAY, -1_234_567_89, "EUR", "PO-7783-Z1", "NL91ABNA0417164300"),
    ("BR-2611050004", DAY, -50, "EUR", None, "ES9121000418450200051332"),
    ("BR-2611050005", DAY, 4_999_99, "EUR", "PO-7782-Q9", "FR1420041010050500013M02606"),
]

CAMT053 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr>
      <MsgId>STMT-20261105-0001</MsgId>
      <CreDtTm>2026-11-06T02:15:00+01:00</CreDtTm>
    </GrpHdr>
    <Stmt>
      <Id>20261105-EUR-PAYOUTS</Id>
      <ElctrncSeqNb>309</ElctrncSeqNb>
      <CreDtTm>2026-11-06T02:15:00+01:00</CreDtTm>
      <FrToDt>
        <FrDtTm>2026-11-05T00:00:00+01:00</FrDtTm>
        <ToDtTm>2026-11-05T23:59:59+01:00</ToDtTm>
      </FrToDt>
      <Acct>
        <Id><IBAN>DE02100100109307118603</IBAN></Id>
        <Ccy>EUR</Ccy>
        <Svcr><FinInstnId><BICFI>PBNKDEFFXXX</BICFI></FinInstnId></Svcr>
      </Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="EUR">2000000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2026-11-05</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="EUR">764182.11</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2026-11-05</Dt></Dt>
      </Bal>
      <TxsSummry>
        <TtlNtries><NbOfNtries>5</NbOfNtries></TtlNtries>
      </TxsSummry>
      <Ntry>
        <NtryRef>BR-2611050001</NtryRef>
        <Amt Ccy="EUR">1250.00</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><DtTm>2026-11-05T09:12:03+01:00</DtTm></BookgDt>
        <ValDt><Dt>2026-11-05</Dt></ValDt>
        <AcctSvcrRef>ASR-000981</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>ASR-000981</AcctSvcrRef><EndToEndId>PO-7781-K2</EndToEndId></Refs>
            <Amt Ccy="EUR">1250.00</Amt>
            <CdtDbtInd>DBIT</CdtDbtInd>
            <RltdPties>
              <Cdtr><Pty><Nm>Anna Schmidt</Nm></Pty></Cdtr>
              <CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct>
            </RltdPties>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <NtryRef>BR-2611050002</NtryRef>
        <Amt Ccy="EUR">4999.99</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><DtTm>2026-11-05T10:40:00Z</DtTm></BookgDt>
        <ValDt><Dt>2026-11-05</Dt></ValDt>
        <NtryDtls>
          <TxDtls>
            <Refs><EndToEndId>PO-7782-Q9</EndToEndId></Refs>
            <RltdPties>
              <CdtrAcct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></CdtrAcct>
            </RltdPties>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <NtryRef>BR-2611050003</NtryRef>
        <Amt Ccy="EUR">1234567.89</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><DtTm>2026-11-05T11:00:00.125+01:00</DtTm></BookgDt>
        <ValDt><Dt>2026-11-05</Dt></ValDt>
        <NtryDtls>
          <TxDtls>
            <Refs><EndToEndId>PO-7783-Z1</EndToEndId></Refs>
            <RltdPties>
              <CdtrAcct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></CdtrAcct>
            </RltdPties>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <NtryRef>BR-2611050004</NtryRef>
        <Amt Ccy="EUR">0.50</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2026-11-05</Dt></BookgDt>
        <ValDt><Dt>2026-11-05</Dt></ValDt>
        <NtryDtls>
          <TxDtls>
            <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
            <RltdPties>
              <CdtrAcct><Id><Othr><Id>ES9121000418450200051332</Id></Othr></Id></CdtrAcct>
            </RltdPties>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <NtryRef>BR-2611050005</NtryRef>
        <Amt Ccy="EUR">4999.99</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><DtTm>2026-11-05T16:30:00+01:00</DtTm></BookgDt>
        <ValDt><Dt>2026-11-05</Dt></ValDt>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>RRTN</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs><EndToEndId>PO-7782-Q9</EndToEndId></Refs>
            <RltdPties>
              <DbtrAcct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></DbtrAcct>
            </RltdPties>
            <RtrInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Account closed</AddtlInf></RtrInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""

#: ``booked_at`` of the camt.053 entries, in UTC (the fourth has a booking date only).
CAMT_BOOKED = [
    "2026-11-05T08:12:03.000000",
    "2026-11-05T10:40:00.000000",
    "2026-11-05T10:00:00.125000",
    None,
    "2026-11-05T15:30:00.000000",
]

MT940 = """{1:F01PBNKDEFFAXXX0000000000}{2:O9400215261106PBNKDEFFAXXX00000000002611060215N}{4:
:20:STMT261105EUR
:25:DE02100100109307118603
:28C:309/1
:60F:C261105EUR2000000,00
:61:2611051105D1250,00NTRFPO-7781-K2//BR-2611050001
:86:/CNTP/DE89370400440532013000/COBADEFFXXX/Anna Schmidt/Berlin/
/REMI/Payout PO-7781-K2
:61:2611051105D4999,99NTRFPO-7782-Q9//BR-2611050002
:86:/CNTP/FR1420041010050500013M02606/AGRIFRPPXXX/Jean Dupont//
:61:2611051105D1234567,89NTRFPO-7783-Z1//BR-2611050003
:86:/CNTP/NL91ABNA0417164300/ABNANL2AXXX/J. de Vries//
:61:2611051105D0,5NMSCNONREF//BR-2611050004
:86:/CNTP/ES9121000418450200051332/CAIXESBBXXX/Fee account//
:61:2611051105C4999,99NRTIPO-7782-Q9//BR-2611050005
:86:/RTRN/AC04/CNTP/FR1420041010050500013M02606/AGRIFRPPXXX/Jean D
upont//
/REMI/Return: account closed
:62F:C261105EUR764182,11
:64:C261105EUR764182,11
-}
"""
