"""What the citizen holds and sees, over gRPC on a real server: the receipt slip read back as
a person would (text, embedded font, the QR code rendered and decoded), the apology letter
and its rules, the rating, and the public lookup's guards (someone else's receipt code, the
lock on wrong digits, the per-address limit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pypdfium2
import pytest
import zxingcpp
from google.rpc import error_details_pb2, status_pb2

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from services.dossiers.service_layer.citizen import VERIFY_FAILURES
from tests.integration.test_new_service import bad_request_fields
from tests.services.dossiers.citizen_env import CitizenEnv, pdf_text, start
from tests.services.dossiers.test_grpc import THANH_SEN, refused


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    # A loose per-address limit: these tests are about the rules, `tight` about the limit.
    async for e in start(tmp_path, lookup_per_minute="6000", lookup_burst="100"):
        yield e


def qr_codes(pdf: bytes) -> list[str]:
    page = pypdfium2.PdfDocument(pdf)[0]
    return [b.text for b in zxingcpp.read_barcodes(page.render(scale=3).to_pil())]


async def test_the_receipt_slip_reads_right_and_its_qr_opens_the_lookup(env: CitizenEnv) -> None:
    d = await env.accepted(address="Số 5, đường Hà Huy Tập, phường Thành Sen")
    slip = await env.dossiers("ts-vt").GetReceiptSlip(pb.GetReceiptSlipRequest(dossier_id=d.id))
    assert slip.file_name == f"giay-tiep-nhan-{d.receipt_code}.pdf"
    assert slip.pdf.startswith(b"%PDF-")
    text = pdf_text(slip.pdf)
    for line in (
        "ỦY BAN NHÂN DÂN TỈNH HÀ TĨNH",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Hà Tĩnh, ngày 04 tháng 05 năm 2026",
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        f"Mã hồ sơ: {d.receipt_code}",
        "Tiếp nhận hồ sơ của: Nguyễn Thị Hoa",
        "Địa chỉ: Số 5, đường Hà Huy Tập, phường Thành Sen",
        "Nội dung yêu cầu giải quyết: Thủ tục cấp Giấy xác nhận tình trạng hôn nhân",
        "1 Tờ khai 1 0",  # the papers: name, originals, copies
        "3 ngày làm việc",
        "Thời gian nhận hồ sơ: 09 giờ 00 phút, ngày 04 tháng 05 năm 2026",
        # 3 working days from Monday 4 May 2026: Thursday.
        "Thời gian trả kết quả giải quyết hồ sơ: 17 giờ 00 phút, ngày 07 tháng 05 năm 2026",
        "NGƯỜI TIẾP NHẬN HỒ SƠ",
        "Nguyễn Văn An",  # the receiving official, named by their token
    ):
        assert line in text, (line, text)
    # The font travels with the PDF: a TrueType subset of DejaVu Sans, embedded.
    assert b"/FontFile2" in slip.pdf and b"DejaVuSans" in slip.pdf
    url = f"{env.http}/tra-cuu?ma={d.receipt_code}"
    assert qr_codes(slip.pdf) == [url]


async def test_the_slip_needs_an_accepted_dossier_and_an_official_of_its_agency(
    env: CitizenEnv,
) -> None:
    clerk = env.dossiers("ts-vt")
    from tests.services.dossiers.test_grpc import birth_registration

    d = (await clerk.SubmitDossier(birth_registration())).dossier
    await refused(
        clerk.GetReceiptSlip(pb.GetReceiptSlipRequest(dossier_id=d.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier
    await refused(
        env.dossiers("tp-vt").GetReceiptSlip(pb.GetReceiptSlipRequest(dossier_id=d.id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        clerk.GetReceiptSlip(pb.GetReceiptSlipRequest(dossier_id="nope")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_an_apology_gives_a_new_appointment_but_on_time_keeps_the_legal_one(
    env: CitizenEnv,
) -> None:
    d = await env.accepted()
    leader = env.dossiers("ts-ld")
    d = (await leader.StartProcessing(pb.StartProcessingRequest(
        dossier_id=d.id, handler_user_id="ts-cv"))).dossier  # fmt: skip
    env.advance(days=3)  # Thursday 7 May, the appointment: it will be missed
    events_before, history_before = len(env.events()), env.rows("dossier_history")
    r = await env.dossiers("ts-cv").IssueApology(pb.IssueApologyRequest(
        dossier_id=d.id, etag=d.etag, new_due_date="2026-05-12",
        reason="Cần xác minh thông tin hộ tịch tại nơi cư trú trước đây"))  # fmt: skip
    assert r.dossier.due_time == d.due_time  # the legal due date does not move
    assert r.dossier.rescheduled_due_time.ToDatetime().date().isoformat() == "2026-05-12"
    assert r.dossier.apology_reason.startswith("Cần xác minh")
    assert r.dossier.status == pb.DOSSIER_STATUS_IN_PROGRESS
    assert env.events()[events_before:] == [("DossierApologyIssued", d.receipt_code)]
    assert env.rows("dossier_history") == history_before + 1
    text = pdf_text(r.pdf)
    for line in (
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        "Thời gian hẹn trả kết quả giải quyết hồ sơ: 17 giờ 00 phút, ngày 07 tháng 05 năm 2026",
        "Lý do: Cần xác minh thông tin hộ tịch tại nơi cư trú trước đây",
        "hẹn lại thời gian trả kết quả vào 17 giờ 00 phút, ngày 12 tháng 05 năm 2026",
        "THỦ TRƯỞNG CƠ QUAN",
    ):
        assert line in text, (line, text)
    assert b"/FontFile2" in r.pdf
    again = await leader.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=d.id))
    assert pdf_text(again.pdf) == text
    # The citizen sees the new appointment.
    seen = await env.lookup().LookupDossier(
        pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")
    )
    assert seen.rescheduled_due_time == r.dossier.rescheduled_due_time
    assert seen.due_time == d.due_time
    # Processed on Monday 11 May, before the new appointment but after the legal one: late.
    env.advance(days=4)
    done = leader.CompleteProcessing(
        pb.CompleteProcessingRequest(dossier_id=d.id, result_number="1")
    )
    assert bad_request_fields(await refused(done, grpc.StatusCode.INVALID_ARGUMENT)) == ["comment"]
    done = await leader.CompleteProcessing(pb.CompleteProcessingRequest(
        dossier_id=d.id, result_number="1", comment="đã xin lỗi"))  # fmt: skip
    assert done.dossier.on_time is False


async def test_an_apology_is_refused_when_it_does_not_fit(env: CitizenEnv) -> None:
    from tests.services.dossiers.test_grpc import birth_registration

    leader, clerk = env.dossiers("ts-ld"), env.dossiers("ts-vt")
    submitted = (await clerk.SubmitDossier(birth_registration())).dossier
    d = await env.accepted()
    before = (len(env.events()), env.rows("dossier_history"))

    def apology(
        dossier_id: str = d.id, day: str = "2026-05-12", reason: str = "chậm"
    ) -> pb.IssueApologyRequest:
        return pb.IssueApologyRequest(dossier_id=dossier_id, new_due_date=day, reason=reason)

    await refused(leader.IssueApology(apology(submitted.id)), grpc.StatusCode.FAILED_PRECONDITION)
    for request, field in (
        (apology(day="2026-05-07"), "new_due_date"),  # not after the appointment
        (apology(day="2026-05-09"), "new_due_date"),  # a Saturday
        (apology(day="12/05/2026"), "new_due_date"),
        (apology(reason="  "), "reason"),
        (apology(reason="x" * 2001), "reason"),
        (apology(dossier_id=""), "dossier_id"),
    ):
        e = await refused(leader.IssueApology(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert bad_request_fields(e) == [field]
    await refused(clerk.IssueApology(apology()), grpc.StatusCode.PERMISSION_DENIED)
    await refused(env.dossiers("tp-vt").IssueApology(apology()), grpc.StatusCode.PERMISSION_DENIED)
    await refused(
        leader.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=d.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    stale = apology()
    stale.etag = "999"
    await refused(leader.IssueApology(stale), grpc.StatusCode.ABORTED)
    assert (len(env.events()), env.rows("dossier_history")) == before  # nothing stored
    returned = await env.returned()
    await refused(leader.IssueApology(apology(returned.id)), grpc.StatusCode.FAILED_PRECONDITION)


async def test_the_citizen_rates_once_after_the_return(env: CitizenEnv) -> None:
    lookup = env.lookup()
    d = await env.accepted()

    def rating(
        value: int, code: str = d.receipt_code, digits: str = "5678"
    ) -> pb.RateDossierRequest:
        return pb.RateDossierRequest(
            receipt_code=code,
            verification=digits,
            rating=value,  # type: ignore[arg-type]
        )

    await refused(
        lookup.RateDossier(rating(pb.SATISFACTION_RATING_SATISFIED)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    d = await env.returned()
    seen = await lookup.LookupDossier(
        pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="5678")
    )
    assert seen.can_rate and not seen.rating
    for bad in (0, 4, -1):
        e = await refused(
            lookup.RateDossier(rating(bad, d.receipt_code)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert bad_request_fields(e) == ["rating"]
    await refused(lookup.RateDossier(rating(3, d.receipt_code, "0000")), grpc.StatusCode.NOT_FOUND)
    before = len(env.events())
    r = await lookup.RateDossier(rating(pb.SATISFACTION_RATING_VERY_SATISFIED, d.receipt_code))
    assert r.dossier.rating == pb.SATISFACTION_RATING_VERY_SATISFIED
    assert not r.dossier.can_rate
    assert env.events()[before:] == [("DossierRated", d.receipt_code)]
    # Once: a second rating is refused, the first stays.
    await refused(
        lookup.RateDossier(rating(pb.SATISFACTION_RATING_NOT_SATISFIED, d.receipt_code)),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    got = await env.dossiers("ts-vt").GetDossier(pb.GetDossierRequest(id=d.id))
    assert got.dossier.rating == pb.SATISFACTION_RATING_VERY_SATISFIED
    assert got.dossier.HasField("rating_time")
    assert len(env.events()) == before + 1


async def test_someone_elses_receipt_code_locks_after_wrong_digits(env: CitizenEnv) -> None:
    lookup = env.lookup()
    d = await env.accepted()
    other = f"{THANH_SEN}-260504-0099"

    async def ask(code: str, digits: str) -> grpc.aio.AioRpcError:
        call = lookup.LookupDossier(pb.LookupDossierRequest(receipt_code=code, verification=digits))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        return e.value

    unknown, wrong = await ask(other, "1234"), await ask(d.receipt_code, "9999")
    assert unknown.code() == wrong.code() == grpc.StatusCode.NOT_FOUND
    assert unknown.details() == wrong.details()  # not told apart
    for _ in range(VERIFY_FAILURES - 1):  # the 9999 above was the first
        assert (await ask(d.receipt_code, "0001")).code() == grpc.StatusCode.NOT_FOUND
    # Locked now, the right digits too (else the lock would tell when a guess was right).
    locked = await ask(d.receipt_code, "1234")
    assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _retry_delay(locked) > 3600
    # Other dossiers are not affected.
    other_d = await env.accepted()
    ok = await lookup.LookupDossier(
        pb.LookupDossierRequest(receipt_code=other_d.receipt_code, verification="1234")
    )
    assert ok.status == pb.DOSSIER_STATUS_ACCEPTED
    # Nothing personal in the answer.
    assert "Nguyễn" not in str(ok) and "042195" not in str(ok) and "0912" not in str(ok)


async def test_malformed_lookups_name_the_field(env: CitizenEnv) -> None:
    lookup = env.lookup()
    for code, digits, field in (
        ("<script>alert(1)</script>", "1234", "receipt_code"),
        ("x" * 10_000, "1234", "receipt_code"),
        (f"{THANH_SEN}-260504-0001", "12345", "verification"),
        (f"{THANH_SEN}-260504-0001", "١٢٣٤", "verification"),  # Arabic-Indic digits
    ):
        e = await refused(
            lookup.LookupDossier(pb.LookupDossierRequest(receipt_code=code, verification=digits)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert bad_request_fields(e) == [field]


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    async for e in start(tmp_path, lookup_per_minute="1", lookup_burst="2"):
        yield e


async def test_the_lookup_is_rate_limited_per_peer(tight: CitizenEnv) -> None:
    lookup = tight.lookup()
    d = await tight.accepted()
    request = pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")
    for _ in range(2):
        await lookup.LookupDossier(request)
    e = await refused(lookup.LookupDossier(request), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert 0 < _retry_delay(e) <= 60
    # The rating shares the bucket.
    await refused(
        lookup.RateDossier(pb.RateDossierRequest(receipt_code=d.receipt_code, verification="1234",
                                                 rating=pb.SATISFACTION_RATING_SATISFIED)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )  # fmt: skip


def _retry_delay(e: grpc.aio.AioRpcError) -> float:
    for key, value in e.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info.retry_delay.ToTimedelta().total_seconds()
    return 0.0
