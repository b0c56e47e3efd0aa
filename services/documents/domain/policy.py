"""Who may do what, in which agency (the roles of the officials' tokens).

    clerk (văn thư)         registers incoming documents, issues numbers, sends, recalls
    specialist (chuyên viên) drafts and handles
    leader (lãnh đạo)       reviews, signs, assigns, directs tasks (and may draft)
    agency_admin / admin    read documents and figures of their agency

An agency's books, drafts and signatures belong to its own officials: every step needs the
role in the agency that holds the document itself, not in an agency above it (the
province's chairman does not sign a commune's decision, its clerk does not number a Sở's
document). Only reading figures (supervision) follows the agency tree.

Reading: a document is visible to holders of any of these roles in the agency that holds
it, in an agency it was sent to, to holders in an agency above it once it is issued, or to
anyone for a legal document once issued (legal documents are published). Drafts, their
versions and files stay in-house. Anything else is answered as if it did not exist
(NOT_FOUND), so a user of another agency cannot even learn that a document id exists.

Delegation (ủy quyền, domain/delegation.py) is the only way across: a leader of the agency
itself grants an official of another agency SIGN, ISSUE or READ_DRAFTS for a period. An
action is allowed to the agency's own officials as above, or to the official holding an
active delegation of that scope from that agency — and no other way (`authorize`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from .delegation import Delegation, Scope
from .document_types import document_type
from .errors import Forbidden
from .model import Direction, Document, OutgoingStatus

CLERK = "clerk"
SPECIALIST = "specialist"
LEADER = "leader"
AGENCY_ADMIN = "agency_admin"
ADMIN = "admin"
AUDITOR = "auditor"

READER_ROLES = (CLERK, SPECIALIST, LEADER, AGENCY_ADMIN, ADMIN)

# The role(s) each step needs in the agency that holds the document.
ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "create_draft": (SPECIALIST, LEADER),
    "update_draft": (SPECIALIST, LEADER),
    "submit_for_review": (SPECIALIST, LEADER),
    "review": (LEADER,),
    "sign": (LEADER,),
    "issue": (CLERK,),
    "send": (CLERK,),
    "recall": (CLERK, LEADER),
    "register_incoming": (CLERK,),
    "update_incoming": (CLERK,),
    "accept": (CLERK,),
    "refuse": (CLERK, LEADER),
    "assign": (LEADER,),
    "handle": (SPECIALIST, LEADER),  # start / complete: and only the handler (or a leader)
    "create_task": (LEADER,),
    "report_task": (SPECIALIST, LEADER, CLERK),
    # Inspectors (thanh tra) read the figures too, as the dossiers' figures allow them.
    "figures": (LEADER, AGENCY_ADMIN, ADMIN, AUDITOR),
    # Upload a file to a document of the agency (drafters to drafts, clerks to scans).
    "attach": (SPECIALIST, LEADER, CLERK),
}

ACTION_NAMES_VI = {
    "create_draft": "soạn thảo văn bản",
    "update_draft": "sửa dự thảo",
    "submit_for_review": "trình duyệt",
    "review": "duyệt văn bản",
    "sign": "ký văn bản",
    "issue": "cấp số văn bản",
    "send": "gửi văn bản",
    "recall": "thu hồi văn bản",
    "register_incoming": "vào sổ văn bản đến",
    "update_incoming": "sửa thông tin văn bản đến",
    "accept": "tiếp nhận văn bản",
    "refuse": "từ chối văn bản",
    "assign": "phân công xử lý",
    "handle": "xử lý văn bản",
    "create_task": "giao nhiệm vụ",
    "report_task": "báo cáo tiến độ nhiệm vụ",
    "figures": "xem số liệu",
    "attach": "đính kèm tệp",
}


class AgencyTree(Protocol):
    def ancestors(self, code: str) -> Sequence[str]: ...


class Caller(Protocol):
    """What the rules need to know of the caller (lgsp.auth.Principal fits)."""

    @property
    def subject(self) -> str: ...

    def has_role(
        self, role: str, agency_code: str | None = None, *, tree: AgencyTree | None = None
    ) -> bool: ...


# Steps whose role may be held in an agency above (supervision, not the agency's own acts).
TREE_ACTIONS = frozenset({"figures"})


def holds(caller: Caller, roles: Iterable[str], agency_code: str, tree: AgencyTree | None) -> bool:
    """A role among `roles` in `agency_code`; with `tree`, also one held in an agency above."""
    return any(caller.has_role(r, agency_code, tree=tree) for r in roles)


def holds_own(caller: Caller, roles: Iterable[str], agency_code: str) -> bool:
    """A role among `roles` held in `agency_code` itself."""
    return holds(caller, roles, agency_code, None)


def require(caller: Caller, action: str, agency_code: str, tree: AgencyTree) -> None:
    """Forbidden unless the caller holds a role that `action` needs in `agency_code` (in the
    agency itself, except for the TREE_ACTIONS)."""
    roles = ACTION_ROLES[action]
    if not holds(caller, roles, agency_code, tree if action in TREE_ACTIONS else None):
        raise Forbidden(
            f"{' or '.join(roles)} role in agency {agency_code} required to "
            f"{ACTION_NAMES_VI.get(action, action)}"
        )


# Steps a delegation can carry, and the scope each needs.
ACTION_SCOPES: dict[str, Scope] = {"sign": Scope.SIGN, "issue": Scope.ISSUE}


def may(caller: Caller, action: str, agency_code: str, tree: AgencyTree) -> bool:
    """Whether the caller's own roles allow `action` in `agency_code` (see `require`)."""
    return holds(
        caller, ACTION_ROLES[action], agency_code, tree if action in TREE_ACTIONS else None
    )


