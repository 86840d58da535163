"""The ``dstrack`` command: serve the API, migrate the database, manage API tokens."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from models.db import create_engine, migrate
from tracking.core.errors import DstrackError
from tracking.core.settings import Settings
from tracking.manage import access, inventory

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
