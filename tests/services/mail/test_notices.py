"""Notices from events on the running mail service: real envelopes published on its bus and
handled by its "mail-notices" consumer; the mailbox content they leave (subject, body,
related ids), nothing twice for a redelivered event; citizens' addresses checked; the task
reminders and the daily digest with a fake clock; the owner's daily_digest switch."""

from __future__ import annotations

import asyncio
import email
import logging
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import events_pb2 as dev
from lgsp.api.dossiers.v1 import dossiers_pb2 as spb
from lgsp.api.dossiers.v1 import events_pb2 as sev
from lgsp.api.mail.v1 import mail_pb2 as pb
from services.mail.domain import notice_templates as texts
from services.mail.domain.citizen_address import citizen_address
from services.mail.service_layer.notice_events import GROUP
from tests.services.mail.env import HEALTH, JUSTICE, MailEnv, mail_env
from tests.services.mail.notice_support import envelope, inbox, outgoing, publish, settle

LOOKUP = "https://dichvucong.hatinh.gov.vn/tra-cuu"
SENDER = "thongbao@hatinh.gov.vn"
CODE = "000.00.12.H27-270315-0007"
MANUAL = {"notices_interval": 0}  # reminders and digests run when a test calls them


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path, options=MANUAL, LGSP_MAIL_DOSSIER_LOOKUP_URL=LOOKUP) as e:
        yield e


