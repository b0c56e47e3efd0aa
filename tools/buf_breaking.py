"""Run `buf breaking` against the protos of the main branch (the last half of `make lint`).

The base is the first of $BUF_AGAINST_REF, `main`, `origin/main` that names a commit, so the
check works on main itself, on a feature branch cloned with only origin/main, and on a
detached HEAD. buf gets the commit id (`.git#ref=<sha>`), because it clones the local
repository and only finds local branches by name. With no base to compare against, or a base
that has no proto/ yet, there is nothing that can break: the check says so and passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / "node_modules" / ".bin" / "buf"
CANDIDATES = ("main", "origin/main")


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def base_commit() -> tuple[str, str] | None:
    """(ref, commit id) of the branch to compare against, or None when there is none."""
    override = os.environ.get("BUF_AGAINST_REF", "").strip()
    for ref in (override,) if override else CANDIDATES:
        found = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if found.returncode == 0:
            return ref, found.stdout.strip()
    return None


def main() -> int:
    if not BUF.exists():
        print(f"{BUF.relative_to(ROOT)} missing: run make setup", file=sys.stderr)
        return 2
    base = base_commit()
    if base is None:
        print("buf breaking: no main branch to compare against; skipped")
        return 0
    ref, sha = base
    if _git("cat-file", "-e", f"{sha}:proto").returncode != 0:
        print(f"buf breaking: {ref} has no proto/ yet; nothing to compare")
        return 0
    # subdir=proto: the base's files are named as in the module (lgsp/api/...) whether or not
    # that commit has a buf.yaml at its root.
    against = f".git#ref={sha},subdir=proto"
    print(f"buf breaking against {ref} ({sha[:12]})")
    return subprocess.run([str(BUF), "breaking", "--against", against], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
