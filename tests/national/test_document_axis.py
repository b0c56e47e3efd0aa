"""The document axis mock: send → poll → ack → status back, persistence, hostile input."""

from __future__ import annotations

import httpx

from tests.national.mockproc import MockProcess
from tests.support.edxml import build_document, build_status

SENDER = ("000.00.00.H27", "Ủy ban nhân dân tỉnh Hà Tĩnh")
TO = [("000.00.12.H27", "Sở Tư pháp"), ("000.00.00.G15", "Bộ Tư pháp")]
XML = {"Content-Type": "application/xml"}


def doc(message_id: str, subject: str = "Về việc triển khai Nghị định 30/2020/NĐ-CP") -> bytes:
    return build_document(
        message_id=message_id,
        sender=SENDER,
        recipients=TO,
        subject=subject,
        code_number="123",
        code_notation="QĐ-UBND",
        signer="Trần Văn Bình",
    )


def pending(api: httpx.Client, agency: str) -> list[dict[str, object]]:
    resp = api.get(f"/api/v1/agencies/{agency}/packages")
    assert resp.status_code == 200
    return list(resp.json()["packages"])


def test_send_poll_ack_status_and_restart(document_axis: MockProcess) -> None:
    with document_axis.api() as api:
        body = doc("msg-0001")
        sent = api.post("/api/v1/packages", content=body, headers=XML)
        assert sent.status_code == 201, sent.text
        package_id = sent.json()["package_id"]
        assert sent.json()["recipients"] == ["000.00.12.H27", "000.00.00.G15"]
        # A resend of the same bytes is recognised; other bytes under that id are refused.
        again = api.post("/api/v1/packages", content=body, headers=XML)
        assert again.status_code == 200 and again.json()["package_id"] == package_id
        clash = api.post("/api/v1/packages", content=doc("msg-0001", "Khác"), headers=XML)
        assert clash.status_code == 409 and clash.json()["code"] == "DUPLICATE_MESSAGE_ID"

        for code, _ in TO:
            [p] = pending(api, code)
            assert p["package_id"] == package_id and p["body"].encode() == body  # type: ignore[union-attr]
        acked = api.post(f"/api/v1/agencies/000.00.12.H27/packages/{package_id}/ack").json()
        assert acked["already_acked"] is False
        assert api.post(f"/api/v1/agencies/000.00.12.H27/packages/{package_id}/ack").json()[
            "already_acked"
        ]
        assert pending(api, "000.00.12.H27") == []
        assert len(pending(api, "000.00.00.G15")) == 1  # the other recipient still has it

        status = build_status(
            original_sender=SENDER[0],
            original_message_id="msg-0001",
            reporter=TO[0],
            status_code="03",
            description="Đã tiếp nhận",
        )
        reported = api.post("/api/v1/statuses", content=status, headers=XML)
        assert reported.status_code == 201, reported.text
        [back] = pending(api, SENDER[0])
        assert (back["kind"], back["status_code"], back["sender"]) == ("status", "03", TO[0][0])
        assert back["original_package_id"] == package_id
        outsider = build_status(
            original_sender=SENDER[0],
            original_message_id="msg-0001",
            reporter=("000.00.00.G22", "Văn phòng Chính phủ"),
            status_code="01",
        )
        assert api.post("/api/v1/statuses", content=outsider, headers=XML).status_code == 403

    document_axis.restart()  # mailboxes live in SQLite: a restart keeps them
    with document_axis.api() as api:
        assert pending(api, "000.00.12.H27") == []
        assert [p["package_id"] for p in pending(api, "000.00.00.G15")] == [package_id]
        assert [p["kind"] for p in pending(api, SENDER[0])] == ["status"]
        history = api.get(f"/api/v1/packages/{package_id}/statuses").json()["statuses"]
        assert [s["status_code"] for s in history] == ["03"]


def test_hostile_and_bad_packages_are_refused_and_nothing_is_stored(
    document_axis: MockProcess,
) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<edXMLEnvelope><edXMLHeader><MessageHeader><Subject>&lol2;</Subject>"
        b"</MessageHeader></edXMLHeader></edXMLEnvelope>"
    )
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<edXMLEnvelope>&xxe;</edXMLEnvelope>"
    )
    utf16_doctype = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><edXMLEnvelope/>'.encode(
        "utf-16"
    )
    no_recipient = doc("msg-bad").replace(b"000.00.12.H27", b"").replace(b"000.00.00.G15", b"")
    unknown_recipient = (
        doc("msg-unknown")
        .replace(b"000.00.00.G15", b"999.99.99.Z99")
        .replace(b"000.00.12.H27", b"999.99.98.Z99")
    )
    with document_axis.api() as api:
        before = {code: pending(api, code) for code, _ in [SENDER, *TO]}
        for body, field in [
            (bomb, "body"),
            (xxe, "body"),
            (utf16_doctype, "body"),
            (b"<edXMLEnvelope><unclosed>", "body"),
            (b"<other/>", "body"),
            (b"<edXML><edXMLEnvelope/><edXMLEnvelope/></edXML>", "body"),  # which one?
            (b"<edXML><AttachmentEncoded/></edXML>", "body"),
            (no_recipient, "To/OrganId"),
        ]:
            resp = api.post("/api/v1/packages", content=body, headers=XML)
            assert resp.status_code == 400, (body[:60], resp.text)
            assert resp.json()["field"] == field
            assert "root:" not in resp.text  # no file content ever echoed
        resp = api.post("/api/v1/packages", content=unknown_recipient, headers=XML)
        assert resp.status_code == 404 and resp.json()["code"] == "AGENCY_NOT_FOUND"
        resp = api.post(
            "/api/v1/packages", content=doc("m"), headers={"Content-Type": "text/plain"}
        )
        assert resp.status_code == 415
        huge = b"<edXMLEnvelope>" + b"x" * (9 * 1024 * 1024) + b"</edXMLEnvelope>"
        resp = api.post("/api/v1/packages", content=huge, headers=XML)
        assert resp.status_code == 413 and resp.json()["code"] == "PACKAGE_TOO_LARGE"
        bad_status = build_status(
            original_sender=SENDER[0], original_message_id="nope", reporter=TO[0], status_code="01"
        ).replace(b">01<", b">07<")
        resp = api.post("/api/v1/statuses", content=bad_status, headers=XML)
        assert (resp.status_code, resp.json()["field"]) == (400, "StatusCode")
        assert {code: pending(api, code) for code, _ in [SENDER, *TO]} == before


