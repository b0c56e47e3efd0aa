"""One process per mock per test module; faults and counters reset before each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.national.mockproc import MockProcess


@pytest.fixture(scope="module")
def mock_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MockProcess]]:
    started: list[MockProcess] = []

    def start(name: str, *extra: str, data_dir: Path | None = None) -> MockProcess:
        mock = MockProcess(name, data_dir or tmp_path_factory.mktemp(name), *extra).start()
        started.append(mock)
        return mock

    yield start
    for mock in started:
        mock.stop()


def _mock_fixture(name: str) -> Callable[..., MockProcess]:
    @pytest.fixture(scope="module")
    def running(mock_factory: Callable[..., MockProcess]) -> MockProcess:
        return mock_factory(name)

    return running  # type: ignore[return-value]


population = _mock_fixture("population")
business_registry = _mock_fixture("business_registry")
document_axis = _mock_fixture("document_axis")
public_service_portal = _mock_fixture("public_service_portal")
payment = _mock_fixture("payment")


@pytest.fixture(autouse=True)
def _clean_mocks(request: pytest.FixtureRequest) -> None:
    for name in (
        "population",
        "business_registry",
        "document_axis",
        "public_service_portal",
        "payment",
    ):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()
