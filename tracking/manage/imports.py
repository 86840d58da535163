"""Importing devices from a CSV file: every row created as ``createDevice`` creates it,
concurrently, each on its own, skipping what exists already.

A row is checked first without any network access (organization, contract, category, source
syntax, duplicates); a dry run stops there. The rows that pass are then handed to
``tracking.manage.devices.create_device`` - the very use case of the ``createDevice`` mutation:
same validation, messages, retrieval, Activity note and RAW file, written in batches in which
a failing row never takes another with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from models import Device
from tracking.core.csvfiles import CsvFileError, CsvProblem, CsvRow, ImportFile, read_import_file
from tracking.core.errors import DstrackError
from tracking.manage.access import Viewer
from tracking.manage.devices import create_devices
from tracking.manage.import_rows import Checked, RowChecker, SourceKey
from tracking.refresh.services import Services

log = logging.getLogger(__name__)

MAX_ROWS = 5_000  # per request; the command line imports a larger file in chunks of this
MAX_CHARS = 16 * 1024 * 1024  # per request: 5,000 rows with a PEM certificate each fit
TOO_LARGE = "TOO_LARGE"
SAVE_FAILED = "SAVE_FAILED"

RowDone = Callable[[], None]


@dataclass
class ImportReport:
    created: int = 0  # with ``dry_run``: would be created
    skipped: int = 0
    failed: int = 0
    errors: list[CsvProblem] = field(default_factory=list)  # by row; row 0 is the file itself

    def fail(self, problem: CsvProblem) -> None:
        self.errors.append(problem)
        if problem.row > 0:
            self.failed += 1


def refused(problem: CsvProblem) -> ImportReport:
    """The report of a file refused as a whole: nothing was read, nothing created."""
    return ImportReport(errors=[problem])


async def import_csv(
    services: Services, *, viewer: Viewer, text: str, dry_run: bool = False
) -> ImportReport:
    """One request's import (the ``importDevices`` mutation): at most ``MAX_ROWS`` rows."""
    if len(text) > MAX_CHARS:
        return refused(
            CsvProblem(
                0,
                TOO_LARGE,
                f"The file has {len(text):,} characters; at most {MAX_CHARS:,} can be imported "
                "in one request.",
            )
        )
    try:
        parsed = read_import_file(text)
    except CsvFileError as error:
        return refused(error.problem)
    if parsed.size > MAX_ROWS:
        return refused(
            CsvProblem(
                0,
                TOO_LARGE,
                f"The file has {parsed.size:,} rows; at most {MAX_ROWS:,} can be imported in one "
                "request (the dstrack import command takes larger files).",
            )
        )
    return await import_file(services, viewer=viewer, parsed=parsed, dry_run=dry_run)


async def import_file(
    services: Services,
    *,
    viewer: Viewer,
    parsed: ImportFile,
    dry_run: bool = False,
    on_row: RowDone | None = None,
    chunk_rows: int = MAX_ROWS,
) -> ImportReport:
    """Import the rows of a file read with ``read_import_file``, ``chunk_rows`` at a time;
    ``on_row`` is called once per row as it is done (created, skipped or failed)."""
    importer = _Importer(services, viewer, dry_run=dry_run, on_row=on_row or (lambda: None))
    for problem in parsed.problems:
        importer.fail(problem)
    for start in range(0, len(parsed.rows), chunk_rows):
        await importer.run(parsed.rows[start : start + chunk_rows])
    importer.report.errors.sort(key=lambda problem: problem.row)
    return importer.report


class _Importer:
    """One import: its report, and the sources already taken by earlier rows of the file."""

    def __init__(self, services: Services, viewer: Viewer, *, dry_run: bool, on_row: RowDone):
        self.services = services
        self.viewer = viewer
        self.dry_run = dry_run
        self.on_row = on_row
        self.report = ImportReport()
        self.taken: set[SourceKey] = set()

    def fail(self, problem: CsvProblem) -> None:
        self.report.fail(problem)
        self.on_row()

    async def run(self, rows: Sequence[CsvRow]) -> None:
        checked = RowChecker(self.services.engine, self.viewer).check(rows)
        to_create: list[Checked] = []
        for row in checked:
            if isinstance(row, CsvProblem):
                self.fail(row)
            elif row.exists or row.key in self.taken:
                self.report.skipped += 1
                self.on_row()
            else:
                self.taken.add(row.key)
                to_create.append(row)
        if self.dry_run:
            for _ in to_create:
                self.report.created += 1
                self.on_row()
            return
        await create_devices(
            self.services,
            viewer=self.viewer,
            news=[row.new for row in to_create],
            on_done=lambda index, outcome: self._done(to_create[index], outcome),
        )

    def _done(self, row: Checked, outcome: Device | BaseException) -> None:
        if isinstance(outcome, DstrackError):
            self.fail(CsvProblem(row.row, outcome.code.value, outcome.message))
        elif isinstance(outcome, BaseException):
            # A bug or a database outage must not stop the other rows; the row saved nothing.
            log.error("importing row %s failed unexpectedly", row.row, exc_info=outcome)
            self.fail(
                CsvProblem(
                    row.row, SAVE_FAILED, "The device could not be saved; the error was logged."
                )
            )
        else:
            self.report.created += 1
            self.on_row()
