"""The supervisor behind `lgsp up` / `lgsp run`: discover components, run them as children.

Components are discovered, not listed: a service is a package services/<name>/ with a
``__main__.py``, a national mock is national/<name>/__main__.py, the console is
console/__main__.py. Discovery goes through the import system (``find_spec``), so it finds
exactly what ``python -m services.<name>`` will run, including a package earlier on
PYTHONPATH (which is how the tests substitute fake components).

Each child runs in its own session (process group): a terminal Ctrl-C reaches only the
supervisor, which then stops the children in order and can also kill their grandchildren
by group. On Linux each child also asks the kernel for SIGTERM when the supervisor dies
(PR_SET_PDEATHSIG), so a supervisor that is SIGKILLed or crashes leaves no service running
on its ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lgsp.config import NATIONAL_MOCKS, Settings
from lgsp.plugins import discover as discover_plugins
from lgsp.plugins import package_locations

# Start order: the console first (it receives everyone's traces), then the national mocks
# the gateway connects to, then the services, then anything else found.
KIND_ORDER = {"console": 0, "national": 1, "service": 2}
# The services describe themselves in their plugins.
DESCRIPTIONS = {
    "console": "operator console",
    "population": "mock: national population DB",
    "business_registry": "mock: national business registry",
    "document_axis": "mock: national document axis",
    "public_service_portal": "mock: public service portal",
    "payment": "mock: national payment platform",
}


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # "service" | "national" | "console"
    module: str  # run as `python -m <module>`
    root: Path  # the sys.path entry the package was found under

    @property
    def description(self) -> str:
        return describe(self.name, self.kind)


def describe(name: str, kind: str = "service") -> str:
    """What a component is, in a few words (its plugin's description for a service)."""
    plugin = discover_plugins().get(name) if kind == "service" else None
    if plugin is not None:
        return plugin.description
    return DESCRIPTIONS.get(name, "national mock" if kind == "national" else kind)


def discover() -> list[Component]:
    """Every runnable component, in start order."""
    found: list[Component] = []
    for package, kind in (("national", "national"), ("services", "service")):
        for location in package_locations(package):
            for main in sorted(location.glob("*/__main__.py")):
                name = main.parent.name
                if name.startswith(("_", ".")) or any(c.name == name for c in found):
                    continue
                found.append(Component(name, kind, f"{package}.{name}", location.parent))
    for location in package_locations("console"):
        if (location / "__main__.py").is_file():
            found.append(Component("console", "console", "console", location.parent))
            break
    service_rank = {n: i for i, n in enumerate(discover_plugins())}
    national_rank = {n: i for i, n in enumerate(NATIONAL_MOCKS)}

    def order(c: Component) -> tuple[int, int, str]:
        rank = service_rank if c.kind == "service" else national_rank
        return (KIND_ORDER[c.kind], rank.get(c.name, 99), c.name)

    return sorted(found, key=order)


def select(components: Sequence[Component], only: Sequence[str] | None) -> list[Component]:
    """The components named in `only` (all when empty); ValueError names unknown ones."""
    if not only:
        return list(components)
    by_name = {c.name: c for c in components}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise ValueError(
            f"unknown component(s): {', '.join(unknown)} "
            f"(available: {', '.join(by_name) or 'none'})"
        )
    return [c for c in components if c.name in set(only)]


def component_env(
    settings: Settings, component: Component, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The full environment of a component's process: ours + settings + OTEL_* + PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    # The console must not trace itself into itself.
    env.update(settings.process_env(component.name, telemetry=component.kind != "console"))
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the prefixed log as they are written
    # gRPC's C core logs to stderr on its own (plain text, read once at import): at its
    # default it writes a line for every failed TLS handshake, so a port scan floods the log.
    # Its levels are DEBUG, INFO, ERROR; an operator's own GRPC_VERBOSITY wins.
    level = settings.platform.third_party_log_level
    env.setdefault("GRPC_VERBOSITY", level if level in ("DEBUG", "INFO") else "ERROR")
    paths = [str(component.root)]
    lgsp_root = str(Path(__file__).resolve().parent.parent)
    if lgsp_root not in paths:
        paths.append(lgsp_root)
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def component_argv(component: Component) -> list[str]:
    return [sys.executable, "-m", component.module]


def exec_component(settings: Settings, component: Component) -> None:
    """`lgsp run NAME`: replace this process with the component (signals go straight to it)."""
    Path(settings.platform.data_dir).mkdir(parents=True, exist_ok=True)
    argv = component_argv(component)
    os.execve(argv[0], argv, component_env(settings, component))


# --- supervision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Restart policy: delays initial, initial*factor, … up to maximum.

    A child that stayed up for `reset_after` seconds is considered healthy again. By default
    a crashing child is restarted for as long as the platform runs, every `maximum` seconds
    at the slowest (a database or broker that comes back later brings it back, without an
    operator); it is reported as crash-looping in `lgsp status` and the log meanwhile.
    `give_up_after` consecutive quick crashes leave it down instead (tests).
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    reset_after: float = 30.0
    give_up_after: int | None = None
    # Quick crashes in a row from which a child counts as crash-looping.
    looping_after: int = 3

    def delay(self, crashes: int) -> float:
        return float(min(self.maximum, self.initial * self.factor ** max(0, crashes - 1)))


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    # Stopped after every other child has exited: the console receives the others' last
    # traces as they shut down.
    stop_last: bool = False


COLORS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94, 31)


@dataclass
class _Child:
    spec: ProcessSpec
    prefix: str
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    rapid_crashes: int = 0
    gave_up: bool = False
    exited_cleanly: bool = False
    pump: asyncio.Task[None] | None = None
    pids: list[int] = field(default_factory=list)
    last_exit: str = ""
    next_start: float | None = None  # epoch seconds of the pending restart


_PR_SET_PDEATHSIG = 1


def _death_signal_hook() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGTERM when its parent dies (Linux), or None.

    libc's prctl is looked up here, in the parent: the hook runs between fork and exec and
    must not import or allocate much there. If the supervisor died before the hook ran
    (the child was re-parented already), the child exits at once instead.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return hook


class Supervisor:
    """Runs children, restarts crashed ones with backoff, stops all on SIGINT/SIGTERM."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        out: TextIO | None = None,
        color: bool | None = None,
        backoff: Backoff | None = None,
        grace: float = 10.0,
        on_started: Callable[[], None] | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self.backoff = backoff or Backoff()
        self.grace = grace
        self.on_started = on_started
        width = max([len(s.name) for s in specs] + [4])
        self.children = [
            _Child(s, self._paint(s.name.ljust(width), COLORS[i % len(COLORS)]))
            for i, s in enumerate(specs)
        ]
        self._own_prefix = self._paint("lgsp".ljust(width), 1)
        self._stopping = asyncio.Event()
        self._forced = False
        self._death_signal = _death_signal_hook()
        self.state_file = state_file
        self._started_at = time.time()

    def _paint(self, text: str, code: int) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def log(self, message: str) -> None:
        self._write(self._own_prefix, message)

    def _write(self, prefix: str, line: str) -> None:
        self.out.write(f"{prefix} | {line}\n")
        self.out.flush()

    def stop(self) -> None:
        """Begin a clean shutdown (a second call kills immediately)."""
        if self._stopping.is_set():
            self._forced = True
            for child in self.children:
                self._signal(child, signal.SIGKILL)
        self._stopping.set()

    async def run(self) -> int:
        """Supervise until stopped; 0 after a clean stop, 1 if every child gave up."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
        try:
            tasks = [asyncio.create_task(self._keep_running(c)) for c in self.children]
            if self.on_started is not None:
                self.on_started()
            stop_wait: asyncio.Future[Any] = asyncio.create_task(self._stopping.wait())
            all_done: asyncio.Future[Any] = asyncio.gather(*tasks)
            await asyncio.wait({stop_wait, all_done}, return_when=asyncio.FIRST_COMPLETED)
            asked_to_stop = not all_done.done()
            self._stopping.set()
            await self._shutdown(tasks)
            await asyncio.gather(*tasks, return_exceptions=True)
            for child in self.children:
                await self._drain(child)
            stop_wait.cancel()
            if asked_to_stop:
                self.log("stopped")
                return 0
            # Every child ended on its own: fine only if none of them crashed out.
            failed = [c.spec.name for c in self.children if c.gave_up]
            if failed:
                self.log(f"nothing left running; gave up on: {', '.join(failed)}")
                return 1
            self.log("every process exited cleanly")
            return 0
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _keep_running(self, child: _Child) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self._start(child)
            except OSError as exc:
                self._write(child.prefix, f"cannot start: {exc}")
                code: int | None = 127
            else:
                assert child.proc is not None
                code = await child.proc.wait()
                await self._drain(child)
            if self._stopping.is_set():
                return
            uptime = time.monotonic() - started
            if code == 0:
                self._write(child.prefix, "exited cleanly (0); not restarting")
                child.exited_cleanly = True
                return
            child.rapid_crashes = (
                1 if uptime >= self.backoff.reset_after else (child.rapid_crashes + 1)
            )
            if (
                self.backoff.give_up_after is not None
                and child.rapid_crashes >= self.backoff.give_up_after
            ):
                self._write(
                    child.prefix,
                    f"crashed {child.rapid_crashes} times in a row (last exit {_describe(code)});"
                    " giving up on it",
                )
                child.gave_up = True
                self._save_state()
                return
            delay = self.backoff.delay(child.rapid_crashes)
            looping = child.rapid_crashes >= self.backoff.looping_after
            child.last_exit = _describe(code)
            child.next_start = time.time() + delay
            self._write(
                child.prefix,
                f"exited with {_describe(code)} after {uptime:.1f}s; restarting in {delay:.1f}s"
                + (
                    f" (crash-looping: {child.rapid_crashes} quick crashes in a row)"
                    if looping
                    else ""
                ),
            )
            self._save_state()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            child.next_start = None

    async def _start(self, child: _Child) -> None:
        spec = child.spec
        child.proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(spec.env) if spec.env is not None else None,
            cwd=spec.cwd,
            start_new_session=True,
            preexec_fn=self._death_signal,
        )
        child.starts += 1
        child.pids.append(child.proc.pid)
        self._save_state()
        if self._stopping.is_set():  # the stop came while we were spawning it
            self._signal(child, signal.SIGTERM)
        assert child.proc.stdout is not None
        child.pump = asyncio.create_task(self._pump(child, child.proc.stdout))

    async def _drain(self, child: _Child) -> None:
        """Let the last lines of an exited child through before saying it exited."""
        if child.pump is not None:
            # A grandchild may still hold the pipe open; do not wait for it forever.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.pump), 2.0)

    async def _pump(self, child: _Child, stream: asyncio.StreamReader) -> None:
        """Copy the child's output line by line, prefixed (long lines are split, not lost)."""
        buffer = b""
        while chunk := await stream.read(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._write(child.prefix, line.decode("utf-8", "replace").rstrip("\r"))
            if len(buffer) > 65536:
                self._write(child.prefix, buffer.decode("utf-8", "replace"))
                buffer = b""
        if buffer:
            self._write(child.prefix, buffer.decode("utf-8", "replace"))

    def _signal(self, child: _Child, sig: signal.Signals) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        # The whole group: a component's own helpers (a broker, a worker) go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        """SIGTERM every child, give them `grace` seconds, SIGKILL the rest. Children marked
        `stop_last` are signalled once the others have exited (or the grace is up).

        Waiting on the supervising tasks (not on a snapshot of processes) also covers a child
        that was being spawned when the stop came: _start terminates it at once.
        """
        running = [c for c in self.children if c.proc and c.proc.returncode is None]
        if running:
            self.log(f"stopping {len(running)} process(es)…")
        deadline = asyncio.get_running_loop().time() + (0 if self._forced else self.grace)
        first = [c for c in running if not c.spec.stop_last]
        for child in reversed(first):
            self._signal(child, signal.SIGTERM)
        if len(first) < len(running):
            # The others get the grace period's rest once the first ones are gone.
            waits = [asyncio.ensure_future(c.proc.wait()) for c in first if c.proc]
            if waits:
                await asyncio.wait(
                    waits, timeout=max(0.0, deadline - asyncio.get_running_loop().time())
                )
                for w in waits:
                    w.cancel()
            for child in running:
                if child.spec.stop_last:
                    self._signal(child, signal.SIGTERM)
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            for child in self.children:
                if child.proc and child.proc.returncode is None:
                    self._write(child.prefix, f"still running after {self.grace:g}s; killing")
                    self._signal(child, signal.SIGKILL)
            await asyncio.wait(pending)
        # Grandchildren left in a group whose leader exited on SIGTERM.
        for child in self.children:
            self._signal_group_leftovers(child)

    def _signal_group_leftovers(self, child: _Child) -> None:
        if child.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGKILL)

    def state(self) -> dict[str, Any]:
        """What `lgsp status` and the console show: each child's state, restarts, last exit."""
        children = {}
        for c in self.children:
            running = c.proc is not None and c.proc.returncode is None
            if running:
                what = "running"
            elif c.gave_up:
                what = "gave up"
            elif c.exited_cleanly:
                what = "exited"
            elif c.next_start is not None:
                what = "restarting"
            else:
                what = "stopped"
            looping = not running and c.rapid_crashes >= self.backoff.looping_after
            children[c.spec.name] = {
                "state": "crash-looping" if looping and what == "restarting" else what,
                "pid": c.proc.pid if running and c.proc else None,
                "starts": c.starts,
                "quick_crashes_in_a_row": c.rapid_crashes,
                "last_exit": c.last_exit,
                "next_start": c.next_start,
            }
        return {"supervisor": os.getpid(), "since": self._started_at, "components": children}

    def _save_state(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.state(), indent=1))
            os.replace(tmp, self.state_file)
        except OSError as exc:  # the state is a convenience: never stop supervising for it
            self.log(f"cannot write {self.state_file}: {exc}")


