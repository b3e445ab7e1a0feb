"""The ``switchboard`` command: ``serve``, ``token``, ``check-config``, ``reset-demo`` and
``hash-password``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from web.platform.auth import Authenticator, load_or_create_secret
from web.platform.settings import Settings, add_arguments, from_sources


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return from_sources(vars(args))
    except ValueError as err:
        sys.exit(f"switchboard: {err}")


def storage_problem(settings: Settings) -> str | None:
    """What is wrong with the data folder or the database (one line), or None."""
    from actors.store.check import check_data_folder
    from web import apps
    from web.platform.app import create_app

    problem = check_data_folder(settings.data_path)
    if problem is not None:
        return problem
    # a stand-in JWT secret: checking must not create the key file
    probe = dataclasses.replace(settings, jwt_secret=settings.jwt_secret or "check-only")
    store = create_app(probe, apps.install).runtime.store
    return store.backend.check(store.schema, store.migrations)


def cmd_serve(args: argparse.Namespace) -> None:
    from actors.store.check import check_data_folder
    from web import apps, workers
    from web.platform.app import create_app
    from web.server import run

    settings = _settings(args)  # the same validation as check-config: nothing else refuses
    problem = check_data_folder(settings.data_path)
    if problem is None and settings.workers > 1 and workers.worker_index() is None:
        problem = storage_problem(settings)
    if problem is not None:
        sys.exit(f"switchboard: {problem}")
    authenticator = Authenticator(
        load_or_create_secret(settings.data_path, settings.jwt_secret),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    token = authenticator.issue(
        "admin", name="Admin", role="admin", ttl_seconds=settings.token_ttl_seconds
    )

    def banner(port: int) -> None:
        host = settings.host if ":" not in settings.host else f"[{settings.host}]"
        print(f"Switchboard listening on http://{host}:{port}/", flush=True)
        print(f"Admin token (valid {settings.token_ttl_seconds}s):\n{token}", flush=True)
        print(f"Dashboard: http://{host}:{port}/#token={token}", flush=True)
        if settings.admin_ui:
            how = "the admin token as password" if not settings.admin_ui_username else "its user"
            print(f"Admin UI: http://{host}:{port}/admin/ (sign in with {how})", flush=True)

    index = workers.worker_index()
    if settings.workers > 1 and index is None:
        sys.exit(workers.supervise(settings, args.argv, banner))
    app = create_app(settings, apps.install)
    store = app.runtime.store
    problem = store.backend.check(store.schema, store.migrations)
    if problem is not None:
        sys.exit(f"switchboard: {problem}")
    if index is None:
        run(app, settings, on_ready=banner)
    else:  # one of several workers: the supervisor prints the banner once they are all up
        ready = lambda port: print(f"{workers.READY_MARKER} {port}", flush=True)  # noqa: E731
        run(app, settings, on_ready=ready, worker=True)


def cmd_check_config(args: argparse.Namespace) -> None:
    """Print the effective settings (secrets masked), or refuse invalid ones, an unwritable data
    folder or an unusable database with exit code 2."""
    import json

    try:
        settings = from_sources(vars(args))
    except ValueError as err:
        print(f"switchboard: {err}", file=sys.stderr)
        sys.exit(2)
    problem = storage_problem(settings)
    if problem is not None:
        print(f"switchboard: {problem}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(settings.masked(), indent=2, sort_keys=False))


def cmd_token(args: argparse.Namespace) -> None:
    settings = _settings(args)
    auth = Authenticator(
        load_or_create_secret(settings.data_path, settings.jwt_secret),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    guilds = [g for g in (args.guilds or "").split(",") if g]
    ttl = args.ttl if args.ttl is not None else settings.token_ttl_seconds
    try:
        print(auth.issue(args.sub, name=args.name, role=args.role, guilds=guilds, ttl_seconds=ttl))
    except ValueError as err:
        sys.exit(f"switchboard: {err}")


def cmd_hash_password(args: argparse.Namespace) -> None:
    """A bcrypt hash for ``admin_ui_password_hash``: the password from stdin when it is not a
    terminal (``echo -n secret | switchboard hash-password``), else asked for twice."""
    import getpass

    import bcrypt

    if sys.stdin.isatty():
        password = getpass.getpass("Admin UI password: ")
        if getpass.getpass("Again: ") != password:
            sys.exit("switchboard: the passwords differ")
    else:
        password = sys.stdin.read().rstrip("\r\n")
    secret = password.encode()
    if not secret or len(secret) > 72:
        sys.exit("switchboard: a password is 1 to 72 bytes (bcrypt reads no further)")
    print(bcrypt.hashpw(secret, bcrypt.gensalt(rounds=args.rounds)).decode())


def cmd_reset_demo(args: argparse.Namespace) -> None:
    from web.apps.demo import reset_demo_command

    sys.exit(reset_demo_command(_settings(args)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server", conflict_handler="resolve")
    add_arguments(serve)
    serve.add_argument(  # `serve --demo` alone turns it on (as `--demo true` does)
        "--demo", dest="demo", nargs="?", const="true", default=None, metavar="DEMO",
        help="Make demo traffic through the public APIs; `switchboard reset-demo` deletes it "
        "(env SWITCHBOARD_DEMO)",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)
    check = commands.add_parser(
        "check-config", help="print the effective settings (secrets masked) or what is invalid"
    )
    add_arguments(check)
    check.set_defaults(func=cmd_check_config)
    token = commands.add_parser("token", help="print a JWT signed with the server's key")
    token.add_argument("--sub", required=True, help="user id")
    token.add_argument("--name", default=None)
    token.add_argument("--role", default="user", choices=["admin", "user", "bot"])
    token.add_argument("--guilds", default="", help="comma-separated guild ids")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    add_arguments(token)
    token.set_defaults(func=cmd_token)
    reset = commands.add_parser(
        "reset-demo", help="delete the data `serve --demo` made (run it with the server stopped)"
    )
    add_arguments(reset)
    reset.set_defaults(func=cmd_reset_demo)
    hashing = commands.add_parser(
        "hash-password", help="print a bcrypt hash of a password, for admin_ui_password_hash"
    )
    hashing.add_argument("--rounds", type=int, default=12, help="bcrypt cost (4 to 31)")
    hashing.set_defaults(func=cmd_hash_password)
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.argv = arguments[1:]  # after the command: what a worker is started with
    args.func(args)


if __name__ == "__main__":
    main()
