"""Who may see what: a token's principal → the engine's Caller (the rule itself is applied
inside the engine, see docs/search.md "Rights, inside the engine")."""

from __future__ import annotations

from lgsp.auth import Principal
from lgsp.grpc.errors import Unauthenticated
from services.search.index import Caller

# Roles that may read confidential (mật) documents of their own agency: its leaders (lãnh
# đạo), who receive and assign them, and an explicit grant for the officials who keep them
# (văn thư giữ tài liệu mật).
CONFIDENTIAL_ROLES = ("leader", "confidential_reader")


def caller_of(principal: Principal) -> Caller:
    """The caller's agency (the token's agency_code) and whether one of its roles *in that
    agency* lets it read confidential documents. A token without an agency sees public
    documents only; an anonymous call is refused."""
    if principal.is_anonymous:
        raise Unauthenticated("search needs a token")
    agency = principal.agency_code or ""
    may = bool(agency) and principal.has_any_role(CONFIDENTIAL_ROLES, agency)
    return Caller(agency, may_read_confidential=may)
