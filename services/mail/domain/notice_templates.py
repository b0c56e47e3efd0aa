"""The notices the platform mails, in Vietnamese: one function per notice, returning its
subject and plain-text body (NFC). Text that came from elsewhere (a document's subject, a
reason, a name, an incoming mail's subject) is put on one line and cut, so it can never add a
header or a forged paragraph; a document's content is never quoted, only its number, subject
and deadline.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from lgsp.workdays import PROVINCE_TZ

FOOTER = "Thư này được gửi tự động từ {sender}; vui lòng không trả lời thư này."
_SPACES = re.compile(r"[\s\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str


def one_line(text: str, limit: int = 200) -> str:
    """`text` without line breaks or control characters, cut to `limit` characters."""
    flat = _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def day(d: date | str) -> str:
    """dd/mm/yyyy, the way Vietnamese administrative texts write dates ("" stays "")."""
    if isinstance(d, str):
        if not d:
            return ""
        d = date.fromisoformat(d)
    return d.strftime("%d/%m/%Y")


def moment(t: datetime) -> str:
    return t.astimezone(PROVINCE_TZ).strftime("%H:%M ngày %d/%m/%Y")


def money(vnd: int) -> str:
    return f"{vnd:,}".replace(",", ".") + " đồng"


def _notice(subject: str, lines: Sequence[str], sender: str) -> Notice:
    body = "\n".join([*lines, "", FOOTER.format(sender=sender), ""])
    return Notice(
        unicodedata.normalize("NFC", one_line(subject, 250)), unicodedata.normalize("NFC", body)
    )


def _fields(pairs: Sequence[tuple[str, str]]) -> list[str]:
    return [f"- {label}: {value}" for label, value in pairs if value]


# --- documents ------------------------------------------------------------------------------


def document_received(
    *,
    agency_name: str,
    number_notation: str,
    subject: str,
    sender_agency_name: str,
    arrival_number: int,
    due_date: str,
    confidential: bool,
    sender: str,
) -> Notice:
    number = one_line(number_notation, 100) or "(chưa có số)"
    lines = [
        f"Kính gửi: Văn thư {one_line(agency_name)},",
        "",
        "Cơ quan vừa nhận một văn bản đến:",
        *_fields(
            [
                ("Số, ký hiệu", number),
                ("Cơ quan ban hành", one_line(sender_agency_name)),
                ("Trích yếu", "(văn bản mật)" if confidential else one_line(subject, 500)),
                ("Số đến", str(arrival_number) if arrival_number else ""),
                ("Hạn xử lý", day(due_date)),
            ]
        ),
        "",
        "Đề nghị vào Hệ thống quản lý văn bản để xử lý văn bản đến theo quy định.",
    ]
    return _notice(f"Văn bản đến mới: {number}", lines, sender)


def document_assigned(
    *,
    name: str,
    lead: bool,
    number_notation: str,
    subject: str,
    due_date: str,
    comment: str,
    confidential: bool,
    sender: str,
) -> Notice:
    number = one_line(number_notation, 100) or "(chưa có số)"
    what = "chủ trì xử lý" if lead else "phối hợp xử lý"
    lines = [
        f"Kính gửi: {one_line(name)},",
        "",
        f"Đồng chí được giao {what} văn bản:",
        *_fields(
            [
                ("Số, ký hiệu", number),
                ("Trích yếu", "(văn bản mật)" if confidential else one_line(subject, 500)),
                ("Hạn xử lý", day(due_date)),
                ("Ý kiến chỉ đạo", "" if confidential else one_line(comment, 500)),
            ]
        ),
        "",
        "Đề nghị vào Hệ thống quản lý văn bản để xem và xử lý.",
    ]
    return _notice(f"Văn bản được giao {what}: {number}", lines, sender)


# --- directive tasks ------------------------------------------------------------------------


def task_nearing(*, description: str, due_date: str, days_left: int, sender: str) -> Notice:
    task = one_line(description, 150)
    lines = [
        "Nhiệm vụ được giao sắp đến hạn:",
        *_fields(
            [
                ("Nội dung", one_line(description, 500)),
                ("Hạn hoàn thành", day(due_date)),
                (
                    "Còn lại",
                    f"{days_left} ngày làm việc" if days_left > 0 else "hết hạn trong hôm nay",
                ),
            ]
        ),
        "",
        "Đề nghị khẩn trương hoàn thành và báo cáo kết quả trên Hệ thống quản lý văn bản.",
    ]
    return _notice(f"Nhiệm vụ sắp đến hạn: {task}", lines, sender)


def task_overdue(*, description: str, due_date: str, sender: str) -> Notice:
    task = one_line(description, 150)
    lines = [
        "Nhiệm vụ được giao đã quá hạn mà chưa được báo cáo hoàn thành:",
        *_fields([("Nội dung", one_line(description, 500)), ("Hạn hoàn thành", day(due_date))]),
        "",
        "Đề nghị báo cáo tiến độ, kết quả thực hiện trên Hệ thống quản lý văn bản.",
    ]
    return _notice(f"Nhiệm vụ quá hạn: {task}", lines, sender)


# --- dossiers (to the citizen) --------------------------------------------------------------

# Status number → (subject after the receipt code, the paragraph saying what happened).
DOSSIER_NOTICES = {
    2: ("đã được tiếp nhận", "Hồ sơ của Ông/Bà đã được tiếp nhận và đang được giải quyết."),
    3: ("bị từ chối tiếp nhận", "Hồ sơ của Ông/Bà không được tiếp nhận."),
    5: (
        "cần bổ sung giấy tờ",
        "Hồ sơ của Ông/Bà cần được bổ sung, hoàn thiện. Thời hạn giải quyết tạm dừng "
        "cho đến khi nhận đủ hồ sơ bổ sung.",
    ),
    6: ("đề nghị nộp phí, lệ phí", "Đề nghị Ông/Bà nộp phí, lệ phí để hồ sơ được giải quyết."),
    8: ("bị dừng giải quyết", "Việc giải quyết hồ sơ của Ông/Bà đã bị dừng."),
    9: (
        "đã có kết quả",
        "Hồ sơ của Ông/Bà đã được giải quyết xong. Kết quả đang chờ trả tại Bộ phận Một cửa "
        "hoặc theo hình thức Ông/Bà đã đăng ký.",
    ),
}


def dossier_status(
    *,
    status: int,
    receipt_code: str,
    applicant_name: str,
    reason: str,
    due_time: datetime | None,
    fee_vnd: int,
    payment_url: str,
    lookup_url: str,
    sender: str,
) -> Notice:
    """The citizen's notice of a status (DOSSIER_NOTICES names the statuses that have one)."""
    what, paragraph = DOSSIER_NOTICES[status]
    code = one_line(receipt_code, 60)
    details: list[tuple[str, str]] = [("Mã hồ sơ", code)]
    if status == 2 and due_time is not None:
        details.append(("Ngày hẹn trả kết quả", moment(due_time)))
    if status in (3, 5, 8):
        details.append(("Lý do" if status != 5 else "Nội dung cần bổ sung", one_line(reason, 500)))
    if status == 6:
        details.append(("Số tiền", money(fee_vnd) if fee_vnd else ""))
        details.append(
            ("Nộp trực tuyến tại", one_line(payment_url, 500))
            if payment_url
            else ("Nơi nộp", "Bộ phận Một cửa nơi Ông/Bà nộp hồ sơ")
        )
    lines = [
        f"Kính gửi Ông/Bà {one_line(applicant_name) or 'người nộp hồ sơ'},",
        "",
        paragraph,
        *_fields(details),
        "",
        *_lookup(lookup_url, code),
    ]
    return _notice(f"Hồ sơ {code} {what}", lines, sender)


