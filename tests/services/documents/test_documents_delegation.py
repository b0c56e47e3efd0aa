"""Issue 13 item 10, the other half: cross-agency authority only by an explicit, audited
delegation (ủy quyền). The Sở Tư pháp's leader grants the province's clerk ISSUE in the Sở's
books for a week; every issue done under it names it in the history and in DocumentIssued;
its scope, revocation and end hold; only the Sở's own leader grants; a refused grant stores
nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.db import outbox_table
from services.documents.adapters import tables as t
from tests.support.pdf import minimal_pdf

from .test_documents_workflow import violation_fields
from .workflow_support import SIGNER, STP, UBND, Env, draft, env_fixture, upload  # noqa: F401

PDF = minimal_pdf("Quyet dinh cua So Tu phap")
ISSUE = pb.DELEGATION_SCOPE_ISSUE
SIGN = pb.DELEGATION_SCOPE_SIGN
READ_DRAFTS = pb.DELEGATION_SCOPE_READ_DRAFTS


def stamp(at: datetime) -> Timestamp:
    m = Timestamp()
    m.FromDatetime(at)
    return m


def delegation(
    user: str,
    scopes: list[int],
    *,
    until: timedelta | None = timedelta(days=7),
    agency: str = STP,
    delegate_agency: str = UBND,
) -> pb.Delegation:
    m = pb.Delegation(
        agency_code=agency,
        delegate_user_id=user,
        delegate_agency_code=delegate_agency,
        scopes=scopes,
        note="Quyết định ủy quyền số 12/QĐ-STP",
    )
    if until is not None:
        m.valid_until.CopyFrom(stamp(datetime.now(UTC) + until))
    return m


async def grant(env: Env, by: str, d: pb.Delegation) -> pb.Delegation:
    return (await env.as_(by).GrantDelegation(pb.GrantDelegationRequest(delegation=d))).delegation


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


async def to_stp_awaiting(env: Env, signer: str = "stp-ld", pdf: bool = False) -> pb.Document:
    """A Sở Tư pháp decision drafted, reviewed and approved for `signer`'s signature."""
    d = (
        await env.as_("stp-cv").CreateDraft(
            pb.CreateDraftRequest(document=draft(agency_code=STP, document_type_code="QĐ"))
        )
    ).document
    if pdf:
        await upload(env, "stp-cv", d.id, PDF)
    d = (
        await env.as_("stp-cv").SubmitForReview(
            pb.SubmitForReviewRequest(document_id=d.id, etag=d.etag, reviewer_user_id="stp-ld")
        )
    ).document
    return (
        await env.as_("stp-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id,
                etag=d.etag,
                decision=pb.REVIEW_DECISION_APPROVE,
                signer_user_id=signer,
            )
        )
    ).document


async def to_stp_signed(env: Env) -> pb.Document:
    d = await to_stp_awaiting(env)
    return (
        await env.as_("stp-ld").SignDocument(
            pb.SignDocumentRequest(document_id=d.id, etag=d.etag, signer=SIGNER)
        )
    ).document


def issue(env: Env, user: str, d: pb.Document) -> Awaitable[Any]:
    return env.as_(user).IssueDocument(pb.IssueDocumentRequest(document_id=d.id, etag=d.etag))


def outbox(env: Env, payload: type[Any]) -> list[Any]:
    """The payloads of `payload`'s type waiting in (or sent from) the outbox."""
    name = events.type_name(payload)
    with env.app.engine.connect() as conn:
        values = conn.execute(
            sa.select(outbox_table.c.value).where(outbox_table.c.event_type == name)
        ).scalars()
        return [events.payload_of(events.decode(v)) for v in values]


def delegation_rows(env: Env) -> int:
    with env.app.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.delegations)).scalar_one())


