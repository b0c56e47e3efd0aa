"""`lgsp new-service NAME`: start a new service from the template.

Copies services/_template/ to services/NAME/, its contract proto/lgsp/api/template/v1/ to
proto/lgsp/api/NAME/v1/ and its tests tests/services/template/ to tests/services/NAME/,
renaming as it goes (template → NAME, Template → Name, TEMPLATE → NAME in capitals: the
package, the proto package lgsp.api.NAME.v1, the NameService, the topic lgsp.NAME.v1, the
[NAME] settings section, the file names), gives the service a gRPC port and generates its
contract's code (tools/protogen.py). It copies files only; it imports no service.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import keyword
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

import lgsp
from lgsp.config import NATIONAL_MOCKS, Settings

TEMPLATE_NAME = "template"
TEMPLATE_DIR = Path("services") / "_template"
TEMPLATE_PROTO = Path("proto") / "lgsp" / "api" / TEMPLATE_NAME / "v1"
TEMPLATE_TESTS = Path("tests") / "services" / TEMPLATE_NAME
PROTOGEN = Path("tools") / "protogen.py"
FIRST_PORT = 50060
# Section names carry no underscore (LGSP_<SECTION>_<KEY> must split one way), and the name
# is also a Python package, a proto package segment and a topic segment.
NAME = re.compile(r"[a-z][a-z0-9]*")
# Names taken by the platform itself: its settings sections, proto areas and components.
RESERVED = frozenset(
    {f.name for f in dataclasses.fields(Settings)} - {"services", "config_file"}
    | set(NATIONAL_MOCKS)
    | {TEMPLATE_NAME, "api", "console", "events", "diagnostics", "lgsp", "national", "services"}
)
# In the template's text, the package path and then the bare word.
_WORD = re.compile(r"services([./])_template|template|Template|TEMPLATE")
_PORT = re.compile(r"(grpc_port: int = port_field\()\d+(\))")


class NewServiceError(Exception):
    """The service cannot be made; the message says why (and nothing was written)."""


def default_root() -> Path:
    """The repository this lgsp package belongs to."""
    return Path(lgsp.__file__).resolve().parent.parent


def renamer(name: str) -> Callable[[str], str]:
    """Text with the template's names replaced by the new service's."""
    words = {"template": name, "Template": name.capitalize(), "TEMPLATE": name.upper()}

    def rename(text: str) -> str:
        return _WORD.sub(
            lambda m: f"services{m.group(1)}{name}" if m.group(1) else words[m.group(0)], text
        )

    return rename


def check_name(name: str, root: Path, taken: Iterable[str] = ()) -> None:
    """NewServiceError unless `name` can be a new service in the checkout at `root`."""
    if not NAME.fullmatch(name) or keyword.iskeyword(name):
        raise NewServiceError(
            f"{name!r} is not a service name: lowercase letters and digits, starting with a "
            "letter (no '-' or '_': it names a package, a settings section and a topic)"
        )
    if name in RESERVED:
        raise NewServiceError(f"{name!r} is a name the platform uses itself; choose another")
    for path in (Path("services") / name, Path("proto") / "lgsp" / "api" / name):
        if (root / path).exists():
            raise NewServiceError(f"{path}/ exists already in {root}: {name!r} is taken")
    if (root / "tests" / "services" / name).exists():
        raise NewServiceError(f"tests/services/{name}/ exists already in {root}")
    if name in set(taken):
        raise NewServiceError(
            f"{name!r} is taken: a service or `lgsp {name}` command exists already"
        )


def ports_in_use(root: Path) -> dict[int, str]:
    """Ports of the installed services' sections and of the services under `root` (their
    settings.py defaults): port → "service.key"."""
    from lgsp.plugins import discover

    used: dict[int, str] = {}
    for name, plugin in discover().items():
        section = plugin.settings()
        for f in dataclasses.fields(section):
            if f.metadata.get("port"):
                used[int(getattr(section, f.name))] = f"{name}.{f.name}"
    for settings_py in sorted((root / "services").glob("[!_.]*/settings.py")):
        service = settings_py.parent.name
        text = settings_py.read_text(encoding="utf-8")
        for m in re.finditer(r"(\w+): int = port_field\((\d+)", text):
            used.setdefault(int(m.group(2)), f"{service}.{m.group(1)}")
    return used


def pick_port(root: Path, wanted: int | None) -> int:
    used = ports_in_use(root)
    if wanted is None:
        port = FIRST_PORT
        while port in used:
            port += 1
        return port
    if not 1 <= wanted <= 65535:
        raise NewServiceError(f"--port {wanted}: not a TCP port (1-65535)")
    if wanted in used:
        raise NewServiceError(f"--port {wanted} is {used[wanted]} already")
    return wanted


def _copy_renamed(src: Path, dst: Path, rename: Callable[[str], str]) -> list[Path]:
    """Copy the tree `src` to `dst`, renaming in file names and text files; the files made."""
    made: list[Path] = []
    with_names: list[tuple[Path, Path]] = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        with_names.append((path, dst / Path(*(rename(part) for part in rel.parts))))
    for path, target in with_names:
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.write_text(rename(path.read_text(encoding="utf-8")), encoding="utf-8")
        except UnicodeDecodeError:
            shutil.copyfile(path, target)
        made.append(target)
    return made


def create(
    name: str, root: Path, *, port: int | None = None, taken: Collection[str] = ()
) -> tuple[int, list[Path]]:
    """Make service `name` in the checkout at `root`; returns (port, files made)."""
    root = root.resolve()
    for needed in (TEMPLATE_DIR, TEMPLATE_PROTO, PROTOGEN):
        if not (root / needed).exists():
            raise NewServiceError(f"{root} is not an LGSP checkout: {needed} is missing")
    from lgsp.plugins import discover

    check_name(name, root, {*taken, *discover()})  # installed elsewhere on sys.path too
    port = pick_port(root, port)
    rename = renamer(name)
    targets = [
        (TEMPLATE_DIR, Path("services") / name),
        (TEMPLATE_PROTO, Path("proto") / "lgsp" / "api" / name / "v1"),
        (TEMPLATE_TESTS, Path("tests") / "services" / name),
    ]
    made: list[Path] = []
    try:
        for src, dst in targets:
            if (root / src).is_dir():
                made += _copy_renamed(root / src, root / dst, rename)
        settings_py = root / "services" / name / "settings.py"
        text, n = _PORT.subn(rf"\g<1>{port}\g<2>", settings_py.read_text(encoding="utf-8"))
        if n != 1:
            raise NewServiceError(f"{settings_py}: no `grpc_port: int = port_field(…)` to set")
        settings_py.write_text(text, encoding="utf-8")
    except BaseException:
        for _, dst in targets:
            shutil.rmtree(root / dst, ignore_errors=True)
        shutil.rmtree(root / "proto" / "lgsp" / "api" / name, ignore_errors=True)
        raise
    return port, made


def generate(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the checkout's tools/protogen.py (lgsp/api from proto/)."""
    return subprocess.run(
        [sys.executable, str(root / PROTOGEN)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def tidy(root: Path, name: str) -> None:
    """Re-wrap the copied Python for the new name's length with ruff, when it is installed
    (as in the repository's venv); renaming can push a line past the length limit."""
    candidate = Path(sys.executable).parent / "ruff"
    ruff = str(candidate) if candidate.exists() else shutil.which("ruff")
    paths = [
        p
        for p in (Path("services") / name, Path("tests") / "services" / name)
        if (root / p).exists()
    ]
    if ruff and paths:
        subprocess.run(
            [ruff, "format", "--quiet", *map(str, paths)], cwd=root, check=False, timeout=60
        )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "new-service",
        help="start a new service from the template (services/_template)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: lgsp new-service notices --port 50061   "
        "(then see docs/platform.md, 'Adding a service')",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="the service's name: lowercase letters and digits, e.g. notices",
    )
    p.add_argument(
        "--port",
        type=int,
        metavar="N",
        help=f"its gRPC port (default: the first from {FIRST_PORT} up no service uses)",
    )
    p.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        default=None,
        help=f"the checkout to write into (default: the one containing lgsp/, {default_root()})",
    )
    # The commands registered so far (the dict fills up as the groups register): a new
    # service's `lgsp NAME` group must not clash with one of them.
    p.set_defaults(handler=functools.partial(_run, commands=subparsers.choices))


