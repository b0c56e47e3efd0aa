"""The IMAP4rev1 server (RFC 3501) on pymap 0.36, over the mail store (imap_store.py), on the
service's event loop: `[mail] imap_port` with STARTTLS (LOGIN and AUTHENTICATE refused, and
LOGINDISABLED advertised, until it), `[mail] imaps_port` with implicit TLS (RFC 8314).

What is ours around pymap:
- the login: the official's mail address or identity username and password, checked by
  identity through the logins SMTP AUTH uses (`MailLogins`: same lockout, same per-address
  failure window, counted across both protocols);
- the connection: pymap lets clients on localhost log in without TLS, and reads a LITERAL+
  `{n+}` of any size into memory; here neither (a literal over the message limit, or a line
  over 64 KiB, gets BYE);
- LIST with SPECIAL-USE attributes (RFC 6154), SEARCH accent-insensitive on text keys, and
  FETCH/SEARCH reading message bytes in chunks.

Refusals (RFC 5530 codes): wrong login NO [AUTHENTICATIONFAILED], the third in one
connection with BYE; ten failures from one address, or identity unreachable, NO
[UNAVAILABLE]; a mailbox not yours or not there NO [NONEXISTENT] (or [TRYCREATE] for
COPY/APPEND); mailbox full NO [OVERQUOTA]; an APPEND over APPENDLIMIT BAD before its bytes
are sent; a name or folder rule NO [CANNOT].
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from argparse import Namespace
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, closing
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NoReturn

from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.sock import SocketInfo
from pymap.backend.session import BaseSession
from pymap.concurrent import Subsystem
from pymap.config import BackendCapability, IMAPConfig
from pymap.context import connection_exit, socket_info
from pymap.exceptions import AuthorizationFailure, InvalidAuth, NotAllowedError
from pymap.imap import IMAPConnection, IMAPServer
from pymap.imap.state import ConnectionState
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.interfaces.token import TokenCredentials, TokensInterface
from pymap.parsing.command import Command
from pymap.parsing.response import (
    CommandResponse,
    Response,
    ResponseBye,
    ResponseNo,
    ResponseOk,
)
from pymap.parsing.specials import FetchRequirement, SearchKey, SequenceSet
from pymap.parsing.state import ParsingInterrupt, ParsingState
from pymap.search import SearchParams
from pymap.selected import SelectedMailbox
from pymap.user import UserMetadata
from pysasl import SASLAuth
from pysasl.creds.server import ServerCredentials
from pysasl.hashing import BuiltinHash

from services.mail.entrypoints import imap_names  # noqa: F401 (pymap's name decoder fixed)
from services.mail.entrypoints.imap_search import folded_criteria
from services.mail.entrypoints.imap_store import (
    Refused,
    StoreFolder,
    StoreMailboxes,
    StoreMessage,
)
from services.mail.entrypoints.logins import MailLogins, Outcome
from services.mail.service_layer.mail import MailApp

log = logging.getLogger("services.mail.imap")
MAX_LINE = 64 * 1024  # a command line (literals apart); the stream reader's limit
MAX_LOGIN_FAILURES = 3  # per connection, then BYE (as SMTP AUTH's 421)


class StoreConfig(IMAPConfig):
    def __init__(
        self, *, tls: ssl.SSLContext, starttls: bool, max_append: int, hostname: str
    ) -> None:
        super().__init__(
            Namespace(passlib_cfg=None, proxy_protocol=None),
            host=None,
            port=0,
            ssl_context=tls,
            tls_enabled=starttls,  # False: the connection is TLS from the start (IMAPS)
            max_append_len=max_append,
            reject_dnsbl=False,
            invalid_user_sleep=0.0,
            hash_context=BuiltinHash(),
            cpu_subsystem=Subsystem.for_asyncio(),
        )
        self.hostname = hostname

    @property
    def backend_capability(self) -> BackendCapability:
        return BackendCapability(
            idle=True, object_id=True, multi_append=True, custom=[b"SPECIAL-USE"]
        )

    @property
    def tls_auth(self) -> SASLAuth:
        # Mechanisms that hand over the password: identity checks it (no CRAM-MD5 etc.).
        return SASLAuth.named([b"PLAIN", b"LOGIN"])

    @property
    def greeting(self) -> bytes:
        return f"{self.hostname} LGSP mail IMAP4rev1 ready".encode("ascii", "replace")


class _Secret:
    """pysasl hands a credential's password only to `verify`: catch it there."""

    secret = ""

    def compare_authcid(self, value: str) -> bool:
        return True

    def compare_secret(self, value: str) -> bool:
        self.secret = value
        return True


