"""The IMAP server with real clients (Python's imaplib and imap-tools) against the running
mail service: STARTTLS and IMAPS logins checked like SMTP AUTH, folders with SPECIAL-USE,
FETCH, accent-insensitive SEARCH, flags, EXPUNGE, COPY, MOVE, APPEND with the quota, IDLE
seeing an SMTP delivery, delegates and strangers; and hostile input: an overlong literal and
line, bad UID sets, unknown mailboxes, CR/LF and SQL in mailbox names.

Changes over IMAP and gRPC are one store: what one does, the other sees."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from imap_tools import AND, MailBox, MailboxLoginError, MailBoxStartTls

from lgsp.api.mail.v1 import mail_pb2 as pb
from lgsp.auth import Principal
from services.mail.domain.mailbox import Kind, Mailbox
from tests.services.mail.env import JUSTICE, PROVINCE, MailEnv, client_tls, mail_env

PASSWORD = "Mat-khau-2026!"
T = TypeVar("T")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path, LGSP_MAIL_MAX_MESSAGE_BYTES="200000") as e:
        yield e


async def run(fn: Callable[..., T], *args: Any) -> T:
    """A blocking client in a thread: the server runs on this test's event loop."""
    return await asyncio.to_thread(fn, *args)


def message(sender: str, to: str, subject: str, body: str = "Nội dung") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_content(body)
    return m.as_bytes(policy=policy.SMTP)


def deliver(env: MailEnv, to: str, subject: str, body: str = "Nội dung") -> None:
    env.app.deliver(message("ban@example.org", to, subject, body), "ban@example.org", [to])


def starttls(env: MailEnv, user: str, password: str = PASSWORD) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", env.ports["imap"], timeout=10)
    c.starttls(ssl_context=client_tls())
    c.login(user, password)
    return c


def imaps(env: MailEnv, user: str, password: str = PASSWORD) -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL("127.0.0.1", env.ports["imaps"], ssl_context=client_tls(), timeout=10)
    c.login(user, password)
    return c


def refused(fn: Callable[..., Any], *args: Any) -> str:
    """The text of a NO/BAD answer (imaplib raises IMAP4.error for some commands and
    returns the NO of others)."""
    try:
        typ, data = fn(*args)
    except imaplib.IMAP4.error as e:
        return str(e)
    if typ != "OK":
        return f"{typ} {data}"
    raise AssertionError(f"not refused: {typ} {data}")


def used(env: MailEnv, address: str) -> int:
    return env.rows("mailboxes", f"address = '{address}' and used_bytes > 0") and int(
        _scalar(env, f"select used_bytes from mailboxes where address = '{address}'")
    )


def _scalar(env: MailEnv, sql: str) -> Any:
    with env.runtime.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


# --- login ------------------------------------------------------------------------------------


async def test_bearer_token_logins_are_refused_and_the_session_goes_on(env: MailEnv) -> None:
    """Only PLAIN and LOGIN are offered: a client trying OAUTHBEARER or XOAUTH2 (as
    Thunderbird does for some providers) is told no, and its password login still works."""
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)

    def session() -> tuple[list[str], str]:
        c = imaplib.IMAP4("127.0.0.1", env.ports["imap"], timeout=10)
        c.starttls(ssl_context=client_tls())
        refused = []
        for mechanism in ("OAUTHBEARER", "XOAUTH2"):
            try:
                c.authenticate(mechanism, lambda _: b"user=x\x01auth=Bearer abc\x01\x01")
            except imaplib.IMAP4.error:
                refused.append(mechanism)
        typ, _ = c.login(an, PASSWORD)
        c.logout()
        return refused, typ

    assert await run(session) == (["OAUTHBEARER", "XOAUTH2"], "OK")


