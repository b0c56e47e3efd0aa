"""The store queries the IMAP server adds: a folder's messages by UID with their flags (one
query for a whole folder), raw bytes of many UIDs at once, flags, expunge, subscriptions
and renames. A mixin of MailStore, like outgoing.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.mail.adapters.tables import folders, message_blobs, messages

# Flags kept as columns (IMAP \Seen … \Draft); anything else is a keyword in a JSON list.
FLAG_COLUMNS = ("seen", "flagged", "answered", "deleted", "draft")
IN_CHUNK = 500  # UIDs per IN (...) list: well under SQLite's bound-parameter limit


class ImapRows:
    session: Session

    def folder_entries(self, address: str, folder_id: str) -> list[Any]:
        """Every message of a folder by ascending UID: uid, flag columns, keywords,
        internal_date, size (what SELECT, FETCH FLAGS and IDLE need, no bytes)."""
        c = messages.c
        return list(
            self.session.execute(
                sa.select(
                    c.uid,
                    *(c[name] for name in FLAG_COLUMNS),
                    c.keywords,
                    c.internal_date,
                    c.size,
                )
                .where(c.mailbox_address == address, c.folder_id == folder_id)
                .order_by(c.uid)
            )
        )

    def folder_fingerprint(self, address: str, folder_id: str) -> tuple[int, ...]:
        """A cheap summary of a folder that changes when a message comes, goes, or changes
        flags or keywords (UID-weighted sums): an IMAP session compares it to learn whether
        another process wrote, without reading every row into Python."""
        c = messages.c
        bits = sum((c[name].cast(sa.Integer) * (1 << i) for i, name in enumerate(FLAG_COLUMNS)))
        keywords = sa.func.length(sa.cast(c.keywords, sa.String))
        row = self.session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.max(c.uid), 0),
                sa.func.coalesce(sa.func.sum(c.uid * (1 + bits)), 0),
                sa.func.coalesce(sa.func.sum(c.uid * keywords), 0),
            ).where(c.mailbox_address == address, c.folder_id == folder_id)
        ).one()
        return tuple(int(v) for v in row)

    def raws(
        self, address: str, folder_id: str, uids: Sequence[int], head: int = 0
    ) -> dict[int, bytes]:
        """The RFC 5322 bytes of `uids` (one query per chunk, a join on the blob table);
        with `head`, only their first `head` bytes (for a header, not the attachments)."""
        raw = sa.func.substr(message_blobs.c.raw, 1, head) if head else message_blobs.c.raw
        found: dict[int, bytes] = {}
        for i in range(0, len(uids), IN_CHUNK):
            rows = self.session.execute(
                sa.select(messages.c.uid, raw)
                .join(message_blobs, message_blobs.c.sha256 == messages.c.blob_sha256)
                .where(
                    messages.c.mailbox_address == address,
                    messages.c.folder_id == folder_id,
                    messages.c.uid.in_(uids[i : i + IN_CHUNK]),
                )
            )
            found.update((int(r[0]), bytes(r[1])) for r in rows)
        return found

    def id_at(self, address: str, folder_id: str, uid: int) -> str | None:
        return self.session.execute(
            sa.select(messages.c.id).where(
                messages.c.mailbox_address == address,
                messages.c.folder_id == folder_id,
                messages.c.uid == uid,
            )
        ).scalar_one_or_none()

    def set_flags(
        self, message_id: str, flags: dict[str, bool], keywords: Sequence[str] | None
    ) -> None:
        values: dict[str, Any] = {k: v for k, v in flags.items() if k in FLAG_COLUMNS}
        if keywords is not None:
            values["keywords"] = sorted(keywords)
        if values:
            self.session.execute(
                sa.update(messages).where(messages.c.id == message_id).values(**values)
            )

    def flags_of(self, message_id: str) -> tuple[dict[str, bool], list[str]]:
        c = messages.c
        row = self.session.execute(
            sa.select(*(c[n] for n in FLAG_COLUMNS), c.keywords).where(c.id == message_id)
        ).one()
        return {n: bool(row[i]) for i, n in enumerate(FLAG_COLUMNS)}, list(row[-1])

    def subscriptions(self, address: str) -> dict[str, bool]:
        rows = self.session.execute(
            sa.select(folders.c.id, folders.c.subscribed).where(
                folders.c.mailbox_address == address
            )
        )
        return {r[0]: bool(r[1]) for r in rows}

    def set_subscribed(self, address: str, folder_id: str, subscribed: bool) -> None:
        self.session.execute(
            sa.update(folders)
            .where(folders.c.mailbox_address == address, folders.c.id == folder_id)
            .values(subscribed=subscribed)
        )

    def rename_folder(self, address: str, folder_id: str, name: str) -> None:
        self.session.execute(
            sa.update(folders)
            .where(folders.c.mailbox_address == address, folders.c.id == folder_id)
            .values(name=name)
        )


def as_utc(d: datetime | None) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if d is None:
        return datetime.now(UTC)
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d