def test_an_unknown_recipient_fails_alone_and_recalls_are_answered_15_or_16(
    document_axis: MockProcess,
) -> None:
    partly = doc("msg-partly").replace(b"000.00.00.G15", b"999.99.99.Z99")
    with document_axis.api() as api:
        sent = api.post("/api/v1/packages", content=partly, headers=XML)
        assert sent.status_code == 201, sent.text
        assert sent.json()["undeliverable"] == ["999.99.99.Z99"]
        again = api.post("/api/v1/packages", content=partly, headers=XML)
        assert again.status_code == 200 and again.json()["undeliverable"] == ["999.99.99.Z99"]
        [p] = pending(api, "000.00.12.H27")  # the known recipient has it
        assert p["package_id"] == sent.json()["package_id"]
        for code in ("15", "16"):  # agree to / refuse a recall (QCVN 102:2016 status codes)
            status = build_status(
                original_sender=SENDER[0],
                original_message_id="msg-partly",
                reporter=("000.00.12.H27", "Sở Tư pháp"),
                status_code=code,
            )
            resp = api.post("/api/v1/statuses", content=status, headers=XML)
            assert resp.status_code == 201 and resp.json()["status_code"] == code, resp.text
        answers = [
            s["status_code"]
            for s in pending(api, SENDER[0])
            if s["original_package_id"] == sent.json()["package_id"]
        ]
        assert answers == ["15", "16"]


def test_one_poll_for_many_mailboxes(document_axis: MockProcess) -> None:
    """What a province's platform asks each round: every one of its mailboxes in one call."""
    with document_axis.api() as api:
        sent = api.post("/api/v1/packages", content=doc("msg-many"), headers=XML).json()
        new_agency = "000.00.99.H27"  # not opened yet: reported, not an error
        codes = [code for code, _ in TO] + [new_agency]

        def poll(body: object) -> httpx.Response:
            return api.post("/api/v1/mailboxes/packages", json=body)

        def mine(body: dict[str, object]) -> list[dict[str, object]]:
            packages = poll(body).json()["packages"]
            return [p for p in packages if p["package_id"] == sent["package_id"]]

        got = poll({"agencies": codes, "limit": 100}).json()
        assert [
            p["agency_code"] for p in got["packages"] if p["package_id"] == sent["package_id"]
        ] == [code for code, _ in TO]
        assert mine({"agencies": codes, "limit": 100})[0]["body"].encode() == doc("msg-many")  # type: ignore[union-attr]
        assert got["unknown"] == [new_agency]
        assert len(poll({"agencies": codes, "limit": 1}).json()["packages"]) == 1
        api.post(f"/api/v1/agencies/{TO[0][0]}/packages/{sent['package_id']}/ack")
        assert [p["agency_code"] for p in mine({"agencies": codes, "limit": 100})] == [TO[1][0]]
        for body, field in [
            ({}, "agencies"),
            ({"agencies": []}, "agencies"),
            ({"agencies": "000.00.00.H27"}, "agencies"),
            ({"agencies": ["000.00.00.H27", "x'; DROP TABLE deliveries; --"]}, "agencies"),
            ({"agencies": [7]}, "agencies"),
            ({"agencies": ["000.00.00.H27"] * 1001}, "agencies"),
            ({"agencies": codes, "limit": 0}, "limit"),
            ({"agencies": codes, "limit": 101}, "limit"),
            ({"agencies": codes, "limit": True}, "limit"),
            ({"agencies": codes, "limit": "5"}, "limit"),
        ]:
            resp = poll(body)
            assert resp.status_code == 400, (body, resp.text)
            assert resp.json()["field"] == field
        resp = api.post(
            "/api/v1/mailboxes/packages",
            content=b"[1,",
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 400 and resp.json()["field"] == "body"
        assert len(mine({"agencies": codes, "limit": 100})) == 1  # nothing lost
