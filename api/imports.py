"""The ``importDevices`` mutation: a CSV text in, counts and row-numbered errors out."""

from __future__ import annotations

import strawberry

from api.context import Info
from tracking.manage import imports


@strawberry.type(
    description="One row that was not imported; row 1 is the first data row, "
    "row 0 the file itself (its header, its size)."
)
class ImportRowError:
    row: int
    code: str
    message: str


@strawberry.type
class ImportPayload:
    created: int = strawberry.field(description="With dryRun: how many would be created.")
    skipped: int = strawberry.field(
        description="Rows whose device (organization, category, source) exists already."
    )
    failed: int
    errors: list[ImportRowError]

    @classmethod
    def from_report(cls, report: imports.ImportReport) -> ImportPayload:
        return cls(
            created=report.created,
            skipped=report.skipped,
            failed=report.failed,
            errors=[
                ImportRowError(row=e.row, code=e.code, message=e.message) for e in report.errors
            ],
        )


async def import_devices(info: Info, csv: str, dry_run: bool | None = False) -> ImportPayload:
    report = await imports.import_csv(
        info.context.services, viewer=info.context.viewer, text=csv, dry_run=bool(dry_run)
    )
    return ImportPayload.from_report(report)


import_devices_field = strawberry.mutation(
    resolver=import_devices,
    description="Create devices from CSV (columns organization, category, source, name, "
    "contract, description, active; header row required), each as createDevice would; rows "
    f"whose device exists already are skipped. At most {imports.MAX_ROWS} rows. dryRun checks "
    "every row without retrieving anything and creates nothing.",
)