class NoTokens(TokensInterface):
    """pymap's bearer tokens (its admin API, OAUTHBEARER) are not offered: IMAP logins are
    PLAIN/LOGIN checked by identity. Answers as pymap's interface says "not supported" is."""

    def get_login_token(self, identifier: str, authcid: str, key: bytes, **_: Any) -> None:
        return None

    def get_admin_token(self, admin_key: bytes | None, **_: Any) -> None:
        return None

    def parse(self, authzid: str, token: str, **_: Any) -> TokenCredentials:
        raise ValueError("bearer tokens are not accepted here")


class StoreLogin(LoginInterface):
    def __init__(self, app: MailApp, logins: MailLogins, config: StoreConfig, recheck_s: float):
        self.app, self.logins, self.config, self.recheck_s = app, logins, config, recheck_s

    @property
    def tokens(self) -> TokensInterface:
        return NoTokens()

    async def authenticate(self, credentials: ServerCredentials) -> StoreIdentity:
        secret = _Secret()
        credentials.verify(secret)  # type: ignore[arg-type]
        peer = str(socket_info.get().peername_ip or "unknown")
        done = await self.logins.check(credentials.authcid, secret.secret, peer, "IMAP")
        if done.outcome is Outcome.BLOCKED:
            raise Refused(b"UNAVAILABLE", "Too many failed logins from your address, try later")
        if done.outcome is Outcome.UNAVAILABLE:
            raise Refused(b"UNAVAILABLE", "Temporary authentication failure, try again later")
        if done.outcome is Outcome.APP_PASSWORD_REQUIRED:
            raise Refused(
                b"ALERT",
                "Application-specific password required: two-step verification is on for this"
                " account (create an app password)",
            )
        if done.outcome is Outcome.REFUSED:
            raise InvalidAuth()
        log.info("IMAP login of %s from %s", done.user_id, peer)
        return StoreIdentity(self, done.user_id, credentials.authcid)

    async def authorize(self, authenticated: IdentityInterface, authzid: str) -> IdentityInterface:
        # No acting as another user: delegates reach shared mailboxes by name instead.
        if not isinstance(authenticated, StoreIdentity) or authzid not in (
            "",
            authenticated.name,
            authenticated.login_name,
        ):
            raise AuthorizationFailure()
        return authenticated


class StoreIdentity(IdentityInterface):
    def __init__(self, login: StoreLogin, user_id: str, login_name: str) -> None:
        self.login, self.user_id, self.login_name = login, user_id, login_name

    @property
    def name(self) -> str:
        return self.user_id

    @property
    def roles(self) -> frozenset[str]:
        return frozenset()

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[StoreSession]:
        app = self.login.app
        own, delegated = await asyncio.to_thread(app.imap_mailboxes, self.user_id)
        if own is None and not delegated:
            raise NotAllowedError("No mailbox for this account.")
        mailboxes = StoreMailboxes(app, self.user_id, own, delegated, self.login.recheck_s)
        yield StoreSession(self.user_id, self.login.config, mailboxes)

    async def new_token(self, *, expiration: datetime | None = None) -> str | None:
        return None

    async def get(self) -> UserMetadata:
        raise NotAllowedError("Accounts are managed by identity.")

    async def set(self, metadata: UserMetadata) -> int | None:
        raise NotAllowedError("Accounts are managed by identity.")

    async def delete(self) -> None:
        raise NotAllowedError("Accounts are managed by identity.")


