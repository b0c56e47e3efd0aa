"""Who may see what: a token's principal → the engine's Caller (the rule itself is applied
inside the engine, see docs/search.md "Rights, inside the engine").

The documents service's reading rule (services/documents/domain/policy.py, `can_read`) is
the one rule: an official reads a document when they hold one of the reader roles in the
agency that holds it or was sent it, or — for what an agency issued — in an agency above it
in the tree. The index holds these as reader keys (service_layer/projection.py): "own:CODE"
for an agency's own officials, a bare CODE for what it issued; here the caller becomes
"own:" each agency where they hold a reader role, and the bare codes of those agencies and
every agency below them. Documents
reads confidential ones under the same rule, so search does too: the level in the readers
terms is kept (an engine feature), and every caller with a reader role reads both levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lgsp.auth import Principal
from lgsp.grpc.errors import Unauthenticated
from services.search.index import Caller
from services.search.service_layer.projection import OWN

# The roles that read an agency's documents (documents' policy.READER_ROLES; copied, not
# imported: services share contracts, not code).
READER_ROLES = frozenset({"clerk", "specialist", "leader", "agency_admin", "admin"})


class AgencyTree(Protocol):
    """The agency tree (lgsp.agencies.AgencyDirectory fits)."""

    def descendants(self, code: str) -> Sequence[str]: ...


def caller_of(principal: Principal, tree: AgencyTree | None = None) -> Caller:
    """The agencies whose documents the caller may read: each agency where it holds a reader
    role, and every agency below it in `tree`. A token without one reads public documents
    only; an anonymous call is refused."""
    if principal.is_anonymous:
        raise Unauthenticated("search needs a token")
    held = sorted(code for code, roles in principal.grants.items() if code and roles & READER_ROLES)
    readable = dict.fromkeys(held)
    if tree is not None:
        for code in held:
            readable.update(dict.fromkeys(tree.descendants(code)))
    codes = list(readable)
    own = principal.agency_code or ""
    first = own if own in readable else (codes[0] if codes else "")
    return Caller(
        first,
        may_read_confidential=bool(codes),
        agencies=tuple(c for c in codes if c != first) + tuple(OWN + c for c in held),
    )
