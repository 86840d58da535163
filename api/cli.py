"""The ``dstrack`` command: serve the API, migrate the database, manage API tokens, import and
export devices as CSV."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine

from models import DeviceCategory, SecurityLevel, User
from models.db import create_engine, migrate, reader
from tracking.core import csvfiles
from tracking.core.errors import DstrackError, ErrorCode
from tracking.core.settings import Settings
from tracking.manage import access, exports, imports, inventory
from tracking.refresh.services import Services
from tracking.wiring import build_services

if TYPE_CHECKING:
    from starlette.applications import Starlette


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    if settings.admin_token:
        access.check_admin_token(settings.admin_token)  # before anything is started
    migrate(settings.database_url)
    # What every worker's create_app does, done once first: the workers then find the rows.
    engine = create_engine(settings.database_url)
    try:
        inventory.ensure_system_data(engine)
        if settings.admin_token:
            access.ensure_admin_token(engine, settings.admin_token)
    finally:
        engine.dispose()
    uvicorn.run(
        "api.cli:worker_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return 0


def worker_app() -> Starlette:
    """The application of one ``dstrack serve`` worker; its settings come from the environment.

    What exists once the app is built (modules, schema, engine: about 150,000 objects) lives
    as long as the process: ``gc.freeze`` takes it out of the collector's reach. Otherwise
    every full collection walks all of it, a 60-90 ms pause of the event loop every few
    seconds under load (benchmarks/RESULTS.md, f.).
    """
    from api.app import create_app

    app = create_app(Settings.from_env())
    gc.collect()
    gc.freeze()
    return app


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings.database_url)
    print("database is at the latest schema")
    return 0


def _create_token(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings.database_url)
    engine = create_engine(settings.database_url)
    if args.user == access.ADMIN_USER_NAME:
        user = access.ensure_admin_user(engine)
    else:
        found = access.user_named(engine, args.user)
        if found is None:
            print(f"no user named {args.user!r}", file=sys.stderr)
            return 1
        user = found
    assert user.id is not None
    token = access.issue_token(engine, user_id=user.id)
    print(f"New API token for {user.name} (shown once; only its hash is stored):")
    print(token)
    return 0


def _revoke_tokens(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    count = access.revoke_tokens(engine, user_name=args.user)
    print(f"revoked {count} token(s) of {args.user}")
    return 0


def _alerts_run(args: argparse.Namespace, settings: Settings) -> int:
    """One expiry sweep and one delivery pass, in the foreground (cron, tests)."""
    import asyncio

    from tracking.alerts import Alerting, run_once

    engine = create_engine(settings.database_url)  # migrated by `dstrack migrate` / `serve`
    try:
        report = asyncio.run(run_once(engine, Alerting.real(settings)))
    finally:
        engine.dispose()
    for outcome in report.delivered.outcomes:
        reason = f" ({outcome.error})" if outcome.error else ""
        print(f"{outcome.state.value}: {outcome.channel}: {outcome.message}{reason}")
    print(report.summary)
    return 0


def _add_alerts_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    alerts = commands.add_parser("alerts", help="alerts and notifications")
    actions = alerts.add_subparsers(dest="alerts_command", required=True)
    actions.add_parser(
        "run",
        help="sweep expiry thresholds and deliver pending notifications once; the last line "
        "says 'raised N, sent M, failed K'",
    ).set_defaults(handler=_alerts_run)


# --- import and export ---------------------------------------------------------------------

MAX_IMPORT_FILE_BYTES = 64 * 1024 * 1024


def _viewer_named(engine: Engine, name: str) -> access.Viewer:
    """The viewer for a user name (the administrator is created on first use)."""
    if name == access.ADMIN_USER_NAME:
        user: User | None = access.ensure_admin_user(engine)
    else:
        user = access.user_named(engine, name)
    level = None
    if user is not None:
        with reader(engine) as session:
            level = session.get(SecurityLevel, user.security_level_id)
    if user is None or level is None:
        raise DstrackError(ErrorCode.NOT_FOUND, f"no user named {name!r}")
    return access.viewer_for(user, level)


def _import_text(path: str) -> str:
    """The file's text; bytes that are not UTF-8 are left for the rows holding them to report."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_IMPORT_FILE_BYTES + 1)
    except OSError as error:
        raise DstrackError(
            ErrorCode.INVALID_INPUT, f"cannot read {path}: {error.strerror}"
        ) from error
    if len(data) > MAX_IMPORT_FILE_BYTES:
        raise DstrackError(
            ErrorCode.INVALID_INPUT,
            f"{path} is larger than {MAX_IMPORT_FILE_BYTES // (1024 * 1024)} MiB: split it into "
            "several files (each keeping the header row).",
        )
    return csvfiles.decode(data)