def _run(args: argparse.Namespace, commands: Collection[str] = ()) -> int:
    name: str = args.name
    root: Path = (args.root or default_root()).resolve()
    try:
        port, made = create(name, root, port=args.port, taken=commands)
    except NewServiceError as e:
        print(f"lgsp new-service: {e}", file=sys.stderr)
        return 2
    tidy(root, name)
    result = generate(root)
    print(f"made service {name!r} (gRPC port {port}) in {root}:")
    for path in made:
        print(f"  {path.relative_to(root)}")
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        print(
            "lgsp new-service: generating the contract's code failed (above); fix the proto "
            "and run `make proto`",
            file=sys.stderr,
        )
        return 1
    print(f"  lgsp/api/{name}/v1/ (generated from the proto)")
    camel = name.capitalize()
    print(
        f"""
next steps:
  1. edit the contract, proto/lgsp/api/{name}/v1/{name}.proto and events.proto, then
     `make proto` (regenerates lgsp/api/{name}/v1/)
  2. put your rules in services/{name}/domain/, the use cases in service_layer/, the tables
     in adapters/ (with a new revision in migrations/versions/), the RPCs in
     entrypoints/grpc.py ({camel}Servicer)
  3. run it: `lgsp up` (or `lgsp up --only {name}`, `lgsp run {name}`); its settings are
     [{name}] / LGSP_{name.upper()}_* (`lgsp config show`); `lgsp {name} count`
  4. test it: `make test` runs tests/services/{name}/
  see docs/platform.md, 'Adding a service'"""
    )
    return 0
