"""Idle cost of the whole platform: log lines a minute and CPU of every process while idle.

Starts the platform as `make run` does (`lgsp up` with the demo seeds) on a temp data
directory, waits for it to settle (every component up, then `--settle` seconds more), then
counts, over `--minutes` minutes, the lines `lgsp up` prints (every process's log, prefixed)
and the CPU seconds of the supervisor and all its descendants (/proc). Beside it, the
reference measured the same way in the same run: an idle `python -c "time.sleep(N)"` child.

Goals (issue 16): fewer than 10 log lines a minute, under 2% of one core in all.

    python -m bench.idle [--quick] [--minutes N] [--settle SECONDS]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

GOAL_LINES_PER_MIN = 10
GOAL_CPU_SHARE = 0.02
_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of `root` and every live descendant, per pid."""
    kids = _children()
    out: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
        todo.extend(kids.get(pid, []))
    return out


def _cmd(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(a.decode(errors="replace") for a in raw.split(b"\0")[1:4] if a)


class Lines:
    """Reads a process's output on a thread: every line kept with its time of arrival."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[tuple[float, str]] = []
        assert proc.stdout is not None
        self._out = proc.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self._out:
            self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip()))

    def between(self, start: float, end: float) -> list[str]:
        return [line for t, line in self.lines if start <= t < end]


def measure(pid: int, seconds: float) -> tuple[float, dict[int, float], dict[int, str]]:
    """CPU seconds of the tree under `pid` over `seconds`: total, per pid, and pid names."""
    before = tree_cpu(pid)
    time.sleep(seconds)
    after = tree_cpu(pid)
    used = {p: after[p] - before.get(p, 0.0) for p in after}
    return sum(used.values()), used, {p: _cmd(p) for p in after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one minute")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after all are up")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    seconds = minutes * 60
    root = Path(__file__).resolve().parents[1]
    lgsp = Path(sys.executable).with_name("lgsp")
    with tempfile.TemporaryDirectory(prefix="lgsp-idle-") as tmp:
        env = dict(os.environ)
        env.update(
            LGSP_IDENTITY_DEMO_SEED="true",
            LGSP_GATEWAY_DEMO_SEED="true",
            LGSP_PLATFORM_DATA_DIR=str(Path(tmp) / "data"),
            PYTHONPATH=str(root),
        )
        env.pop("LGSP_CONFIG", None)
        platform = subprocess.Popen(
            [str(lgsp), "up"],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        reference = subprocess.Popen(
            [sys.executable, "-c", f"import time; time.sleep({seconds + 600})"]
        )
        try:
            out = Lines(platform)
            deadline = time.monotonic() + 120
            while not any("press Ctrl-C" in line for _, line in out.lines):
                if platform.poll() is not None or time.monotonic() > deadline:
                    print("\n".join(line for _, line in out.lines[-40:]))
                    print("the platform did not start")
                    return 1
                time.sleep(0.5)
            print(
                f"started; settling {args.settle:g} s, then measuring {minutes:g} min", flush=True
            )
            time.sleep(args.settle)
            start = time.monotonic()
            ref_cpu = [0.0]
            ref = threading.Thread(
                target=lambda: ref_cpu.__setitem__(0, measure(reference.pid, seconds)[0])
            )
            ref.start()
            cpu, per_pid, names = measure(platform.pid, seconds)
            ref.join()
            end = time.monotonic()
            lines = out.between(start, end)
        finally:
            reference.kill()
            platform.terminate()
            try:
                platform.wait(30)
            except subprocess.TimeoutExpired:
                platform.kill()
    elapsed = end - start
    per_min = len(lines) / (elapsed / 60)
    share = cpu / elapsed
    print(f"\nidle platform over {elapsed:.0f} s ({len(per_pid)} processes):")
    print(f"  log lines: {len(lines)} ({per_min:.1f}/min; goal < {GOAL_LINES_PER_MIN})")
    print(f"  CPU: {cpu:.2f} s = {share:.2%} of one core (goal < {GOAL_CPU_SHARE:.0%})")
    print(f"reference (idle python sleeping): CPU {ref_cpu[0]:.2f} s = {ref_cpu[0] / elapsed:.2%}")
    print("  CPU by process:")
    for pid, used in sorted(per_pid.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {used:7.2f} s  {pid:>7}  {names[pid]}")
    by_source = Counter(line.split("|", 1)[0].strip() for line in lines)
    if lines:
        print("  lines by process:", ", ".join(f"{k} {v}" for k, v in by_source.most_common()))
        for line in lines[:15]:
            print(f"    {line[:200]}")
    ok = per_min < GOAL_LINES_PER_MIN and share < GOAL_CPU_SHARE
    print("within the goals" if ok else "NOT within the goals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