def delegation_for(
    caller: Caller, scope: Scope, agency_code: str, delegations: Iterable[Delegation], now: datetime
) -> Delegation | None:
    """The caller's active delegation of `scope` from `agency_code`, if any. The delegate must
    still be an official of the agency named in it (its token holds a role there): one who has
    left that agency no longer carries the delegation."""
    for d in delegations:
        if d.covers(caller.subject, agency_code, scope, now) and holds_own(
            caller, READER_ROLES, d.delegate_agency_code
        ):
            return d
    return None


def authorize(
    caller: Caller,
    action: str,
    agency_code: str,
    tree: AgencyTree,
    delegations: Iterable[Delegation] = (),
    now: datetime | None = None,
) -> Delegation | None:
    """`require`, or else an active delegation of the action's scope from `agency_code`:
    None when the caller's own roles allow it, the delegation it acts under otherwise.
    Forbidden when neither."""
    if may(caller, action, agency_code, tree):
        return None
    scope = ACTION_SCOPES.get(action)
    if scope is not None and now is not None:
        found = delegation_for(caller, scope, agency_code, delegations, now)
        if found is not None:
            return found
    require(caller, action, agency_code, tree)  # raises the usual refusal
    return None  # pragma: no cover - require raised


def may_delegate(caller: Caller, agency_code: str) -> None:
    """Grant or revoke a delegation of `agency_code`: a leader of that agency itself. A leader
    of an agency above (the province's chairman for a Sở) is not one."""
    if not caller.has_role(LEADER, agency_code):
        raise Forbidden(
            f"leader role in agency {agency_code} itself required to grant or revoke its "
            "delegations (ủy quyền)"
        )


def can_see_delegation(caller: Caller, d: Delegation) -> bool:
    """A delegation is visible to the delegating agency's officials and to its delegate."""
    return caller.subject == d.delegate_user_id or holds_own(caller, READER_ROLES, d.agency_code)


def delegated_read(
    caller: Caller, doc: Document, delegations: Iterable[Delegation], now: datetime
) -> Delegation | None:
    """A document still in-house that a delegation opens to the caller: READ_DRAFTS opens every
    document of the agency; ISSUE the signed ones waiting for their number; SIGN the ones
    waiting for the caller's own signature. None otherwise."""
    wanted = [Scope.READ_DRAFTS]
    if doc.direction == Direction.OUTGOING and doc.outgoing_status == OutgoingStatus.SIGNED:
        wanted.append(Scope.ISSUE)
    if (
        doc.direction == Direction.OUTGOING
        and doc.outgoing_status == OutgoingStatus.AWAITING_SIGNATURE
        and doc.waiting_on_user_id == caller.subject
    ):
        wanted.append(Scope.SIGN)
    for scope in wanted:
        found = delegation_for(caller, scope, doc.agency_code, delegations, now)
        if found is not None:
            return found
    return None


def require_handler(caller: Caller, doc: Document, tree: AgencyTree) -> None:
    """Start/complete: the official in charge, or a leader of the agency."""
    if caller.has_role(LEADER, doc.agency_code):
        return
    require(caller, "handle", doc.agency_code, tree)
    if caller.subject != doc.handler_user_id:
        raise Forbidden("only the official in charge of the document or a leader may handle it")


def is_public(doc: Document) -> bool:
    kind = document_type(doc.type_code)
    return (
        doc.direction == Direction.OUTGOING
        and kind is not None
        and kind.legal
        and not doc.confidential
        and doc.outgoing_status in (OutgoingStatus.ISSUED, OutgoingStatus.SENT)
    )


def can_read(caller: Caller, doc: Document, tree: AgencyTree) -> bool:
    if holds_own(caller, READER_ROLES, doc.agency_code):
        return True
    issued = doc.direction == Direction.OUTGOING and doc.outgoing_status in (
        OutgoingStatus.ISSUED,
        OutgoingStatus.SENT,
        OutgoingStatus.RECALLED,
    )
    if issued and holds(caller, READER_ROLES, doc.agency_code, tree):
        return True  # an agency above reads what its subordinate issued, not its drafts
    if issued and doc.outgoing_status != OutgoingStatus.ISSUED:
        # A recipient agency reads what was sent to it (not what is still a draft).
        for r in doc.recipients:
            if (
                r.agency_code
                and r.send_time is not None
                and holds_own(caller, READER_ROLES, r.agency_code)
            ):
                return True
    return is_public(doc)
