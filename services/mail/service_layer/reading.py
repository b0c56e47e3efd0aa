"""Reading and filing the caller's own mail: folders, listing, reading, flags, moving,
deleting (to Trash, then for good), attachments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from lgsp.auth import Principal
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import check_header_text
from services.mail.domain.errors import AlreadyExists, Conflict, InvalidField, NotFound
from services.mail.domain.html import sanitize
from services.mail.domain.mailbox import (
    INBOX,
    MAX_FOLDER_NAME,
    TRASH,
    Folder,
    Role,
    new_uidvalidity,
)
from services.mail.domain.message import (
    Attachment,
    Stored,
    originators,
    read_attachment,
    read_bodies,
)
from services.mail.domain.smime import SignatureCheck, SignatureStatus, check_sender
from services.mail.service_layer.base import AppBase


@dataclass(frozen=True)
class Opened:
    """A message as GetMessage shows it."""

    message: Stored
    text: str
    html: str
    signature: SignatureCheck


MAX_PAGE = 200
MAX_IDS = 1000
FLAGS = ("seen", "flagged", "answered")


def _offset(page_token: str) -> int:
    if not page_token:
        return 0
    if not page_token.isdigit() or len(page_token) > 9:
        raise InvalidField("page_token", "not a token this service gave")
    return int(page_token)


def _ids(ids: Sequence[str]) -> list[str]:
    if not ids:
        raise InvalidField("ids", "at least one message id")
    if len(ids) > MAX_IDS:
        raise InvalidField("ids", f"at most {MAX_IDS}")
    return list(dict.fromkeys(ids))


class Reading(AppBase):
    def list_folders(self, principal: Principal, address: str) -> list[tuple[Folder, int, int]]:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            counts = store.counts(mb.address)
            return [(f, *counts.get(f.id, (0, 0))) for f in store.folders(mb.address)]

    def create_folder(self, principal: Principal, address: str, name: str) -> Folder:
        name = check_header_text("name", name.strip(), MAX_FOLDER_NAME)
        if not name:
            raise InvalidField("name", "required")
        if "/" in name or name.upper() == "INBOX":
            raise InvalidField("name", "no '/' and not INBOX")
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            existing = store.folders(mb.address)
            if any(
                f.name.lower() == name.lower() or f.id.lower() == name.lower() for f in existing
            ):
                raise AlreadyExists(f"a folder named {name!r} exists")
            folder = Folder(mb.address, str(uuid.uuid4()), name, Role.CUSTOM, new_uidvalidity())
            store.add_folder(folder)
            uow.commit()
        return folder

    def delete_folder(self, principal: Principal, address: str, folder_id: str) -> None:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            folder = self._folder(store, mb.address, folder_id)
            if folder.role is not Role.CUSTOM:
                raise Conflict(f"{folder.name} is a standard folder")
            if store.message_ids(mb.address, folder.id):
                raise Conflict(f"folder {folder.name} holds messages")
            store.delete_folder(mb.address, folder.id)
            uow.commit()

    @staticmethod
    def _folder(store: MailStore, address: str, folder_id: str) -> Folder:
        if not folder_id:
            raise InvalidField("folder_id", "required")
        folder = store.folder(address, folder_id)
        if folder is None:
            raise NotFound(f"no folder {folder_id}")
        return folder

    def list_messages(
        self,
        principal: Principal,
        address: str,
        folder_id: str,
        *,
        unread_only: bool = False,
        query: str = "",
        page_token: str = "",
        page_size: int = 0,
    ) -> tuple[list[Stored], str, int]:
        if page_size < 0:
            raise InvalidField("page_size", "0 or more")
        limit, offset = min(page_size or 50, MAX_PAGE), _offset(page_token)
        if len(query) > 200:
            raise InvalidField("query", "at most 200 characters")
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            folder = self._folder(store, mb.address, folder_id or INBOX)
            found, total = store.list_messages(
                mb.address,
                folder.id,
                unread_only=unread_only,
                query=query,
                offset=offset,
                limit=limit,
            )
        more = offset + len(found) < total
        return found, (str(offset + len(found)) if more else ""), total

    def read_message(
        self,
        principal: Principal,
        address: str,
        message_id: str,
        *,
        mark_seen: bool = False,
        verify: bool = True,
    ) -> Opened:
        """The message, its bodies (HTML sanitised for a web client) and, with `verify`, the
        verdict on its S/MIME signature, checked now (a revocation shows at once)."""
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            m = self._message(store, mb.address, message_id)
            raw = store.blob(m.blob_sha256) or b""
            if mark_seen and not m.seen:
                m.seen = True
                store.update_message(m)
                uow.commit()
                self.changes.notify([mb.address])
        text, html = read_bodies(raw)
        signature = SignatureCheck(SignatureStatus.UNSPECIFIED)
        if verify and self.smime is not None:
            signature = check_sender(self.smime.verify(raw), originators(raw))
        return Opened(m, text, sanitize(html), signature)

    @staticmethod
    def _message(store: MailStore, address: str, message_id: str) -> Stored:
        if not message_id:
            raise InvalidField("id", "required")
        m = store.message(address, message_id)
        if m is None:
            raise NotFound(f"no message {message_id}")
        return m

    def update_flags(
        self, principal: Principal, address: str, ids: Sequence[str], flags: dict[str, bool]
    ) -> int:
        if not flags or set(flags) - set(FLAGS):
            raise InvalidField("update_mask", f"name some of {list(FLAGS)}")
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            n = 0
            for message_id in _ids(ids):
                m = store.message(mb.address, message_id)
                if m is None:
                    continue
                for name, value in flags.items():
                    setattr(m, name, value)
                store.update_message(m)
                n += 1
            uow.commit()
        self.changes.notify([mb.address])
        return n

    def move(self, principal: Principal, address: str, ids: Sequence[str], folder_id: str) -> int:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            target = self._folder(store, mb.address, folder_id)
            n = 0
            for message_id in _ids(ids):
                m = store.message(mb.address, message_id)
                if m is None or m.folder_id == target.id:
                    continue
                # A new UID in the folder it moves to (IMAP: UIDs are per folder, ascending).
                m.folder_id, m.uid = target.id, store.take_uid(mb.address, target.id)
                store.update_message(m)
                n += 1
            uow.commit()
        self.changes.notify([mb.address])
        return n

    def delete(self, principal: Principal, address: str, ids: Sequence[str]) -> tuple[int, int]:
        """Move to Trash; delete for good what is in Trash already. (trashed, purged)."""
        trashed = purged = 0
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            for message_id in _ids(ids):
                m = store.message(mb.address, message_id)
                if m is None:
                    continue
                if m.folder_id == TRASH:
                    store.delete_message(m)
                    store.add_used(mb.address, -m.size)
                    purged += 1
                else:
                    m.folder_id, m.uid = TRASH, store.take_uid(mb.address, TRASH)
                    store.update_message(m)
                    trashed += 1
            uow.commit()
        self.changes.notify([mb.address])
        return trashed, purged

    def attachment(
        self, principal: Principal, address: str, message_id: str, attachment_id: str
    ) -> tuple[Attachment, bytes]:
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, address)
            m = self._message(store, mb.address, message_id)
            raw = store.blob(m.blob_sha256) or b""
        found = read_attachment(raw, attachment_id)
        if found is None:
            raise NotFound(f"no attachment {attachment_id!r} in message {message_id}")
        return found
