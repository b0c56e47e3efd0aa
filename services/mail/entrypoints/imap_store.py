"""pymap's backend interfaces over the mail store: a session's set of folders
(`StoreMailboxes`, pymap's MailboxSetInterface), one folder (`StoreFolder`,
MailboxDataInterface) and its messages (`StoreMessage`). pymap parses the protocol and runs
the commands; these answer them from MailApp's IMAP use cases, each in a worker thread.

Names: the official's own folders at the top (INBOX, Sent, Drafts, Trash with their
SPECIAL-USE attributes, custom folders by name); a mailbox they are a delegate of under its
address: `vanthu@stp.hatinh.gov.vn/INBOX`. The hierarchy is flat below that ('/' is not
allowed in a folder name).

A folder's state (UIDs and flags) is read whole, once, and again only when `changes` says
its mailbox changed or `recheck_s` passed (another process may have written). FETCH and
SEARCH read the bytes ahead in chunks, not one query per message.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pymap.concurrent import Event
from pymap.exceptions import MailboxConflict, MailboxNotFound, ResponseError
from pymap.flags import FlagOp
from pymap.interfaces.message import CachedMessage
from pymap.listtree import ListTree
from pymap.mailbox import MailboxSnapshot
from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.mime import MessageContent
from pymap.parsing.message import AppendMessage
from pymap.parsing.response import ResponseNo
from pymap.parsing.response.code import ResponseCode
from pymap.parsing.specials import FetchRequirement, ObjectId
from pymap.parsing.specials.flag import (
    Answered,
    Deleted,
    Draft,
    Flag,
    Flagged,
    Recent,
    Seen,
    get_system_flags,
)
from pymap.selected import SelectedMailbox, SelectedSet

from services.mail.domain.errors import (
    AlreadyExists,
    DomainError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    TooLarge,
)
from services.mail.domain.mailbox import INBOX, Folder, Mailbox, Role
from services.mail.entrypoints.imap_envelope import LoadedMessage
from services.mail.service_layer.imap import HEAD_BYTES, Entry, FolderState, user
from services.mail.service_layer.mail import MailApp

T = TypeVar("T")
DELIMITER = "/"
FLAG_NAMES = {Seen: "seen", Flagged: "flagged", Answered: "answered", Deleted: "deleted"}
FLAG_NAMES[Draft] = "draft"
FLAGS_BY_NAME = {v: k for k, v in FLAG_NAMES.items()}
# Keywords kept like flags: the ones mail clients set (Thunderbird, Apple Mail, Outlook).
KEYWORDS = frozenset(
    Flag(k) for k in (b"$Forwarded", b"$MDNSent", b"$Junk", b"$NotJunk", b"$Important")
)
# RFC 6154 attributes (pymap writes the backslash).
SPECIAL_USE = {Role.SENT: b"Sent", Role.DRAFTS: b"Drafts", Role.TRASH: b"Trash"}
SPECIAL_USE[Role.JUNK] = b"Junk"
SPECIAL_USE[Role.ARCHIVE] = b"Archive"
READ_AHEAD = 200  # messages per query when FETCH or SEARCH needs bytes
READ_AHEAD_BYTES = 8 * 1024 * 1024


class Refused(ResponseError):
    """A domain refusal as a tagged NO with its RFC 5530 response code."""

    def __init__(self, code: bytes, message: str) -> None:
        super().__init__(message)
        self.code, self.text = code, message.encode("utf-8", "replace")[:300]

    def get_response(self, tag: bytes) -> ResponseNo:
        return ResponseNo(tag, self.text, ResponseCode.of(self.code))


def refusal(e: DomainError, name: str = "") -> ResponseError:
    """The IMAP answer to a domain refusal (the only place they are mapped)."""
    if isinstance(e, NotFound | Forbidden):
        # A mailbox that is not yours is answered like one that does not exist.
        return MailboxNotFound(name or "mailbox")
    if isinstance(e, AlreadyExists):
        return MailboxConflict(name)
    if isinstance(e, QuotaExceeded):
        return Refused(b"OVERQUOTA", "Mailbox full")
    if isinstance(e, TooLarge):
        return Refused(b"TOOBIG", e.message)
    return Refused(b"CANNOT", e.message)


async def call(fn: Callable[..., T], *args: Any, name: str = "", **kw: Any) -> T:
    """A use case in a worker thread, its refusal turned into an IMAP answer."""
    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except DomainError as e:
        raise refusal(e, name) from None


def to_names(flags: Iterable[Flag]) -> tuple[frozenset[str], list[str]]:
    names = frozenset(FLAG_NAMES[f] for f in flags if f in FLAG_NAMES)
    keywords = sorted(bytes(f).decode("ascii") for f in flags if f in KEYWORDS)
    return names, keywords


def to_flags(entry: Entry) -> frozenset[Flag]:
    flags = {FLAGS_BY_NAME[n] for n in entry.flags}
    flags.update(k for k in (Flag(w.encode("ascii")) for w in entry.keywords) if k in KEYWORDS)
    return frozenset(flags)


def imap_name(f: Folder) -> str:
    return f.id if f.role is not Role.CUSTOM else f.name


class StoreMessage(BaseMessage):
    __slots__ = ["folder", "size"]

    def __init__(
        self,
        folder: StoreFolder,
        uid: int,
        when: datetime,
        flags: Iterable[Flag],
        size: int,
        *,
        expunged: bool = False,
    ) -> None:
        super().__init__(uid, when, flags, expunged=expunged)
        self.folder, self.size = folder, size

    def expunged_copy(self) -> StoreMessage:
        """What pymap shows for a message another session expunged meanwhile."""
        return StoreMessage(
            self.folder,
            self.uid,
            self.internal_date,
            self.permanent_flags,
            self.size,
            expunged=True,
        )

    async def load_content(self, requirement: FetchRequirement) -> BaseLoadedMessage:
        if requirement.has_none(FetchRequirement.CONTENT) or self.expunged:
            return LoadedMessage(self, requirement, None)
        # ENVELOPE, BODY[HEADER…]: the header section is enough (attachments stay unread).
        head = not requirement.has_all(FetchRequirement.BODY)
        raw = await self.folder.raw(self.uid, head=head)
        content = MessageContent.parse(raw) if raw is not None else None
        return LoadedMessage(self, requirement, content)


class StoreFolder:
    """One folder of one mailbox, as selected or looked at in one IMAP session."""

    def __init__(self, owner: StoreMailboxes, address: str, folder: Folder, name: str) -> None:
        self.owner, self.address, self.folder, self.name = owner, address, folder, name
        self.app = owner.app
        digest = hashlib.sha256(f"{address}/{folder.id}".encode()).hexdigest()[:24]
        self._id = ObjectId(b"F" + digest.encode("ascii"))
        self._selected_set = SelectedSet()
        self._messages: dict[int, StoreMessage] = {}
        self._generation = -1
        self._loaded_at = 0.0
        self._version = 0
        self._fingerprint: tuple[int, ...] = ()
        self._plan: dict[int, int] = {}  # uid → place in the FETCH/SEARCH under way
        self._plan_uids: list[int] = []
        self._ahead: dict[tuple[int, bool], bytes] = {}  # (uid, header only) → bytes

    # --- what pymap reads -------------------------------------------------------------------

    @property
    def mailbox_id(self) -> ObjectId:
        return self._id

    @property
    def readonly(self) -> bool:
        return False

    @property
    def uid_validity(self) -> int:
        return self.folder.uidvalidity

    @property
    def permanent_flags(self) -> frozenset[Flag]:
        return (get_system_flags() - {Recent}) | KEYWORDS

    @property
    def session_flags(self) -> frozenset[Flag]:
        return frozenset({Recent})

    @property
    def selected_set(self) -> SelectedSet:
        return self._selected_set

    # --- state ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the folder's UIDs and flags again if this process saw its mailbox change;
        past `recheck_s` without that, compare the folder's fingerprint first (another
        process may have written) and read it again only if it moved."""
        generation = self.app.changes.generation(self.address)
        if generation == self._generation:
            if time.monotonic() - self._loaded_at <= self.owner.recheck_s:
                return
            fingerprint = await call(
                self.app.imap_fingerprint,
                self.owner.user_id,
                self.address,
                self.folder.id,
                name=self.name,
            )
            if fingerprint == self._fingerprint:
                self._loaded_at = time.monotonic()
                return
        state: FolderState = await call(
            self.app.imap_state, self.owner.user_id, self.address, self.folder.id, name=self.name
        )
        self._fingerprint = state.fingerprint
        self.folder = state.folder
        self._messages = {
            e.uid: StoreMessage(self, e.uid, e.internal_date, to_flags(e), e.size)
            for e in state.entries
        }
        self._generation, self._loaded_at = generation, time.monotonic()
        self._version += 1

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None
    ) -> SelectedMailbox:
        if wait_on is not None:
            await self._wait(wait_on)
        await self.load()
        if selected.mod_sequence != self._version:
            selected.set_messages(list(self._messages.values()))
            selected.mod_sequence = self._version
        return selected

    async def _wait(self, done: Event) -> None:
        """IDLE: until the client says DONE, the mailbox changes, or `recheck_s` passes."""
        changed = Event.for_asyncio()
        unsubscribe = self.app.changes.subscribe(self.address, changed.set)
        try:
            if self.app.changes.generation(self.address) == self._generation:
                await done.or_event(changed).wait(timeout=self.owner.recheck_s)
        finally:
            unsubscribe()

    async def snapshot(self) -> MailboxSnapshot:
        await self.load()
        unseen, first_unseen = 0, None
        for seq, m in enumerate(self._messages.values(), 1):
            if Seen not in m.permanent_flags:
                unseen += 1
                first_unseen = first_unseen or seq
        return MailboxSnapshot(
            self.mailbox_id,
            self.readonly,
            self.uid_validity,
            self.permanent_flags,
            self.session_flags,
            len(self._messages),
            0,
            unseen,
            first_unseen,
            self.folder.uidnext,
        )

    # --- bytes, read ahead ------------------------------------------------------------------

    def plan(self, uids: Sequence[int]) -> None:
        """The UIDs a FETCH or SEARCH is about to read, in order (for the read-ahead)."""
        self._plan_uids = list(uids)
        self._plan = {uid: i for i, uid in enumerate(self._plan_uids)}
        self._ahead.clear()

    async def raw(self, uid: int, *, head: bool = False) -> bytes | None:
        """The message's bytes (with `head`, its header section), read ahead along the
        plan: up to READ_AHEAD messages or READ_AHEAD_BYTES per query."""
        key = (uid, head)
        if key not in self._ahead:
            start = self._plan.get(uid)
            chunk, total = [uid], 0
            if start is not None:
                chunk = []
                for u in self._plan_uids[start : start + READ_AHEAD]:
                    m = self._messages.get(u)
                    total += min(m.size, HEAD_BYTES) if m and head else m.size if m else 0
                    if chunk and total > READ_AHEAD_BYTES:
                        break
                    chunk.append(u)
            found = await call(
                self.app.imap_raws,
                self.owner.user_id,
                self.address,
                self.folder.id,
                chunk,
                head=head,
            )
            self._ahead.update(((u, head), raw) for u, raw in found.items())
        return self._ahead.pop(key, None)

    # --- messages ---------------------------------------------------------------------------

    async def get(self, uid: int, cached_msg: CachedMessage) -> StoreMessage:
        m = self._messages.get(uid)
        if m is not None:
            return m
        if isinstance(cached_msg, StoreMessage):
            return cached_msg.expunged_copy()
        return StoreMessage(self, uid, cached_msg.internal_date, (), 0, expunged=True)

    async def find(
        self, seq_set: Any, selected: SelectedMailbox
    ) -> AsyncIterable[tuple[int, StoreMessage]]:
        for seq, cached in selected.messages.get_all(seq_set):
            yield seq, await self.get(cached.uid, cached)

    async def find_deleted(self, seq_set: Any, selected: SelectedMailbox) -> Sequence[int]:
        return [
            m.uid async for _, m in self.find(seq_set, selected) if Deleted in m.permanent_flags
        ]

    async def update(
        self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag], mode: FlagOp
    ) -> StoreMessage:
        m = await self.get(uid, cached_msg)
        if m.expunged:
            return m
        flags = mode.apply(m.permanent_flags, flag_set & self.permanent_flags)
        if flags == m.permanent_flags:
            return m
        names, keywords = to_names(flags)
        found = await call(
            self.app.imap_set_flags,
            self.owner.user_id,
            self.address,
            self.folder.id,
            uid,
            names,
            keywords,
        )
        if not found:
            return m.expunged_copy()
        new = StoreMessage(self, uid, m.internal_date, flags, m.size)
        self._messages[uid] = new
        return new

    async def append(self, append_msg: AppendMessage, *, recent: bool = False) -> StoreMessage:
        names, keywords = to_names(append_msg.flag_set)
        raw = bytes(append_msg.literal)
        _, uid = await call(
            self.app.imap_append,
            self.owner.user_id,
            self.address,
            self.folder.id,
            raw,
            names,
            keywords,
            append_msg.when,
            name=self.name,
        )
        return StoreMessage(
            self, uid, append_msg.when or datetime.now(), append_msg.flag_set, len(raw)
        )

    async def copy(self, uid: int, destination: StoreFolder, *, recent: bool = False) -> int | None:
        return await self._copy(uid, destination, move=False)

    async def move(self, uid: int, destination: StoreFolder, *, recent: bool = False) -> int | None:
        return await self._copy(uid, destination, move=True)

    async def _copy(self, uid: int, destination: StoreFolder, *, move: bool) -> int | None:
        return await call(
            self.app.imap_copy,
            self.owner.user_id,
            (self.address, self.folder.id),
            uid,
            (destination.address, destination.folder.id),
            move=move,
            name=destination.name,
        )

    async def delete(self, uids: Iterable[int]) -> None:
        await call(
            self.app.imap_expunge, self.owner.user_id, self.address, self.folder.id, list(uids)
        )

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        """\\Recent is not kept (RFC 9051 dropped it); nothing to claim."""

    async def cleanup(self) -> None:
        pass


