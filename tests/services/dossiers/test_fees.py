"""Fees through the national payment platform, end to end: the payment mock as a process, the
dossiers service on ServiceRuntime (gRPC + its HTTP side). Paid online → the platform's
signed notice → the dossier moves on once; replayed, concurrent, forged, altered and stale
notices; the platform down at RequestFee and at the desk; the province down when the citizen
pays; a lost notice found by reconciliation; a payment after withdrawal reported."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.cli import main as lgsp_main
from lgsp.config import load_settings
from lgsp.connectors.payment import DEFAULT_CALLBACK_SECRET, SIGNATURE_HEADER, sign_notice
from lgsp.grpc.client import channel
from lgsp.workdays import PROVINCE_TZ
from services.dossiers.plugin import PLUGIN
from tests.national.mockproc import API_KEY, MockProcess
from tests.services.dossiers.isolated import isolated_env
from tests.services.dossiers.test_grpc import AGENCIES, NOW, Env, birth_registration, refused
from tests.support import free_port
from tests.support.issuer import FakeIssuer

WEDNESDAY = NOW + timedelta(days=2)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Fees:
    env: Env
    mock: MockProcess
    clock: Clock
    http_url: str
    restart: Callable[[], Any] = field(repr=False)

    async def online_fee(self, fee: int = 20_000) -> pb.Dossier:
        """A dossier in progress, then its fee requested online."""
        clerk, leader = self.env.dossiers("ts-vt"), self.env.dossiers("ts-ld")
        d = (await clerk.SubmitDossier(birth_registration())).dossier
        d = (
            await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id, etag=d.etag))
        ).dossier
        d = (await leader.StartProcessing(pb.StartProcessingRequest(
            dossier_id=d.id, etag=d.etag, handler_user_id="ts-cv"))).dossier  # fmt: skip
        return (await self.request_fee(d, fee)).dossier  # type: ignore[no-any-return]

    def request_fee(self, d: pb.Dossier, fee: int = 20_000) -> Any:
        return self.env.dossiers("ts-cv").RequestFee(
            pb.RequestFeeRequest(dossier_id=d.id, etag=d.etag, fee_vnd=fee, description="Lệ phí")
        )

    async def get(self, d: pb.Dossier) -> pb.Dossier:
        req = pb.GetDossierRequest(id=d.id)
        return (await self.env.dossiers("ts-vt").GetDossier(req)).dossier  # type: ignore[no-any-return]

    async def wait_status(self, d: pb.Dossier, status: int) -> pb.Dossier:
        deadline = time.monotonic() + 10
        while (got := await self.get(d)).status != status:
            assert time.monotonic() < deadline, f"still {got.status}"
            await asyncio.sleep(0.05)
        return got

    async def history(self, d: pb.Dossier) -> list[int]:
        req = pb.ListDossierHistoryRequest(dossier_id=d.id)
        entries = (await self.env.dossiers("ts-vt").ListDossierHistory(req)).entries
        return [h.to_status for h in entries]

    def fee_events(self, d: pb.Dossier) -> list[str]:
        return [n for n, key in self.env.events() if key == d.receipt_code and "Fee" in n]

    def notice(self, d: pb.Dossier, **change: Any) -> dict[str, Any]:
        payment = {
            "payment_id": d.payment_id, "status": "PAID", "amount_vnd": d.fee_vnd,
            "receipt_code": d.receipt_code, "transaction_ref": "FT2605040000000001",
            "paid_at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        payment.update(change.pop("payment", {}))
        return {"notification_id": "NTF1", "event": "payment.paid", "attempt": 1,
                "timestamp": int(time.time()), "nonce": uuid.uuid4().hex,
                "payment": payment, **change}  # fmt: skip

    async def post_notice(
        self, body: bytes, secret: str = DEFAULT_CALLBACK_SECRET
    ) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(
                f"{self.http_url}/payments/callback",
                content=body,
                headers={SIGNATURE_HEADER: sign_notice(body, secret)},
            )


@pytest.fixture
def payment_mock(tmp_path: Path) -> Any:
    (tmp_path / "mock").mkdir()
    mock = MockProcess("payment", tmp_path / "mock", "--callback-backoff-s", "0.2").start()
    yield mock
    mock.stop()


@asynccontextmanager
async def fees_env(tmp_path: Path, mock: MockProcess, **extra: str) -> AsyncIterator[Fees]:
    issuer = FakeIssuer()
    await issuer.start()
    http_port = free_port()
    settings = load_settings(
        env={
            **isolated_env(tmp_path),
            "LGSP_DOSSIERS_HTTP_PORT": str(http_port),
            "LGSP_NATIONAL_PAYMENT_PORT": str(mock.port),
            "LGSP_NATIONAL_API_KEY": API_KEY,
            "LGSP_DOSSIERS_PAYMENT_RECONCILE_INTERVAL_S": "0",
            **extra,
        }
    )
    authn = JwtAuthenticator(issuer.issuer)
    clock = Clock()
    plugin = PLUGIN.with_options(agencies=AGENCIES, authenticator=authn, clock=clock)
    state: dict[str, Any] = {}

    async def start() -> None:
        runtime = ServiceRuntime(plugin, settings, port=0)
        await runtime.start()
        state["runtime"] = runtime
        state["ch"] = channel(runtime.server.address, service_name="dossiers-test")

    async def stop() -> None:
        await state["ch"].close()
        await state["runtime"].stop(0)

    await start()
    env = Env(issuer, state["ch"], state["runtime"])

    async def restart(down: Callable[[], Any]) -> None:
        """Stop the service, run `down` while it is down, start it again."""
        await stop()
        await down()
        await start()
        env.ch, env.runtime = state["ch"], state["runtime"]

    try:
        yield Fees(env, mock, clock, f"http://127.0.0.1:{http_port}", restart)
    finally:
        await stop()
        await authn.aclose()
        await issuer.stop()


@pytest.fixture
async def fees(tmp_path: Path, payment_mock: MockProcess) -> AsyncIterator[Fees]:
    async with fees_env(tmp_path, payment_mock) as f:
        yield f


async def pay(url: str, *, check: bool = True) -> httpx.Response:
    """The citizen pays on the platform's page."""
    async with httpx.AsyncClient() as http:
        r = await http.post(url)
    if check:
        r.raise_for_status()
    return r


