"""Documents, their history, versions, tasks and number books over SQLAlchemy Core.

Works on a Session (inside a UnitOfWork) or a Connection (read-only paths)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.workdays import local_date
from services.documents.domain.delegation import Delegation, Scope
from services.documents.domain.document_types import document_type
from services.documents.domain.errors import StaleVersion
from services.documents.domain.figures import IncomingFact, OutgoingFact
from services.documents.domain.model import (
    OPEN_INCOMING,
    Attachment,
    Direction,
    DirectiveTask,
    Document,
    HistoryEntry,
    IncomingStatus,
    OutgoingStatus,
    TaskStatus,
)
from services.documents.domain.numbering import Book, book_for

from . import tables as t
from .proto import document_from_proto, document_to_proto, task_from_proto, task_to_proto


@dataclass(frozen=True)
class DocumentFilter:
    agency_code: str
    direction: Direction | None = None
    outgoing_statuses: tuple[OutgoingStatus, ...] = ()
    incoming_statuses: tuple[IncomingStatus, ...] = ()
    type_code: str = ""
    user_id: str = ""
    from_date: date | None = None
    to_date: date | None = None
    due_before: date | None = None
    min_priority: int = 0
    query: str = ""


@dataclass(frozen=True)
class TaskFilter:
    document_id: str = ""
    assignee_agency_code: str = ""
    assignee_user_id: str = ""
    statuses: tuple[TaskStatus, ...] = ()
    due_before: date | None = None
    agency_codes: tuple[str, ...] | None = None  # visible to the caller (assignee or director)


def _book_entry(doc: Document) -> dict[str, Any]:
    if doc.direction == Direction.OUTGOING and doc.number and doc.promulgation_date:
        kind = document_type(doc.type_code)
        book = book_for(kind) if kind else Book.OUTGOING
        return {
            "book": str(book),
            "book_year": doc.promulgation_date.year,
            "book_number": doc.number,
        }
    if doc.direction == Direction.INCOMING and doc.arrival_number and doc.arrival_time:
        return {
            "book": str(Book.INCOMING),
            "book_year": local_date(doc.arrival_time).year,
            "book_number": doc.arrival_number,
        }
    return {"book": None, "book_year": None, "book_number": None}


def _columns(doc: Document) -> dict[str, Any]:
    status = doc.outgoing_status if doc.direction == Direction.OUTGOING else doc.incoming_status
    return {
        "direction": int(doc.direction),
        "agency_code": doc.agency_code,
        "status": int(status or 0),
        "type_code": doc.type_code,
        **_book_entry(doc),
        "number_notation": doc.number_notation,
        "sender_agency_code": doc.sender_agency_code,
        "subject": doc.subject,
        "confidentiality": int(doc.confidentiality),
        "priority": int(doc.priority),
        "electronic": doc.electronic,
        "digitally_signed": doc.digitally_signed,
        "promulgation_date": doc.promulgation_date,
        "arrival_time": doc.arrival_time,
        "due_date": doc.due_date,
        "complete_time": doc.complete_time,
        "handler_user_id": doc.handler_user_id,
        "created_by": doc.created_by,
        "updated_at": doc.update_time,
        "version": doc.version,
        "body": document_to_proto(doc).SerializeToString(),
    }


def _load(body: bytes) -> Document:
    m = pb.Document()
    m.ParseFromString(body)
    return document_from_proto(m)


class Repository:
    def __init__(self, conn: Session | sa.Connection) -> None:
        self.conn = conn

    # --- documents -------------------------------------------------------------------------

    def get(self, document_id: str) -> Document | None:
        body = self.conn.execute(_GET_BODY, {"id": document_id}).scalar_one_or_none()
        return _load(body) if body is not None else None

    def get_for_reading(
        self, document_id: str
    ) -> tuple[Document, pb.Document, list[DirectiveTask], list[Attachment]] | None:
        """GetDocument's reads: the document (domain and stored proto), its tasks and its
        current files, with statements built once (their construction cost more than
        SQLite's work)."""
        body = self.conn.execute(_GET_BODY, {"id": document_id}).scalar_one_or_none()
        if body is None:
            return None
        m = pb.Document()
        m.ParseFromString(body)
        tasks = [_load_task(b) for b in self.conn.execute(_TASKS_OF, {"id": document_id}).scalars()]
        files = [_attachment(r) for r in self.conn.execute(_FILES_OF, {"id": document_id})]
        return document_from_proto(m), m, tasks, files

    def get_by_request(self, agency_code: str, request_key: str) -> Document | None:
        body = self.conn.execute(
            sa.select(t.documents.c.body).where(
                t.documents.c.agency_code == agency_code, t.documents.c.request_key == request_key
            )
        ).scalar_one_or_none()
        return _load(body) if body is not None else None

    def find_outgoing(
        self, agency_code: str, number_notation: str, year: int | None = None
    ) -> Document | None:
        """The agency's latest outgoing document of that number (of that book year, when
        given: numbers restart every year)."""
        year_filter = () if year is None else (t.documents.c.book_year == year,)
        rows = self.conn.execute(
            sa.select(t.documents.c.body)
            .where(
                t.documents.c.agency_code == agency_code,
                t.documents.c.direction == int(Direction.OUTGOING),
                t.documents.c.number_notation == number_notation,
                *year_filter,
            )
            .order_by(t.documents.c.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        return _load(rows) if rows is not None else None

    def find_incoming(self, agency_code: str, sender: str, number_notation: str) -> list[Document]:
        bodies = self.conn.execute(
            sa.select(t.documents.c.body)
            .where(
                t.documents.c.agency_code == agency_code,
                t.documents.c.direction == int(Direction.INCOMING),
                t.documents.c.sender_agency_code == sender,
                t.documents.c.number_notation == number_notation,
            )
            .order_by(t.documents.c.created_at)
        ).scalars()
        return [_load(b) for b in bodies]

    def add(self, doc: Document, request_key: str | None = None) -> None:
        self.conn.execute(
            sa.insert(t.documents).values(
                id=doc.id,
                request_key=request_key or None,
                created_at=doc.create_time,
                **_columns(doc),
            )
        )

    def save(self, doc: Document, expected_version: int) -> None:
        """Write `doc` if nobody changed it since `expected_version`; bumps its version."""
        doc.version = expected_version + 1
        result = self.conn.execute(
            sa.update(t.documents)
            .where(t.documents.c.id == doc.id, t.documents.c.version == expected_version)
            .values(**_columns(doc))
        )
        if _rowcount(result) != 1:
            doc.version = expected_version
            raise StaleVersion("the document changed since it was read; read it again")

    def list(
        self, f: DocumentFilter, offset: int, limit: int
    ) -> tuple[builtins.list[Document], int]:
        c = t.documents.c
        where: builtins.list[Any] = [c.agency_code == f.agency_code]
        if f.direction:
            where.append(c.direction == int(f.direction))
        statuses = []
        if f.outgoing_statuses:
            statuses.append(
                sa.and_(c.direction == 1, c.status.in_([int(s) for s in f.outgoing_statuses]))
            )
        if f.incoming_statuses:
            statuses.append(
                sa.and_(c.direction == 2, c.status.in_([int(s) for s in f.incoming_statuses]))
            )
        if statuses:
            where.append(sa.or_(*statuses))
        if f.type_code:
            where.append(c.type_code == f.type_code)
        if f.user_id:
            where.append(sa.or_(c.handler_user_id == f.user_id, c.created_by == f.user_id))
        if f.from_date or f.to_date:
            start, end = day_bounds(
                f.from_date or date(1900, 1, 1), f.to_date or date(9999, 12, 30)
            )
            where.append(
                sa.or_(
                    sa.and_(
                        c.direction == 1,
                        c.promulgation_date >= (f.from_date or date(1900, 1, 1)),
                        c.promulgation_date <= (f.to_date or date(9999, 12, 30)),
                    ),
                    sa.and_(c.direction == 2, c.arrival_time >= start, c.arrival_time < end),
                )
            )
        if f.due_before:
            where.append(c.due_date <= f.due_before)
        if f.min_priority:
            where.append(c.priority >= f.min_priority)
        if f.query:
            like = f"%{f.query}%"
            where.append(sa.or_(c.number_notation.ilike(like), c.subject.ilike(like)))
        total = self.conn.execute(
            sa.select(sa.func.count()).select_from(t.documents).where(*where)
        ).scalar_one()
        bodies = self.conn.execute(
            sa.select(c.body)
            .where(*where)
            .order_by(c.created_at.desc(), c.id)
            .offset(offset)
            .limit(limit)
        ).scalars()
        return [_load(b) for b in bodies], int(total)

    # --- attachments -----------------------------------------------------------------------

    def add_attachment(self, a: Attachment) -> None:
        """Store the row; a new main text makes the earlier main texts non-current."""
        c = t.attachments.c
        if a.main:
            self.conn.execute(
                sa.update(t.attachments)
                .where(c.document_id == a.document_id, c.main.is_(True), c.current.is_(True))
                .values(current=False)
            )
        self.conn.execute(
            sa.insert(t.attachments).values(
                id=a.id,
                document_id=a.document_id,
                file_name=a.file_name,
                content_type=a.content_type,
                size_bytes=a.size_bytes,
                sha256=a.sha256,
                main=a.main,
                version=a.version,
                current=a.current,
                digitally_signed=a.digitally_signed,
                signer_serial=a.signer_serial,
                replaces_id=a.replaces_id,
                uploaded_by=a.uploaded_by,
                created_at=a.create_time,
            )
        )

    def attachments(
        self, document_id: str, *, current_only: bool = True
    ) -> builtins.list[Attachment]:
        c = t.attachments.c
        q = sa.select(*_ATTACHMENT_COLUMNS).where(c.document_id == document_id)
        if current_only:
            q = q.where(c.current.is_(True))
        rows = self.conn.execute(q.order_by(c.main.desc(), c.created_at, c.id))
        return [_attachment(r) for r in rows]

    def get_attachment(self, document_id: str, attachment_id: str) -> Attachment | None:
        c = t.attachments.c
        row = self.conn.execute(
            sa.select(*_ATTACHMENT_COLUMNS).where(
                c.id == attachment_id, c.document_id == document_id
            )
        ).first()
        return _attachment(row) if row is not None else None

    def mark_signed(self, attachment_id: str, serial: str) -> None:
        self.conn.execute(
            sa.update(t.attachments)
            .where(t.attachments.c.id == attachment_id)
            .values(digitally_signed=True, signer_serial=serial)
        )

    def sha256_in_use(self, sha256: str) -> bool:
        c = t.attachments.c
        return (
            self.conn.execute(sa.select(c.id).where(c.sha256 == sha256).limit(1)).first()
            is not None
        )

    # --- number books ----------------------------------------------------------------------

    def next_number(self, agency_code: str, book: Book, year: int) -> int:
        """The next number of the book, taken inside the caller's transaction.

        The UPDATE takes the counter row's lock (PostgreSQL row lock; on SQLite the whole
        transaction holds the write lock from BEGIN IMMEDIATE) until commit, so a concurrent
        issue waits and then sees the new value; a rollback gives the number back. Together
        with uq_documents_book_entry this makes numbers unique and gap-free."""
        key = {"agency_code": agency_code, "book": str(book), "year": year}
        bind = self.conn.get_bind() if isinstance(self.conn, Session) else self.conn
        dialect = bind.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        self.conn.execute(
            insert(t.number_books).values(**key, last_number=0).on_conflict_do_nothing()
        )
        c = t.number_books.c
        return int(
            self.conn.execute(
                sa.update(t.number_books)
                .where(c.agency_code == agency_code, c.book == str(book), c.year == year)
                .values(last_number=c.last_number + 1)
                .returning(c.last_number)
            ).scalar_one()
        )

    def last_issued_date(self, agency_code: str, book: Book, year: int) -> date | None:
        """The promulgation date of the book's highest number so far (None for an empty
        book). Read after `next_number` has locked the book, so it sees the last commit."""
        c = t.documents.c
        found = self.conn.execute(
            sa.select(c.promulgation_date)
            .where(c.agency_code == agency_code, c.book == str(book), c.book_year == year)
            .order_by(c.book_number.desc())
            .limit(1)
        ).scalar_one_or_none()
        return found if isinstance(found, date) else None

    # --- history and versions --------------------------------------------------------------

    def add_history(self, document_id: str, entry: HistoryEntry) -> None:
        self.conn.execute(
            sa.insert(t.document_history).values(
                document_id=document_id,
                at=entry.time,
                actor_id=entry.actor_id,
                agency_code=entry.agency_code,
                action=entry.action,
                from_status=entry.from_status,
                to_status=entry.to_status,
                comment=entry.comment,
                delegation_id=entry.delegation_id,
            )
        )

    def history(self, document_id: str) -> builtins.list[HistoryEntry]:
        c = t.document_history.c
        rows = self.conn.execute(
            sa.select(
                c.at,
                c.actor_id,
                c.agency_code,
                c.action,
                c.from_status,
                c.to_status,
                c.comment,
                c.delegation_id,
            )
            .where(c.document_id == document_id)
            .order_by(c.id)
        )
        return [HistoryEntry(*row) for row in rows]

    def add_version(self, doc: Document, author_id: str, at: datetime) -> None:
        self.conn.execute(
            sa.insert(t.document_versions).values(
                document_id=doc.id,
                version=doc.draft_version,
                author_id=author_id,
                created_at=at,
                body=document_to_proto(doc).SerializeToString(),
            )
        )

    def versions(self, document_id: str) -> builtins.list[tuple[int, Document, str, datetime]]:
        c = t.document_versions.c
        rows = self.conn.execute(
            sa.select(c.version, c.body, c.author_id, c.created_at)
            .where(c.document_id == document_id)
            .order_by(c.version)
        )
        return [(v, _load(b), a, at) for v, b, a, at in rows]

    # --- delegations -----------------------------------------------------------------------

    def add_delegation(self, d: Delegation) -> None:
        self.conn.execute(
            sa.insert(t.delegations).values(
                id=d.id,
                agency_code=d.agency_code,
                delegate_user_id=d.delegate_user_id,
                delegate_agency_code=d.delegate_agency_code,
                scopes=",".join(sorted(s.name for s in d.scopes)),
                valid_from=d.valid_from,
                valid_until=d.valid_until,
                granted_by=d.granted_by,
                granted_at=d.grant_time,
                note=d.note,
            )
        )

    def get_delegation(self, delegation_id: str) -> Delegation | None:
        row = self.conn.execute(
            sa.select(t.delegations).where(t.delegations.c.id == delegation_id)
        ).first()
        return _delegation(row) if row is not None else None

    def save_revocation(self, d: Delegation) -> None:
        """Record `d`'s revocation, unless a concurrent call revoked it first (StaleVersion)."""
        c = t.delegations.c
        result = self.conn.execute(
            sa.update(t.delegations)
            .where(c.id == d.id, c.revoked_at.is_(None))
            .values(
                revoked_by=d.revoked_by, revoked_at=d.revoke_time, revoke_reason=d.revoke_reason
            )
        )
        if _rowcount(result) != 1:
            raise StaleVersion("the delegation changed since it was read; read it again")

    def delegations_to(self, user_id: str, now: datetime) -> builtins.list[Delegation]:
        """The unrevoked, unexpired delegations granted to `user_id` (any agency)."""
        c = t.delegations.c
        rows = self.conn.execute(
            sa.select(t.delegations).where(
                c.delegate_user_id == user_id, c.revoked_at.is_(None), c.valid_until > now
            )
        )
        return [_delegation(r) for r in rows]

    def delegations_of(
        self, agency_code: str, delegate_user_id: str = ""
    ) -> builtins.list[Delegation]:
        """An agency's delegations (only those to `delegate_user_id` when given), newest first."""
        c = t.delegations.c
        q = sa.select(t.delegations).where(c.agency_code == agency_code)
        if delegate_user_id:
            q = q.where(c.delegate_user_id == delegate_user_id)
        return [_delegation(r) for r in self.conn.execute(q.order_by(c.granted_at.desc(), c.id))]

    # --- directive tasks -------------------------------------------------------------------

    def _task_columns(self, task: DirectiveTask) -> dict[str, Any]:
        return {
            "document_id": task.document_id,
            "directing_agency_code": task.directing_agency_code,
            "assignee_agency_code": task.assignee_agency_code,
            "assignee_user_id": task.assignee_user_id,
            "status": int(task.status),
            "due_date": task.due_date,
            "version": task.version,
            "body": task_to_proto(task).SerializeToString(),
        }

    def add_task(self, task: DirectiveTask) -> None:
        self.conn.execute(
            sa.insert(t.directive_tasks).values(
                id=task.id, created_at=task.create_time, **self._task_columns(task)
            )
        )

    def get_task(self, task_id: str) -> DirectiveTask | None:
        body = self.conn.execute(
            sa.select(t.directive_tasks.c.body).where(t.directive_tasks.c.id == task_id)
        ).scalar_one_or_none()
        return _load_task(body) if body is not None else None

    def save_task(self, task: DirectiveTask, expected_version: int) -> None:
        task.version = expected_version + 1
        c = t.directive_tasks.c
        result = self.conn.execute(
            sa.update(t.directive_tasks)
            .where(c.id == task.id, c.version == expected_version)
            .values(**self._task_columns(task))
        )
        if _rowcount(result) != 1:
            task.version = expected_version
            raise StaleVersion("the task changed since it was read; read it again")

    def tasks_of_documents(
        self, document_ids: Sequence[str]
    ) -> dict[str, builtins.list[DirectiveTask]]:
        out: dict[str, builtins.list[DirectiveTask]] = {}
        if not document_ids:
            return out
        c = t.directive_tasks.c
        for body in self.conn.execute(
            sa.select(c.body).where(c.document_id.in_(list(document_ids))).order_by(c.created_at)
        ).scalars():
            task = _load_task(body)
            out.setdefault(task.document_id, []).append(task)
        return out

    def list_tasks(self, f: TaskFilter, offset: int, limit: int) -> builtins.list[DirectiveTask]:
        c = t.directive_tasks.c
        where: builtins.list[Any] = []
        if f.document_id:
            where.append(c.document_id == f.document_id)
        if f.assignee_agency_code:
            where.append(c.assignee_agency_code == f.assignee_agency_code)
        if f.assignee_user_id:
            where.append(c.assignee_user_id == f.assignee_user_id)
        if f.statuses:
            where.append(c.status.in_([int(s) for s in f.statuses]))
        if f.due_before:
            where.append(c.due_date <= f.due_before)
        if f.agency_codes is not None:
            codes = list(f.agency_codes)
            where.append(
                sa.or_(c.assignee_agency_code.in_(codes), c.directing_agency_code.in_(codes))
            )
        rows = self.conn.execute(
            sa.select(c.body)
            .where(*where)
            .order_by(c.due_date.is_(None), c.due_date, c.created_at, c.id)
            .offset(offset)
            .limit(limit)
        ).scalars()
        return [_load_task(b) for b in rows]

    # --- figures ---------------------------------------------------------------------------

    def outgoing_facts(
        self, agencies: Iterable[str], start: date, end: date
    ) -> builtins.list[OutgoingFact]:
        c = t.documents.c
        rows = self.conn.execute(
            sa.select(c.agency_code, c.promulgation_date, c.electronic, c.digitally_signed).where(
                c.agency_code.in_(list(agencies)),
                c.direction == int(Direction.OUTGOING),
                c.promulgation_date.is_not(None),
                c.promulgation_date >= start,
                c.promulgation_date <= end,
            )
        )
        return [OutgoingFact(*row) for row in rows]

    def incoming_facts(
        self, agencies: Iterable[str], start: datetime, end: datetime
    ) -> builtins.list[IncomingFact]:
        c = t.documents.c
        rows = self.conn.execute(
            sa.select(
                c.agency_code, c.arrival_time, c.electronic, c.due_date, c.complete_time, c.status
            ).where(
                c.agency_code.in_(list(agencies)),
                c.direction == int(Direction.INCOMING),
                c.arrival_time >= start,
                c.arrival_time < end,
            )
        )
        return [
            IncomingFact(
                code,
                _aware(arrived),
                bool(el),
                due,
                _aware(done) if done else None,
                IncomingStatus(st) in OPEN_INCOMING,
            )
            for code, arrived, el, due, done, st in rows
        ]

    def overdue_tasks(self, agencies: Iterable[str], today: date) -> dict[str, int]:
        c = t.directive_tasks.c
        rows = self.conn.execute(
            sa.select(c.assignee_agency_code, sa.func.count())
            .where(
                c.assignee_agency_code.in_(list(agencies)),
                c.status.in_([int(TaskStatus.OPEN), int(TaskStatus.IN_PROGRESS)]),
                c.due_date < today,
            )
            .group_by(c.assignee_agency_code)
        )
        return {code: int(n) for code, n in rows}


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the province's calendar days first..last."""
    from datetime import UTC, time, timedelta

    from lgsp.workdays import PROVINCE_TZ

    start = datetime.combine(first, time(), PROVINCE_TZ).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), PROVINCE_TZ).astimezone(UTC)
    return start, end


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC.
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


_ATTACHMENT_COLUMNS = (
    t.attachments.c.id,
    t.attachments.c.document_id,
    t.attachments.c.file_name,
    t.attachments.c.content_type,
    t.attachments.c.size_bytes,
    t.attachments.c.sha256,
    t.attachments.c.uploaded_by,
    t.attachments.c.created_at,
    t.attachments.c.main,
    t.attachments.c.version,
    t.attachments.c.current,
    t.attachments.c.digitally_signed,
    t.attachments.c.signer_serial,
    t.attachments.c.replaces_id,
)


_GET_BODY = sa.select(t.documents.c.body).where(t.documents.c.id == sa.bindparam("id"))
_TASKS_OF = (
    sa.select(t.directive_tasks.c.body)
    .where(t.directive_tasks.c.document_id == sa.bindparam("id"))
    .order_by(t.directive_tasks.c.created_at)
)
_FILES_OF = (
    sa.select(*_ATTACHMENT_COLUMNS)
    .where(t.attachments.c.document_id == sa.bindparam("id"), t.attachments.c.current.is_(True))
    .order_by(t.attachments.c.main.desc(), t.attachments.c.created_at, t.attachments.c.id)
)


def _attachment(row: Any) -> Attachment:
    values = list(row)
    values[7] = _aware(values[7])
    values[4] = int(values[4])
    return Attachment(*values)


def _delegation(row: Any) -> Delegation:
    m = row._mapping
    return Delegation(
        id=m["id"],
        agency_code=m["agency_code"],
        delegate_user_id=m["delegate_user_id"],
        delegate_agency_code=m["delegate_agency_code"],
        scopes=frozenset(Scope[name] for name in m["scopes"].split(",") if name),
        valid_from=_aware(m["valid_from"]),
        valid_until=_aware(m["valid_until"]),
        granted_by=m["granted_by"],
        grant_time=_aware(m["granted_at"]),
        note=m["note"],
        revoked_by=m["revoked_by"],
        revoke_time=_aware(m["revoked_at"]) if m["revoked_at"] is not None else None,
        revoke_reason=m["revoke_reason"],
    )


def _load_task(body: bytes) -> DirectiveTask:
    m = pb.DirectiveTask()
    m.ParseFromString(body)
    return task_from_proto(m)


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (SQLAlchemy types execute()'s result without rowcount)."""
    return int(result.rowcount)
