"""Fixture plugins live in tests/fixtures/, one module per kind of server they start."""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "tests.fixtures.kafka",
        "tests.fixtures.postgres",
    )
    if importlib.util.find_spec(name) is not None
]