async def test_the_provinces_clerk_issues_in_a_sos_book_only_under_a_delegation(
    env: Env,
) -> None:
    signed = await to_stp_signed(env)
    # As now: the province's clerk has no hand in the Sở's book.
    assert (await refused(issue(env, "ubnd-vt", signed))).code() == grpc.StatusCode.NOT_FOUND

    granted = await grant(env, "stp-ld", delegation("ubnd-vt", [ISSUE]))
    assert granted.id and granted.active and granted.granted_by == "stp-ld"
    assert list(granted.scopes) == [ISSUE]
    [event] = outbox(env, ev.DelegationGranted)
    assert event.delegation.id == granted.id and event.actor_id == "stp-ld"

    issued = (await issue(env, "ubnd-vt", signed)).document
    assert issued.number_notation == "01/QĐ-STP"
    history = (
        await env.as_("stp-vt").ListDocumentHistory(
            pb.ListDocumentHistoryRequest(document_id=signed.id)
        )
    ).entries
    step = history[-1]
    assert (step.action, step.actor_id, step.delegation_id) == ("issue", "ubnd-vt", granted.id)
    assert all(h.delegation_id == "" for h in history[:-1])  # the Sở's own steps
    [issued_event] = outbox(env, ev.DocumentIssued)
    assert (issued_event.actor_id, issued_event.delegation_id) == ("ubnd-vt", granted.id)

    # Scope: ISSUE neither reads the Sở's drafts nor lets its holder send what it issued.
    a_draft = (
        await env.as_("stp-cv").CreateDraft(pb.CreateDraftRequest(document=draft(agency_code=STP)))
    ).document
    for call in (
        env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=a_draft.id)),
        env.as_("ubnd-vt").ListDocumentVersions(
            pb.ListDocumentVersionsRequest(document_id=a_draft.id)
        ),
    ):
        assert (await refused(call)).code() == grpc.StatusCode.NOT_FOUND
    assert (
        await refused(env.as_("ubnd-vt").ListDocuments(pb.ListDocumentsRequest(agency_code=STP)))
    ).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await refused(
            env.as_("ubnd-vt").SendDocument(
                pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
            )
        )
    ).code() == grpc.StatusCode.PERMISSION_DENIED

    # Revoked: refused again, at once.
    second = await to_stp_signed(env)
    assert (
        await refused(
            env.as_("stp-ld").RevokeDelegation(
                pb.RevokeDelegationRequest(delegation_id=granted.id, reason=" ")
            )
        )
    ).code() == grpc.StatusCode.INVALID_ARGUMENT
    revoked = (
        await env.as_("stp-ld").RevokeDelegation(
            pb.RevokeDelegationRequest(delegation_id=granted.id, reason="Hết thời hạn biệt phái")
        )
    ).delegation
    assert not revoked.active and revoked.revoked_by == "stp-ld"
    [revoked_event] = outbox(env, ev.DelegationRevoked)
    assert revoked_event.delegation.revoke_reason == "Hết thời hạn biệt phái"
    assert (await refused(issue(env, "ubnd-vt", second))).code() == grpc.StatusCode.NOT_FOUND
    again = await refused(
        env.as_("stp-ld").RevokeDelegation(
            pb.RevokeDelegationRequest(delegation_id=granted.id, reason="lần nữa")
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The Sở's officials and the delegate see it; the province's leader does not.
    listed = (
        await env.as_("stp-cv").ListDelegations(pb.ListDelegationsRequest(agency_code=STP))
    ).delegations
    assert [d.id for d in listed] == [granted.id] and listed[0].revoke_time.seconds
    mine = (
        await env.as_("ubnd-vt").ListDelegations(pb.ListDelegationsRequest(agency_code=STP))
    ).delegations
    assert [d.id for d in mine] == [granted.id]
    others = (
        await env.as_("ubnd-ld").ListDelegations(pb.ListDelegationsRequest(agency_code=STP))
    ).delegations
    assert list(others) == []


async def test_sign_and_read_drafts_are_scopes_of_their_own(env: Env) -> None:
    awaiting = await to_stp_awaiting(env, signer="ubnd-ld", pdf=True)
    await grant(env, "stp-ld", delegation("ubnd-ld", [ISSUE]))
    sign = pb.SignDocumentRequest(
        document_id=awaiting.id, etag=awaiting.etag, signer=SIGNER, sign_main_attachment=True
    )
    # An ISSUE delegation does not sign, even where the reviewer named its holder.
    assert (
        await refused(env.as_("ubnd-ld").SignDocument(sign))
    ).code() == grpc.StatusCode.NOT_FOUND
    signing = await grant(env, "stp-ld", delegation("ubnd-ld", [SIGN]))
    signed = (await env.as_("ubnd-ld").SignDocument(sign)).document
    assert signed.outgoing_status == pb.OUTGOING_STATUS_SIGNED and signed.digitally_signed
    step = (
        await env.as_("stp-ld").ListDocumentHistory(
            pb.ListDocumentHistoryRequest(document_id=awaiting.id)
        )
    ).entries[-1]
    assert (step.action, step.actor_id, step.delegation_id) == ("sign", "ubnd-ld", signing.id)
    changed = [e for e in outbox(env, ev.OutgoingStatusChanged) if e.document_id == awaiting.id]
    assert changed[-1].delegation_id == signing.id
    # A SIGN delegation does not read the drafts; READ_DRAFTS does, and lists them.
    a_draft = (
        await env.as_("stp-cv").CreateDraft(pb.CreateDraftRequest(document=draft(agency_code=STP)))
    ).document
    get = pb.GetDocumentRequest(id=a_draft.id)
    assert (await refused(env.as_("ubnd-ld").GetDocument(get))).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    await grant(env, "stp-ld", delegation("ubnd-ld", [READ_DRAFTS]))
    assert (await env.as_("ubnd-ld").GetDocument(get)).document.id == a_draft.id
    listed = await env.as_("ubnd-ld").ListDocuments(pb.ListDocumentsRequest(agency_code=STP))
    assert a_draft.id in [d.id for d in listed.documents]
    # …but acts on nothing.
    assert (
        await refused(
            env.as_("ubnd-ld").SubmitForReview(
                pb.SubmitForReviewRequest(
                    document_id=a_draft.id, etag=a_draft.etag, reviewer_user_id="stp-ld"
                )
            )
        )
    ).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_expired_delegation_is_refused(env: Env) -> None:
    signed = await to_stp_signed(env)
    granted = await grant(env, "stp-ld", delegation("ubnd-vt", [ISSUE], until=timedelta(days=1)))
    real: Callable[[], datetime] = env.app.clock
    env.app.clock = lambda: real() + timedelta(days=2)
    try:
        assert (await refused(issue(env, "ubnd-vt", signed))).code() == grpc.StatusCode.NOT_FOUND
        [listed] = (
            await env.as_("stp-ld").ListDelegations(pb.ListDelegationsRequest(agency_code=STP))
        ).delegations
        assert listed.id == granted.id and not listed.active
    finally:
        env.app.clock = real
    assert (await issue(env, "ubnd-vt", signed)).document.number_notation == "01/QĐ-STP"


async def test_only_the_agencys_own_leader_grants_and_a_refused_grant_stores_nothing(
    env: Env,
) -> None:
    denied = {
        "ubnd-ld": delegation("ubnd-vt", [ISSUE]),  # the province's leader, for a Sở
        "stp-cv": delegation("ubnd-vt", [ISSUE]),  # the Sở's specialist
        "stp-vt": delegation("ubnd-vt", [ISSUE]),  # the Sở's clerk
    }
    for user, d in denied.items():
        e = await refused(env.as_(user).GrantDelegation(pb.GrantDelegationRequest(delegation=d)))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, user

    now = datetime.now(UTC)
    no_until = delegation("ubnd-vt", [ISSUE], until=None)
    starts_tomorrow = delegation("ubnd-vt", [ISSUE], until=timedelta(days=380))
    starts_tomorrow.valid_from.CopyFrom(stamp(now + timedelta(days=1)))
    bad = [
        (delegation("ubnd-vt", []), "delegation.scopes"),
        (delegation("ubnd-vt", [pb.DELEGATION_SCOPE_UNSPECIFIED]), "delegation.scopes"),
        (delegation("ubnd-vt", [ISSUE, 42]), "delegation.scopes"),
        (no_until, "delegation.valid_until"),
        (delegation("ubnd-vt", [ISSUE], until=timedelta(days=-1)), "delegation.valid_until"),
        (delegation("ubnd-vt", [ISSUE], until=timedelta(days=367)), "delegation.valid_until"),
        (starts_tomorrow, "delegation.valid_until"),  # 379 days from its start
        (delegation("", [ISSUE]), "delegation.delegate_user_id"),
        (
            delegation("ubnd-vt", [ISSUE], delegate_agency="000.99.99.H27"),
            "delegation.delegate_agency_code",
        ),
        (delegation("ubnd-vt", [ISSUE], delegate_agency=""), "delegation.delegate_agency_code"),
        (delegation("stp-vt", [ISSUE], delegate_agency=STP), "delegation.delegate_agency_code"),
        (delegation("ubnd-vt", [ISSUE], agency="000.99.99.H27"), "delegation.agency_code"),
    ]
    for d, field in bad:
        e = await refused(
            env.as_("stp-ld").GrantDelegation(pb.GrantDelegationRequest(delegation=d))
        )
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violation_fields(e) == [field], (field, e.details())
    assert delegation_rows(env) == 0
    assert outbox(env, ev.DelegationGranted) == []

    # A year to the day is allowed; the answer for a missing or foreign delegation is NOT_FOUND.
    assert (
        await grant(env, "stp-ld", delegation("ubnd-vt", [ISSUE], until=timedelta(days=365)))
    ).active
    for user in ("stp-ld", "ubnd-ld"):
        e = await refused(
            env.as_(user).RevokeDelegation(
                pb.RevokeDelegationRequest(delegation_id="no-such-id", reason="x")
            )
        )
        assert e.code() == grpc.StatusCode.NOT_FOUND
    [granted] = (
        await env.as_("stp-cv").ListDelegations(pb.ListDelegationsRequest(agency_code=STP))
    ).delegations
    # The province's leader cannot revoke it either (he cannot even see it); the Sở's
    # specialist sees it but may not revoke.
    revoke = pb.RevokeDelegationRequest(delegation_id=granted.id, reason="x")
    assert (await refused(env.as_("ubnd-ld").RevokeDelegation(revoke))).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    assert (await refused(env.as_("stp-cv").RevokeDelegation(revoke))).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert outbox(env, ev.DelegationRevoked) == []
    e = await refused(
        env.as_("stp-ld").ListDelegations(pb.ListDelegationsRequest(agency_code="000.99.99.H27"))
    )
    assert violation_fields(e) == ["agency_code"]


@pytest.fixture
def app(db_url: str):  # type: ignore[no-untyped-def]
    from lgsp import db
    from services.documents.bootstrap import MIGRATIONS
    from services.documents.service_layer.documents import DocumentsApp
    from services.documents.transport import BusTransport

    from .workflow_support import AGENCIES

    engine = db.create_engine(db_url)
    db.migrate(engine, MIGRATIONS)
    yield DocumentsApp(engine, AGENCIES, BusTransport())
    engine.dispose()


def test_delegations_are_stored_and_expire_on_both_databases(app: Any) -> None:
    """Migration 0003, the repository and the unit of work on SQLite and PostgreSQL: the
    row and its event commit together, the delegated issue names it, and it ends on time."""
    from services.documents.domain.errors import NotVisible

    from .test_documents_numbering import CLERK, STP_ALL, signed_documents

    [first, second] = signed_documents(app, 2, STP, STP_ALL)
    now = app.now()
    d = app.grant_delegation(
        STP_ALL, STP, "ubnd-vt", UBND, frozenset({int(ISSUE)}), None, now + timedelta(hours=1)
    )
    issued = app.issue(CLERK, first.id, str(first.version), None)
    assert issued.number_notation == "01/QĐ-STP"
    assert app.history(STP_ALL, first.id)[-1].delegation_id == d.id
    with app.engine.connect() as conn:
        types = conn.execute(sa.select(outbox_table.c.event_type)).scalars().all()
    assert "lgsp.api.documents.v1.DelegationGranted" in types
    real = app.clock
    app.clock = lambda: real() + timedelta(hours=2)
    with pytest.raises(NotVisible):
        app.issue(CLERK, second.id, str(second.version), None)
    app.clock = real
    [listed] = app.list_delegations(STP_ALL, STP)
    assert listed.id == d.id and listed.active(app.now()) and not listed.revoked