def mock_get(mock: MockProcess, path: str, **params: Any) -> Any:
    with mock.api() as api:
        return api.get(path, params=params).json()


def paid_today(mock: MockProcess, receipt_code: str) -> list[dict[str, Any]]:
    today = datetime.now(PROVINCE_TZ).date().isoformat()
    listed = mock_get(mock, "/api/v1/payments", date=today)["payments"]
    return [p for p in listed if p["receipt_code"] == receipt_code]


async def reconcile(tmp_path: Path, mock: MockProcess) -> tuple[int, str]:
    config = tmp_path / "reconcile.toml"
    config.write_text(
        f'[platform]\ndata_dir = "{tmp_path}"\n'
        f'[national]\npayment_port = {mock.port}\napi_key = "{API_KEY}"\n'
    )
    today = datetime.now(PROVINCE_TZ).date().isoformat()
    out = tmp_path / "out.txt"

    def run() -> int:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = lgsp_main(["dossiers", "reconcile", "--config", str(config), "--date", today])
        out.write_text(buf.getvalue())
        return code

    code = await asyncio.to_thread(run)
    return code, out.read_text()


async def test_paid_online_the_notice_moves_the_dossier_once(fees: Fees) -> None:
    d = await fees.online_fee()
    assert d.status == pb.DOSSIER_STATUS_FEE_REQUESTED and d.payment_id
    assert d.payment_url == f"{fees.mock.url}/pay/{d.payment_id}"  # what the applicant sees
    at_platform = mock_get(fees.mock, f"/api/v1/payments/{d.payment_id}")
    assert (at_platform["status"], at_platform["amount_vnd"]) == ("PENDING", 20_000)
    assert at_platform["receipt_code"] == d.receipt_code

    fees.clock.now = WEDNESDAY  # paid two working days later
    await pay(d.payment_url)
    paid = await fees.wait_status(d, pb.DOSSIER_STATUS_IN_PROGRESS)
    assert paid.fee_paid and paid.paid_online and paid.payment_url == ""
    # Due Thursday 7 May; two working days waited (Mon→Wed): Monday 11 May.
    assert d.due_time.ToDatetime().date() == date(2026, 5, 7)
    assert paid.due_time.ToDatetime().date() == date(2026, 5, 11)
    assert await fees.history(d) == [1, 2, 4, 6, 4]
    assert fees.fee_events(d) == ["DossierFeePaid"]

    # The platform's retry, an eavesdropper's exact replay, both at once: absorbed.
    hook = f"{fees.mock.url}/_callbacks/{d.payment_id}/replay"
    async with httpx.AsyncClient() as http:
        answers = await asyncio.gather(
            http.post(hook), http.post(hook + "?exact=true"), http.post(hook)
        )
    assert [a.json()["status"] for a in answers] == [200, 200, 200]
    assert await fees.history(d) == [1, 2, 4, 6, 4]
    assert fees.fee_events(d) == ["DossierFeePaid"]
    assert (await fees.get(d)).etag == paid.etag


