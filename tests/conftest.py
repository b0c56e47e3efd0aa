"""Fixture plugins live in tests/fixtures/, one module per kind of server they start."""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.osmem",
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
]