class StoreSession(BaseSession[StoreMessage]):
    def __init__(self, owner: str, config: StoreConfig, mailboxes: StoreMailboxes) -> None:
        super().__init__(owner)
        self._config, self._mailboxes = config, mailboxes

    @property
    def config(self) -> StoreConfig:
        return self._config

    @property
    def mailbox_set(self) -> StoreMailboxes:
        return self._mailboxes

    async def list_mailboxes(
        self,
        ref_name: str,
        filter_: str,
        subscribed: bool = False,
        selected: SelectedMailbox | None = None,
    ) -> tuple[Iterable[tuple[str, str | None, Sequence[bytes]]], SelectedMailbox | None]:
        found, updates = await super().list_mailboxes(ref_name, filter_, subscribed, selected)
        special = await self._mailboxes.special_use()
        only = special_use_only.get()
        return [
            (name, sep, [*attrs, *([special[name]] if name in special else [])])
            for name, sep, attrs in found
            if not only or name in special
        ], updates

    async def _selected_folder(self, selected: SelectedMailbox) -> StoreFolder:
        return await self._mailboxes.get_mailbox(selected.lookup)

    async def fetch_messages(
        self, selected: SelectedMailbox, sequence_set: SequenceSet, set_seen: bool
    ) -> tuple[Iterable[tuple[int, StoreMessage]], SelectedMailbox]:
        folder = await self._selected_folder(selected)
        folder.plan([c.uid for _, c in selected.messages.get_all(sequence_set)])
        return await super().fetch_messages(selected, sequence_set, set_seen)

    async def search_mailbox(
        self, selected: SelectedMailbox, keys: frozenset[SearchKey]
    ) -> tuple[Iterable[tuple[int, StoreMessage]], SelectedMailbox]:
        """pymap's search with the text keys folded (imap_search.py)."""
        folder = await self._selected_folder(selected)
        req = FetchRequirement.reduce(key.requirement for key in keys)
        search = folded_criteria(keys, SearchParams(selected))
        candidates = list(selected.messages.get_all(search.sequence_set))
        folder.plan([c.uid for _, c in candidates])
        found: list[tuple[int, StoreMessage]] = []
        for seq, cached in candidates:
            msg = await folder.get(cached.uid, cached)
            if search.matches(seq, msg, await msg.load_content(req)):
                found.append((seq, msg))
        return found, await folder.update_selected(selected)


class _HangUp(InvalidAuth):
    def get_response(self, tag: bytes) -> ResponseNo:
        response = super().get_response(tag)
        response.add_untagged(ResponseBye(b"Too many failed logins."))
        return response


class StoreState(ConnectionState):
    failures = 0

    async def do_greeting(self) -> CommandResponse:
        # pymap would allow LOGIN in clear text from localhost; not here (tests, proxies).
        return ResponseOk(b"*", self.config.greeting, self.capability)

    async def do_authenticate(self, cmd: Any, creds: ServerCredentials | None) -> CommandResponse:
        """As SMTP AUTH: the third wrong password in one connection ends it."""
        try:
            return await super().do_authenticate(cmd, creds)
        except InvalidAuth:
            self.failures += 1
            if self.failures >= MAX_LOGIN_FAILURES:
                raise _HangUp() from None
            raise