async def test_two_notices_at_once_record_one_payment(fees: Fees) -> None:
    d = await fees.online_fee()
    body = json.dumps(fees.notice(d)).encode()
    answers = await asyncio.gather(*(fees.post_notice(body) for _ in range(4)))
    results = sorted(a.json()["result"] for a in answers)
    assert results == ["duplicate", "duplicate", "duplicate", "recorded"]
    assert await fees.history(d) == [1, 2, 4, 6, 4]
    assert fees.fee_events(d) == ["DossierFeePaid"]


async def test_forged_altered_and_stale_notices_are_refused(fees: Fees) -> None:
    d = await fees.online_fee()
    before = (fees.env.events(), await fees.get(d))
    good = json.dumps(fees.notice(d)).encode()
    async with httpx.AsyncClient() as http:
        url = f"{fees.http_url}/payments/callback"
        unsigned = await http.post(url, content=good)
        altered = await http.post(
            url,
            content=good.replace(b'"amount_vnd": 20000', b'"amount_vnd": 200'),
            headers={SIGNATURE_HEADER: sign_notice(good, DEFAULT_CALLBACK_SECRET)},
        )
        huge = await http.post(url, content=b"x" * 100_000)
    forged = await fees.post_notice(good, secret="guessed-secret")
    stale = await fees.post_notice(
        json.dumps(fees.notice(d, timestamp=int(time.time()) - 3600)).encode()
    )
    garbage = await fees.post_notice(b'{"payment": 1}')  # signed, but not a notice
    assert [r.status_code for r in (unsigned, altered, forged, stale, garbage, huge)] == [
        401, 401, 401, 401, 400, 413,
    ]  # fmt: skip
    assert stale.json()["code"] == "STALE" and forged.json()["code"] == "BAD_SIGNATURE"
    assert (fees.env.events(), await fees.get(d)) == before
    assert fees.env.rows("payment_receipts") == 0


async def in_progress(fees: Fees) -> pb.Dossier:
    clerk, leader = fees.env.dossiers("ts-vt"), fees.env.dossiers("ts-ld")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id, etag=d.etag))).dossier
    req = pb.StartProcessingRequest(dossier_id=d.id, etag=d.etag, handler_user_id="ts-cv")
    return (await leader.StartProcessing(req)).dossier  # type: ignore[no-any-return]


