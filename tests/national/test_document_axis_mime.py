"""The document axis mock carries MIME packages (the XML part, files as parts) as sent."""

from __future__ import annotations

from pathlib import Path

from services.documents.edxml import Package, parse
from tests.national.mockproc import MockProcess

CORPUS = Path(__file__).parents[1] / "services" / "documents" / "edxml_corpus"


def _http(eml: bytes) -> tuple[str, bytes]:
    """The MIME message as an HTTP POST sends it: its Content-Type apart, then the body."""
    head, body = eml.split(b"\r\n\r\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
    return headers["Content-Type"], body


def test_a_mime_package_is_routed_by_its_xml_part_and_polled_whole(
    document_axis: MockProcess,
) -> None:
    content_type, body = _http((CORPUS / "mime_bare_envelope.eml").read_bytes())
    with document_axis.api() as api:
        for code, name in [("000.00.00.G15", "Bộ Tư pháp"), ("000.00.00.H27", "UBND tỉnh")]:
            assert api.put(f"/api/v1/agencies/{code}", json={"name": name}).status_code < 300
        sent = api.post("/api/v1/packages", content=body, headers={"Content-Type": content_type})
        assert sent.status_code == 201, sent.text
        assert sent.json()["sender"] == "000.00.00.G15"
        assert sent.json()["recipients"] == ["000.00.00.H27"]
        [polled] = [
            p
            for p in api.get("/api/v1/agencies/000.00.00.H27/packages").json()["packages"]
            if p["package_id"] == sent.json()["package_id"]
        ]
    package = parse(polled["body"].encode())
    assert isinstance(package, Package)
    assert [a.attachment_name for a in package.attachments] == ["45-QD-BTP.pdf", "ke-hoach.docx"]


def test_malformed_or_binary_mime_is_refused_naming_the_place(document_axis: MockProcess) -> None:
    content_type, body = _http((CORPUS / "mime_root_not_xml.eml").read_bytes())
    with document_axis.api() as api:
        bad = api.post("/api/v1/packages", content=body, headers={"Content-Type": content_type})
        assert bad.status_code == 400 and bad.json()["field"] == "MIME part[1]", bad.text
        binary = body.replace(b"Content-Type: text/plain", b"Content-Type: application/xml")
        binary += b"\xff\xfe"
        resp = api.post("/api/v1/packages", content=binary, headers={"Content-Type": content_type})
        assert resp.status_code == 400 and resp.json()["field"] == "body", resp.text
        other = api.post("/api/v1/packages", content=body, headers={"Content-Type": "text/plain"})
        assert other.status_code == 415
