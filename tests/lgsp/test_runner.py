"""The supervisor: prefixed output, restart with backoff, clean stop; `lgsp up` end to end."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lgsp.runner import Backoff, ProcessSpec, Supervisor
from tests.fixtures import free_port

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


def alive(pid: int) -> bool:
    """True for a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_backoff_grows_exponentially_to_a_cap() -> None:
    b = Backoff(initial=0.5, factor=2, maximum=3)
    assert [b.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_crashing_child_is_restarted_with_backoff_then_given_up() -> None:
    out = io.StringIO()
    sup = Supervisor(
        [ProcessSpec("crasher", py("import sys; print('hello', flush=True); sys.exit(3)"))],
        out=out,
        color=False,
        backoff=Backoff(initial=0.1, factor=2, reset_after=30, give_up_after=3),
    )
    started = time.monotonic()
    code = await asyncio.wait_for(sup.run(), 30)
    elapsed = time.monotonic() - started
    text = out.getvalue()
    assert code == 1  # nothing left running, and it was a failure
    assert sup.children[0].starts == 3
    assert text.count("crasher | hello") == 3
    assert "exited with code 3 after" in text
    assert "restarting in 0.1s" in text and "restarting in 0.2s" in text
    assert "crashed 3 times in a row (last exit code 3); giving up on it" in text
    assert elapsed >= 0.3  # the backoff delays were actually waited


async def test_crash_counter_resets_after_a_healthy_run() -> None:
    out = io.StringIO()
    sup = Supervisor(
        [ProcessSpec("flaky", py("import sys; sys.exit(1)"))],
        out=out,
        color=False,
        # Every run counts as "stayed up long enough", so it never gives up.
        backoff=Backoff(initial=0.01, reset_after=0.0, give_up_after=2),
    )
    task = asyncio.create_task(sup.run())
    await wait_for(lambda: sup.children[0].starts >= 4)
    sup.stop()
    assert await asyncio.wait_for(task, 10) == 0
    assert "giving up" not in out.getvalue()


async def test_output_is_prefixed_padded_and_colored_only_when_asked() -> None:
    script = py("""
        import sys
        print('first line')
        print('no newline at end', end='')
        sys.stdout.flush()
    """)
    out = io.StringIO()
    sup = Supervisor(
        [ProcessSpec("a", script), ProcessSpec("longer-name", script)],
        out=out,
        color=False,
        backoff=Backoff(give_up_after=1),
    )
    await asyncio.wait_for(sup.run(), 20)
    lines = out.getvalue().splitlines()
    assert "a           | first line" in lines
    assert "longer-name | first line" in lines
    assert "a           | no newline at end" in lines
    assert "\x1b[" not in out.getvalue()

    colored = io.StringIO()
    sup = Supervisor(
        [ProcessSpec("a", script)], out=colored, color=True, backoff=Backoff(give_up_after=1)
    )
    await asyncio.wait_for(sup.run(), 20)
    assert re.search(r"\x1b\[\d+ma   \x1b\[0m \| first line", colored.getvalue())


async def test_stop_terminates_children_and_kills_those_ignoring_sigterm() -> None:
    polite = py("""
        import time
        print('ready', flush=True)
        time.sleep(60)
    """)
    stubborn = py("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('ready', flush=True)
        time.sleep(60)
    """)
    out = io.StringIO()
    sup = Supervisor(
        [ProcessSpec("polite", polite), ProcessSpec("stubborn", stubborn)],
        out=out,
        color=False,
        grace=0.5,
    )
    task = asyncio.create_task(sup.run())
    await wait_for(lambda: out.getvalue().count("| ready") == 2)
    pids = [c.proc.pid for c in sup.children if c.proc]
    sup.stop()
    assert await asyncio.wait_for(task, 10) == 0
    assert not any(alive(p) for p in pids)
    assert "stubborn | still running after 0.5s; killing" in out.getvalue()
    assert "polite   | still running" not in out.getvalue()
    assert sup.children[0].starts == 1  # a stop is not a crash: no restart


async def test_stop_last_children_are_stopped_after_the_others_have_exited() -> None:
    slow = py("""
        import signal, sys, time
        def bye(*_):
            time.sleep(0.5)  # flushing its last traces to the watcher
            print('service flushed', flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print('ready', flush=True)
        time.sleep(60)
    """)
    watcher = py("""
        import signal, sys, time
        def bye(*_):
            print('watcher stopping', flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print('ready', flush=True)
        time.sleep(60)
    """)
    out = io.StringIO()
    sup = Supervisor(
        [ProcessSpec("watcher", watcher, stop_last=True), ProcessSpec("svc", slow)],
        out=out,
        color=False,
        grace=5,
    )
    task = asyncio.create_task(sup.run())
    await wait_for(lambda: out.getvalue().count("| ready") == 2)
    sup.stop()
    assert await asyncio.wait_for(task, 10) == 0
    text = out.getvalue()
    assert text.index("svc     | service flushed") < text.index("watcher | watcher stopping")
    assert "still running" not in text


# --- `lgsp up` as a real process, over fake components on PYTHONPATH ----------------------

FAKE_MAIN = """
import json, os, signal, subprocess, sys, time
name = os.environ["OTEL_SERVICE_NAME"]
info = {{
    "name": name, "pid": os.getpid(),
    "otlp": os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    "sdk_disabled": os.environ.get("OTEL_SDK_DISABLED"),
    "data_dir": os.environ.get("LGSP_PLATFORM_DATA_DIR"),
}}
{extra}
print("READY " + json.dumps(info), flush=True)
time.sleep(300)
"""

SPAWN_GRANDCHILD = """
helper = subprocess.Popen(["sleep", "300"])
info["helper"] = helper.pid
"""

# The fake documents declares a plugin, so its settings section and endpoint are known.
FAKE_PLUGIN = """
from dataclasses import dataclass
from lgsp.config import ServiceSettings, port_field
from lgsp.plugins import Plugin, Wiring

@dataclass(frozen=True)
class FakeSettings(ServiceSettings):
    grpc_port: int = port_field(50052)

PLUGIN = Plugin("documents", "documents", FakeSettings, wire=lambda runtime: Wiring())
"""

CRASHY_MAIN = """
import sys
print("crashy starting", flush=True)
sys.exit(7)
"""


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    def pkg(path: str, main: str | None = None) -> None:
        d = tmp_path / path
        d.mkdir(parents=True, exist_ok=True)
        (d / "__init__.py").write_text("")
        if main is not None:
            (d / "__main__.py").write_text(main)

    pkg("services")
    pkg("services/documents", FAKE_MAIN.format(extra=SPAWN_GRANDCHILD))
    (tmp_path / "services/documents/plugin.py").write_text(FAKE_PLUGIN)
    pkg("services/crashy", CRASHY_MAIN)
    pkg("services/not_runnable")  # no __main__: not a component
    pkg("national")
    pkg("national/population", FAKE_MAIN.format(extra=""))
    pkg("console", FAKE_MAIN.format(extra=""))
    return tmp_path


class Lines:
    """Collects a process's stdout lines on a thread, so the test can wait for some."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(list(self.lines)):
            if time.monotonic() > deadline:
                raise AssertionError("timed out; output so far:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def lgsp_up(fake_tree: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], Lines]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Lines]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "OTEL_"))}
        base["PYTHONPATH"] = os.pathsep.join([str(fake_tree), str(REPO)])
        base["LGSP_PLATFORM_DATA_DIR"] = str(fake_tree / "state" / "data")
        base["LGSP_CONSOLE_PORT"] = str(free_port())
        base.update(env or {})
        proc = subprocess.Popen(
            [PY, "-m", "lgsp.cli", "up", "--grace", "3", *args],
            cwd=fake_tree,
            env=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        return proc, Lines(proc)

    yield start
    for proc in procs:  # never leave a supervisor behind, even when a test failed
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def ready_info(lines: Lines) -> dict[str, dict[str, Any]]:
    found = {}
    for line in lines.lines:
        if "| READY " in line:
            info = json.loads(line.split("| READY ", 1)[1])
            found[info["name"]] = info
    return found


def test_lgsp_up_runs_discovered_components_and_sigterm_stops_all(
    fake_tree: Path, lgsp_up: Callable[..., tuple[subprocess.Popen[str], Lines]]
) -> None:
    proc, out = lgsp_up()
    out.wait(lambda _: len(ready_info(out)) == 3 and "press Ctrl-C to stop" in out.text)
    out.wait(lambda ls: sum("crashy starting" in line for line in ls) >= 2)  # restarted
    info = ready_info(out)
    assert set(info) == {"documents", "population", "console"}
    data_dir = fake_tree / "state" / "data"
    assert data_dir.is_dir()  # created by `lgsp up`
    port = re.search(r"operator console: http://127\.0\.0\.1:(\d+)/", out.text)
    assert port is not None
    assert info["documents"]["otlp"] == f"http://127.0.0.1:{port.group(1)}"
    assert info["documents"]["sdk_disabled"] == "false"
    assert info["console"]["sdk_disabled"] == "true"  # the console never traces itself
    assert info["documents"]["data_dir"] == str(data_dir)
    # The table: name, what, where it listens.
    assert re.search(r"documents\s+documents\s+grpc://127\.0\.0\.1:50052", out.text)
    assert re.search(
        r"population\s+mock: national population DB\s+http://127\.0\.0\.1:8201", out.text
    )
    # Prefixed, padded names (longest here is "population").
    assert any(line.startswith("documents  | READY") for line in out.lines)
    assert "not_runnable" not in out.text

    pids = [int(i["pid"]) for i in info.values()] + [int(info["documents"]["helper"])]
    assert all(alive(p) for p in pids)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []  # no orphans, grandchild included
    assert "stopped" in out.text


def test_a_crashing_component_is_restarted_for_good_and_lgsp_status_shows_it(
    fake_tree: Path, lgsp_up: Callable[..., tuple[subprocess.Popen[str], Lines]]
) -> None:
    def status() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "OTEL_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(fake_tree), str(REPO)])
        env["LGSP_PLATFORM_DATA_DIR"] = str(fake_tree / "state" / "data")
        cmd = [PY, "-m", "lgsp.cli", "status"]
        return subprocess.run(cmd, env=env, cwd=fake_tree, capture_output=True, text=True)

    assert status().returncode == 3  # nothing runs yet
    proc, out = lgsp_up("--only", "crashy", "documents")
    # The backoff grows 0.5, 1, 2, 4 s…: the old supervisor gave up after the 6th crash.
    out.wait(lambda ls: sum("crashy starting" in line for line in ls) >= 7, timeout=60)
    assert "giving up" not in out.text
    assert "crash-looping: 3 quick crashes in a row" in out.text
    shown = status()
    assert shown.returncode == 1, shown.stdout + shown.stderr
    rows = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert "crash-looping" in rows["crashy"] and "code 7" in rows["crashy"]
    assert re.search(r"running\s+\d+\s+1\s", rows["documents"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert status().returncode == 3  # the state went with the supervisor


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_stop_when_the_supervisor_is_killed(
    lgsp_up: Callable[..., tuple[subprocess.Popen[str], Lines]],
) -> None:
    proc, out = lgsp_up()
    out.wait(lambda _: len(ready_info(out)) == 3)
    info = ready_info(out)
    children = [int(i["pid"]) for i in info.values()]
    helper = int(info["documents"]["helper"])
    try:
        assert all(alive(p) for p in children)
        proc.kill()  # no chance to stop anyone: the kernel's parent-death signal must
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in children if alive(p)] == []
    finally:
        # A component's own helper is the component's to stop; this fake one never does.
        for pid in [*children, helper]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_lgsp_up_only_and_unknown_name(
    lgsp_up: Callable[..., tuple[subprocess.Popen[str], Lines]],
) -> None:
    proc, out = lgsp_up("--only", "population")
    out.wait(lambda _: "population" in ready_info(out))
    assert set(ready_info(out)) == {"population"}
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(15) == 0

    proc, out = lgsp_up("--only", "nosuch")
    assert proc.wait(15) == 2
    out.wait(lambda _: "unknown component(s): nosuch" in out.text)
    assert "available: console, population, documents, crashy" in out.text


def test_lgsp_up_refuses_bad_configuration(
    lgsp_up: Callable[..., tuple[subprocess.Popen[str], Lines]],
) -> None:
    proc, out = lgsp_up(env={"LGSP_CONSOLE_PORT": "abc"})
    assert proc.wait(15) == 2
    out.wait(lambda _: "env LGSP_CONSOLE_PORT: expected a TCP port" in out.text)
    assert ready_info(out) == {}


def test_lgsp_run_execs_one_component(fake_tree: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(fake_tree), str(REPO)])
    env["LGSP_PLATFORM_DATA_DIR"] = str(fake_tree / "d")
    proc = subprocess.Popen(
        [PY, "-m", "lgsp.cli", "run", "population"],
        cwd=fake_tree,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line.split("READY ", 1)[1])
        assert info["name"] == "population"
        assert info["pid"] == proc.pid  # exec: the component replaced the lgsp process
    finally:
        proc.terminate()
        proc.wait(10)