async def _run_import(
    services: Services, viewer: access.Viewer, text: str, *, dry_run: bool
) -> imports.ImportReport:
    try:
        parsed = csvfiles.read_import_file(text)
    except csvfiles.CsvFileError as error:
        return imports.refused(error.problem)
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stdout.isatty(),  # quiet in pipes, files and cron mails
    ) as progress:
        task = progress.add_task("import", total=parsed.size)
        return await imports.import_file(
            services,
            viewer=viewer,
            parsed=parsed,
            dry_run=dry_run,
            on_row=lambda: progress.advance(task),
        )


def _import(args: argparse.Namespace, settings: Settings) -> int:
    text = _import_text(args.file)
    migrate(settings.database_url)
    engine = create_engine(settings.database_url)
    inventory.ensure_system_data(engine)
    viewer = _viewer_named(engine, args.user)
    services = build_services(settings, engine)
    report = asyncio.run(_run_import(services, viewer, text, dry_run=args.dry_run))
    for error in report.errors:
        where = f"row {error.row}" if error.row else "file"
        print(f"{where}: {error.code}: {error.message}")
    if args.dry_run:
        print("dry run: nothing was retrieved or created; the counts say what an import would do")
    print(f"created {report.created}, skipped {report.skipped}, failed {report.failed}")
    return 1 if report.errors else 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings.database_url)
    engine = create_engine(settings.database_url)
    viewer = _viewer_named(engine, args.user)
    parameters = {
        "organizationId": args.organization_id or "",
        "category": args.category or "",
        "expiringWithinDays": args.expiring_within_days or "",
    }
    export = exports.DeviceExport(engine, viewer, exports.export_filter(engine, viewer, parameters))
    if args.output is None:
        for chunk in export.chunks():
            sys.stdout.write(chunk)
        return 0
    target = Path(args.output)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as file:
            for chunk in export.chunks():
                file.write(chunk)
        partial.replace(target)  # a failed export leaves no half-written file behind
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DstrackError(
            ErrorCode.INVALID_INPUT, f"cannot write {args.output}: {error.strerror}"
        ) from error
    print(f"exported {export.rows} device(s) to {args.output}", file=sys.stderr)
    return 0


def _add_import_export(commands: Any) -> None:
    importer = commands.add_parser(
        "import", help="create devices from a CSV file (see README.md for its columns)"
    )
    importer.add_argument("file", metavar="FILE.csv")
    importer.add_argument(
        "--dry-run", action="store_true", help="check every row; retrieve and create nothing"
    )
    importer.add_argument("--user", default=access.ADMIN_USER_NAME, help="import as this user")
    importer.set_defaults(handler=_import)
    exporter = commands.add_parser("export", help="write the devices as CSV")
    exporter.add_argument("--output", metavar="FILE", help="default: standard output")
    exporter.add_argument("--user", default=access.ADMIN_USER_NAME, help="export what it sees")
    exporter.add_argument("--organization-id", metavar="ID", help="an Organization's GraphQL ID")
    exporter.add_argument("--category", choices=[c.value for c in DeviceCategory])
    exporter.add_argument("--expiring-within-days", metavar="DAYS")
    exporter.set_defaults(handler=_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dstrack",
        description="Track SSL certificates and domains. Configuration comes from DSTRACK_* "
        "environment variables (see README.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, then serve the GraphQL API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="API worker processes (default: the number of CPU cores, here %(default)s)",
    )
    serve.set_defaults(handler=_serve)
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(
        handler=_migrate
    )
    token = commands.add_parser(
        "create-token", help="print a new API token (the administrator's by default)"
    )
    token.add_argument("--user", default=access.ADMIN_USER_NAME)
    token.set_defaults(handler=_create_token)
    revoke = commands.add_parser("revoke-tokens", help="revoke every API token of a user")
    revoke.add_argument("--user", required=True)
    revoke.set_defaults(handler=_revoke_tokens)
    _add_alerts_commands(commands)
    _add_import_export(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, Settings.from_env()))
    except DstrackError as error:
        print(error.message, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