async def test_platform_down_at_request_fee_stores_nothing(fees: Fees) -> None:
    d = await in_progress(fees)
    before = fees.env.events()
    calls = fees.mock.calls()
    await refused(fees.request_fee(d, fee=0), grpc.StatusCode.INVALID_ARGUMENT)
    assert fees.mock.calls() == calls  # a bad fee is refused before the platform is called
    fees.mock.faults(down=True)
    await refused(fees.request_fee(d), grpc.StatusCode.UNAVAILABLE)
    got = await fees.get(d)
    assert got.status == pb.DOSSIER_STATUS_IN_PROGRESS and got.etag == d.etag
    assert got.payment_id == "" and fees.env.events() == before


async def test_a_retry_after_a_lost_answer_finds_the_same_payment(fees: Fees) -> None:
    d = await in_progress(fees)
    # The platform makes the payment but its answers come too late for the province.
    fees.mock.faults(latency_ms=2500)
    await refused(fees.request_fee(d), grpc.StatusCode.UNAVAILABLE)
    got = await fees.get(d)
    assert got.etag == d.etag and got.payment_id == ""
    fees.mock.faults()
    done = (await fees.request_fee(d)).dossier  # the retry, same etag: the same payment
    assert done.status == pb.DOSSIER_STATUS_FEE_REQUESTED
    await pay(done.payment_url)
    await fees.wait_status(d, pb.DOSSIER_STATUS_IN_PROGRESS)
    [only] = paid_today(fees.mock, d.receipt_code)  # one payment at the platform
    assert only["payment_id"] == done.payment_id


async def test_the_province_down_when_the_citizen_pays(fees: Fees) -> None:
    d = await fees.online_fee()

    async def pay_while_down() -> None:
        await pay(d.payment_url)
        deadline = time.monotonic() + 10
        while mock_get(fees.mock, f"/_callbacks/{d.payment_id}")["attempts"] < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

    await fees.restart(pay_while_down)
    paid = await fees.wait_status(d, pb.DOSSIER_STATUS_IN_PROGRESS)
    assert paid.paid_online
    assert await fees.history(d) == [1, 2, 4, 6, 4]
    assert fees.fee_events(d) == ["DossierFeePaid"]
    assert mock_get(fees.mock, f"/_callbacks/{d.payment_id}")["delivered_at"]


async def test_the_desk_voids_a_pending_online_payment(fees: Fees) -> None:
    d = await fees.online_fee()
    clerk = fees.env.dossiers("ts-vt")
    cash = pb.RecordPaymentRequest(
        dossier_id=d.id, etag=d.etag, amount_vnd=20_000, payment_reference="BL-7"
    )
    fees.mock.faults(down=True)  # cannot tell whether it was paid online: no cash taken
    await refused(clerk.RecordPayment(cash), grpc.StatusCode.UNAVAILABLE)
    assert (await fees.get(d)).etag == d.etag
    fees.mock.faults()
    paid = (await clerk.RecordPayment(cash)).dossier
    assert paid.status == pb.DOSSIER_STATUS_IN_PROGRESS and not paid.paid_online
    assert mock_get(fees.mock, f"/api/v1/payments/{d.payment_id}")["status"] == "CANCELLED"
    assert (
        await pay(d.payment_url, check=False)
    ).status_code == 410  # the citizen can no longer pay
    assert fees.fee_events(d) == ["DossierFeePaid"]


