"""What an outside reviewer tried on the running platform: hostile and oversized fields at
intake and later steps (each refused naming the field, nothing stored), Unicode tricks, a
request_id reused by another agency's desk (which must not hand back the other dossier), the
one-stop officer at the desk, papers filed by code printed by name on the slip, and no log
noise from printing a PDF."""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from typing import Any

import grpc
import pytest

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.logs import setup_logging
from tests.integration.test_new_service import bad_request_fields
from tests.services.dossiers.citizen_env import pdf_text
from tests.services.dossiers.test_grpc import THANH_SEN, TRAN_PHU, Env, birth_registration, refused
from tests.services.dossiers.test_grpc import env as env  # the fixture


def caller(env: Env, user: str, agency: str, roles: list[str]) -> Any:
    """A stub for an official the test_grpc table does not hold."""
    token = env.issuer.token(
        sub=user, preferred_username=user, realm_access={"roles": roles},
        agency_code=agency, agency_roles={agency: roles},
    )  # fmt: skip
    from lgsp.api.dossiers.v1 import dossiers_pb2_grpc

    stub = dossiers_pb2_grpc.DossierServiceStub(env.ch)

    class Caller:
        def __getattr__(self, name: str) -> Any:
            md = (("authorization", f"Bearer {token}"),)
            return lambda req: getattr(stub, name)(req, metadata=md, timeout=20)

    return Caller()


def with_applicant(**fields: Any) -> pb.SubmitDossierRequest:
    return birth_registration(**fields)


def with_paper(**fields: Any) -> pb.SubmitDossierRequest:
    req = birth_registration()
    del req.papers[:]
    req.papers.append(pb.SubmittedPaper(**{"paper_code": "TK", "originals": 1, **fields}))
    return req


HOSTILE = [
    (with_applicant(full_name="A" * 201), "applicant.full_name"),
    (with_applicant(full_name="Nguyễn Thị\x00 Hoa"), "applicant.full_name"),
    (with_applicant(full_name="Nguyễn Thị Hoa\u202e"), "applicant.full_name"),
    (with_applicant(phone="9" * 1_000_000), "applicant.phone"),
    (with_applicant(phone="gọi sau"), "applicant.phone"),
    (with_applicant(email="not-an-email" * 30), "applicant.email"),
    (with_applicant(address="x" * 2_000_000), "applicant.address"),
    (with_applicant(identity_number="０４２１９５００１２３４"), "applicant.identity_number"),
    (with_applicant(birth_date="19950301"), "applicant.birth_date"),
    (with_applicant(birth_date="1995-02-30"), "applicant.birth_date"),
    (with_paper(name="n" * 2_000_000), "papers[0].name"),
    (with_paper(originals=2_147_483_647), "papers[0].originals"),
    (with_paper(attachment_id="tệp đính kèm"), "papers[0].attachment_id"),
    (with_paper(sha256="zz"), "papers[0].sha256"),
]


