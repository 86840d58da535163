"""The ``dstrack`` command: serve the API, migrate the database, manage API tokens."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from models.db import create_engine, migrate
from tracking.core.errors import DstrackError
from tracking.core.settings import Settings
from tracking.manage import access


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    migrate(settings.database_url)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


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
