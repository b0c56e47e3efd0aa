"""An Elasticsearch index created before all_text, the .exact sub-field and the later keyword
fields: opened, it gains them, keeps answering (field by field) and says it wants a rebuild."""

from __future__ import annotations

import copy
import uuid

from services.search.index import Caller, IndexedDocument, SearchQuery
from services.search.index.elastic import MAPPINGS, SETTINGS, ElasticIndex

A = "000.00.02.H27"


def test_an_index_from_before_keeps_answering(osmem: str) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    old_settings = copy.deepcopy(SETTINGS)
    del old_settings["analysis"]["analyzer"]["vi_lower"]
    old_mappings = copy.deepcopy(MAPPINGS)
    for field in ("all_text", "direction", "priority", "arrival_date", "arrival_day"):
        del old_mappings["properties"][field]
    del old_mappings["_source"]
    first = ElasticIndex(osmem, index=name + "-tmp")  # a client, and the current layout
    first.drop()
    first.client.indices.create(index=name, settings=old_settings, mappings=old_mappings)
    then = ElasticIndex(osmem, index=name)
    try:
        assert not then.combined
        then.upsert([IndexedDocument("d1", subject="Chuyển đổi số", agency_code=A, version=1,
                                     direction="incoming")])  # fmt: skip
        then.commit()
        assert [h.id for h in then.search(SearchQuery("chuyển đổi số"), Caller(A)).hits] == ["d1"]
        props = then.client.indices.get_mapping(index=name)[name]["mappings"]["properties"]
        assert {"all_text", "direction", "arrival_day"} <= set(props)
        assert ElasticIndex(osmem, index=name + "-new").combined
    finally:
        then.drop()
        ElasticIndex(osmem, index=name + "-new").drop()
