"""Mailboxes and folders, and who may open them.

A personal mailbox belongs to one official (owner_user_id) and follows their account: made
when identity creates it, disabled when identity disables it (incoming mail is then refused,
content kept), purged `retention_days` later (messages deleted; the row stays as a tombstone
so the address is never given again). Delegates may read and send from it too. Every mailbox
has the four standard folders; each folder numbers its messages with IMAP UIDs under a
UIDVALIDITY, so an IMAP server can sit on the same store.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from datetime import datetime


class Kind(enum.IntEnum):  # = lgsp.api.mail.v1.MailboxKind
    PERSONAL = 1
    AGENCY = 2
    SHARED = 3
    SYSTEM = 4


class Status(enum.IntEnum):  # = lgsp.api.mail.v1.MailboxStatus
    ACTIVE = 1
    DISABLED = 2


class Role(enum.IntEnum):  # = lgsp.api.mail.v1.FolderRole
    INBOX = 1
    SENT = 2
    DRAFTS = 3
    TRASH = 4
    JUNK = 5
    ARCHIVE = 6
    CUSTOM = 7


# (id, role, name shown): ids are the IMAP names, names what Vietnamese clients show.
STANDARD_FOLDERS: tuple[tuple[str, Role, str], ...] = (
    ("INBOX", Role.INBOX, "Hộp thư đến"),
    ("Sent", Role.SENT, "Thư đã gửi"),
    ("Drafts", Role.DRAFTS, "Thư nháp"),
    ("Trash", Role.TRASH, "Thùng rác"),
)
INBOX, SENT, DRAFTS, TRASH = (f[0] for f in STANDARD_FOLDERS)
MAX_FOLDER_NAME = 100


@dataclass
class Mailbox:
    address: str
    display_name: str
    kind: Kind
    agency_code: str
    owner_user_id: str = ""
    delegate_user_ids: list[str] = field(default_factory=list)
    quota_bytes: int = 0  # 0 = unlimited
    used_bytes: int = 0
    status: Status = Status.ACTIVE
    create_time: datetime | None = None
    disabled_time: datetime | None = None
    purged: bool = False
    version: int = 1
    daily_digest: bool = False  # the owner takes notices as one daily summary
    # AGENCY mailboxes: the agency's clerks (văn thư) by role, implicit delegates.
    clerk_user_ids: list[str] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return f"v{self.version}"

    def may_open(self, user_id: str) -> bool:
        """Whether `user_id` may read and send from it: its owner, its delegates and, for an
        agency mailbox, the agency's clerks only (administrators manage mailboxes, they do
        not read them)."""
        return bool(user_id) and (
            user_id == self.owner_user_id
            or user_id in self.delegate_user_ids
            or user_id in self.clerk_user_ids
        )

    def receives(self) -> bool:
        return self.status is Status.ACTIVE and not self.purged

    def has_room_for(self, size: int) -> bool:
        return self.quota_bytes == 0 or self.used_bytes + size <= self.quota_bytes


@dataclass
class Folder:
    mailbox_address: str
    id: str
    name: str
    role: Role
    uidvalidity: int
    uidnext: int = 1

    def next_uid(self) -> int:
        uid, self.uidnext = self.uidnext, self.uidnext + 1
        return uid


def new_uidvalidity() -> int:
    """A fresh UIDVALIDITY (RFC 3501: nonzero 32-bit; a new folder must not reuse an old
    value, so a random one instead of a counter that a restored backup could repeat)."""
    return random.randint(1, 2**31 - 1)


def standard_folders(address: str) -> list[Folder]:
    return [
        Folder(address, fid, name, role, new_uidvalidity()) for fid, role, name in STANDARD_FOLDERS
    ]