@pytest.mark.parametrize(("request_", "field"), HOSTILE, ids=[f for _, f in HOSTILE])
async def test_hostile_intake_fields_are_refused_naming_the_field(
    env: Env, request_: pb.SubmitDossierRequest, field: str
) -> None:
    e = await refused(
        env.dossiers("ts-vt").SubmitDossier(request_), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert bad_request_fields(e) == [field]
    assert env.rows("dossiers") == 0 and env.events() == []


async def test_more_papers_than_a_dossier_holds_unknown_channel_long_request_id(
    env: Env,
) -> None:
    clerk = env.dossiers("ts-vt")
    many = birth_registration()
    many.papers.extend([pb.SubmittedPaper(name="Giấy tờ khác", copies=1)] * 100)
    e = await refused(clerk.SubmitDossier(many), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_request_fields(e) == ["papers"]
    unknown = birth_registration()
    unknown.channel = 99  # type: ignore[assignment]
    e = await refused(clerk.SubmitDossier(unknown), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_request_fields(e) == ["channel"]
    long_id = birth_registration()
    long_id.request_id = "r" * 65
    e = await refused(clerk.SubmitDossier(long_id), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_request_fields(e) == ["request_id"]
    assert env.rows("dossiers") == 0


async def test_text_is_stored_nfc_and_papers_filed_by_code_carry_their_name(env: Env) -> None:
    clerk = env.dossiers("ts-vt")
    req = birth_registration(full_name=unicodedata.normalize("NFD", "Nguyễn Thị Hoa"))
    req.papers[0].name = ""
    d = (await clerk.SubmitDossier(req)).dossier
    assert d.applicant.full_name == unicodedata.normalize("NFC", "Nguyễn Thị Hoa")
    assert d.papers[0].name == "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân"
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier
    slip = (await clerk.GetReceiptSlip(pb.GetReceiptSlipRequest(dossier_id=d.id))).pdf
    assert "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân" in pdf_text(slip)


async def test_a_request_id_reused_elsewhere_never_returns_the_other_dossier(env: Env) -> None:
    first = birth_registration()
    first.request_id = "desk-42"
    d = (await env.dossiers("ts-vt").SubmitDossier(first)).dossier
    again = (await env.dossiers("ts-vt").SubmitDossier(first)).dossier
    assert again.id == d.id  # a retry
    other_desk = birth_registration()
    other_desk.request_id, other_desk.agency_code = "desk-42", TRAN_PHU
    e = await refused(
        env.dossiers("tp-vt").SubmitDossier(other_desk), grpc.StatusCode.ALREADY_EXISTS
    )
    assert "042195001234" not in e.details()
    other_person = birth_registration(identity_number="042195009999")
    other_person.request_id = "desk-42"
    await refused(env.dossiers("ts-vt").SubmitDossier(other_person), grpc.StatusCode.ALREADY_EXISTS)
    assert env.rows("dossiers") == 1


async def test_the_one_stop_officer_works_the_desk(env: Env) -> None:
    desk = caller(env, "ts-mc", THANH_SEN, ["one_stop_officer"])
    d = (await desk.SubmitDossier(birth_registration())).dossier
    d = (await desk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier
    assert d.status == pb.DOSSIER_STATUS_ACCEPTED
    assert (await desk.GetDossier(pb.GetDossierRequest(id=d.id))).dossier.id == d.id
    # …at their own agency only, and not the leader's steps.
    elsewhere = caller(env, "tp-mc", TRAN_PHU, ["one_stop_officer"])
    await refused(
        elsewhere.GetDossier(pb.GetDossierRequest(id=d.id)), grpc.StatusCode.PERMISSION_DENIED
    )
    start = pb.StartProcessingRequest(dossier_id=d.id, handler_user_id="ts-cv")
    await refused(desk.StartProcessing(start), grpc.StatusCode.PERMISSION_DENIED)


async def test_later_steps_refuse_oversized_and_invisible_text(env: Env) -> None:
    clerk, leader = env.dossiers("ts-vt"), env.dossiers("ts-ld")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier
    d = (await leader.StartProcessing(pb.StartProcessingRequest(
        dossier_id=d.id, handler_user_id="ts-cv"))).dossier  # fmt: skip
    cash = pb.RecordPaymentRequest(dossier_id=d.id, amount_vnd=15000, payment_reference="BL1")
    e = await refused(clerk.RecordPayment(cash), grpc.StatusCode.FAILED_PRECONDITION)
    assert "no fee is awaited" in e.details()
    for req, field in [
        (pb.CompleteProcessingRequest(dossier_id=d.id, result_number="n" * 101), "result_number"),
        (pb.CompleteProcessingRequest(dossier_id=d.id, result_attachment_id="a b"),
         "result_attachment_id"),
        (pb.WithdrawDossierRequest(dossier_id=d.id, reason="thôi\x00"), "reason"),
    ]:  # fmt: skip
        stub = leader if isinstance(req, pb.CompleteProcessingRequest) else clerk
        method = type(req).__name__.removesuffix("Request")
        e = await refused(getattr(stub, method)(req), grpc.StatusCode.INVALID_ARGUMENT)
        assert bad_request_fields(e) == [field]
    got = (await clerk.GetDossier(pb.GetDossierRequest(id=d.id))).dossier
    assert got.status == pb.DOSSIER_STATUS_IN_PROGRESS and got.etag == d.etag


async def test_printing_a_slip_writes_no_log_lines(env: Env) -> None:
    clerk = env.dossiers("ts-vt")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    handler = setup_logging("dossiers", "INFO", json=True, stream=out, background=False)
    try:
        await clerk.GetReceiptSlip(pb.GetReceiptSlipRequest(dossier_id=d.id))
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for h in saved[1]:
            if h not in root.handlers:
                root.addHandler(h)
    loggers = [json.loads(line)["logger"] for line in out.getvalue().splitlines()]
    # The access line of the call and nothing of the printing (the portal link, pointed at a
    # closed port here, may say once that it cannot reach the portal).
    assert [n for n in loggers if n not in ("lgsp.access", "services.dossiers.portal")] == []
    assert loggers.count("lgsp.access") == 1


def test_the_portal_is_told_a_malformed_paper_is_not_a_missing_one() -> None:
    from services.dossiers.adapters.portal import refusal_message
    from services.dossiers.domain.errors import InvalidField

    missing = InvalidField("papers", "missing: TK Tờ khai (1 bản chính, 0 bản sao)")
    assert refusal_message(missing) == "Hồ sơ thiếu thành phần hồ sơ bắt buộc"
    for bad in (
        InvalidField("papers[0].sha256", "64 hexadecimal digits (SHA-256)"),
        InvalidField("papers", "at most 100 papers"),
    ):
        assert refusal_message(bad) == "Thành phần hồ sơ không hợp lệ"


@pytest.mark.parametrize(
    "agency", ["", "   ", "000..61.H27", "THANH SEN", "000.00.61.H27-1", "0" * 10_000, "'; drop"]
)
async def test_a_malformed_agency_code_is_named_before_the_role_is_checked(
    env: Env, agency: str
) -> None:
    request = birth_registration()
    request.agency_code = agency
    # A clerk of Thành Sen would be refused the role at an agency that cannot exist; the
    # code's form is what is wrong, so it is named.
    e = await refused(
        env.dossiers("ts-vt").SubmitDossier(request), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert bad_request_fields(e) == ["agency_code"]
    # A well-formed code of another agency is still a matter of rights.
    request.agency_code = TRAN_PHU
    await refused(env.dossiers("ts-vt").SubmitDossier(request), grpc.StatusCode.PERMISSION_DENIED)
    assert env.rows("dossiers") == 0
