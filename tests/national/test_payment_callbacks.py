"""The payment mock's notices (callbacks) and reconciliation API, against a real process: a
signed notice per payment, retried with backoff while the receiver fails, resumed after a
restart of the mock, replayable by a test hook; the day's paid transactions listed; a
pending payment voided; the faults apply to the new routes too."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lgsp.connectors.payment import (
    DEFAULT_CALLBACK_SECRET,
    SIGNATURE_HEADER,
    NoticeRejected,
    verify_notice,
)
from tests.national.mockproc import MockProcess
from tests.support import free_port

FAST = ("--callback-backoff-s", "0.2")


class Receiver:
    """A province's callback endpoint: records what arrives, fails while told to."""

    def __init__(self, port: int | None = None) -> None:
        self.got: list[tuple[bytes, str]] = []
        self.fail = 0
        received = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.got.append((body, self.headers.get(SIGNATURE_HEADER, "")))
                status = 500 if received.fail > 0 else 200
                received.fail -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/payments/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def fast_payment(mock_factory: Callable[..., MockProcess]) -> MockProcess:
    return mock_factory("payment", *FAST)


def create(mock: MockProcess, callback_url: str, amount: int = 20_000, key: str = "") -> Any:
    body = {
        "amount_vnd": amount,
        "receipt_code": "000.00.61.H27-260504-0001",
        "payer": {"full_name": "Nguyễn Thị Hoa"},
        "description": "Lệ phí",
        "callback_url": callback_url,
    }
    headers = {"Idempotency-Key": key} if key else {}
    with mock.api() as api:
        r = api.post("/api/v1/payments", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_paid_payment_is_notified_signed_and_retried_until_taken(
    fast_payment: MockProcess, receiver: Receiver
) -> None:
    p = create(fast_payment, receiver.url)
    receiver.fail = 2  # the province answers 500 twice
    paid = httpx.post(p["pay_url"]).json()
    wait_for(lambda: len(receiver.got) == 3)
    state = httpx.get(f"{fast_payment.url}/_callbacks/{p['payment_id']}").json()
    assert state["attempts"] == 3 and state["delivered_at"] and state["last_status"] == 200
    notices = [verify_notice(b, s, DEFAULT_CALLBACK_SECRET, now=time.time(), max_age_s=60)
               for b, s in receiver.got]  # fmt: skip
    assert {n.notification_id for n in notices} == {notices[0].notification_id}
    assert len({n.nonce for n in notices}) == 3  # each delivery signed afresh
    n = notices[-1]
    assert (n.payment_id, n.amount_vnd, n.transaction_ref, n.status) == (
        p["payment_id"], 20_000, paid["transaction_ref"], "PAID",
    )  # fmt: skip
    time.sleep(0.5)
    assert len(receiver.got) == 3  # delivered: no more

    # The test hooks: a fresh re-send, and the very same bytes again.
    again = httpx.post(f"{fast_payment.url}/_callbacks/{p['payment_id']}/replay").json()
    exact = httpx.post(f"{fast_payment.url}/_callbacks/{p['payment_id']}/replay?exact=true")
    assert again["status"] == 200 and exact.json()["status"] == 200
    assert receiver.got[-1] == receiver.got[-2] and receiver.got[-2][0] != receiver.got[-3][0]

    # A wrong secret or a changed byte does not verify.
    body, sig = receiver.got[-1]
    with pytest.raises(NoticeRejected) as e:
        verify_notice(body, sig, "another-secret", now=time.time(), max_age_s=60)
    assert e.value.code == "BAD_SIGNATURE"
    with pytest.raises(NoticeRejected):
        verify_notice(body.replace(b"20000", b"2000"), sig, DEFAULT_CALLBACK_SECRET,
                      now=time.time(), max_age_s=60)  # fmt: skip
    with pytest.raises(NoticeRejected) as e:
        verify_notice(body, sig, DEFAULT_CALLBACK_SECRET, now=time.time() + 600, max_age_s=300)
    assert e.value.code == "STALE"


def test_a_restarted_mock_resumes_its_notices(
    mock_factory: Callable[..., MockProcess], tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there yet: the province is down
    mock = mock_factory("payment", *FAST, data_dir=tmp_path)
    p = create(mock, f"http://127.0.0.1:{port}/payments/callback")
    httpx.post(p["pay_url"]).raise_for_status()
    wait_for(lambda: httpx.get(f"{mock.url}/_callbacks/{p['payment_id']}").json()["attempts"] >= 2)
    mock.restart()
    receiver = Receiver(port)
    try:
        wait_for(lambda: len(receiver.got) == 1)
        time.sleep(0.5)
        assert len(receiver.got) == 1
        state = httpx.get(f"{mock.url}/_callbacks/{p['payment_id']}").json()
        assert state["delivered_at"] and state["attempts"] >= 3
    finally:
        receiver.close()


def test_the_days_transactions_are_listed_and_pending_ones_voided(
    fast_payment: MockProcess, receiver: Receiver
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    made = [create(fast_payment, receiver.url, amount=10_000 * (i + 1)) for i in range(3)]
    for p in made[:2]:
        httpx.post(p["pay_url"]).raise_for_status()
    with fast_payment.api() as api:
        # Voiding: the unpaid one is cancelled (twice is fine) and can no longer be paid.
        for _ in range(2):
            voided = api.post(f"/api/v1/payments/{made[2]['payment_id']}/cancel")
            assert voided.status_code == 200 and voided.json()["status"] == "CANCELLED"
        assert httpx.post(made[2]["pay_url"]).json()["code"] == "PAYMENT_CANCELLED"
        paid = api.post(f"/api/v1/payments/{made[0]['payment_id']}/cancel")
        assert paid.status_code == 409 and paid.json()["code"] == "PAYMENT_ALREADY_PAID"

        window = {"paid_from": start.isoformat(), "paid_to": datetime.now(UTC).isoformat()}
        first = api.get("/api/v1/payments", params={**window, "limit": 1}).json()
        rest = api.get(
            "/api/v1/payments", params={**window, "page_token": first["next_page_token"]}
        ).json()
        listed = first["payments"] + rest["payments"]
        assert [x["payment_id"] for x in listed] == [p["payment_id"] for p in made[:2]]
        assert all(x["transaction_ref"] for x in listed) and rest["next_page_token"] == ""
        today = (
            datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).date()
        )
        by_day = api.get("/api/v1/payments", params={"date": today.isoformat()}).json()
        assert {p["payment_id"] for p in made[:2]} <= {x["payment_id"] for x in by_day["payments"]}
        for params, field in [
            ({}, "date"),
            ({"date": "2026-13-01"}, "date"),
            ({"paid_from": "2026-05-04T00:00:00", "paid_to": "x"}, "paid_from"),
            ({"date": "2026-05-04", "limit": "0"}, "limit"),
            ({"date": "2026-05-04", "page_token": "!!"}, "page_token"),
        ]:
            bad = api.get("/api/v1/payments", params=params)
            assert (bad.status_code, bad.json()["field"]) == (400, field)
        bad_url = api.post(
            "/api/v1/payments",
            json={"amount_vnd": 1, "receipt_code": "X", "payer": {"full_name": "A"},
                  "callback_url": "ftp://x/y"},
        )  # fmt: skip
        assert (bad_url.status_code, bad_url.json()["field"]) == (400, "callback_url")
        fast_payment.faults(down=True)
        assert api.get("/api/v1/payments", params={"date": "2026-05-04"}).status_code == 503