async def test_login_only_after_starttls_and_with_identitys_password(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)

    def session() -> tuple[Any, ...]:
        c = imaplib.IMAP4("127.0.0.1", env.ports["imap"], timeout=10)
        caps = c.capabilities
        before = refused(c.login, an, PASSWORD)
        auth_before = refused(c.authenticate, "PLAIN", lambda _: f"\0{an}\0{PASSWORD}".encode())
        c.starttls(ssl_context=client_tls())
        wrong = refused(c.login, an, "wrong")
        ok = c.login("u-an.test", PASSWORD)  # the identity username works too
        c.logout()
        return caps, before, auth_before, wrong, ok

    def guesser() -> str:
        c = imaplib.IMAP4_SSL("127.0.0.1", env.ports["imaps"], ssl_context=client_tls())
        refused(c.login, an, "one")
        refused(c.login, an, "two")
        try:
            c.login(an, "three")
        except imaplib.IMAP4.abort as e:  # imaplib's name for a BYE
            return str(e)
        raise AssertionError("the connection stayed open")

    assert "Too many failed logins" in await run(guesser)
    caps, before, auth_before, wrong, ok = await run(session)
    assert "STARTTLS" in caps and "LOGINDISABLED" in caps
    assert "LOGIN is disabled" in before
    assert "Invalid authentication mechanism" in auth_before
    assert "[AUTHENTICATIONFAILED]" in wrong
    assert ok[0] == "OK"


async def test_imaps_login_with_imap_tools_and_the_shared_failure_window(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)

    def good() -> list[str]:
        with MailBox("127.0.0.1", env.ports["imaps"], ssl_context=client_tls()).login(
            an, PASSWORD
        ) as mb:
            return [f.name for f in mb.folder.list()]

    assert await run(good) == ["INBOX", "Sent", "Drafts", "Trash"]

    def guess() -> str:
        try:
            MailBox("127.0.0.1", env.ports["imaps"], ssl_context=client_tls()).login(an, "x")
        except MailboxLoginError as e:
            return str(e)
        raise AssertionError("logged in with a wrong password")

    for _ in range(10):
        assert "AUTHENTICATIONFAILED" in await run(guess)
    calls = env.passwords.calls
    # The eleventh is refused before identity is asked, over IMAP and SMTP alike.
    assert "UNAVAILABLE" in await run(guess)
    assert "UNAVAILABLE" in await run(refused, imaps, env, an)
    assert env.passwords.calls == calls

    def smtp_auth() -> int:
        with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=10) as s:
            s.starttls(context=client_tls())
            try:
                s.login(an, PASSWORD)
            except smtplib.SMTPResponseException as e:
                return e.smtp_code
        return 235

    assert await run(smtp_auth) == 454


# --- folders and reading ----------------------------------------------------------------------


