"""The use cases behind the IMAP server: a folder's state by UID, raw bytes, flags, APPEND,
COPY, MOVE, EXPUNGE, subscriptions and folder renames. Every call opens the mailbox with
`_open` again (owner or delegate), so a delegate removed mid-session loses access at their
next command. Each write is one unit of work and tells `changes` after it commits.

Flags are names here ("seen", "flagged", "answered", "deleted", "draft"); keywords are any
other IMAP atom, kept as a list (the IMAP edge maps them to and from IMAP flags).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lgsp.auth import Principal
from services.mail.adapters.imap_rows import FLAG_COLUMNS, as_utc
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import check_header_text
from services.mail.domain.errors import (
    AlreadyExists,
    Conflict,
    InvalidField,
    NotFound,
    QuotaExceeded,
    TooLarge,
)
from services.mail.domain.mailbox import MAX_FOLDER_NAME, Folder, Mailbox, Role
from services.mail.domain.message import Stored, parse_summary
from services.mail.service_layer.base import AppBase

MAX_KEYWORDS = 50
HEAD_BYTES = 16 * 1024  # read for a header; longer headers are read whole


def header_section(raw: bytes) -> bytes | None:
    """The header section with its closing empty line, None if `raw` holds no end of it."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[: end + len(sep)]
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of a folder as IMAP sees it."""

    uid: int
    flags: frozenset[str]  # names of FLAG_COLUMNS that are set
    keywords: tuple[str, ...]
    internal_date: datetime
    size: int


@dataclass(frozen=True)
class FolderState:
    folder: Folder
    entries: list[Entry]
    fingerprint: tuple[int, ...]  # MailStore.folder_fingerprint, read with the entries


def user(user_id: str) -> Principal:
    return Principal(subject=user_id, kind="user")


class ImapAccess(AppBase):
    def imap_mailboxes(self, user_id: str) -> tuple[Mailbox | None, list[Mailbox]]:
        """The official's own mailbox and those they are a delegate of."""
        with self.uow() as uow:
            store = MailStore(uow.session)
            own = store.mailbox_of(user_id)
            others = [m for m in store.delegated_to(user_id) if not m.purged]
        return (own if own is not None and not own.purged else None), others

    def imap_folders(self, user_id: str, address: str) -> list[tuple[Folder, bool]]:
        """The mailbox's folders, each with whether it is subscribed."""
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            subscribed = store.subscriptions(mb.address)
            return [(f, subscribed.get(f.id, True)) for f in store.folders(mb.address)]

    def imap_state(self, user_id: str, address: str, folder_id: str) -> FolderState:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            folder = self._imap_folder(store, mb.address, folder_id)
            rows = store.folder_entries(mb.address, folder.id)
            fingerprint = store.folder_fingerprint(mb.address, folder.id)
        n = len(FLAG_COLUMNS)
        entries = [
            Entry(
                int(r[0]),
                frozenset(name for i, name in enumerate(FLAG_COLUMNS) if r[1 + i]),
                tuple(r[1 + n]),
                as_utc(r[2 + n]),
                int(r[3 + n]),
            )
            for r in rows
        ]
        return FolderState(folder, entries, fingerprint)

    def imap_fingerprint(self, user_id: str, address: str, folder_id: str) -> tuple[int, ...]:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            return store.folder_fingerprint(
                mb.address, self._imap_folder(store, mb.address, folder_id).id
            )

    def imap_raws(
        self, user_id: str, address: str, folder_id: str, uids: Sequence[int], *, head: bool
    ) -> dict[int, bytes]:
        """The messages' bytes; with `head`, their header section only (RFC 5322 §2.1: up to
        the first empty line), read without the body where it ends in the first 16 KiB."""
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            if not head:
                return store.raws(mb.address, folder_id, list(uids))
            found = store.raws(mb.address, folder_id, list(uids), head=HEAD_BYTES)
            headers = {uid: header_section(raw) for uid, raw in found.items()}
            longer = [uid for uid, h in headers.items() if h is None]
            if longer:  # a header past 16 KiB: read those whole
                full = store.raws(mb.address, folder_id, longer)
                headers.update((uid, header_section(raw) or raw) for uid, raw in full.items())
        return {uid: h for uid, h in headers.items() if h is not None}

    def imap_set_flags(
        self,
        user_id: str,
        address: str,
        folder_id: str,
        uid: int,
        flags: frozenset[str],
        keywords: Sequence[str],
    ) -> bool:
        """Set the message's flags to exactly `flags` and `keywords`; False if it is gone."""
        if len(keywords) > MAX_KEYWORDS:
            raise InvalidField("flags", f"at most {MAX_KEYWORDS} keywords")
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            message_id = store.id_at(mb.address, folder_id, uid)
            if message_id is None:
                return False
            store.set_flags(message_id, {n: n in flags for n in FLAG_COLUMNS}, keywords)
            uow.commit()
        self.changes.notify([mb.address])
        return True

    def imap_append(
        self,
        user_id: str,
        address: str,
        folder_id: str,
        raw: bytes,
        flags: frozenset[str],
        keywords: Sequence[str],
        when: datetime | None,
    ) -> tuple[int, int]:
        """A message the client stores (its Sent copy, a draft): (uidvalidity, uid). It
        counts against the quota like a delivery."""
        if len(raw) > self.rules.max_message_bytes:
            raise TooLarge(
                f"the message is {len(raw)} bytes; at most {self.rules.max_message_bytes}"
            )
        summary = parse_summary(raw)
        sha = hashlib.sha256(raw).hexdigest()
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            folder = self._imap_folder(store, mb.address, folder_id)
            if not mb.has_room_for(len(raw)):
                raise QuotaExceeded(f"mailbox {mb.address} is full")
            store.put_blob(sha, raw)
            m = Stored(
                id=str(uuid.uuid4()),
                mailbox_address=mb.address,
                folder_id=folder.id,
                uid=store.take_uid(mb.address, folder.id),
                summary=summary,
                internal_date=as_utc(when or self.clock()),
                size=len(raw),
                blob_sha256=sha,
                seen="seen" in flags,
                flagged="flagged" in flags,
                answered="answered" in flags,
            )
            store.add_message(m)
            store.set_flags(m.id, {n: n in flags for n in ("deleted", "draft")}, keywords)
            store.add_used(mb.address, len(raw))
            uow.commit()
        self.changes.notify([mb.address])
        return folder.uidvalidity, m.uid

    def imap_copy(
        self,
        user_id: str,
        source: tuple[str, str],
        uid: int,
        target: tuple[str, str],
        *,
        move: bool,
    ) -> int | None:
        """COPY or MOVE one message to (address, folder id); its new UID, None if it is
        gone. Within one mailbox a move keeps the row and its bytes (the store's rule: a new
        UID in the target folder); a copy, or a move to another mailbox, counts against
        the target's quota."""
        with self.uow() as uow:
            store = MailStore(uow.session)
            src = self._open(store, user(user_id), source[0])
            dst = self._open(store, user(user_id), target[0])
            folder = self._imap_folder(store, dst.address, target[1])
            message_id = store.id_at(src.address, source[1], uid)
            m = store.message(src.address, message_id) if message_id else None
            if m is None:
                return None
            if move and src.address == dst.address:
                m.folder_id, m.uid = folder.id, store.take_uid(dst.address, folder.id)
                store.update_message(m)
            else:
                if not dst.has_room_for(m.size):
                    raise QuotaExceeded(f"mailbox {dst.address} is full")
                flags, keywords = store.flags_of(m.id)
                copy = dataclasses.replace(
                    m,
                    id=str(uuid.uuid4()),
                    mailbox_address=dst.address,
                    folder_id=folder.id,
                    uid=store.take_uid(dst.address, folder.id),
                    request_id=None,
                )
                store.add_message(copy)
                store.set_flags(copy.id, flags, keywords)
                store.add_used(dst.address, m.size)
                if move:
                    store.delete_message(m)
                    store.add_used(src.address, -m.size)
                m = copy
            uow.commit()
        self.changes.notify({src.address, dst.address})
        return m.uid

    def imap_expunge(self, user_id: str, address: str, folder_id: str, uids: Sequence[int]) -> int:
        """Remove the messages for good (they carry \\Deleted): rows, quota, unused bytes."""
        n = 0
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            for uid in uids:
                message_id = store.id_at(mb.address, folder_id, uid)
                m = store.message(mb.address, message_id) if message_id else None
                if m is not None:
                    store.delete_message(m)
                    store.add_used(mb.address, -m.size)
                    n += 1
            uow.commit()
        if n:
            self.changes.notify([mb.address])
        return n

    def imap_subscribe(self, user_id: str, address: str, folder_id: str, on: bool) -> None:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            store.set_subscribed(mb.address, self._imap_folder(store, mb.address, folder_id).id, on)
            uow.commit()

    def imap_rename(self, user_id: str, address: str, folder_id: str, name: str) -> None:
        """A custom folder's new name (the standard folders keep theirs)."""
        name = check_header_text("name", name.strip(), MAX_FOLDER_NAME)
        if not name or "/" in name or name.upper() == "INBOX":
            raise InvalidField("name", "a name without '/', not INBOX")
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, user(user_id), address)
            folder = self._imap_folder(store, mb.address, folder_id)
            if folder.role is not Role.CUSTOM:
                raise Conflict(f"{folder.id} is a standard folder")
            taken = {f.name.lower() for f in store.folders(mb.address)}
            taken |= {f.id.lower() for f in store.folders(mb.address)}
            if name.lower() in taken:
                raise AlreadyExists(f"a folder named {name!r} exists")
            store.rename_folder(mb.address, folder.id, name)
            uow.commit()

    @staticmethod
    def _imap_folder(store: MailStore, address: str, folder_id: str) -> Folder:
        folder = store.folder(address, folder_id)
        if folder is None:
            raise NotFound(f"no folder {folder_id}")
        return folder
