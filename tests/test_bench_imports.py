"""Every benchmark still imports: bench/ is not run by `make test`, but a rename in the code
it measures must not leave it broken until someone runs it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
MODULES = sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
