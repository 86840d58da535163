"""CSV files of devices: an import file read into numbered rows, and the cells of an export.

Pure: text in, rows and row-numbered problems out. Row 1 is the first data row; row 0 stands
for the file itself (its header, its size).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IMPORT_COLUMNS = ("organization", "category", "source", "name", "contract", "description", "active")
REQUIRED_COLUMNS = ("organization", "category", "source")

INVALID_CSV = "INVALID_CSV"
INVALID_ENCODING = "INVALID_ENCODING"

_COLUMN_LIST = (
    "organization, category and source (required), name, contract, description and active"
)
_NOT_UTF8 = "not valid UTF-8 text: save the file as UTF-8 (in Excel: CSV UTF-8)"
# What a spreadsheet reads as the start of a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CsvProblem:
    row: int  # 1 = the first data row; 0 = the file itself
    code: str
    message: str


class CsvFileError(Exception):
    """The whole file is refused (no header, unknown columns, too large...): nothing is read."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.problem = CsvProblem(0, code, message)


@dataclass(frozen=True)
class CsvRow:
    row: int
    values: dict[str, str]  # every import column; "" when the file has no such column

    def text(self, column: str) -> str | None:
        """The cell, trimmed; None when blank."""
        value = self.values[column].strip()
        return value or None


@dataclass(frozen=True)
class ImportFile:
    rows: list[CsvRow]
    problems: list[CsvProblem]  # rows that could not be read; each one is a failed row

    @property
    def size(self) -> int:
        """Data rows with something in them, read or not."""
        return len(self.rows) + len(self.problems)


def decode(data: bytes) -> str:
    """A file's bytes as text: UTF-8 (a BOM is dropped); bytes that are not UTF-8 are kept as
    lone surrogates, so that the rows holding them are refused one by one."""
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def read_import_file(text: str) -> ImportFile:
    """The rows of an import file under its header (any order, any case); ``CsvFileError``
    when the header is missing or wrong."""
    records = _records(text.removeprefix("\ufeff"))
    first = next(records, None)
    while isinstance(first, list) and not any(field.strip() for field in first):
        first = next(records, None)  # blank lines before the header
    if first is None:
        raise CsvFileError(
            INVALID_CSV, f"The file is empty: its first row must name the columns: {_COLUMN_LIST}."
        )
    header = _header(first)
    rows: list[CsvRow] = []
    problems: list[CsvProblem] = []
    for number, fields in enumerate(records, start=1):
        if isinstance(fields, csv.Error):
            problems.append(CsvProblem(number, INVALID_CSV, _syntax_message(fields)))
        elif not any(field.strip() for field in fields):
            continue  # a blank line, or a row of empty cells as spreadsheets write them
        elif len(fields) != len(header):
            problems.append(
                CsvProblem(
                    number,
                    INVALID_CSV,
                    f"The row has {len(fields)} fields but the header has {len(header)} columns.",
                )
            )
        elif any(_has_surrogates(field) for field in fields):
            problems.append(CsvProblem(number, INVALID_ENCODING, f"The row is {_NOT_UTF8}."))
        else:
            values = dict.fromkeys(IMPORT_COLUMNS, "")
            values.update(zip(header, fields, strict=True))
            rows.append(CsvRow(number, values))
    return ImportFile(rows, problems)


def _records(text: str) -> Iterator[list[str] | csv.Error]:
    """Each CSV record (quoted fields may span lines), or the error that one could not be read
    with; the reader then carries on at the next line."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield error


def _header(first: list[str] | csv.Error) -> list[str]:
    if isinstance(first, csv.Error):
        raise CsvFileError(INVALID_CSV, f"The header row cannot be read: {_syntax_message(first)}")
    names = [name.strip().lower() for name in first]
    if any(_has_surrogates(name) for name in names):
        raise CsvFileError(INVALID_ENCODING, f"The header row is {_NOT_UTF8}.")
    if len(names) == 1 and (delimiter := _other_delimiter(names[0])):
        raise CsvFileError(
            INVALID_CSV,
            f"The header row is a single column {first[0].strip()!r}: columns must be "
            f"separated by commas, and this file seems to use {delimiter!r}.",
        )
    unknown = [name for name in names if name not in IMPORT_COLUMNS]
    if len(unknown) == len(names):
        found = ", ".join(repr(name) for name in first[:4])
        raise CsvFileError(
            INVALID_CSV,
            f"The first row must be a header naming the columns: {_COLUMN_LIST}; it reads {found}.",
        )
    if unknown:
        listed = ", ".join(repr(name) if name else "(a blank name)" for name in unknown)
        raise CsvFileError(
            INVALID_CSV, f"Unknown column(s) {listed}. The columns are {_COLUMN_LIST}."
        )
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise CsvFileError(
            INVALID_CSV, f"Column(s) {', '.join(twice)} appear more than once in the header row."
        )
    if missing := [name for name in REQUIRED_COLUMNS if name not in names]:
        raise CsvFileError(INVALID_CSV, f"Missing required column(s): {', '.join(missing)}.")
    return names


def _other_delimiter(name: str) -> str | None:
    return next((d for d in (";", "\t", "|") if d in name), None)


def _syntax_message(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return (
            'A quoted field is not closed (a closing " is missing), so the rest of the file '
            "was read as part of this row."
        )
    if "expected after" in text:
        return (
            'A quoted field goes on after its closing quote: write a " inside a quoted field as "".'
        )
    if "field larger than field limit" in text:
        return f"A field is longer than {csv.field_size_limit()} characters."
    return f"The row is not valid CSV ({text})."


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


# --- export -------------------------------------------------------------------------------------


Cell = str | int | None


def safe_text(text: str) -> str:
    """A text cell a spreadsheet will show rather than run: a leading ``=``, ``+``, ``-``,
    ``@``, tab or carriage return gets a ``'`` in front."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Iterable[Cell]]) -> str:
    """Rows as CSV text (RFC 4180: CRLF, quotes only where needed); None is an empty cell.

    Text cells must already have gone through :func:`safe_text`; numbers are written as they
    are (a negative number is not a formula).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue()