def body(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    part = msg.get_body(("plain",))
    assert part is not None
    text = part.get_content().replace("\r\n", "\n")
    assert unicodedata.is_normalized("NFC", text)
    return str(text)


def at(y: int, m: int, d: int, hour: int = 9, minute: int = 0) -> datetime:
    """A moment given in province time (UTC+7)."""
    return datetime(y, m, d, hour, minute, tzinfo=texts.PROVINCE_TZ).astimezone(UTC)


# --- the texts, exactly ---------------------------------------------------------------------


def test_the_fee_notice_reads_exactly() -> None:
    n = texts.dossier_status(
        status=spb.DOSSIER_STATUS_FEE_REQUESTED,
        receipt_code=CODE,
        applicant_name="Lê Thị Hoa",
        reason="",
        due_time=None,
        fee_vnd=150000,
        payment_url="https://thanhtoan.dichvucong.gov.vn/p/abc",
        lookup_url=LOOKUP,
        sender="Hệ thống LGSP tỉnh Hà Tĩnh",
    )
    assert n.subject == "Hồ sơ 000.00.12.H27-270315-0007 đề nghị nộp phí, lệ phí"
    assert n.body == (
        "Kính gửi Ông/Bà Lê Thị Hoa,\n"
        "\n"
        "Đề nghị Ông/Bà nộp phí, lệ phí để hồ sơ được giải quyết.\n"
        "- Mã hồ sơ: 000.00.12.H27-270315-0007\n"
        "- Số tiền: 150.000 đồng\n"
        "- Nộp trực tuyến tại: https://thanhtoan.dichvucong.gov.vn/p/abc\n"
        "\n"
        "Tra cứu tình trạng hồ sơ tại: "
        "https://dichvucong.hatinh.gov.vn/tra-cuu?ma=000.00.12.H27-270315-0007\n"
        "\n"
        "Thư này được gửi tự động từ Hệ thống LGSP tỉnh Hà Tĩnh; vui lòng không trả lời thư này.\n"
    )
    for text in (n.subject, n.body):
        assert unicodedata.is_normalized("NFC", text)


def test_texts_are_nfc_and_outside_text_stays_on_one_line() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn An")
    n = texts.document_assigned(
        name=decomposed,
        lead=True,
        number_notation="123/QĐ-UBND",
        subject="Về việc\r\nBcc: x@y cải cách",
        due_date="2027-03-17",
        comment="Giao Phòng HCTP\nchủ trì",
        confidential=False,
        sender="Hệ thống LGSP tỉnh Hà Tĩnh",
    )
    assert n.subject == "Văn bản được giao chủ trì xử lý: 123/QĐ-UBND"
    assert n.body.splitlines()[:7] == [
        "Kính gửi: Nguyễn Văn An,",
        "",
        "Đồng chí được giao chủ trì xử lý văn bản:",
        "- Số, ký hiệu: 123/QĐ-UBND",
        "- Trích yếu: Về việc Bcc: x@y cải cách",
        "- Hạn xử lý: 17/03/2027",
        "- Ý kiến chỉ đạo: Giao Phòng HCTP chủ trì",
    ]
    assert unicodedata.is_normalized("NFC", n.body)
    secret = texts.document_received(
        agency_name="Sở Tư pháp",
        number_notation="7/CV-CA",
        subject="Kế hoạch bảo vệ",
        sender_agency_name="Công an tỉnh",
        arrival_number=5,
        due_date="",
        confidential=True,
        sender="S",
    )
    assert "Kế hoạch" not in secret.body and "- Trích yếu: (văn bản mật)" in secret.body


@pytest.mark.parametrize(
    "given",
    ["a@b.c\r\nBcc: x@y", "a@b.c\nBcc: x@y", " a@b.vn", "a@b.vn\x00", "Lê <a@b.vn>", "a@@b.vn",
     "a@b", "\"a b\"@b.vn", "a@[127.0.0.1]", "a" * 65 + "@b.vn", "ngườidân@b.vn", ""],
)  # fmt: skip
def test_only_a_plain_citizen_address_is_written_to(given: str) -> None:
    assert citizen_address(given) is None
    assert citizen_address("Hoa.Le_88@Gmail.com") == "hoa.le_88@gmail.com"


# --- documents ------------------------------------------------------------------------------


async def test_a_received_document_tells_the_clerks_once(env: MailEnv) -> None:
    clerk = env.add_official("u-clerk", "Phạm Thị Thu", JUSTICE, roles=("clerk",))
    other = env.add_official("u-spec", "Nguyễn Văn An", JUSTICE)
    health_clerk = env.add_official("u-hclerk", "Lê Văn Tâm", HEALTH, roles=("clerk",))
    doc = dpb.Document(
        id="doc-1",
        agency_code=JUSTICE,
        direction=dpb.DIRECTION_INCOMING,
        number_notation="123/QĐ-UBND",
        subject="Về việc triển khai cải cách hành chính năm 2027",
        sender_agency_name="Ủy ban nhân dân tỉnh Hà Tĩnh",
        arrival_number=15,
        due_date="2027-03-17",
    )
    event = envelope(dev.DocumentReceived(document=doc), "documents", doc.id)
    await publish(env, event)
    await publish(env, event)  # delivered twice
    await settle(env, GROUP, 2)
    [m] = inbox(env, clerk)
    assert m["subject"] == "Văn bản đến mới: 123/QĐ-UBND"
    assert m["sender"] == SENDER and m["document"] == "doc-1"
    text = body(m["raw"])
    assert "- Trích yếu: Về việc triển khai cải cách hành chính năm 2027\n" in text
    assert "- Cơ quan ban hành: Ủy ban nhân dân tỉnh Hà Tĩnh\n" in text
    assert "- Số đến: 15\n- Hạn xử lý: 17/03/2027\n" in text
    assert b"Auto-Submitted: auto-generated" in m["raw"]
    assert inbox(env, other) == [] and inbox(env, health_clerk) == []
    assert env.runtime.processors[GROUP].counts["duplicate"] == 1

    # Assigned: the handler leads, the co-handler cooperates; number and deadline named.
    assigned = dev.DocumentAssigned(
        document_id="doc-1",
        agency_code=JUSTICE,
        handler_user_id="u-spec",
        co_handler_user_ids=["u-clerk", "u-spec"],
        due_date="2027-03-20",
        comment="Đề nghị tham mưu văn bản triển khai.",
    )
    event = envelope(assigned, "documents", "doc-1")
    await publish(env, event)
    await publish(env, event)
    await settle(env, GROUP, 4)
    [lead] = inbox(env, other)
    assert lead["subject"] == "Văn bản được giao chủ trì xử lý: 123/QĐ-UBND"
    assert lead["document"] == "doc-1"
    text = body(lead["raw"])
    assert text.startswith("Kính gửi: Nguyễn Văn An,\n")
    assert "- Hạn xử lý: 20/03/2027\n" in text
    assert "- Ý kiến chỉ đạo: Đề nghị tham mưu văn bản triển khai.\n" in text
    co = inbox(env, clerk)[-1]
    assert co["subject"] == "Văn bản được giao phối hợp xử lý: 123/QĐ-UBND"
    assert len(inbox(env, clerk)) == 2  # the handler listed again as co-handler: one notice


# --- dossiers -------------------------------------------------------------------------------


def changed(to: int, email_: str, **more: object) -> sev.DossierStatusChanged:
    due = Timestamp()
    due.FromDatetime(at(2027, 3, 20, 17))
    return sev.DossierStatusChanged(
        dossier_id="d-7",
        receipt_code=CODE,
        agency_code=JUSTICE,
        from_status=spb.DOSSIER_STATUS_SUBMITTED,
        to_status=to,  # type: ignore[arg-type]
        applicant_name="Lê Thị Hoa",
        applicant_email=email_,
        due_time=due,
        **more,  # type: ignore[arg-type]
    )


async def test_a_dossier_status_reaches_the_citizen_through_the_queue_or_locally(
    env: MailEnv, caplog: pytest.LogCaptureFixture
) -> None:
    local = env.add_official("u-hoa", "Lê Thị Hoa", HEALTH)
    sent = [
        changed(spb.DOSSIER_STATUS_ACCEPTED, "Hoa.Le_88@Gmail.com"),
        changed(spb.DOSSIER_STATUS_FEE_REQUESTED, local, fee_vnd=150000),
        changed(spb.DOSSIER_STATUS_IN_PROGRESS, "hoa@example.org"),  # no notice for it
        changed(spb.DOSSIER_STATUS_PROCESSED, ""),  # no address: nothing
        changed(spb.DOSSIER_STATUS_REFUSED, "a@b.c\r\nBcc: x@y", reason="Thiếu tờ khai"),
        changed(spb.DOSSIER_STATUS_STOPPED, "Lê Hoa <hoa@example.org>"),
        changed(spb.DOSSIER_STATUS_STOPPED, "o'brien@[127.0.0.1]"),
    ]
    first = envelope(sent[0], "dossiers", CODE)
    with caplog.at_level(logging.WARNING, logger="services.mail.notices"):
        await publish(env, first)
        for e in sent[1:]:
            await publish(env, envelope(e, "dossiers", CODE))
        await publish(env, first)  # redelivered
        await settle(env, GROUP, len(sent) + 1)
    [(mail_from, rcpt, raw)] = outgoing(env)
    assert (mail_from, rcpt) == (SENDER, "hoa.le_88@gmail.com")
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == f"Hồ sơ {CODE} đã được tiếp nhận"
    assert msg["To"] == "Lê Thị Hoa <hoa.le_88@gmail.com>" and msg["Bcc"] is None
    assert msg["Auto-Submitted"] == "auto-generated"
    text = body(raw)
    assert "- Ngày hẹn trả kết quả: 17:00 ngày 20/03/2027\n" in text
    assert f"Tra cứu tình trạng hồ sơ tại: {LOOKUP}?ma={CODE}\n" in text
    [fee] = inbox(env, local)
    assert fee["subject"] == f"Hồ sơ {CODE} đề nghị nộp phí, lệ phí"
    assert fee["receipt"] == CODE and "- Số tiền: 150.000 đồng\n" in body(fee["raw"])
    assert "- Nơi nộp: Bộ phận Một cửa nơi Ông/Bà nộp hồ sơ\n" in body(fee["raw"])
    # The hostile and the display-name addresses were skipped with a warning, nothing sent.
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3 and all("not a plain mail address" in w for w in warned)
    assert env.rows("outgoing") == 1 and env.rows("messages") == 1


async def test_an_apology_tells_the_new_appointment(env: MailEnv) -> None:
    new = Timestamp()
    new.FromDatetime(at(2027, 3, 25, 17))
    apology = sev.DossierApologyIssued(
        dossier_id="d-7",
        receipt_code=CODE,
        agency_code=JUSTICE,
        reason="Cần xác minh thêm thông tin đất đai",
        applicant_name="Lê Thị Hoa",
        applicant_email="hoa@example.org",
        rescheduled_due_time=new,
    )
    await publish(env, envelope(apology, "dossiers", CODE))
    await settle(env, GROUP, 1)
    [(_, rcpt, raw)] = outgoing(env)
    assert rcpt == "hoa@example.org"
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == f"Thư xin lỗi về việc trễ hẹn trả kết quả hồ sơ {CODE}"
    text = body(raw)
    assert "- Lý do: Cần xác minh thêm thông tin đất đai\n" in text
    assert "- Ngày hẹn trả kết quả mới: 17:00 ngày 25/03/2027\n" in text


# --- directive tasks ------------------------------------------------------------------------


def task(
    task_id: str, due: str, user: str = "", agency: str = JUSTICE
) -> dev.DirectiveTaskAssigned:
    return dev.DirectiveTaskAssigned(
        task=dpb.DirectiveTask(
            id=task_id,
            document_id="doc-9",
            description=f"Báo cáo kết quả cải cách hành chính ({task_id})",
            assignee_agency_code=agency,
            assignee_user_id=user,
            due_date=due,
            status=dpb.TASK_STATUS_OPEN,
        )
    )


async def test_task_reminders_nearing_then_overdue_each_once(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    clerk = env.add_official("u-clerk", "Phạm Thị Thu", JUSTICE, roles=("clerk",))
    await publish(env, envelope(task("t-wed", "2027-03-17", "u-an"), "documents", "doc-9"))
    await publish(env, envelope(task("t-mon", "2027-03-22"), "documents", "doc-9"))  # agency
    await publish(env, envelope(task("t-done", "2027-03-17", "u-an"), "documents", "doc-9"))
    done = dev.DirectiveTaskStatusChanged(
        task_id="t-done",
        document_id="doc-9",
        from_status=dpb.TASK_STATUS_OPEN,
        to_status=dpb.TASK_STATUS_DONE,
    )
    await publish(env, envelope(done, "documents", "doc-9"))
    await settle(env, GROUP, 4)
    app = env.app

    def on(moment: datetime) -> int:
        app.clock = lambda: moment
        return app.remind_tasks()

    assert on(at(2027, 3, 15)) == 0  # Monday: Wednesday's deadline is 2 working days away
    assert on(at(2027, 3, 16)) == 1  # Tuesday: 1 working day → "sắp đến hạn"
    assert on(at(2027, 3, 16, 15)) == 0  # once
    [nearing] = inbox(env, an)
    assert nearing["subject"] == (
        "Nhiệm vụ sắp đến hạn: Báo cáo kết quả cải cách hành chính (t-wed)"
    )
    assert nearing["document"] == "doc-9"
    assert "- Hạn hoàn thành: 17/03/2027\n- Còn lại: 1 ngày làm việc\n" in body(nearing["raw"])
    assert on(at(2027, 3, 17, 16)) == 0  # the deadline day itself: not overdue yet
    # Thursday: Wednesday's task is overdue; Monday's (the agency's) is 2 working days away.
    assert on(at(2027, 3, 18)) == 1
    assert inbox(env, an)[-1]["subject"] == (
        "Nhiệm vụ quá hạn: Báo cáo kết quả cải cách hành chính (t-wed)"
    )
    # Friday: Monday's deadline is one working day away (the weekend does not count); the
    # agency's task goes to its clerk.
    assert on(at(2027, 3, 19)) == 1
    assert inbox(env, clerk)[-1]["subject"].startswith("Nhiệm vụ sắp đến hạn: ")
    assert on(at(2027, 3, 30)) == 1  # Monday's overdue; Wednesday's said everything
    assert on(at(2027, 4, 2)) == 0
    assert len(inbox(env, an)) == 2 and len(inbox(env, clerk)) == 2  # t-done: nothing


# --- the daily digest -----------------------------------------------------------------------


async def test_the_daily_digest_is_held_sent_once_at_the_hour_and_not_after_a_restart(
    tmp_path: Path,
) -> None:
    async with mail_env(tmp_path, options=MANUAL) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        env.add_official("u-binh", "Trần Thị Bình", JUSTICE)
        stub = env.stub()
        mine = (
            await stub.GetMailbox(pb.GetMailboxRequest(address=an), metadata=env.md("u-an"))
        ).mailbox
        assert not mine.daily_digest
        choose = pb.UpdateMailboxRequest(
            mailbox=pb.Mailbox(address=an, daily_digest=True, quota_bytes=1, etag=mine.etag),
            update_mask=FieldMask(paths=["daily_digest"]),
        )
        # Anyone else, and the owner for any other field: refused.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.UpdateMailbox(choose, metadata=env.md("u-binh"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        quota = pb.UpdateMailboxRequest(
            mailbox=pb.Mailbox(address=an, quota_bytes=1),
            update_mask=FieldMask(paths=["quota_bytes"]),
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.UpdateMailbox(quota, metadata=env.md("u-an"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        both = pb.UpdateMailboxRequest(
            mailbox=pb.Mailbox(address=an, daily_digest=True, quota_bytes=1),
            update_mask=FieldMask(paths=["daily_digest", "quota_bytes"]),
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.UpdateMailbox(both, metadata=env.md("u-an"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        done = (await stub.UpdateMailbox(choose, metadata=env.md("u-an"))).mailbox
        assert done.daily_digest and done.quota_bytes != 1  # only the field named

        for n in (1, 2):
            assigned = dev.DocumentAssigned(
                document_id=f"doc-{n}", agency_code=JUSTICE, handler_user_id="u-an"
            )
            await publish(env, envelope(assigned, "documents", f"doc-{n}"))
        await settle(env, GROUP, 2)
        assert inbox(env, an) == [] and env.rows("digest_items") == 2
        app = env.app
        app.clock = lambda: at(2027, 3, 16, 6, 59)
        assert app.send_digests() == 0  # before [mail] digest_hour (7, province time)
        app.clock = lambda: at(2027, 3, 16, 7, 0)
        assert app.send_digests() == 1
        assert app.send_digests() == 0
        [digest] = inbox(env, an)
        assert digest["subject"] == "Tổng hợp thông báo ngày 16/03/2027 (2 thông báo)"
        text = body(digest["raw"])
        assert text.startswith("Tổng hợp 2 thông báo của Hệ thống ngày 16/03/2027:\n\n1. ")
        assert "\n2. Văn bản được giao chủ trì xử lý: (chưa có số)\n" in text
        assert text.count("vui lòng không trả lời thư này") == 1
        # Held later that day: waits for tomorrow's digest.
        late = dev.DocumentAssigned(
            document_id="doc-3", agency_code=JUSTICE, handler_user_id="u-an"
        )
        await publish(env, envelope(late, "documents", "doc-3"))
        await settle(env, GROUP, 3)
        assert env.rows("digest_items") == 1

    async with mail_env(tmp_path, options=MANUAL) as env:  # restarted, same day
        env.app.clock = lambda: at(2027, 3, 16, 20, 0)
        assert env.app.send_digests() == 0
        env.app.clock = lambda: at(2027, 3, 17, 8, 0)
        assert env.app.send_digests() == 1
        assert env.app.send_digests() == 0
        assert len(inbox(env, an)) == 2 and env.rows("digest_items") == 0
        assert env.app.send_digests() == 0  # nothing held: nothing sent


async def test_the_service_runs_reminders_and_digests_itself(tmp_path: Path) -> None:
    """The periodic job as bootstrap wires it, on the service's (injected) clock."""
    now = at(2027, 3, 16, 8, 0)
    options = {"notices_interval": 0.05, "clock": lambda: now}
    async with mail_env(tmp_path, options=options) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        await publish(env, envelope(task("t-1", "2027-03-17", "u-an"), "documents", "doc-9"))
        await settle(env, GROUP, 1)
        for _ in range(100):
            if inbox(env, an):
                break
            await asyncio.sleep(0.05)
        [reminder] = inbox(env, an)
        assert reminder["subject"].startswith("Nhiệm vụ sắp đến hạn: ")
        await asyncio.sleep(0.3)  # more rounds: still one
        assert len(inbox(env, an)) == 1
