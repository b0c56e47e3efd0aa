"""The public lookup page's HTML (Vietnamese, no script, one inline style allowed by its hash):
the form, the answer (what LookupDossierResponse carries and nothing more), the rating form,
and the refusals. Every value is escaped."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.workdays import PROVINCE_TZ

_STYLE = """
body{font-family:system-ui,"Segoe UI",Roboto,sans-serif;background:#f3f5f8;margin:0;color:#222}
main{max-width:34rem;margin:1rem auto;background:#fff;padding:1.25rem;border-radius:8px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}h1{font-size:1.25rem;color:#a50e0e;margin:0 0 .5rem}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input,select{width:100%;padding:.6rem;box-sizing:border-box;border:1px solid #bbb;
border-radius:4px;font-size:1rem}input[type=radio]{width:auto}button{margin-top:1rem;width:100%;padding:.7rem;
background:#a50e0e;color:#fff;border:0;border-radius:4px;font-size:1rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem .75rem}dt{font-weight:600}dd{margin:0}
.err{background:#fdecea;color:#8a1c1c;padding:.6rem;border-radius:4px}
.note{background:#eef6ee;padding:.6rem;border-radius:4px}small{color:#555}
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

MAX_CODE = 60  # a receipt code is at most 35 + 12 characters

STATUS = {
    pb.DOSSIER_STATUS_SUBMITTED: "Mới tiếp nhận, đang kiểm tra",
    pb.DOSSIER_STATUS_ACCEPTED: "Đã tiếp nhận",
    pb.DOSSIER_STATUS_REFUSED: "Từ chối tiếp nhận",
    pb.DOSSIER_STATUS_IN_PROGRESS: "Đang giải quyết",
    pb.DOSSIER_STATUS_SUPPLEMENT_REQUESTED: "Chờ bổ sung hồ sơ",
    pb.DOSSIER_STATUS_FEE_REQUESTED: "Chờ nộp phí, lệ phí",
    pb.DOSSIER_STATUS_WITHDRAWN: "Đã rút hồ sơ",
    pb.DOSSIER_STATUS_STOPPED: "Dừng giải quyết",
    pb.DOSSIER_STATUS_PROCESSED: "Đã có kết quả, chờ trả",
    pb.DOSSIER_STATUS_RESULT_RETURNED: "Đã trả kết quả",
}
RATINGS = (
    (pb.SATISFACTION_RATING_VERY_SATISFIED, "Rất hài lòng"),
    (pb.SATISFACTION_RATING_SATISFIED, "Hài lòng"),
    (pb.SATISFACTION_RATING_NOT_SATISFIED, "Không hài lòng"),
)

# What each refusal says to the citizen (the same words for an unknown code and wrong digits).
MESSAGES = {
    "not_found": (
        "Không tìm thấy hồ sơ với mã hồ sơ và số xác minh đã nhập. Vui lòng kiểm tra lại mã "
        "trên giấy tiếp nhận và 4 số cuối của số định danh cá nhân hoặc số điện thoại."
    ),
    "invalid": "Mã hồ sơ hoặc số xác minh không đúng định dạng.",
    "csrf": "Phiên làm việc đã hết hạn. Vui lòng tải lại trang và nhập lại.",
    "locked": (
        "Mã hồ sơ này bị tạm khóa tra cứu do nhập sai số xác minh quá nhiều lần. Vui lòng thử "
        "lại sau hoặc liên hệ Bộ phận Một cửa."
    ),
    "too_many": "Quá nhiều yêu cầu từ địa chỉ của bạn. Vui lòng thử lại sau ít phút.",
    "too_large": "Yêu cầu quá lớn.",
    "rated": "Hồ sơ này đã được đánh giá. Mỗi hồ sơ chỉ được đánh giá một lần.",
    "not_returned": "Chỉ đánh giá được sau khi đã nhận kết quả giải quyết hồ sơ.",
    "rating": "Vui lòng chọn một mức đánh giá.",
}


def _page(body: str) -> str:
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Tra cứu hồ sơ thủ tục hành chính</title><style>{_STYLE}</style></head>
<body><main>
<h1>Tra cứu hồ sơ thủ tục hành chính</h1>
{body}
</main></body></html>"""


def form_page(csrf: str, code: str = "", error: str = "") -> str:
    err = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return _page(f"""{err}
<form method="post" action="/tra-cuu">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<label for="ma">Mã hồ sơ (in trên giấy tiếp nhận)</label>
<input type="text" id="ma" name="ma" value="{escape(code[:MAX_CODE])}" maxlength="{MAX_CODE}"
 autocomplete="off" required>
<label for="so">4 số cuối của số định danh cá nhân hoặc số điện thoại người nộp</label>
<input type="text" id="so" name="so" inputmode="numeric" pattern="[0-9]{{4}}" maxlength="4"
 autocomplete="off" required>
<button type="submit">Tra cứu</button>
</form>
<p><small>Trang chỉ hiển thị tình trạng và ngày hẹn trả kết quả, không hiển thị thông tin cá
nhân.</small></p>""")


def _day(t: Timestamp) -> str:
    local = datetime.fromtimestamp(t.seconds, PROVINCE_TZ)
    return f"{local:%H} giờ {local:%M}, ngày {local:%d/%m/%Y}"


def answer_page(r: pb.LookupDossierResponse, csrf: str, verification: str, note: str = "") -> str:
    rows = [
        ("Mã hồ sơ", r.receipt_code),
        ("Thủ tục", r.procedure_name),
        ("Cơ quan giải quyết", r.agency_name),
        ("Tình trạng", STATUS.get(r.status, "")),
    ]
    if r.HasField("submit_time"):
        rows.append(("Ngày nộp", _day(r.submit_time)))
    if r.HasField("due_time"):
        rows.append(("Hẹn trả kết quả", _day(r.due_time)))
    if r.HasField("rescheduled_due_time"):
        rows.append(("Hẹn lại (theo phiếu xin lỗi)", _day(r.rescheduled_due_time)))
    if r.HasField("finish_time"):
        rows.append(("Ngày có kết quả", _day(r.finish_time)))
    if r.rating:
        rows.append(("Đánh giá", dict(RATINGS).get(r.rating, "")))
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    extra = ""
    if r.fee_vnd:
        amount = f"{r.fee_vnd:,}".replace(",", ".")
        extra += f"<p>Số tiền phí, lệ phí: <strong>{amount} đồng</strong>"
        if r.payment_url.startswith(("https://", "http://")):
            extra += f' — <a href="{escape(r.payment_url)}">Nộp phí trực tuyến</a>'
        extra += "</p>"
    if r.can_rate:
        options = "".join(
            f'<label><input type="radio" name="diem" value="{v}" required> {escape(t)}</label>'
            for v, t in RATINGS
        )
        extra += f"""<form method="post" action="/tra-cuu/danh-gia">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<input type="hidden" name="ma" value="{escape(r.receipt_code)}">
<input type="hidden" name="so" value="{escape(verification)}">
<fieldset><legend>Đánh giá mức độ hài lòng về việc giải quyết hồ sơ</legend>{options}
</fieldset><button type="submit">Gửi đánh giá</button></form>"""
    notice = f'<p class="note" role="status">{escape(note)}</p>' if note else ""
    return _page(f"""{notice}<dl>{dl}</dl>
<p>{escape(r.message)}</p>{extra}
<p><a href="/tra-cuu">Tra cứu hồ sơ khác</a></p>""")


def refusal_page(error: str) -> str:
    return _page(f"""<p class="err" role="alert">{escape(error)}</p>
<p><a href="/tra-cuu">Quay lại trang tra cứu</a></p>""")
