"""The `lgsp` command.

Adding a subcommand is a local change: write a module with
``register(subparsers: argparse._SubParsersAction) -> None`` that adds its parser and calls
``parser.set_defaults(handler=fn)`` with ``fn(args: argparse.Namespace) -> int``, then append
the module's name to COMMAND_MODULES. Handlers get their Settings from
``settings_from_args(args)``; a ConfigError they raise is reported here (exit code 2).
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from collections.abc import Sequence
from typing import Any

import lgsp
from lgsp.config import ConfigError, Settings, load_settings

# Modules adding more subcommands (e.g. "lgsp.admin.cli"), in --help order after the
# built-in ones below.
COMMAND_MODULES: tuple[str, ...] = (
    "services.identity.cli",
    "services.gateway.log_cli",
    "lgsp.dlq_cli",
    "services.gateway.member_cli",
    "services.search.cli",
    "services.documents.cli",
)

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
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a deployment (or a test tree) without that service
            if not exc.name or not name.startswith(exc.name):
                raise
            continue
        module.register(sub)
    return parser


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
    return code


if __name__ == "__main__":
    sys.exit(main())
