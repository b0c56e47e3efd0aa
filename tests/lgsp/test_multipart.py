"""lgsp.multipart: splitting MIME multipart messages from other systems, strictly."""

from __future__ import annotations

import pytest

from lgsp.multipart import MultipartError, looks_like_mime, split

HEAD = b'MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="b"\r\n\r\n'


def _msg(*parts: bytes, head: bytes = HEAD, close: bytes = b"--b--\r\n") -> bytes:
    return head + b"".join(b"--b\r\n" + p + b"\r\n" for p in parts) + close


XML = b"Content-Type: application/xml\r\nContent-ID: <root>\r\n\r\n<edXML/>"


def test_root_and_parts_by_content_id_with_each_transfer_encoding() -> None:
    mime = split(
        _msg(
            XML,
            b"Content-ID: <a>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=",
            b"Content-ID: <b>\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9",
            b"Content-ID: <c>\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\xff\r\nx",
            b"Content-ID: <empty>\r\n\r\n",
        )
    )
    assert mime.media_type == "multipart/related"
    assert (mime.root.content_id, mime.root.decode()) == ("root", b"<edXML/>")
    decoded = {cid: p.decode() for cid, p in mime.parts.items()}
    assert decoded == {"a": b"hello", "b": "hé".encode(), "c": b"\x00\xff\r\nx", "empty": b""}
    assert mime.parts["a"].decoded_size_bound() >= 5


def test_start_parameter_and_separate_content_type() -> None:
    body = _msg(b"Content-ID: <f>\r\n\r\nfile", XML, head=b"")
    mime = split(body, content_type='multipart/related; boundary=b; start="<root>"')
    assert mime.root.content_id == "root" and list(mime.parts) == ["f"]
    with pytest.raises(MultipartError, match="names no part"):
        split(body, content_type='multipart/related; boundary=b; start="<nope>"')


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (_msg(XML, head=HEAD.replace(b"related", b"alternative")), "Content-Type", "is not one"),
        (_msg(XML, head=HEAD.replace(b'; boundary="b"', b"")), "Content-Type", "boundary"),
        (HEAD + b"no delimiter here", "body", "never occurs"),
        (_msg(XML, close=b""), "part[1]", "not closed"),
        (_msg(XML).replace(b"--b\r\n", b"--b junk\r\n", 1), "part[1]", "trailing text"),
        (_msg(XML, b"Content-Type: text/plain\r\n\r\nx"), "part[2]/Content-ID", "is missing"),
        (_msg(XML, XML), "part[2]/Content-ID", "used twice"),
        (
            _msg(XML, b"Content-ID: <x>\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\nx"),
            "part[2]",
            "within the limit",
        ),
        (_msg(XML, "Content-ID: <é>\r\n\r\nx".encode()), "part[2]", "must be ASCII"),
    ],
)
def test_malformed_messages_name_the_place(data: bytes, field: str, reason: str) -> None:
    with pytest.raises(MultipartError) as err:
        split(data)
    assert err.value.field == field and reason in err.value.reason


def test_part_count_is_capped_and_bad_base64_is_refused_on_decode() -> None:
    parts = [b"Content-ID: <p%d>\r\n\r\nx" % i for i in range(5)]
    with pytest.raises(MultipartError, match="more than 3 parts"):
        split(_msg(XML, *parts), max_parts=3)
    mime = split(_msg(XML, b"Content-ID: <a>\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!"))
    with pytest.raises(MultipartError, match="not valid base64"):
        mime.parts["a"].decode()


def test_looks_like_mime() -> None:
    assert looks_like_mime(HEAD) and looks_like_mime(b"\r\nContent-Type: multipart/related")
    assert not looks_like_mime(b"<?xml version='1.0'?><edXML/>")
    assert not looks_like_mime(b"\xef\xbb\xbf  <edXML/>") and not looks_like_mime(b"")
    assert not looks_like_mime(b"not xml at all")
