"""The edXML corpus: packages as other systems send them, each accepted or refused as indexed.

tests/services/documents/edxml_corpus/index.toml lists every file with its expected outcome
(and, for a refusal, the field and reason the sender gets back in a status 02).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.documents.edxml import (
    EdxmlError,
    Limits,
    Package,
    Status,
    build_package,
    build_status,
    parse,
)
from tests.services.documents.edxml_samples import mime_package, sample_package

CORPUS = Path(__file__).parent / "edxml_corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "index.toml").read_text())["case"]


def _id(case: dict[str, Any]) -> str:
    return f"{case['file']}{'+limits' if 'limits' in case else ''}"


def _parse(case: dict[str, Any]) -> Package | Status:
    limits = Limits(**case.get("limits", {}))
    data = (CORPUS / case["file"]).read_bytes()
    return parse(data, limits, content_type=case.get("content_type"))


def test_every_corpus_file_is_indexed() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name not in ("index.toml", ".gitattributes")}
    indexed = {c["file"] for c in CASES}
    assert files == indexed
    assert {c["expect"] for c in CASES} == {"accepted", "refused"}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_corpus_case(case: dict[str, Any]) -> None:
    if case["expect"] == "refused":
        with pytest.raises(EdxmlError) as err:
            _parse(case)
        assert (err.value.field, case["reason"] in err.value.reason) == (case["field"], True), (
            err.value
        )
        return
    message = _parse(case)
    if "status_code" in case:
        assert isinstance(message, Status)
        assert message.status_code.value == case["status_code"]
        assert parse(build_status(message)) == message
        return
    assert isinstance(message, Package)
    header = message.header
    if "sender" in case:
        assert header.from_.organ_id == case["sender"]
    if "document_id" in case:
        assert header.document_id == case["document_id"]
    got = [
        [a.content_id, a.attachment_name, a.content_type, len(a.data)] for a in message.attachments
    ]
    assert got == case["attachments"]
    # What we accept in any form we can pass on in our one form, and read back the same.
    rebuilt = build_package(message)
    assert parse(rebuilt) == message
    assert b"AttachmentEncoded" in rebuilt or not message.attachments
    assert b"<edXML:edXMLManifest" in rebuilt or not message.attachments


def test_mime_files_are_the_bytes_sent() -> None:
    """The MIME parts' decoded bytes are the files, not their transfer encoding."""
    case = next(c for c in CASES if c["file"] == "mime_bare_envelope.eml")
    message = _parse(case)
    assert isinstance(message, Package)
    inline = parse((CORPUS / "bkav_manifest.xml").read_bytes())
    assert isinstance(inline, Package)
    assert [a.data for a in message.attachments] == [a.data for a in inline.attachments]
    assert message.header == dataclasses.replace(inline.header)


_MIME = (CORPUS / "mime_bare_envelope.eml").read_bytes()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_MIME) - 1), st.integers(0, 8), st.binary(max_size=12)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_mime_packages_raise_only_edxml_error(edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(_MIME)
    for pos, cut, insert in edits:
        data[pos : pos + cut] = insert
    try:
        result = parse(bytes(data))
    except EdxmlError:
        return
    assert parse(build_package(result) if isinstance(result, Package) else build_status(result))


@pytest.mark.parametrize("bare", [True, False], ids=["bare-envelope", "full-edxml"])
def test_mime_written_by_a_mail_library_reads_as_the_package(bare: bool) -> None:
    pkg = sample_package(5000)
    two = dataclasses.replace(
        pkg,
        attachments=(
            *pkg.attachments,
            dataclasses.replace(pkg.attachments[0], content_id="pl-1.pdf", data=b"\x00\xff" * 9),
        ),
    )
    assert parse(mime_package(two, bare_envelope=bare)) == two
