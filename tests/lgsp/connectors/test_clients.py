"""The document axis, portal and payment clients end to end against their mocks."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from lgsp.connectors import (
    ClientOptions,
    Conflict,
    DocumentAxisClient,
    PaymentClient,
    PublicServicePortalClient,
    RetryPolicy,
)
from tests.national.mockproc import API_KEY, MockProcess
from tests.support.edxml import build_document, build_status

FAST = ClientOptions(deadline_s=3.0, retry=RetryPolicy(4, 0.02, 0.1))


async def test_axis_flow_survives_a_lost_answer(document_axis: MockProcess) -> None:
    sender, to = ("000.00.00.H24", "UBND Thành phố Hà Nội"), ("000.00.00.G17", "Bộ Xây dựng")
    body = build_document(message_id="conn-1", sender=sender, recipients=[to], subject="Thử")
    async with DocumentAxisClient(document_axis.url, API_KEY, FAST) as axis:
        document_axis.faults(fail_next=1)
        sent = await axis.send_package(body)
        again = await axis.send_package(body)  # as after an answer lost on the way back
        assert again.package_id == sent.package_id and again.duplicate
        [pkg] = await axis.poll(to[0])
        assert pkg.body == body and pkg.message_id == "conn-1"
        assert await axis.ack(to[0], pkg.package_id) is False
        assert await axis.poll(to[0]) == []
        status = build_status(
            original_sender=sender[0], original_message_id="conn-1", reporter=to, status_code="06"
        )
        await axis.send_status(status)
        [back] = await axis.poll(sender[0])
        assert (back.kind, back.status_code) == ("status", "06")
        assert [s.status_code for s in await axis.statuses(sent.package_id)] == ["06"]


async def test_portal_handover_and_status_sync(public_service_portal: MockProcess) -> None:
    async with PublicServicePortalClient(public_service_portal.url, API_KEY, FAST) as portal:
        [first, _] = await portal.pull_handover(province_code="H24")
        taken = await portal.ack_handover(first.portal_code or "", "000.00.03.H24-250701-0001")
        assert taken.receipt_code == "000.00.03.H24-250701-0001"
        public_service_portal.faults(fail_next=2)
        at = datetime(2025, 7, 2, 9, tzinfo=UTC)
        dossier, duplicate = await portal.push_status(
            "000.00.03.H24-250701-0001",
            2,
            at,
            agency_code=first.agency_code,
            procedure_code=first.procedure_code,
        )
        assert dossier.status == 2 and not duplicate
        with pytest.raises(Conflict) as stale:
            await portal.push_status(
                "000.00.03.H24-250701-0001",
                4,
                datetime(2025, 7, 1, tzinfo=UTC),
                agency_code=first.agency_code,
                procedure_code=first.procedure_code,
            )
        assert stale.value.code == "STALE_STATUS"
        known = await portal.get_dossier("000.00.03.H24-250701-0001")
        assert [h.status for h in known.history] == [2]


async def test_payment_idempotency_through_the_client(payment: MockProcess) -> None:
    async with PaymentClient(payment.url, API_KEY, FAST) as pay:
        created = await pay.create_payment(
            120_000, "000.00.03.H27-250701-0007", "Trần Minh Ngọc", idempotency_key="fee-7"
        )
        replay = await pay.create_payment(
            120_000, "000.00.03.H27-250701-0007", "Trần Minh Ngọc", idempotency_key="fee-7"
        )
        assert replay.payment_id == created.payment_id and replay.replayed
        with pytest.raises(Conflict):
            await pay.create_payment(
                99_000, "000.00.03.H27-250701-0007", "Trần Minh Ngọc", idempotency_key="fee-7"
            )
        with pytest.raises(Conflict):
            await pay.confirm_payment(created.payment_id)  # not paid yet
        async with httpx.AsyncClient() as browser:  # the citizen pays on the page
            (await browser.post(created.pay_url)).raise_for_status()
        assert (await pay.get_payment(created.payment_id)).status == "PAID"
        confirmed = await pay.confirm_payment(created.payment_id)
        assert confirmed.status == "CONFIRMED" and confirmed.transaction_ref
    assert payment.calls() == 7  # six API calls, none retried, and the citizen paying
