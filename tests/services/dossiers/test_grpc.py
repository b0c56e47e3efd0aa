"""The dossiers service on a real gRPC server (ServiceRuntime with the plugin, tokens of a
stand-in issuer): a dossier from the desk to the return of the result, each step's event in
the outbox, and the refusals: malformed PIN, unknown procedure, missing papers, illegal
jumps, another agency's dossier, a wrong lookup; a refused call stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from lgsp import db, events
from lgsp.agencies import Agency, AgencyDirectory
from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc.client import channel
from lgsp.workdays import PROVINCE_TZ
from services.dossiers.plugin import PLUGIN
from services.dossiers.service_layer.verification import NoVerification
from tests.integration.test_new_service import bad_request_fields
from tests.services.dossiers.isolated import isolated_env
from tests.support.issuer import FakeIssuer

PROVINCE, THANH_SEN, TRAN_PHU = "000.00.00.H27", "000.00.61.H27", "000.00.62.H27"
AGENCIES = AgencyDirectory(
    [
        Agency(PROVINCE, "Ủy ban nhân dân tỉnh Hà Tĩnh", "UBND", "", "Hà Tĩnh"),
        Agency(THANH_SEN, "Ủy ban nhân dân phường Thành Sen", "UBND", PROVINCE, "Hà Tĩnh"),
        Agency(TRAN_PHU, "Ủy ban nhân dân phường Trần Phú", "UBND", PROVINCE, "Hà Tĩnh"),
    ]
)
OFFICIALS = {
    "ts-vt": (THANH_SEN, ["clerk"]),
    "ts-cv": (THANH_SEN, ["specialist"]),
    "ts-ld": (THANH_SEN, ["leader"]),
    "tp-vt": (TRAN_PHU, ["clerk"]),
    "admin": (PROVINCE, ["admin"]),
}
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=PROVINCE_TZ)  # Monday


@dataclass
class Env:
    issuer: FakeIssuer
    ch: grpc.aio.Channel
    runtime: ServiceRuntime

    def md(self, user: str) -> tuple[tuple[str, str], ...]:
        agency, roles = OFFICIALS[user]
        token = self.issuer.token(
            sub=user,
            preferred_username=user,
            realm_access={"roles": roles},
            agency_code=agency,
            agency_roles={agency: roles},
        )
        return (("authorization", f"Bearer {token}"),)

    def dossiers(self, user: str) -> Any:
        stub = dossiers_pb2_grpc.DossierServiceStub(self.ch)
        env = self

        class Caller:
            def __getattr__(self, name: str) -> Any:
                return lambda req: getattr(stub, name)(req, metadata=env.md(user), timeout=20)

        return Caller()

    def rows(self, table: str) -> int:
        with self.runtime.engine.connect() as conn:
            return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())

    def events(self) -> list[tuple[str, str]]:
        with self.runtime.engine.connect() as conn:
            rows = list(conn.execute(sa.select(db.outbox_table).order_by(db.outbox_table.c.id)))
        return [(events.decode(r.value).type.rsplit(".", 1)[1], r.key) for r in rows]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    issuer = FakeIssuer()
    await issuer.start()
    settings = load_settings(env=isolated_env(tmp_path))
    authn = JwtAuthenticator(issuer.issuer)
    # Applicants are verified at the national databases in test_national.py; here every one is.
    plugin = PLUGIN.with_options(
        agencies=AGENCIES, authenticator=authn, clock=lambda: NOW, verifier=NoVerification()
    )
    runtime = ServiceRuntime(plugin, settings, port=0)
    await runtime.start()
    ch = channel(runtime.server.address, service_name="dossiers-test")
    try:
        yield Env(issuer, ch, runtime)
    finally:
        await ch.close()
        await runtime.stop(0)
        await authn.aclose()
        await issuer.stop()


def birth_registration(**applicant: Any) -> pb.SubmitDossierRequest:
    person = {
        "kind": pb.APPLICANT_KIND_CITIZEN,
        "full_name": "Nguyễn Thị Hoa",
        "identity_number": "042195001234",
        "birth_date": "1995-03-01",
        "phone": "0912345678",
    }
    person.update(applicant)
    return pb.SubmitDossierRequest(
        procedure_code="1.004873",  # Cấp Giấy xác nhận tình trạng hôn nhân: 3 working days
        agency_code=THANH_SEN,
        applicant=pb.Applicant(**person),
        channel=pb.CHANNEL_COUNTER,
        papers=[pb.SubmittedPaper(paper_code="TK", name="Tờ khai", originals=1)],
    )


async def refused(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == code, e.value.details()
    return e.value


async def test_a_dossier_from_the_desk_to_the_result(env: Env) -> None:
    clerk, leader, specialist = env.dossiers("ts-vt"), env.dossiers("ts-ld"), env.dossiers("ts-cv")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    assert d.receipt_code == f"{THANH_SEN}-260504-0001"
    assert d.status == pb.DOSSIER_STATUS_SUBMITTED
    d2 = (await clerk.SubmitDossier(birth_registration())).dossier
    assert d2.receipt_code == f"{THANH_SEN}-260504-0002"

    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id, etag=d.etag))).dossier
    due = d.due_time.ToDatetime().replace(tzinfo=None)
    assert due.date().isoformat() == "2026-05-07"  # Monday + 3 working days
    d = (
        await leader.StartProcessing(
            pb.StartProcessingRequest(dossier_id=d.id, etag=d.etag, handler_user_id="ts-cv")
        )
    ).dossier
    d = (
        await specialist.RequestSupplement(
            pb.RequestSupplementRequest(dossier_id=d.id, etag=d.etag, reason="Thiếu chữ ký")
        )
    ).dossier
    assert d.status == pb.DOSSIER_STATUS_SUPPLEMENT_REQUESTED
    d = (
        await clerk.SupplementDossier(
            pb.SupplementDossierRequest(
                dossier_id=d.id,
                etag=d.etag,
                papers=[pb.SubmittedPaper(paper_code="TK", name="Tờ khai", originals=1)],
            )
        )
    ).dossier
    assert d.status == pb.DOSSIER_STATUS_IN_PROGRESS  # same day: nothing paused
    d = (
        await leader.CompleteProcessing(
            pb.CompleteProcessingRequest(dossier_id=d.id, etag=d.etag, result_number="12/XN")
        )
    ).dossier
    assert d.status == pb.DOSSIER_STATUS_PROCESSED and d.on_time
    d = (await clerk.ReturnResult(pb.ReturnResultRequest(dossier_id=d.id, etag=d.etag))).dossier
    assert d.status == pb.DOSSIER_STATUS_RESULT_RETURNED

    history = (
        await clerk.ListDossierHistory(pb.ListDossierHistoryRequest(dossier_id=d.id))
    ).entries
    assert [h.to_status for h in history] == [1, 2, 4, 5, 4, 9, 10]
    mine = [name for name, key in env.events() if key == d.receipt_code]
    assert mine.count("DossierStatusChanged") == 7
    assert "DossierSubmitted" in mine and "DossierProcessed" in mine

    lookup = dossiers_pb2_grpc.DossierLookupServiceStub(env.ch)  # no token
    seen = await lookup.LookupDossier(
        pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="5678")
    )
    assert seen.status == pb.DOSSIER_STATUS_RESULT_RETURNED
    assert seen.agency_name == "Ủy ban nhân dân phường Thành Sen"
    assert "Hoa" not in str(seen)  # no personal data
    await refused(
        lookup.LookupDossier(
            pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="0000")
        ),
        grpc.StatusCode.NOT_FOUND,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"applicant": {"identity_number": "04219500123"}}, "applicant.identity_number"),
        ({"applicant": {"identity_number": "042195001234", "birth_date": "1990-01-01"}},
         "applicant.identity_number"),
        ({"procedure_code": "9.999999"}, "procedure_code"),
        ({"papers": []}, "papers"),
        ({"agency_code": TRAN_PHU, "as": "tp-vt", "procedure_code": "1.013236"}, "agency_code"),
    ],
)  # fmt: skip
async def test_a_refused_submission_stores_nothing(
    env: Env, change: dict[str, Any], field: str
) -> None:
    req = birth_registration(**change.get("applicant", {}))
    if "procedure_code" in change:
        req.procedure_code = change["procedure_code"]
    if "papers" in change:
        del req.papers[:]
    if "agency_code" in change:
        req.agency_code = change["agency_code"]
    before = env.rows("outbox")
    error = await refused(
        env.dossiers(change.get("as", "ts-vt")).SubmitDossier(req),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_request_fields(error) == [field]
    assert env.rows("dossiers") == 0 and env.rows("dossier_history") == 0
    assert env.rows("receipt_sequences") == 0 and env.rows("outbox") == before


async def test_illegal_jumps_and_other_agencies(env: Env) -> None:
    clerk = env.dossiers("ts-vt")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    before = env.events()
    error = await refused(
        env.dossiers("ts-ld").CompleteProcessing(
            pb.CompleteProcessingRequest(dossier_id=d.id, etag=d.etag)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "1 SUBMITTED" in (error.details() or "") and "9 PROCESSED" in (error.details() or "")
    # A clerk of another commune, and a specialist accepting at the desk.
    await refused(
        env.dossiers("tp-vt").AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        env.dossiers("tp-vt").GetDossier(pb.GetDossierRequest(id=d.id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        env.dossiers("ts-cv").AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id="nope")),
        grpc.StatusCode.NOT_FOUND,
    )
    await refused(
        clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id, etag="99")),
        grpc.StatusCode.ABORTED,
    )
    assert env.events() == before
    got = (await clerk.GetDossier(pb.GetDossierRequest(receipt_code=d.receipt_code))).dossier
    assert got.status == pb.DOSSIER_STATUS_SUBMITTED and got.etag == d.etag


async def test_procedures_are_seeded_and_only_admins_change_them(env: Env) -> None:
    stub = dossiers_pb2_grpc.ProcedureServiceStub(env.ch)
    p = (
        await stub.GetProcedure(pb.GetProcedureRequest(code="1.014199"), metadata=env.md("ts-vt"))
    ).procedure
    assert p.processing_days == 10 and sum(s.working_days for s in p.steps) == 10
    p.processing_days = 7
    p.ClearField("steps")
    update = pb.UpdateProcedureRequest(procedure=p)
    update.update_mask.paths.extend(["processing_days", "steps"])
    await refused(
        stub.UpdateProcedure(update, metadata=env.md("ts-ld")), grpc.StatusCode.PERMISSION_DENIED
    )
    changed = (await stub.UpdateProcedure(update, metadata=env.md("admin"))).procedure
    assert changed.processing_days == 7 and changed.etag != p.etag
    new = pb.Procedure(
        code="1.000001", name="Thủ tục thử", field=pb.Field(code="HT", name="Hộ tịch"),
        agency_codes=[THANH_SEN], processing_days=2,
    )  # fmt: skip
    await stub.CreateProcedure(pb.CreateProcedureRequest(procedure=new), metadata=env.md("admin"))
    await refused(
        stub.CreateProcedure(pb.CreateProcedureRequest(procedure=new), metadata=env.md("admin")),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert [n for n, _ in env.events()] == ["ProcedureUpdated", "ProcedureCreated"]


async def test_a_fee_stops_the_clock_until_paid_and_a_leader_may_stop_a_dossier(
    env: Env,
) -> None:
    clerk, leader, specialist = env.dossiers("ts-vt"), env.dossiers("ts-ld"), env.dossiers("ts-cv")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id, etag=d.etag))).dossier
    due = d.due_time.ToDatetime()
    d = (
        await leader.StartProcessing(
            pb.StartProcessingRequest(dossier_id=d.id, etag=d.etag, handler_user_id="ts-cv")
        )
    ).dossier

    # Bad fees: the field is named, nothing changes.
    for fee in (0, -5000):
        e = await refused(
            specialist.RequestFee(
                pb.RequestFeeRequest(
                    dossier_id=d.id, etag=d.etag, fee_vnd=fee, description="x", pay_at_counter=True
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert "fee_vnd" in (e.details() or "")
    await refused(  # a leader neither requests fees nor records them at the desk
        leader.RequestFee(
            pb.RequestFeeRequest(
                dossier_id=d.id,
                etag=d.etag,
                fee_vnd=20000,
                description="Lệ phí",
                pay_at_counter=True,
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    d = (
        await specialist.RequestFee(
            pb.RequestFeeRequest(
                dossier_id=d.id,
                etag=d.etag,
                fee_vnd=20000,
                description="Lệ phí",
                pay_at_counter=True,
            )
        )
    ).dossier
    assert d.status == pb.DOSSIER_STATUS_FEE_REQUESTED

    # The wrong amount, a missing receipt: refused, the fee still waits.
    wrong = pb.RecordPaymentRequest(
        dossier_id=d.id, etag=d.etag, amount_vnd=10000, payment_reference="BL-1"
    )
    e = await refused(clerk.RecordPayment(wrong), grpc.StatusCode.INVALID_ARGUMENT)
    assert "amount_vnd" in (e.details() or "")
    no_receipt = pb.RecordPaymentRequest(dossier_id=d.id, etag=d.etag, amount_vnd=20000)
    e = await refused(clerk.RecordPayment(no_receipt), grpc.StatusCode.INVALID_ARGUMENT)
    assert "payment_reference" in (e.details() or "")
    d = (
        await clerk.RecordPayment(
            pb.RecordPaymentRequest(
                dossier_id=d.id, etag=d.etag, amount_vnd=20000, payment_reference="BL-0042"
            )
        )
    ).dossier
    assert d.status == pb.DOSSIER_STATUS_IN_PROGRESS
    assert d.due_time.ToDatetime() == due  # paid the same day: no working day lost
    await refused(  # paid already: a second payment is an illegal jump
        clerk.RecordPayment(
            pb.RecordPaymentRequest(
                dossier_id=d.id, etag=d.etag, amount_vnd=20000, payment_reference="BL-0043"
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    # Stopping needs a leader and a reason.
    await refused(
        specialist.StopDossier(pb.StopDossierRequest(dossier_id=d.id, etag=d.etag, reason="x")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    e = await refused(
        leader.StopDossier(pb.StopDossierRequest(dossier_id=d.id, etag=d.etag, reason=" ")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "reason" in (e.details() or "")
    d = (
        await leader.StopDossier(
            pb.StopDossierRequest(
                dossier_id=d.id, etag=d.etag, reason="Người nộp không đủ điều kiện theo luật"
            )
        )
    ).dossier
    assert d.status == pb.DOSSIER_STATUS_STOPPED
    history = (
        await clerk.ListDossierHistory(pb.ListDossierHistoryRequest(dossier_id=d.id))
    ).entries
    assert [h.to_status for h in history] == [1, 2, 4, 6, 4, 8]
    mine = [name for name, key in env.events() if key == d.receipt_code]
    assert mine.count("DossierStatusChanged") == 6
