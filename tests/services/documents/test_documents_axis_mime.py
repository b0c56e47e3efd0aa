"""A ministry's package sent as MIME (the XML part, the PDF as a part referenced by cid:) over
the real axis mock is registered by the documents service with its file (issue 17)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from pathlib import Path

from lgsp.api.documents.v1 import documents_pb2 as pb
from tests.national.mockproc import MockProcess
from tests.services.documents.edxml_samples import mime_package, sample_package
from tests.support.pdf import minimal_pdf

from .test_documents_national_axis import (  # noqa: F401 (axis_mock is a fixture)
    MINISTRY,
    _opened,
    _settings,
    axis,
    axis_mock,
    incoming,
)
from .workflow_support import UBND, eventually, running_env


async def test_a_mime_package_from_a_ministry_is_registered_with_its_file(
    tmp_path: Path,
    axis_mock: MockProcess,  # noqa: F811 (the fixture imported above)
    axis: object,  # noqa: F811
) -> None:
    base = sample_package()
    pdf = minimal_pdf("Quyet dinh so 45/QD-BNV")
    package = dataclasses.replace(
        base,
        header=dataclasses.replace(
            base.header,
            from_=dataclasses.replace(
                base.header.from_, organ_id=MINISTRY[0], organ_name=MINISTRY[1]
            ),
            to=(dataclasses.replace(base.header.to[0], organ_id=UBND),),
            response_for=(),
            document_id=f"{MINISTRY[0]},2025/07/14,45/QĐ-BNV-mime",
        ),
        trace_headers=(),
        attachments=(dataclasses.replace(base.attachments[0], content_id="qd45@bnv", data=pdf),),
    )
    message = mime_package(package)
    head, body = message.split(b"\r\n\r\n", 1)
    content_type = str(email.message_from_bytes(head, policy=email.policy.default)["Content-Type"])
    async with running_env(tmp_path / "documents", _settings(axis_mock, 0.2)) as env:
        await eventually(lambda: _opened(axis, UBND))  # type: ignore[arg-type]
        with axis_mock.api() as api:
            sent = api.post(
                "/api/v1/packages", content=body, headers={"Content-Type": content_type}
            )
            assert sent.status_code == 201, sent.text
        [listed] = await eventually(lambda: incoming(env, UBND, "ubnd-vt"))
        doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=listed.id))).document
        assert doc.sender_agency_code == MINISTRY[0]
        assert doc.incoming_status == pb.INCOMING_STATUS_ARRIVED
        assert [(a.file_name, a.size_bytes) for a in doc.attachments] == [
            (package.attachments[0].attachment_name, len(pdf))
        ]