def dossier_apology(
    *,
    receipt_code: str,
    applicant_name: str,
    reason: str,
    rescheduled: datetime | None,
    lookup_url: str,
    sender: str,
) -> Notice:
    code = one_line(receipt_code, 60)
    lines = [
        f"Kính gửi Ông/Bà {one_line(applicant_name) or 'người nộp hồ sơ'},",
        "",
        "Cơ quan giải quyết chân thành xin lỗi Ông/Bà vì hồ sơ không được trả kết quả đúng hẹn.",
        *_fields(
            [
                ("Mã hồ sơ", code),
                ("Lý do", one_line(reason, 500)),
                ("Ngày hẹn trả kết quả mới", moment(rescheduled) if rescheduled else ""),
            ]
        ),
        "",
        *_lookup(lookup_url, code),
    ]
    return _notice(f"Thư xin lỗi về việc trễ hẹn trả kết quả hồ sơ {code}", lines, sender)


def _lookup(url: str, code: str) -> list[str]:
    if not url:
        return []
    return [f"Tra cứu tình trạng hồ sơ tại: {url}?ma={quote(code, safe='')}"]


# --- agency mailboxes -----------------------------------------------------------------------


def agency_mail(
    *, mailbox_name: str, mailbox_address: str, from_text: str, subject: str, sender: str
) -> Notice:
    lines = [
        f"Hộp thư {one_line(mailbox_name)} <{mailbox_address}> vừa nhận một thư mới:",
        *_fields(
            [
                ("Người gửi", one_line(from_text)),
                ("Tiêu đề", one_line(subject, 300) or "(không có)"),
            ]
        ),
        "",
        "Đồng chí là văn thư của cơ quan: mở hộp thư của cơ quan để xem và xử lý thư.",
    ]
    return _notice(
        f"Thư mới gửi {one_line(mailbox_name, 100)}: {one_line(subject, 120)}", lines, sender
    )


# --- the daily digest -----------------------------------------------------------------------


def digest(*, on: date, items: Sequence[tuple[str, str]], sender: str) -> Notice:
    """One message of the day's held notices (subject, body each)."""
    lines = [f"Tổng hợp {len(items)} thông báo của Hệ thống ngày {day(on)}:", ""]
    for i, (subject, body) in enumerate(items, 1):
        text = body.split("\n\n" + FOOTER.format(sender=sender))[0].rstrip()
        lines += [f"{i}. {subject}", "", text, "", "-" * 40, ""]
    return _notice(f"Tổng hợp thông báo ngày {day(on)} ({len(items)} thông báo)", lines, sender)
