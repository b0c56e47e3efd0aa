"""The mail store over the tables, inside a unit of work's session: mailboxes, folders,
messages and their raw bytes; with the officials followed from identity (officials.py), the
outgoing queue (outgoing.py) and the IMAP server's queries (imap_rows.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lgsp.textfold import fold
from services.mail.adapters.imap_rows import ImapRows
from services.mail.adapters.notice_rows import NoticeRows
from services.mail.adapters.officials import OfficialRows
from services.mail.adapters.outgoing import OutgoingRows
from services.mail.adapters.relay_rows import RelayRows
from services.mail.adapters.tables import (
    folders,
    mailboxes,
    message_blobs,
    messages,
    outgoing,
)
from services.mail.domain.authresults import Authentication
from services.mail.domain.errors import StaleEtag
from services.mail.domain.mailbox import Folder, Kind, Mailbox, Role, Status
from services.mail.domain.message import Address, Attachment, Stored, Summary


def _utc(d: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def _pairs(addresses: Iterable[Address]) -> list[list[str]]:
    return [[a.address, a.display_name] for a in addresses]


def _addresses(pairs: Sequence[Sequence[str]]) -> tuple[Address, ...]:
    return tuple(Address(p[0], p[1]) for p in pairs)


def _auth_values(auth: Authentication | None) -> dict[str, str]:
    a = auth or Authentication()
    return {"auth_spf": a.spf, "auth_dkim": a.dkim, "auth_summary": a.summary[:1000]}


class MailStore(OfficialRows, OutgoingRows, NoticeRows, ImapRows, RelayRows):
    """Mailboxes, folders, messages and their bytes (the officials, the outgoing queue, the
    notices' rows, the IMAP queries and the relay's claims on the queue come from the
    bases)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- mailboxes ------------------------------------------------------------------------

    def mailbox(self, address: str) -> Mailbox | None:
        row = self.session.execute(sa.select(mailboxes).where(mailboxes.c.address == address))
        found = row.first()
        return self._mailbox(found) if found else None

    def mailbox_of(self, user_id: str) -> Mailbox | None:
        row = self.session.execute(
            sa.select(mailboxes).where(mailboxes.c.owner_user_id == user_id)
        ).first()
        return self._mailbox(row) if row else None

    def delegated_to(self, user_id: str) -> list[Mailbox]:
        """The mailboxes `user_id` is a delegate of, or a clerk of (an agency mailbox); the
        JSON lists are matched as text, then checked exactly."""
        rows = self.session.execute(
            sa.select(mailboxes).where(
                sa.cast(mailboxes.c.delegate_user_ids, sa.String).contains(user_id, autoescape=True)
                | sa.cast(mailboxes.c.clerk_user_ids, sa.String).contains(user_id, autoescape=True)
            )
        )
        return [
            m
            for m in map(self._mailbox, rows)
            if user_id in m.delegate_user_ids or user_id in m.clerk_user_ids
        ]

    def taken(self, local_base: str, domain: str) -> set[str]:
        """The addresses on `domain` whose local part starts with `local_base`."""
        rows = self.session.execute(
            sa.select(mailboxes.c.address).where(
                mailboxes.c.address.like(f"{local_base}%@{domain}")
            )
        )
        return {r[0] for r in rows}

    def add_mailbox(self, mb: Mailbox) -> None:
        self.session.execute(sa.insert(mailboxes).values(**self._mailbox_values(mb)))

    def save_mailbox(self, mb: Mailbox, expected_version: int) -> None:
        mb.version = expected_version + 1
        done = self.session.execute(
            sa.update(mailboxes)
            .where(mailboxes.c.address == mb.address, mailboxes.c.version == expected_version)
            .values(**self._mailbox_values(mb))
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise StaleEtag(f"mailbox {mb.address} changed since it was read")

    def add_used(self, address: str, delta: int) -> None:
        """Count `delta` bytes more (or fewer) against the quota, without a new version
        (deliveries must not make an administrator's etag stale)."""
        used = mailboxes.c.used_bytes + delta
        self.session.execute(
            sa.update(mailboxes)
            .where(mailboxes.c.address == address)
            .values(used_bytes=sa.case((used < 0, 0), else_=used))
        )

    def list_mailboxes(
        self, *, agency_code: str, kind: int, query: str, after: str, limit: int
    ) -> list[Mailbox]:
        q = sa.select(mailboxes).where(mailboxes.c.address > after)
        if agency_code:
            q = q.where(mailboxes.c.agency_code == agency_code)
        if kind:
            q = q.where(mailboxes.c.kind == kind)
        if query:
            q = q.where(mailboxes.c.search_text.contains(fold(query), autoescape=True))
        rows = self.session.execute(q.order_by(mailboxes.c.address).limit(limit))
        return [self._mailbox(r) for r in rows]

    def disabled_before(self, cutoff: datetime) -> list[Mailbox]:
        rows = self.session.execute(
            sa.select(mailboxes).where(
                mailboxes.c.status == int(Status.DISABLED),
                mailboxes.c.purged.is_(False),
                mailboxes.c.disabled_time < cutoff,
            )
        )
        return [self._mailbox(r) for r in rows]

    @staticmethod
    def _mailbox_values(mb: Mailbox) -> dict[str, Any]:
        return dict(
            address=mb.address,
            display_name=mb.display_name,
            kind=int(mb.kind),
            agency_code=mb.agency_code,
            owner_user_id=mb.owner_user_id or None,
            delegate_user_ids=list(mb.delegate_user_ids),
            quota_bytes=mb.quota_bytes,
            used_bytes=mb.used_bytes,
            status=int(mb.status),
            create_time=mb.create_time,
            disabled_time=mb.disabled_time,
            purged=mb.purged,
            search_text=fold(f"{mb.address} {mb.display_name}")[:500],
            version=mb.version,
            daily_digest=mb.daily_digest,
            clerk_user_ids=list(mb.clerk_user_ids),
        )

    @staticmethod
    def _mailbox(row: Any) -> Mailbox:
        return Mailbox(
            address=row.address,
            display_name=row.display_name,
            kind=Kind(row.kind),
            agency_code=row.agency_code,
            owner_user_id=row.owner_user_id or "",
            delegate_user_ids=list(row.delegate_user_ids),
            quota_bytes=row.quota_bytes,
            used_bytes=row.used_bytes,
            status=Status(row.status),
            create_time=_utc(row.create_time),
            disabled_time=_utc(row.disabled_time),
            purged=row.purged,
            version=row.version,
            daily_digest=bool(row.daily_digest),
            clerk_user_ids=list(row.clerk_user_ids or []),
        )

    # --- folders --------------------------------------------------------------------------

    def folders(self, address: str) -> list[Folder]:
        rows = self.session.execute(
            sa.select(folders)
            .where(folders.c.mailbox_address == address)
            .order_by(folders.c.role, folders.c.name)
        )
        return [
            Folder(r.mailbox_address, r.id, r.name, Role(r.role), r.uidvalidity, r.uidnext)
            for r in rows
        ]

    def folder(self, address: str, folder_id: str) -> Folder | None:
        return next((f for f in self.folders(address) if f.id == folder_id), None)

    def add_folder(self, f: Folder) -> None:
        self.session.execute(
            sa.insert(folders).values(
                mailbox_address=f.mailbox_address,
                id=f.id,
                name=f.name,
                role=int(f.role),
                uidvalidity=f.uidvalidity,
                uidnext=f.uidnext,
            )
        )

    def take_uid(self, address: str, folder_id: str) -> int:
        """The folder's next UID, taken (the UPDATE locks the folder row until commit, so
        two deliveries never get the same UID)."""
        cond = (folders.c.mailbox_address == address) & (folders.c.id == folder_id)
        self.session.execute(sa.update(folders).where(cond).values(uidnext=folders.c.uidnext + 1))
        return int(self.session.execute(sa.select(folders.c.uidnext).where(cond)).scalar_one()) - 1

    def delete_folder(self, address: str, folder_id: str) -> None:
        self.session.execute(
            sa.delete(folders).where(
                folders.c.mailbox_address == address, folders.c.id == folder_id
            )
        )

    def counts(self, address: str) -> dict[str, tuple[int, int]]:
        """Folder id → (messages, unread)."""
        unread = sa.func.sum(sa.case((messages.c.seen.is_(False), 1), else_=0))
        rows = self.session.execute(
            sa.select(messages.c.folder_id, sa.func.count(), unread)
            .where(messages.c.mailbox_address == address)
            .group_by(messages.c.folder_id)
        )
        return {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}

    # --- messages -------------------------------------------------------------------------

    def put_blob(self, sha256: str, raw: bytes) -> None:
        exists = self.session.execute(
            sa.select(message_blobs.c.sha256).where(message_blobs.c.sha256 == sha256)
        ).first()
        if not exists:
            self.session.execute(
                sa.insert(message_blobs).values(sha256=sha256, raw=raw, size=len(raw))
            )

    def blob(self, sha256: str) -> bytes | None:
        row = self.session.execute(
            sa.select(message_blobs.c.raw).where(message_blobs.c.sha256 == sha256)
        ).first()
        return bytes(row[0]) if row else None

    def drop_blob_if_unused(self, sha256: str) -> None:
        used = (
            self.session.execute(
                sa.select(messages.c.id).where(messages.c.blob_sha256 == sha256).limit(1)
            ).first()
            or self.session.execute(
                sa.select(outgoing.c.id).where(outgoing.c.blob_sha256 == sha256).limit(1)
            ).first()
        )
        if not used:
            self.session.execute(sa.delete(message_blobs).where(message_blobs.c.sha256 == sha256))

    def add_message(self, m: Stored) -> None:
        s = m.summary
        self.session.execute(
            sa.insert(messages).values(
                id=m.id,
                mailbox_address=m.mailbox_address,
                folder_id=m.folder_id,
                uid=m.uid,
                message_id=s.message_id,
                subject=s.subject,
                sender=[s.sender.address, s.sender.display_name],
                recipients={"to": _pairs(s.to), "cc": _pairs(s.cc), "bcc": _pairs(m.bcc)},
                attachments=[
                    [a.id, a.file_name, a.content_type, a.size, a.sha256] for a in s.attachments
                ],
                in_reply_to=s.in_reply_to,
                send_time=s.send_time,
                internal_date=m.internal_date,
                size=m.size,
                blob_sha256=m.blob_sha256,
                seen=m.seen,
                flagged=m.flagged,
                answered=m.answered,
                search_text=fold(
                    " ".join(
                        [s.subject, s.sender.address, s.sender.display_name]
                        + [f"{a.address} {a.display_name}" for a in (*s.to, *s.cc)]
                    )
                )[:2000],
                related_document_id=m.related_document_id,
                related_receipt_code=m.related_receipt_code,
                request_id=m.request_id,
                **_auth_values(m.authentication),
            )
        )

    def message(self, address: str, message_id: str) -> Stored | None:
        row = self.session.execute(
            sa.select(messages).where(
                messages.c.mailbox_address == address, messages.c.id == message_id
            )
        ).first()
        return self._stored(row) if row else None

    def by_request(self, address: str, request_id: str) -> Stored | None:
        row = self.session.execute(
            sa.select(messages).where(
                messages.c.mailbox_address == address, messages.c.request_id == request_id
            )
        ).first()
        return self._stored(row) if row else None

    def list_messages(
        self,
        address: str,
        folder_id: str,
        *,
        unread_only: bool,
        query: str,
        offset: int,
        limit: int,
    ) -> tuple[list[Stored], int]:
        cond = [messages.c.mailbox_address == address, messages.c.folder_id == folder_id]
        if unread_only:
            cond.append(messages.c.seen.is_(False))
        if query:
            cond.append(messages.c.search_text.contains(fold(query), autoescape=True))
        total = self.session.execute(
            sa.select(sa.func.count()).select_from(messages).where(*cond)
        ).scalar_one()
        rows = self.session.execute(
            sa.select(messages)
            .where(*cond)
            .order_by(messages.c.internal_date.desc(), messages.c.uid.desc())
            .offset(offset)
            .limit(limit)
        )
        return [self._stored(r) for r in rows], int(total)

    def update_message(self, m: Stored) -> None:
        self.session.execute(
            sa.update(messages)
            .where(messages.c.id == m.id)
            .values(
                folder_id=m.folder_id,
                uid=m.uid,
                seen=m.seen,
                flagged=m.flagged,
                answered=m.answered,
            )
        )

    def delete_message(self, m: Stored) -> None:
        self.session.execute(sa.delete(messages).where(messages.c.id == m.id))
        self.drop_blob_if_unused(m.blob_sha256)

    def message_ids(self, address: str, folder_id: str | None = None) -> list[str]:
        q = sa.select(messages.c.id).where(messages.c.mailbox_address == address)
        if folder_id is not None:
            q = q.where(messages.c.folder_id == folder_id)
        return [r[0] for r in self.session.execute(q)]

    @staticmethod
    def _stored(row: Any) -> Stored:
        rec = row.recipients
        return Stored(
            id=row.id,
            mailbox_address=row.mailbox_address,
            folder_id=row.folder_id,
            uid=row.uid,
            summary=Summary(
                message_id=row.message_id,
                subject=row.subject,
                sender=Address(row.sender[0], row.sender[1]),
                to=_addresses(rec.get("to", [])),
                cc=_addresses(rec.get("cc", [])),
                send_time=_utc(row.send_time),
                in_reply_to=row.in_reply_to,
                attachments=tuple(Attachment(*a) for a in row.attachments),
            ),
            internal_date=_utc(row.internal_date) or datetime.now(UTC),
            size=row.size,
            blob_sha256=row.blob_sha256,
            bcc=_addresses(rec.get("bcc", [])),
            seen=row.seen,
            flagged=row.flagged,
            answered=row.answered,
            related_document_id=row.related_document_id,
            related_receipt_code=row.related_receipt_code,
            request_id=row.request_id,
            authentication=Authentication(row.auth_spf, row.auth_dkim, row.auth_summary)
            if row.auth_summary
            else None,
        )
