"""The citizen's pages of the payment platform mock, in Vietnamese: the payment page and the
answer to its form (a browser's POST /pay/{id}). API callers get JSON from app.py instead."""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["STATUS_LABELS", "error_page", "paid_page", "pay_page", "wants_html"]

# Every status a payment of the mock can show (app.py: PENDING → PAID → CONFIRMED; CANCELLED;
# EXPIRED, computed from expires_at).
STATUS_LABELS = {
    "PENDING": "Chờ thanh toán",
    "PAID": "Đã thanh toán",
    "CONFIRMED": "Đã đối soát",
    "EXPIRED": "Hết hạn",
    "CANCELLED": "Đã hủy",
}


def wants_html(request: Request) -> bool:
    """A browser's form (Accept: text/html…), not an API client."""
    return "text/html" in request.headers.get("accept", "")


def _vnd(amount: Any) -> str:
    return f"{int(amount):,}".replace(",", ".") + " đ"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='vi'><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}</html>",
        status_code=status,
    )


def _facts(p: dict[str, Any]) -> str:
    label = STATUS_LABELS.get(p["status"], p["status"])
    return (
        f"<p>Mã hồ sơ: {html.escape(str(p['receipt_code']))}</p>"
        f"<p>Nội dung: {html.escape(str(p.get('description') or ''))}</p>"
        f"<p>Số tiền: {html.escape(_vnd(p['amount_vnd']))}</p>"
        f"<p>Trạng thái: {html.escape(label)}</p>"
    )


def pay_page(p: dict[str, Any]) -> HTMLResponse:
    """The payment as the citizen sees it; the button only while it can be paid."""
    button = "<form method='post'><button>Thanh toán</button></form>"
    return _page("Thanh toán trực tuyến", _facts(p) + (button if p["status"] == "PENDING" else ""))


def paid_page(p: dict[str, Any], *, already: bool = False) -> HTMLResponse:
    """The answer to the form: paid now, or paid before."""
    title = "Khoản này đã được thanh toán" if already else "Thanh toán thành công"
    ref = p.get("transaction_ref") or ""
    extra = f"<p>Mã giao dịch: {html.escape(str(ref))}</p>" if ref else ""
    return _page(title, _facts(p) + extra)


def error_page(status: int, message: str) -> HTMLResponse:
    """A refusal (expired, cancelled, unknown payment) as a page."""
    return _page("Không thể thanh toán", f"<p>{html.escape(message)}</p>", status)
