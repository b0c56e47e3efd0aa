"""The platform's shape, checked: no arrow from lgsp/ to services/, none between services.

The platform core (lgsp/) knows no service; a service (services/<name>/) imports the core and
the contracts in lgsp/api/, never another service's modules, and never opens another
service's database. The check reads the source (every import statement, wherever it stands,
and the import paths written as strings), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Another service's database, reached through its settings section.
OTHER_DATABASE = re.compile(r"\b(?:settings|s)\.(\w+)\.database_url\b|\.service\(\"(\w+)\"\)")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `tree`, relative ones resolved, and
    of string constants that name a module path (importlib.import_module("services.x"))."""
    found: list[tuple[int, str]] = []
    package = module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"services\.\w+(\.\w+)*", node.value):
                found.append((node.lineno, node.value))
    return found


def violations(root: Path) -> list[Violation]:
    services = sorted(
        p.name for p in (root / "services").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )
    out: list[Violation] = []
    for path in sorted(root.glob("lgsp/**/*.py")) + sorted(root.glob("services/**/*.py")):
        rel = path.relative_to(root)
        module = ".".join(rel.with_suffix("").parts)
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, str(rel))
        owner = rel.parts[1] if rel.parts[0] == "services" and len(rel.parts) > 2 else None
        for line, name in imported_modules(tree, module):
            parts = name.split(".")
            if parts[0] != "services" or len(parts) < 2:
                continue
            if rel.parts[0] == "lgsp":
                out.append(Violation(str(rel), line, f"the core imports {name}"))
            elif owner is not None and parts[1] != owner and parts[1] in services:
                out.append(Violation(str(rel), line, f"service {owner} imports {name}"))
        if owner is None:
            continue
        for n, text in enumerate(source.splitlines(), 1):
            for match in OTHER_DATABASE.finditer(text):
                other = match.group(1) or match.group(2)
                if other in services and other != owner:
                    out.append(Violation(str(rel), n, f"service {owner} opens {other}'s database"))
    return out


def module_graph(root: Path, package: str = "lgsp") -> dict[str, set[str]]:
    """Module -> the package's modules it imports (lazy imports count; imports only for
    type checking and the generated lgsp/api do not)."""
    modules = {}
    for path in (root / package).rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[1:2] == ("api",):
            continue
        modules[".".join(rel.with_suffix("").parts).removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_core_has_no_import_cycle() -> None:
    """e.g. lgsp.auth and lgsp.authn importing each other: the core is layered."""
    assert cycles(module_graph(REPO)) == []


def test_the_cycle_check_finds_a_lazy_cycle(tmp_path: Path) -> None:
    files = {
        "lgsp/__init__.py": "",
        "lgsp/auth.py": "def f():\n    from lgsp.authn import jwt\n",
        "lgsp/authn/__init__.py": "from lgsp.authn.jwt import X\n",
        "lgsp/authn/jwt.py": "from lgsp.auth import Principal\n",
        "lgsp/typing_only.py": "if TYPE_CHECKING:\n    import lgsp.auth\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(module_graph(tmp_path)) == [["lgsp.auth", "lgsp.authn", "lgsp.authn.jwt"]]


def test_no_arrow_from_the_core_to_services_or_between_services() -> None:
    found = violations(REPO)
    assert not found, "boundary violations:\n" + "\n".join(map(str, found))


def test_the_check_sees_every_kind_of_crossing(tmp_path: Path) -> None:
    files = {
        "lgsp/__init__.py": "",
        "lgsp/a.py": "def f():\n    from services.alpha import x\n",
        "lgsp/b.py": "import importlib\nimportlib.import_module('services.alpha.cli')\n",
        "lgsp/fine.py": "PACKAGE = 'services'\nfrom lgsp.api import x\n",
        "services/__init__.py": "",
        "services/alpha/__init__.py": "",
        "services/alpha/ok.py": "from services.alpha.domain import y\nfrom . import z\n",
        "services/alpha/bad.py": "from ..beta import model\n",
        "services/alpha/db.py": "engine = make(settings.beta.database_url)\n",
        "services/beta/__init__.py": "",
        "services/beta/deep/bad.py": "import services.alpha.ok\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = {(v.path, v.what) for v in violations(tmp_path)}
    assert found == {
        ("lgsp/a.py", "the core imports services.alpha"),
        ("lgsp/a.py", "the core imports services.alpha.x"),
        ("lgsp/b.py", "the core imports services.alpha.cli"),
        ("services/alpha/bad.py", "service alpha imports services.beta"),
        ("services/alpha/bad.py", "service alpha imports services.beta.model"),
        ("services/alpha/db.py", "service alpha opens beta's database"),
        ("services/beta/deep/bad.py", "service beta imports services.alpha.ok"),
    }