async def test_a_lost_notice_is_recorded_by_reconciliation_and_the_desk_takes_no_cash(
    tmp_path: Path, payment_mock: MockProcess
) -> None:
    # The platform calls a dead address: every notice is lost.
    lost = {"LGSP_DOSSIERS_PUBLIC_URL": f"http://127.0.0.1:{free_port()}"}
    async with fees_env(tmp_path, payment_mock, **lost) as fees:
        first, second = await fees.online_fee(), await fees.online_fee(30_000)
        for d in (first, second):
            await pay(d.payment_url)
        await asyncio.sleep(0.3)
        assert (await fees.get(first)).status == pb.DOSSIER_STATUS_FEE_REQUESTED

        # At the desk, the applicant of `second` offers cash: refused, the online one recorded.
        e = await refused(
            fees.env.dossiers("ts-vt").RecordPayment(pb.RecordPaymentRequest(
                dossier_id=second.id, etag=second.etag, amount_vnd=30_000,
                payment_reference="BL-8")),
            grpc.StatusCode.FAILED_PRECONDITION,
        )  # fmt: skip
        assert "paid online" in (e.details() or "")
        assert (await fees.get(second)).paid_online

        code, out = await reconcile(tmp_path, payment_mock)
        assert code == 0, out
        assert "2 paid at the platform (50.000 đ), 2 matched, 1 recorded now, 2 confirmed" in out
        got = await fees.get(first)
        assert got.status == pb.DOSSIER_STATUS_IN_PROGRESS and got.paid_online
        assert fees.fee_events(first) == ["DossierFeePaid"]
        for d in (first, second):
            status = mock_get(payment_mock, f"/api/v1/payments/{d.payment_id}")["status"]
            assert status == "CONFIRMED"
        code, out = await reconcile(tmp_path, payment_mock)  # again: nothing new
        assert code == 0 and "0 recorded now, 0 confirmed, 0 discrepancies" in out
        assert await fees.history(first) == [1, 2, 4, 6, 4]


async def test_a_payment_after_withdrawal_is_kept_and_reported(tmp_path: Path, fees: Fees) -> None:
    d = await fees.online_fee()
    clerk = fees.env.dossiers("ts-vt")
    await clerk.WithdrawDossier(
        pb.WithdrawDossierRequest(dossier_id=d.id, etag=d.etag, reason="Công dân rút hồ sơ")
    )
    await pay(d.payment_url)  # the citizen pays anyway
    deadline = time.monotonic() + 10
    while not mock_get(fees.mock, f"/_callbacks/{d.payment_id}")["delivered_at"]:
        assert time.monotonic() < deadline  # answered 200: kept, no retry loop
        await asyncio.sleep(0.05)
    got = await fees.get(d)
    assert got.status == pb.DOSSIER_STATUS_WITHDRAWN and not got.fee_paid
    assert fees.fee_events(d) == [] and fees.env.rows("payment_receipts") == 1

    code, out = await reconcile(tmp_path, fees.mock)
    assert code == 1
    assert f"DISCREPANCY {d.payment_id}" in out and "withdrawn: refund" in out
    assert "1 discrepancies" in out
    assert mock_get(fees.mock, f"/api/v1/payments/{d.payment_id}")["status"] == "PAID"


async def test_an_absurd_fee_is_refused_before_the_platform_is_asked(fees: Fees) -> None:
    from services.dossiers.domain.dossier import MAX_FEE_VND
    from tests.integration.test_new_service import bad_request_fields

    clerk, leader = fees.env.dossiers("ts-vt"), fees.env.dossiers("ts-ld")
    d = (await clerk.SubmitDossier(birth_registration())).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id, etag=d.etag))).dossier
    d = (await leader.StartProcessing(pb.StartProcessingRequest(
        dossier_id=d.id, etag=d.etag, handler_user_id="ts-cv"))).dossier  # fmt: skip
    before = fees.mock.calls()
    for absurd in (MAX_FEE_VND + 1, 2**63 - 1):
        e = await refused(fees.request_fee(d, absurd), grpc.StatusCode.INVALID_ARGUMENT)
        assert bad_request_fields(e) == ["fee_vnd"]
    assert fees.mock.calls() == before  # refused here, not at the platform
    assert (await fees.get(d)).status == pb.DOSSIER_STATUS_IN_PROGRESS
    # The platform's own limit is allowed.
    paid = (await fees.request_fee(d, MAX_FEE_VND)).dossier
    assert paid.status == pb.DOSSIER_STATUS_FEE_REQUESTED and paid.payment_url
