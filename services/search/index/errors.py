"""The search layer's errors: bad input (the gRPC layer maps it to INVALID_ARGUMENT with a
BadRequest naming the field), and an index on disk this version cannot read."""

from __future__ import annotations

from lgsp.grpc.errors import InvalidArgument


class SearchInputError(InvalidArgument):
    """A search request the engine will not run: names the field and says why."""


class IndexLayoutError(RuntimeError):
    """The index directory holds an index this engine cannot read as it is (another layout or
    schema): the operator must rebuild it (`lgsp search reindex`). The message says so."""