class _Coalesced:
    """pymap writes a response token by token; over TLS each write may become a record of
    its own, and clients reading without blocking (imap-tools' IDLE poll) then see half a
    line. Gather the pieces and hand the transport 64 KiB at a time."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer, self.parts, self.size = writer, list[bytes](), 0

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))
        self.size += len(data)
        if self.size >= 65536:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.writer.write(b"".join(self.parts))
            self.parts, self.size = [], 0


# RFC 6154 §5.1 LIST forms pymap's parser does not take (it has no LIST-EXTENDED): the
# selection option `LIST (SPECIAL-USE) ref pattern` (only the special-use folders) and the
# return option `LIST ref pattern RETURN (SPECIAL-USE)` (plain LIST gives the attributes).
_LIST_SELECT = re.compile(rb"^(\S+ LIST) \(SPECIAL-USE\) ", re.IGNORECASE)
_LIST_RETURN = re.compile(rb" RETURN \(SPECIAL-USE\)(\r?\n)$", re.IGNORECASE)
special_use_only: ContextVar[bool] = ContextVar("special_use_only", default=False)


class StoreConnection(IMAPConnection):
    """pymap's connection with bounded literals and lines, whole lines per write, and the
    SPECIAL-USE forms of LIST."""

    max_literal = 0

    async def read_command(self, state: ConnectionState) -> Command:
        """pymap's, with the LIST line rewritten first."""
        line = bytes(await self.readline())
        selected = _LIST_SELECT.match(line)
        special_use_only.set(bool(selected))
        if selected:
            line = selected.group(1) + b" " + line[selected.end() :]
        buf = memoryview(_LIST_RETURN.sub(rb"\1", line))
        conts: list[memoryview] = []
        while True:
            params = self.params.copy(ParsingState(continuations=conts))
            try:
                cmd, _ = self.commands.parse(buf, params)
            except ParsingInterrupt as interrupt:
                await self._interrupt(state, interrupt, conts)
            else:
                return cmd

    async def write_response(self, resp: Response) -> None:
        out = _Coalesced(self.writer)
        try:
            await resp.async_write(out)
            out.flush()
            await self.writer.drain()
        except ConnectionError:
            pass

    async def _refuse(self, why: bytes) -> NoReturn:
        await self.write_response(ResponseBye(why))
        raise EOFError()

    async def readline(self) -> memoryview:
        try:
            line = await self.reader.readline()
        except (ValueError, asyncio.LimitOverrunError):
            await self._refuse(b"Line too long.")
        buf = bytearray(line)
        while True:
            if not buf.endswith(b"\n"):
                raise EOFError()
            lit_plus = (
                self._literal_plus.search(buf) if buf.endswith((b"+}\n", b"+}\r\n")) else None
            )
            if not lit_plus:
                return memoryview(buf)
            length = int(lit_plus.group(1))
            if length > self.max_literal:
                await self._refuse(b"Literal too large.")
            buf += await self.reader.readexactly(length)
            try:
                buf += await self.reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                await self._refuse(b"Line too long.")

    async def read_continuation(self, literal_length: int) -> memoryview:
        if literal_length > self.max_literal:
            await self._refuse(b"Literal too large.")
        return await super().read_continuation(literal_length)


class StoreServer(IMAPServer):
    """One connection: our state and connection classes around pymap's loop."""

    __slots__ = ["connections", "max_literal"]

    def __init__(self, login: StoreLogin, config: StoreConfig, max_literal: int) -> None:
        super().__init__(login, config)
        self.connections: set[asyncio.Task[Any]] = set()
        self.max_literal = max_literal

    async def __call__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sock_info: SocketInfo
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        conn = StoreConnection(self.commands, self._config, reader, writer, sock_info)
        conn.max_literal = self.max_literal
        state = StoreState(self._login, self._config)
        try:
            async with AsyncExitStack() as stack:
                connection_exit.set(stack)
                stack.enter_context(closing(conn))
                await conn.run(state)
        except Exception:
            log.exception("IMAP connection failed")
        finally:
            self.connections.discard(task)


def imap_task(
    app: MailApp,
    logins: MailLogins,
    *,
    host: str,
    port: int,
    hostname: str,
    tls: ssl.SSLContext,
    implicit_tls: bool,
    recheck_s: float,
    on_listening: Callable[[int], None] | None = None,
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """A background task (lgsp.plugins.Background) serving one IMAP port until stop."""
    kind = "IMAPS" if implicit_tls else "IMAP"
    max_append = app.rules.max_message_bytes
    config = StoreConfig(
        tls=tls, starttls=not implicit_tls, max_append=max_append, hostname=hostname
    )
    server = StoreServer(StoreLogin(app, logins, config, recheck_s), config, max_append + 1024)
    callback = ProxyProtocolReader(config.proxy_protocol).get_callback(server)

    async def serve(stop: asyncio.Event) -> None:
        listener = await asyncio.start_server(
            callback, host=host, port=port, ssl=tls if implicit_tls else None, limit=MAX_LINE
        )
        bound = listener.sockets[0].getsockname()[1]
        log.info("%s listening on %s:%d", kind, host, bound)
        if on_listening is not None:
            on_listening(bound)
        try:
            await stop.wait()
        finally:
            listener.close()
            for task in list(server.connections):
                task.cancel()  # pymap answers BYE [UNAVAILABLE]
            try:
                await asyncio.wait_for(listener.wait_closed(), 2.0)
            except TimeoutError:
                pass

    serve.__name__ = kind.lower()
    return serve