async def test_list_select_fetch_and_seen_shared_with_grpc(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    deliver(env, an, "Kế hoạch cải cách hành chính", "Kính gửi anh An")
    deliver(env, an, "Giấy mời họp")
    inbox = next(f for f in env.app.list_folders(Principal("u-an", "user"), an))[0]

    def session() -> dict[str, Any]:
        c = starttls(env, an)
        out: dict[str, Any] = {"list": c.list()[1]}
        # RFC 6154 §5.1: the selection option lists only the special-use folders.
        c._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
        out["special"] = c.response("LIST")[1]
        c._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        out["returned"] = c.response("LIST")[1]
        out["select"] = c.select("INBOX")
        out["uidvalidity"] = c.response("UIDVALIDITY")[1]
        out["headers"] = c.uid(
            "FETCH", "1:*", "(FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        )
        out["structure"] = c.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
        out["peeked"] = c.fetch("1", "(FLAGS)")
        out["body"] = c.fetch("1", "(BODY[])")
        out["seen"] = c.fetch("1", "(FLAGS)")
        # Flagged through the use case gRPC UpdateFlags runs: the session hears of it.
        official = Principal("u-an", "user")
        other = env.app.list_messages(official, an, "INBOX", query="giay moi")[0][0]
        env.app.update_flags(official, an, [other.id], {"flagged": True})
        c.noop()
        out["pushed"] = c.response("FETCH")
        c.logout()
        return out

    out = await run(session)
    assert b'(\\HasNoChildren \\Sent) "/" Sent' in out["list"]
    assert b'(\\HasNoChildren \\Trash) "/" Trash' in out["list"]
    assert [n.rsplit(b" ", 1)[1] for n in out["special"]] == [b"Sent", b"Drafts", b"Trash"]
    assert out["returned"] == out["list"]
    assert out["select"] == ("OK", [b"2"])
    assert out["uidvalidity"] == [str(inbox.uidvalidity).encode()]
    headers = out["headers"][1]
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in headers)
    assert b"UID 1" in flat and b"UID 2" in flat and b"RFC822.SIZE" in flat
    assert b"Subject: =?utf-8?" in headers[0][1]  # the header as stored (RFC 2047)
    structure = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in out["structure"][1])
    # ENVELOPE's subject as in the header: RFC 2047 words, no 8-bit (RFC 3501 7.4.2).
    assert (
        b"ENVELOPE (NIL {64}=?utf-8?b?S+G6vyBob+G6oWNoIGPhuqNpIGPDoWNoIGjDoG5oIGNow61uaA==?="
        in (structure)
    )
    assert structure.isascii() and b'("text" "plain" ("charset" "utf-8")' in structure
    assert out["peeked"][1] == [b"1 (FLAGS ())"]  # BODY.PEEK does not mark it seen
    assert b"K\xc3\xadnh g\xe1\xbb\xadi anh An" in out["body"][1][0][1]
    assert out["seen"][1] == [b"1 (FLAGS (\\Seen))"]
    assert out["pushed"] == ("FETCH", [b"2 (FLAGS (\\Flagged))"])
    # The same store: gRPC sees it read.
    listed = await env.stub().ListMessages(
        pb.ListMessagesRequest(mailbox_address=an, unread_only=True), metadata=env.md("u-an")
    )
    assert [m.subject for m in listed.messages] == ["Giấy mời họp"]
    first = await env.stub().ListMessages(
        pb.ListMessagesRequest(mailbox_address=an, query="cai cach"), metadata=env.md("u-an")
    )
    read = await env.stub().GetMessage(
        pb.GetMessageRequest(mailbox_address=an, id=first.messages[0].id), metadata=env.md("u-an")
    )
    assert read.message.flags.seen and not read.message.flags.flagged


