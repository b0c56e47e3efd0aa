"""The one error the search layer raises for bad input; the gRPC layer maps it to
INVALID_ARGUMENT with a BadRequest naming the field."""

from __future__ import annotations

from lgsp.grpc.errors import InvalidArgument


class SearchInputError(InvalidArgument):
    """A search request the engine will not run: names the field and says why."""
