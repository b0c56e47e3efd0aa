"""The [search] settings section."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lgsp.config import (
    HTTP_SCHEMES,
    ServiceSettings,
    choice_field,
    num_field,
    port_field,
    secret_field,
    url_field,
)


@dataclass(frozen=True)
class SearchSettings(ServiceSettings):
    grpc_port: int = port_field(50054)
    backend: str = choice_field("tantivy", "tantivy", "elasticsearch")
    # "" = <data_dir>/search-index (tantivy only)
    index_dir: str = ""
    # tantivy: indexes a new index is split into, searched in parallel (one thread each; an
    # existing index keeps the count it was built with — `lgsp search reindex` to change).
    shards: int = num_field(2, 1, 64)
    # tantivy: what of the index is locked in memory so the kernel cannot page it out
    # (mlock; needs the memlock limit): "postings" = everything but the stored documents.
    memory_lock: str = choice_field("postings", "none", "postings", "all")
    # The service's own client at identity (GetAgencyTree: a role held in an agency reads
    # the agencies below it); "" secret = read <data_dir>/identity-demo.json.
    client_id: str = "search"
    client_secret: str = secret_field()
    url: str = url_field("", *HTTP_SCHEMES)  # Elasticsearch / OpenSearch-API endpoint
    username: str = ""
    password: str = secret_field()

    def derived(self, name: str, data_dir: Path) -> SearchSettings:
        section = super().derived(name, data_dir)
        assert isinstance(section, SearchSettings)
        if section.index_dir:
            return section
        return dataclasses.replace(section, index_dir=str(data_dir / "search-index"))

    def problems(self) -> list[tuple[str, str]]:
        if self.backend == "elasticsearch" and not self.url:
            return [("url", "search.backend = elasticsearch needs a url")]
        return []