async def test_search_is_accent_insensitive(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    deliver(env, an, "Báo cáo tỉnh Hà Tĩnh quý 2")
    deliver(env, an, "Lịch công tác", "Đoàn công tác đi Hà Tĩnh ngày 5")
    deliver(env, an, "Hà Nội")

    def session() -> tuple[Any, ...]:
        c = starttls(env, an)
        c.select("INBOX")
        plain = c.search(None, "SUBJECT", '"ha tinh"')[1]
        c.literal = "Hà Tĩnh".encode()
        accented = c.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")[1]
        body = c.search(None, "BODY", '"doan cong tac"')[1]
        either = c.search(None, "OR", "SUBJECT", '"ha noi"', "TEXT", '"ha tinh ngay"')[1]
        negated = c.search(None, "NOT", "SUBJECT", '"ha tinh"')[1]
        c.logout()
        return plain, accented, body, either, negated

    assert await run(session) == ([b"1"], [b"1"], [b"2"], [b"2 3"], [b"2 3"])

    def with_imap_tools() -> list[str]:
        with MailBoxStartTls("127.0.0.1", env.ports["imap"], ssl_context=client_tls()).login(
            an, PASSWORD
        ) as mb:
            return [m.subject for m in mb.fetch(AND(subject="ha tinh"), mark_seen=False)]

    assert await run(with_imap_tools) == ["Báo cáo tỉnh Hà Tĩnh quý 2"]


# --- writing ----------------------------------------------------------------------------------


async def test_store_expunge_frees_the_quota(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    deliver(env, an, "Một")
    deliver(env, an, "Hai")
    before = used(env, an)

    def session() -> tuple[Any, ...]:
        c = starttls(env, an)
        c.select("INBOX")
        stored = c.store("1", "+FLAGS", "(\\Deleted \\Flagged)")[1]
        draft = c.uid("STORE", "2", "+FLAGS.SILENT", "(\\Draft $Forwarded)")
        flags = c.fetch("2", "(FLAGS)")[1]
        expunged = c.expunge()[1]
        left = c.fetch("1:*", "(UID)")[1]
        c.logout()
        return stored, draft, flags, expunged, left

    stored, draft, flags, expunged, left = await run(session)
    assert stored == [b"1 (FLAGS (\\Deleted \\Flagged))"]
    assert draft == ("OK", [None])
    assert flags == [b"2 (FLAGS (\\Draft $Forwarded))"]
    assert expunged == [b"1"] and left == [b"1 (UID 2)"]
    assert env.rows("messages", f"mailbox_address = '{an}'") == 1
    assert 0 < used(env, an) < before


async def test_copy_and_move_follow_the_stores_rules(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    deliver(env, an, "Công văn 1")
    deliver(env, an, "Công văn 2")
    before = used(env, an)

    def session() -> tuple[Any, ...]:
        c = starttls(env, an)
        created = c.create('"C&APQ-ng vi&Hsc-c 2026"')  # modified UTF-7 (RFC 3501 5.1.3)
        names = c.list()[1]
        c.select("INBOX")
        copied = c._simple_command("UID", "COPY", "1", "Trash")  # the tagged text, COPYUID
        moved = c.uid("MOVE", "2", "Trash")
        moved_uids = c.response("COPYUID")
        left = c.fetch("1:*", "(UID)")[1]
        status = c.status("Trash", "(MESSAGES UIDNEXT)")[1]
        trycreate = refused(c.uid, "COPY", "1", "Nowhere")
        c.logout()
        return created, names, copied, (moved, moved_uids), left, status, trycreate

    created, names, copied, moved, left, status, trycreate = await run(session)
    assert created[0] == "OK"
    assert b'(\\HasNoChildren) "/" "C&APQ-ng vi&Hsc-c 2026"' in names
    trash = env.app.list_folders(Principal("u-an", "user"), an)[3][0]
    assert copied == ("OK", [f"[COPYUID {trash.uidvalidity} 1 1] UID COPY completed.".encode()])
    # The move gives the message a new UID in Trash: 2 there, from 2 in INBOX.
    assert moved[0][0] == "OK" and moved[1][1][-1] == f"{trash.uidvalidity} 2 2".encode()
    assert left == [b"1 (UID 1)"]
    assert status == [b"Trash (MESSAGES 2 UIDNEXT 3)"]
    assert "[TRYCREATE]" in trycreate
    # A copy counts against the quota; a move within the mailbox does not.
    assert used(env, an) == before + before // 2
    folders = env.app.list_folders(Principal("u-an", "user"), an)
    assert {f.name for f, _, _ in folders} >= {"Công việc 2026"}
    trash = await env.stub().ListMessages(
        pb.ListMessagesRequest(mailbox_address=an, folder_id="Trash"), metadata=env.md("u-an")
    )
    assert sorted(m.subject for m in trash.messages) == ["Công văn 1", "Công văn 2"]


async def test_folders_create_rename_subscribe_delete(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    deliver(env, an, "Một")

    def session() -> dict[str, Any]:
        c = starttls(env, an)
        out: dict[str, Any] = {"create": c.create("Projects")[0]}
        out["taken"] = refused(c.create, "projects")
        out["rename"] = c.rename("Projects", '"Archive 2026"')[0]
        out["rename_inbox"] = refused(c.rename, "INBOX", "Old")
        out["rename_sent"] = refused(c.rename, "Sent", "Gone")
        out["unsubscribe"] = c.unsubscribe("Trash")[0]
        out["lsub"] = c.lsub()[1]
        c.select("INBOX")
        c.copy("1", '"Archive 2026"')
        out["delete_full"] = refused(c.delete, '"Archive 2026"')
        out["delete_standard"] = refused(c.delete, "Drafts")
        c.create("Empty")
        out["delete"] = c.delete("Empty")[0]
        out["examine"] = c.select("INBOX", readonly=True)[0]
        out["store_readonly"] = refused(c.store, "1", "+FLAGS", "(\\Seen)")
        out["list"] = c.list()[1]
        c.logout()
        return out

    out = await run(session)
    assert out["create"] == out["rename"] == out["unsubscribe"] == out["delete"] == "OK"
    assert "[ALREADYEXISTS]" in out["taken"]
    assert "NO" in out["rename_inbox"] and "[CANNOT]" in out["rename_sent"]
    assert b'(\\HasNoChildren \\Trash) "/" Trash' not in out["lsub"]
    assert b'(\\HasNoChildren) "/" INBOX' in out["lsub"]
    assert "[CANNOT]" in out["delete_full"] and "[CANNOT]" in out["delete_standard"]
    assert out["examine"] == "OK" and "[READ-ONLY]" in out["store_readonly"]
    assert b'(\\HasNoChildren) "/" "Archive 2026"' in out["list"]
    assert not any(b"Empty" in n or b"Projects" in n for n in out["list"])
    assert env.rows("folders", f"mailbox_address = '{an}' and name = 'Archive 2026'") == 1


async def test_append_to_sent_counts_against_the_quota(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    raw = message(an, "binhtt@syt.hatinh.gov.vn", "Bản lưu")

    def append(c: imaplib.IMAP4) -> Any:
        return c.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(time.time()), raw)

    def session() -> Any:
        c = starttls(env, an)
        done = append(c)
        c.logout()
        return done

    done = await run(session)
    assert done[0] == "OK" and b"[APPENDUID " in done[1][0]
    assert env.rows("messages", f"mailbox_address = '{an}' and folder_id = 'Sent' and seen") == 1
    assert used(env, an) == len(raw)
    # Now the mailbox is full: APPEND refused with OVERQUOTA, nothing stored.
    with env.runtime.engine.begin() as conn:
        conn.execute(sa.text(f"update mailboxes set quota_bytes = {len(raw) + 10}"))

    def full() -> str:
        c = starttls(env, an)
        try:
            return refused(append, c)
        finally:
            c.logout()

    assert "[OVERQUOTA]" in await run(full)
    assert env.rows("messages", f"mailbox_address = '{an}'") == 1


# --- IDLE -------------------------------------------------------------------------------------


async def test_idle_sees_an_smtp_delivery_within_a_second(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    env.add_official("u-binh", "Trần Thị Bình", JUSTICE)
    idling = asyncio.Event()
    loop = asyncio.get_running_loop()

    def idle() -> tuple[list[bytes], float]:
        with MailBoxStartTls("127.0.0.1", env.ports["imap"], ssl_context=client_tls()).login(
            an, PASSWORD
        ) as mb:
            mb.idle.start()
            loop.call_soon_threadsafe(idling.set)
            responses = mb.idle.poll(timeout=5)
            seen = time.monotonic()
            mb.idle.stop()
            return responses, seen

    task = asyncio.create_task(run(idle))
    await asyncio.wait_for(idling.wait(), 10)
    await asyncio.sleep(0.2)

    def send() -> float:
        with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=10) as s:
            s.starttls(context=client_tls())
            s.login("binhtt@stp.hatinh.gov.vn", PASSWORD)
            s.sendmail(
                "binhtt@stp.hatinh.gov.vn", [an], message("binhtt@stp.hatinh.gov.vn", an, "Khẩn")
            )
        return time.monotonic()

    sent = await run(send)
    responses, seen = await task
    assert b"* 1 EXISTS" in responses
    assert seen - sent < 1.0


async def test_a_change_by_another_process_shows_after_the_recheck(tmp_path: Path) -> None:
    async with mail_env(tmp_path, LGSP_MAIL_IMAP_RECHECK_SECONDS="0.5") as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        deliver(env, an, "Một")

        def session() -> tuple[Any, Any]:
            c = starttls(env, an)
            c.select("INBOX")
            # Written past this process's notifier, as another mail process would.
            with env.runtime.engine.begin() as conn:
                conn.execute(sa.text("update messages set flagged = true"))
            c.noop()
            at_once = c.response("FETCH")
            time.sleep(0.7)
            c.noop()
            later = c.response("FETCH")
            c.logout()
            return at_once, later

        at_once, later = await run(session)
    assert at_once == ("FETCH", [None])
    assert later == ("FETCH", [b"1 (FLAGS (\\Flagged))"])


async def test_the_store_queries_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The IMAP queries (header sections by substr, the fingerprint's casts) on PostgreSQL."""
    async with mail_env(
        tmp_path, LGSP_MAIL_DATABASE_URL=postgres_url, LGSP_MAIL_IMAP_RECHECK_SECONDS="0.5"
    ) as env:
        assert env.runtime.engine.dialect.name == "postgresql"
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        deliver(env, an, "Báo cáo Hà Tĩnh")
        deliver(env, an, "Lịch họp")

        def session() -> tuple[Any, ...]:
            c = imaps(env, an)
            c.select("INBOX")
            headers = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]
            found = c.search(None, "SUBJECT", '"ha tinh"')[1]
            c.store("2", "+FLAGS", "(\\Deleted $Junk)")
            c.expunge()
            with env.runtime.engine.begin() as conn:
                conn.execute(sa.text("update messages set flagged = true"))
            time.sleep(0.7)
            c.noop()
            later = c.response("FETCH")
            appended = c.append("Drafts", "(\\Draft)", None, message(an, an, "Nháp"))[0]
            c.logout()
            return headers, found, later, appended

        headers, found, later, appended = await run(session)
        assert b"Subject:" in headers[0][1] and found == [b"1"]
        assert later == ("FETCH", [b"1 (FLAGS (\\Flagged))"]) and appended == "OK"
        assert env.rows("messages", "draft") == 1 and env.rows("messages") == 2


# --- delegates --------------------------------------------------------------------------------


async def test_a_delegate_opens_the_agency_mailbox_and_a_stranger_does_not(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", JUSTICE)
    admin = Principal("u-admin", "user", PROVINCE, frozenset({"admin"}))
    vanthu = "vanthu@stp.hatinh.gov.vn"
    env.app.create_mailbox(
        admin,
        Mailbox(vanthu, "Văn thư Sở Tư pháp", Kind.AGENCY, JUSTICE, delegate_user_ids=["u-an"]),
    )
    deliver(env, vanthu, "Văn bản đến số 12")

    def delegate() -> tuple[Any, ...]:
        c = imaps(env, an)
        names = c.list()[1]
        selected = c.select(f"{vanthu}/INBOX")
        subject = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
        moved = c.uid("MOVE", "1", f"{vanthu}/Trash")[0]
        c.logout()
        return names, selected, subject, moved

    names, selected, subject, moved = await run(delegate)
    assert f'(\\HasNoChildren) "/" {vanthu}/INBOX'.encode() in names
    assert selected == ("OK", [b"1"])
    assert b"Subject:" in subject and moved == "OK"
    assert env.rows("messages", f"mailbox_address = '{vanthu}' and folder_id = 'Trash'") == 1

    deliver(env, binh, "Thư riêng")

    def stranger() -> tuple[str, ...]:
        c = imaps(env, binh)
        names = c.list()[1]
        assert not any(vanthu.encode() in n for n in names)
        out = (
            refused(c.select, f"{vanthu}/INBOX"),
            refused(c.select, "nobody@stp.hatinh.gov.vn/INBOX"),
            refused(c.status, f"{vanthu}/INBOX", "(MESSAGES)"),
        )
        c.select("INBOX")
        out += (refused(c.copy, "1:*", f"{vanthu}/INBOX"),)
        c.logout()
        return out

    forbidden, unknown, status, copy = await run(stranger)
    # Not theirs and not there are answered alike: no directory of mailboxes.
    assert "[NONEXISTENT]" in forbidden and "[NONEXISTENT]" in unknown
    assert "[NONEXISTENT]" in status and "[TRYCREATE]" in copy
    assert env.rows("messages", f"mailbox_address = '{vanthu}'") == 1


# --- hostile input ----------------------------------------------------------------------------


def raw_session(env: MailEnv, an: str) -> ssl.SSLSocket:
    """A TLS socket logged in, for bytes no client library would send."""
    sock = socket.create_connection(("127.0.0.1", env.ports["imaps"]), timeout=10)
    tls = client_tls().wrap_socket(sock)
    tls.recv(4096)
    tls.sendall(f'a LOGIN "{an}" "{PASSWORD}"\r\n'.encode())
    assert b"a OK" in read_until(tls, b"a ")
    return tls


def read_until(sock: ssl.SSLSocket, tag: bytes) -> bytes:
    data = b""
    while not re.search(rb"(^|\r\n)" + re.escape(tag) + rb"(OK|NO|BAD)[^\r\n]*\r\n", data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_hostile_input_is_refused(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    deliver(env, an, "Một")

    def bad_commands() -> list[bytes]:
        s = raw_session(env, an)
        answers = []
        for i, cmd in enumerate(
            [
                b"SELECT INBOX",
                b"UID FETCH abc FLAGS",
                b"FETCH 0 FLAGS",
                b"UID FETCH 1:99999999999 FLAGS",
                b"FETCH 1,,2 FLAGS",
                b"SELECT NoSuchFolder",
                b'SELECT "../../etc/passwd"',
                b'CREATE "a/b"',
                b"CREATE {9+}\r\nx\r\n* OK y",
                b'CREATE "x\'; DROP TABLE messages;--"',
            ]
        ):
            tag = f"t{i} ".encode()
            s.sendall(tag + cmd + b"\r\n")
            answers.append(read_until(s, tag).split(b"\r\n")[-2])
        s.close()
        return answers

    answers = await run(bad_commands)
    assert answers[0].startswith(b"t0 OK")
    assert all(a.split(b" ")[1] == b"BAD" for a in answers[1:3]), answers
    assert answers[3].startswith(b"t3 ")  # a range past the last UID: nothing, not a crash
    assert answers[4].split(b" ")[1] == b"BAD"
    assert b"[NONEXISTENT]" in answers[5] and b"[NONEXISTENT]" in answers[6]
    assert b"NO [CANNOT]" in answers[7]
    assert b"NO [CANNOT]" in answers[8]  # CR/LF in a name: refused, no header injection
    assert answers[9].startswith(b"t9 OK")  # only a name: stored as such, nothing run
    assert env.rows("messages") == 1
    assert env.rows("folders", "name = 'x''; DROP TABLE messages;--'") == 1

    def overlong_literal() -> bytes:
        s = raw_session(env, an)
        s.sendall(b"a1 APPEND INBOX {999999999999+}\r\n" + b"x" * 1000)
        data = s.recv(4096)
        closed = s.recv(4096) == b""
        s.close()
        return data if closed else b"still open"

    assert b"* BYE Literal too large." in await run(overlong_literal)

    def overlong_line() -> bytes:
        s = raw_session(env, an)
        s.sendall(b"a1 NOOP " + b"x" * 70000 + b"\r\n")
        data = s.recv(4096)
        s.close()
        return data

    assert b"* BYE Line too long." in await run(overlong_line)

    def too_big_append() -> str:
        c = starttls(env, an)
        try:
            return refused(c.append, "INBOX", None, None, b"x" * 300_000)
        finally:
            c.logout()

    # Refused before the client sends the bytes (no continuation for the literal).
    assert "BAD" in await run(too_big_append)
    assert env.rows("messages", f"mailbox_address = '{an}'") == 1
