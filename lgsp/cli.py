"""The `lgsp` command.

A command group is a function ``register(subparsers: argparse._SubParsersAction) -> None``
that adds its parser and calls ``parser.set_defaults(handler=fn)`` with
``fn(args: argparse.Namespace) -> int``. The platform's own groups are the modules in
COMMAND_MODULES; a service adds its groups through its plugin's `cli` (lgsp.plugins), so
installing a service adds its commands. Handlers get their Settings from
``settings_from_args(args)``; a ConfigError they raise is reported here (exit code 2).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

import lgsp
from lgsp.config import ConfigError, Settings, load_settings
from lgsp.plugins import discover

# The platform's own command modules, in --help order after the built-in ones below; the
# services' groups follow, in their plugins' order.
COMMAND_MODULES: tuple[str, ...] = ("lgsp.dlq_cli", "lgsp.backup_cli", "lgsp.new_service")

EXIT_CONFIG = 2

Subparsers = Any  # argparse's _SubParsersAction is private; keep signatures readable


def config_option() -> argparse.ArgumentParser:
    """A parent parser adding --config, so it works before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="TOML configuration file (default: $LGSP_CONFIG, else ./lgsp.toml if present)",
    )
    return parent


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings for a subcommand: defaults < --config file < LGSP_* environment."""
    return load_settings(getattr(args, "config", None))


# --- built-in subcommands ------------------------------------------------------------------


def _cmd_up(args: argparse.Namespace) -> int:
    from lgsp import runner

    settings = settings_from_args(args)
    try:
        return runner.up(settings, args.only, grace=args.grace)
    except ValueError as exc:  # unknown --only name
        print(f"lgsp up: {exc}", file=sys.stderr)
        return 2


def _cmd_run(args: argparse.Namespace) -> int:
    from lgsp import runner

    settings = settings_from_args(args)
    try:
        (component,) = runner.select(runner.discover(), [args.name])
    except ValueError as exc:
        print(f"lgsp run: {exc}", file=sys.stderr)
        return 2
    runner.exec_component(settings, component)
    return 0  # not reached: exec replaced this process


def _cmd_status(args: argparse.Namespace) -> int:
    from lgsp import runner

    state = runner.read_state(settings_from_args(args))
    if state is None:
        print("lgsp status: no `lgsp up` is running for this data directory", file=sys.stderr)
        return 3
    for line in runner.status_lines(state):
        print(line)
    healthy = all(c["state"] in ("running", "exited") for c in state["components"].values())
    return 0 if healthy else 1


def _cmd_config_show(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    source = settings.config_file or "defaults"
    print(f"# effective LGSP settings (file: {source}; LGSP_* environment applied)")
    print(settings.dump(mask_secrets=not args.show_secrets), end="")
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    print(f"configuration OK (file: {settings.config_file or 'none, defaults + environment'})")
    return 0


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"lgsp {lgsp.__version__} (Python {platform.python_version()})")
    return 0


def _register_builtin(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "up",
        parents=[common],
        help="start every component as a supervised process",
        description=(
            "Start every service (services/<name>/), national mock (national/<name>/) and the "
            "operator console as separate processes. Crashed processes restart with backoff; "
            "Ctrl-C or SIGTERM stops them all."
        ),
    )
    p.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="start only these components (e.g. --only console documents)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for processes to stop before killing them (default: 10)",
    )
    p.set_defaults(handler=_cmd_up)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="run one component in the foreground",
        description="Run one component (a service, a national mock or 'console') in the "
        "foreground, with the same environment `lgsp up` would give it.",
    )
    p.add_argument("name", metavar="NAME", help="component name, e.g. documents or console")
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser(
        "status",
        parents=[common],
        help="the state of each component of the running `lgsp up`",
        description="Each component of the `lgsp up` running on this data directory: running, "
        "restarting or crash-looping (a crashing component is restarted with backoff for as "
        "long as the platform runs), its restarts and last exit. Exit code 0 when all run, 1 "
        "when one does not, 3 when no `lgsp up` runs.",
    )
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser("config", help="show or check the configuration")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_sub.add_parser(
        "show", parents=[common], help="print the effective settings as TOML (secrets masked)"
    )
    show.add_argument("--show-secrets", action="store_true", help="do not mask secrets")
    show.set_defaults(handler=_cmd_config_show)
    check = config_sub.add_parser(
        "check", parents=[common], help="validate the configuration (exit code 2 if invalid)"
    )
    check.set_defaults(handler=_cmd_config_check)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(handler=_cmd_version)


def build_parser() -> argparse.ArgumentParser:
    common = config_option()
    parser = argparse.ArgumentParser(
        prog="lgsp",
        parents=[common],
        description="LGSP, the provincial integration platform: run and operate it.",
        epilog="Settings come from defaults, one TOML file and LGSP_<SECTION>_<KEY> "
        "environment variables (highest wins); see infra/lgsp.example.toml.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register_builtin(sub, common)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for plugin in discover().values():
        plugin.register_cli(sub)
    return parser


TRACEBACK_ENV = "LGSP_TRACEBACK"  # set to 1 for the whole traceback of a failed command
EXIT_FAILED = 1


def failure_line(exc: BaseException) -> str:
    """What went wrong, in one line a person can act on (a server that is down, a refusal)."""
    import grpc
    import httpx
    import sqlalchemy.exc

    from lgsp.bus import BusError
    from lgsp.grpc.errors import ServiceError

    if isinstance(exc, BusError):
        return f"event bus: {_first_line(exc)}"
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {_first_line(exc.details() or '')}"
    if isinstance(exc, ServiceError):
        return f"{exc.code.name}: {exc.message}"
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return f"database: {_first_line(exc.orig or exc)}"
    if isinstance(exc, httpx.RequestError):
        return f"cannot reach {exc.request.url}: {_first_line(exc) or type(exc).__name__}"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{exc.request.url} answered {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError | EOFError | RuntimeError | ValueError):
        return _first_line(exc) or type(exc).__name__
    return (
        f"unexpected {type(exc).__name__}: {_first_line(exc)} (set {TRACEBACK_ENV}=1 for details)"
    )


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args))
    except ConfigError as exc:
        print("lgsp: configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A command facing a server that is down, or refused: one line, not a traceback.
        if os.environ.get(TRACEBACK_ENV) == "1":
            raise
        print(f"lgsp {args.command}: {failure_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