class StoreMailboxes:
    """The folders one logged-in official sees: their own, and those of the mailboxes they
    are a delegate of under each one's address."""

    def __init__(
        self,
        app: MailApp,
        user_id: str,
        own: Mailbox | None,
        delegated: Sequence[Mailbox],
        recheck_s: float,
    ) -> None:
        self.app, self.user_id, self.recheck_s = app, user_id, recheck_s
        self.own = own
        self.delegated = [m.address for m in delegated]
        self._open: dict[tuple[str, str], StoreFolder] = {}

    @property
    def delimiter(self) -> str:
        return DELIMITER

    def _split(self, name: str) -> tuple[str, str]:
        """(mailbox address, name inside it) for an IMAP name."""
        head, sep, rest = name.partition(DELIMITER)
        if sep and "@" in head:
            return head.lower(), rest
        if self.own is None:
            raise KeyError(name)
        return self.own.address, name

    async def _folders(self, address: str) -> list[tuple[Folder, bool]]:
        return await call(self.app.imap_folders, self.user_id, address, name=address)

    async def resolve(self, name: str) -> tuple[str, Folder, bool]:
        """The folder an IMAP name designates (KeyError: none, or not the caller's)."""
        address, inner = self._split(name)
        if not inner:
            raise KeyError(name)
        try:
            folders = await self._folders(address)
        except MailboxNotFound:
            raise KeyError(name) from None
        for f, subscribed in folders:
            if imap_name(f) == inner or (f.id == INBOX and inner.upper() == INBOX):
                return address, f, subscribed
        raise KeyError(name)

    async def entries(self) -> list[tuple[str, Folder, bool]]:
        """Every folder the caller sees: (IMAP name, folder, subscribed)."""
        found: list[tuple[str, Folder, bool]] = []
        for address in ([self.own.address] if self.own else []) + self.delegated:
            prefix = "" if self.own and address == self.own.address else address + DELIMITER
            try:
                folders = await self._folders(address)
            except MailboxNotFound:
                continue  # no longer a delegate
            found.extend((prefix + imap_name(f), f, s) for f, s in folders)
        return found

    async def special_use(self) -> dict[str, bytes]:
        return {n: SPECIAL_USE[f.role] for n, f, _ in await self.entries() if f.role in SPECIAL_USE}

    async def list_mailboxes(self) -> ListTree:
        return ListTree(DELIMITER).update(*(n for n, _, _ in await self.entries()))

    async def list_subscribed(self) -> ListTree:
        return ListTree(DELIMITER).update(*(n for n, _, s in await self.entries() if s))

    async def get_mailbox(self, name: str) -> StoreFolder:
        address, folder, _ = await self.resolve(name)
        key = (address, folder.id)
        if key not in self._open:
            self._open[key] = StoreFolder(self, address, folder, name)
        return self._open[key]

    async def add_mailbox(self, name: str) -> ObjectId:
        address, inner = self._split(name)
        try:
            created = await call(
                self.app.create_folder, user(self.user_id), address, inner, name=name
            )
        except MailboxConflict:
            raise ValueError(name) from None
        return StoreFolder(self, address, created, name).mailbox_id

    async def delete_mailbox(self, name: str) -> None:
        address, folder, _ = await self.resolve(name)
        await call(self.app.delete_folder, user(self.user_id), address, folder.id, name=name)
        self._open.pop((address, folder.id), None)

    async def rename_mailbox(self, before: str, after: str) -> None:
        address, folder, _ = await self.resolve(before)
        to_address, inner = self._split(after)
        if to_address != address:
            raise Refused(b"CANNOT", "A folder stays in its mailbox")
        try:
            await call(self.app.imap_rename, self.user_id, address, folder.id, inner, name=after)
        except MailboxConflict:
            raise ValueError(after) from None

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        try:
            address, folder, _ = await self.resolve(name)
        except KeyError:
            raise MailboxNotFound(name) from None
        await call(self.app.imap_subscribe, self.user_id, address, folder.id, subscribed)
