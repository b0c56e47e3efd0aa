"""One index fixture over both engines: every contract test runs on tantivy and on
Elasticsearch (osmem, an OpenSearch-API server, started by tests.fixtures.osmem)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.search.index import SearchIndex, open_index


@pytest.fixture(params=["tantivy", "elasticsearch"])
def index(request: pytest.FixtureRequest, tmp_path) -> Iterator[SearchIndex]:
    if request.param == "tantivy":
        ix = open_index("tantivy", index_dir=tmp_path / "ix")
        yield ix
        ix.close()
    else:
        url = request.getfixturevalue("osmem")
        ix = open_index("elasticsearch", url=url, index_name=f"t-{uuid.uuid4().hex[:12]}")
        yield ix
        ix.drop()  # type: ignore[attr-defined]
        ix.close()
