"""Reading import files (header, quoting, line ends, encodings) and writing export cells."""

from __future__ import annotations

import csv
import io

import pytest

from tests.fakes import pki
from tracking.core.csvfiles import (
    CsvFileError,
    csv_lines,
    decode,
    read_import_file,
    safe_text,
)

PEM = pki.test_ca().leaf("pem.example").pem


def rows(text: str) -> list[tuple[int, dict[str, str]]]:
    parsed = read_import_file(text)
    assert parsed.problems == []
    return [(row.row, row.values) for row in parsed.rows]


def problems(text: str) -> list[tuple[int, str, str]]:
    return [(p.row, p.code, p.message) for p in read_import_file(text).problems]


def refusal(text: str) -> tuple[int, str, str]:
    with pytest.raises(CsvFileError) as refused:
        read_import_file(text)
    problem = refused.value.problem
    return problem.row, problem.code, problem.message


def values(**given: str) -> dict[str, str]:
    base = dict.fromkeys(
        ("organization", "category", "source", "name", "contract", "description", "active"), ""
    )
    return base | given


def test_columns_in_any_order_and_case_the_optional_ones_may_be_left_out() -> None:
    text = " Source ,ORGANIZATION,Category,Active\nexample.com,Acme,DOMAIN,no\n"
    assert rows(text) == [
        (1, values(source="example.com", organization="Acme", category="DOMAIN", active="no"))
    ]


def test_a_bom_and_crlf_line_ends_as_excel_writes_them() -> None:
    data = "\ufefforganization,category,source\r\nAcme,DOMAIN,example.com\r\nB,DOMAIN,b.com\r\n"
    text = decode(data.encode("utf-8"))
    assert rows(text) == [
        (1, values(organization="Acme", category="DOMAIN", source="example.com")),
        (2, values(organization="B", category="DOMAIN", source="b.com")),
    ]
    assert rows(data) == rows(text)  # the BOM left in the text (GraphQL) is dropped as well


def test_quoted_multi_line_pems_with_any_line_ends() -> None:
    for pem in (PEM, PEM.replace("\n", "\r\n")):
        text = (
            f'organization,category,source,name\r\nAcme,SSL_CERTIFICATE,"{pem}",Mine\r\nB,D,x,y\r\n'
        )
        parsed = rows(text)
        assert parsed[0] == (
            1,
            values(organization="Acme", category="SSL_CERTIFICATE", source=pem, name="Mine"),
        )
        assert parsed[1][0] == 2  # a row is a record, not a line


def test_blank_lines_and_rows_of_empty_cells_are_left_out_but_keep_their_number() -> None:
    text = "\n\norganization,category,source\n\nAcme,DOMAIN,a.com\n,,\nAcme,DOMAIN,b.com\n"
    assert [number for number, _ in rows(text)] == [2, 4]


def test_rows_with_too_many_or_too_few_fields_are_errors_of_their_own() -> None:
    text = "organization,category,source\nA,DOMAIN,a.com,extra\nB,DOMAIN\nC,DOMAIN,c.com\n"
    assert problems(text) == [
        (1, "INVALID_CSV", "The row has 4 fields but the header has 3 columns."),
        (2, "INVALID_CSV", "The row has 2 fields but the header has 3 columns."),
    ]
    assert [number for number, _ in rows_of(text)] == [3]


def rows_of(text: str) -> list[tuple[int, dict[str, str]]]:
    return [(row.row, row.values) for row in read_import_file(text).rows]


def test_broken_quoting_is_an_error_of_its_row_and_reading_goes_on() -> None:
    text = 'organization,category,source\nA,DOMAIN,"a.com"x\nB,DOMAIN,b.com\n'
    assert problems(text) == [
        (
            1,
            "INVALID_CSV",
            'A quoted field goes on after its closing quote: write a " inside a quoted field '
            'as "".',
        )
    ]
    assert [number for number, _ in rows_of(text)] == [2]


def test_an_unclosed_quote_says_the_rest_of_the_file_was_swallowed() -> None:
    text = 'organization,category,source\nA,DOMAIN,a.com\nB,SSL_CERTIFICATE,"-----BEGIN\nC,D,c\n'
    [(row, code, message)] = problems(text)
    assert (row, code) == (2, "INVALID_CSV")
    assert "A quoted field is not closed" in message
    assert [number for number, _ in rows_of(text)] == [1]


def test_invalid_utf8_is_reported_on_the_rows_holding_it() -> None:
    data = b"organization,category,source\nA,DOMAIN,a.com\nB\xe9,DOMAIN,b.com\nC,DOMAIN,c.com\n"
    text = decode(data)
    assert problems(text) == [
        (
            2,
            "INVALID_ENCODING",
            "The row is not valid UTF-8 text: save the file as UTF-8 (in Excel: CSV UTF-8).",
        )
    ]
    assert [number for number, _ in rows_of(text)] == [1, 3]
    latin1 = decode("organization,catégorie,source\n".encode("latin-1"))
    assert refusal(latin1)[1] == "INVALID_ENCODING"


def test_an_empty_file_is_refused() -> None:
    for text in ("", "\ufeff", "\r\n\r\n", " \n"):
        row, code, message = refusal(text)
        assert (row, code) == (0, "INVALID_CSV")
        assert message.startswith("The file is empty: its first row must name the columns")


def test_a_file_without_a_header_is_refused() -> None:
    row, code, message = refusal("Acme,DOMAIN,example.com\nB,DOMAIN,b.com\n")
    assert (row, code) == (0, "INVALID_CSV")
    assert message == (
        "The first row must be a header naming the columns: organization, category and source "
        "(required), name, contract, description and active; it reads 'Acme', 'DOMAIN', "
        "'example.com'."
    )


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_another_delimiter_is_named(delimiter: str) -> None:
    text = delimiter.join(["organization", "category", "source"]) + "\nA;DOMAIN;a.com\n"
    row, code, message = refusal(text)
    assert (row, code) == (0, "INVALID_CSV")
    assert f"columns must be separated by commas, and this file seems to use {delimiter!r}" in (
        message
    )


def test_unknown_duplicate_and_missing_columns_are_refused() -> None:
    assert refusal("organization,category,source,owner,\n")[2] == (
        "Unknown column(s) 'owner', (a blank name). The columns are organization, category and "
        "source (required), name, contract, description and active."
    )
    assert refusal("organization,category,source,Name,name\n")[2] == (
        "Column(s) name appear more than once in the header row."
    )
    assert refusal("name,category\n")[2] == "Missing required column(s): organization, source."


def test_a_header_with_only_some_known_columns_lists_the_unknown_ones() -> None:
    assert "Unknown column(s) 'organisation'" in refusal("organisation,category,source\n")[2]


# --- export cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-----BEGIN CERTIFICATE-----", "'-----BEGIN CERTIFICATE-----"),
        ("good.test", "good.test"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_text_a_spreadsheet_would_run_is_neutralised(text: str, shown: str) -> None:
    assert safe_text(text) == shown


def test_csv_lines_quote_what_needs_it_and_keep_numbers_as_numbers() -> None:
    text = csv_lines([["a,b", 'say "hi"', "two\nlines", None, -3, 0]])
    assert text == '"a,b","say ""hi""","two\nlines",,-3,0\r\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["a,b", 'say "hi"', "two\nlines", "", "-3", "0"]
    ]