STATE_FILE = "lgsp-up.json"


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The running supervisor's state, or None when no `lgsp up` runs for this data dir."""
    path = Path(settings.platform.data_dir) / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["supervisor"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


# --- `lgsp up` -----------------------------------------------------------------------------


def listen_table(settings: Settings, components: Sequence[Component]) -> str:
    """Name, what it is, where it listens: printed once everything has been started."""
    rows: list[tuple[str, str, str]] = []
    from lgsp.tls import scheme

    for c in components:
        eps = settings.endpoints(c.name)
        where = ", ".join(f"{scheme(settings, e.protocol)}://{e.address}" for e in eps) or "-"
        rows.append((c.name, c.description, where))
    headers = ("NAME", "WHAT", "LISTENS ON")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(3)]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def up(
    settings: Settings,
    only: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    backoff: Backoff | None = None,
    grace: float = 10.0,
) -> int:
    """Start every discovered component (or `only` these), supervise until Ctrl-C/SIGTERM."""
    out = out or sys.stdout
    components = select(discover(), only)
    if not components:
        out.write("lgsp: nothing to run (no services/, national/ or console/ packages found)\n")
        return 1
    data_dir = Path(settings.platform.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for c in components:
        env = component_env(settings, c)
        if settings.platform.log_format == "auto" and out.isatty():
            # Children write to our pipe, but a person reads it: ask for text logs.
            env["LGSP_LOG_FORMAT"] = "text"
        specs.append(ProcessSpec(c.name, component_argv(c), env, stop_last=c.kind == "console"))
    supervisor = Supervisor(
        specs, out=out, backoff=backoff, grace=grace, state_file=data_dir / STATE_FILE
    )

    def started() -> None:
        supervisor.log(f"data directory: {data_dir}")
        if settings.config_file:
            supervisor.log(f"configuration: {settings.config_file}")
        for line in listen_table(settings, components).splitlines():
            supervisor.log(line)
        if any(c.kind == "console" for c in components):
            supervisor.log(f"operator console: {settings.console_url}")
        supervisor.log("press Ctrl-C to stop")

    supervisor.on_started = started
    try:
        return asyncio.run(supervisor.run())
    finally:
        with contextlib.suppress(OSError):
            (data_dir / STATE_FILE).unlink()


def status_lines(state: dict[str, Any]) -> list[str]:
    """`lgsp status`: one line per component."""
    rows = [("NAME", "STATE", "PID", "STARTS", "LAST EXIT")]
    for name, c in state["components"].items():
        what = c["state"]
        if c["next_start"]:
            what += f" (next start in {max(0.0, c['next_start'] - time.time()):.0f}s)"
        rows.append((name, what, str(c["pid"] or "-"), str(c["starts"]), c["last_exit"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
