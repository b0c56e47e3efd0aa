"""Procedures and dossiers in the database, inside a unit of work's session."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lgsp.textfold import fold
from services.dossiers.adapters.tables import (
    dossier_history,
    dossiers,
    procedure_agencies,
    procedures,
    receipt_sequences,
)
from services.dossiers.domain.dossier import (
    Applicant,
    ApplicantKind,
    Channel,
    Dossier,
    HistoryEntry,
    Paper,
)
from services.dossiers.domain.errors import StaleEtag
from services.dossiers.domain.procedure import (
    OnlineLevel,
    Procedure,
    ProcedureField,
    ProcedureQuery,
    RequiredPaper,
    Step,
)
from services.dossiers.domain.status import Status


def _utc(t: datetime | None) -> datetime | None:
    # Every time is stored as UTC: SQLite keeps an aware datetime's wall time and drops its
    # offset, and hands back naive datetimes, read here as UTC.
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# --- procedures ---------------------------------------------------------------------------


def procedure_to_json(p: Procedure) -> dict[str, Any]:
    data = dataclasses.asdict(p)
    data.pop("update_time")
    data.pop("version")
    data["online_level"] = int(p.online_level)
    return data


def procedure_from_json(
    data: dict[str, Any], *, version: int = 1, update_time: datetime | None = None
) -> Procedure:
    return Procedure(
        code=data["code"],
        name=data["name"],
        field=ProcedureField(**data["field"]),
        agency_codes=tuple(data["agency_codes"]),
        processing_days=int(data["processing_days"]),
        fee_vnd=int(data.get("fee_vnd", 0)),
        fee_description=data.get("fee_description", ""),
        required_papers=tuple(RequiredPaper(**r) for r in data.get("required_papers", ())),
        online_level=OnlineLevel(int(data.get("online_level", OnlineLevel.PARTIAL))),
        result_description=data.get("result_description", ""),
        legal_basis=data.get("legal_basis", ""),
        active=bool(data.get("active", True)),
        steps=tuple(Step(**s) for s in data.get("steps", ())),
        source_url=data.get("source_url", ""),
        update_time=update_time,
        version=version,
    )


def _like(text: str) -> str:
    """A LIKE pattern for the substring `text` (its own % and _ taken literally, escape "!")."""
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


class ProcedureRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _columns(p: Procedure) -> dict[str, Any]:
        return {
            "name": p.name,
            "field_code": p.field.code,
            "field_name": p.field.name,
            "online_level": int(p.online_level),
            "search_text": fold(f"{p.code} {p.name}"),
            "active": p.active,
            "data": procedure_to_json(p),
            "version": p.version,
            "update_time": p.update_time,
        }

    def _set_agencies(self, p: Procedure) -> None:
        self.session.execute(
            sa.delete(procedure_agencies).where(procedure_agencies.c.procedure_code == p.code)
        )
        self.session.execute(
            sa.insert(procedure_agencies),
            [{"procedure_code": p.code, "agency_code": a} for a in dict.fromkeys(p.agency_codes)],
        )

    def add(self, p: Procedure) -> None:
        assert p.update_time is not None
        self.session.execute(sa.insert(procedures).values(code=p.code, **self._columns(p)))
        self._set_agencies(p)

    def update(self, p: Procedure, expected_version: int) -> None:
        done = cast(
            "sa.CursorResult[Any]",
            self.session.execute(
                sa.update(procedures)
                .where(procedures.c.code == p.code, procedures.c.version == expected_version)
                .values(**self._columns(p))
            ),
        )
        if done.rowcount != 1:
            raise StaleEtag(f"procedure {p.code} changed since it was read")
        self._set_agencies(p)

    def get(self, code: str) -> Procedure | None:
        row = self.session.execute(sa.select(procedures).where(procedures.c.code == code)).first()
        if row is None:
            return None
        return procedure_from_json(row.data, version=row.version, update_time=_utc(row.update_time))

    def list_all(self, *, include_inactive: bool = False) -> list[Procedure]:
        q = sa.select(procedures).order_by(procedures.c.code)
        if not include_inactive:
            q = q.where(procedures.c.active.is_(True))
        return [
            procedure_from_json(r.data, version=r.version, update_time=_utc(r.update_time))
            for r in self.session.execute(q)
        ]

    @staticmethod
    def _where(query: ProcedureQuery) -> list[Any]:
        c = procedures.c
        where: list[Any] = []
        if not query.include_inactive:
            where.append(c.active.is_(True))
        if query.field_code:
            where.append(c.field_code == query.field_code)
        if query.min_online_level:
            where.append(c.online_level >= int(query.min_online_level))
        if query.text:
            where.append(c.search_text.like(_like(query.text), escape="!"))
        if query.agency_codes is not None:
            where.append(
                c.code.in_(
                    sa.select(procedure_agencies.c.procedure_code).where(
                        procedure_agencies.c.agency_code.in_(sorted(query.agency_codes))
                    )
                )
            )
        return where

    def search(self, query: ProcedureQuery, after: str, limit: int) -> list[Procedure]:
        """Up to `limit` procedures matching `query` with a code after `after`, by code."""
        q = sa.select(procedures).where(*self._where(query))
        if after:
            q = q.where(procedures.c.code > after)
        q = q.order_by(procedures.c.code).limit(limit)
        return [
            procedure_from_json(r.data, version=r.version, update_time=_utc(r.update_time))
            for r in self.session.execute(q)
        ]

    def count_matching(self, query: ProcedureQuery) -> int:
        q = sa.select(sa.func.count()).select_from(procedures).where(*self._where(query))
        return int(self.session.execute(q).scalar_one())

    def agency_codes(self) -> list[str]:
        """Every agency that handles some procedure."""
        q = sa.select(procedure_agencies.c.agency_code).distinct()
        return [r[0] for r in self.session.execute(q)]

    def fields(self) -> list[ProcedureField]:
        """The fields of active procedures (unordered)."""
        c = procedures.c
        q = sa.select(c.field_code, c.field_name).where(c.active.is_(True)).distinct()
        return [ProcedureField(code, name) for code, name in self.session.execute(q)]

    def count(self) -> int:
        return int(
            self.session.execute(sa.select(sa.func.count()).select_from(procedures)).scalar_one()
        )


# --- dossiers -----------------------------------------------------------------------------


def _applicant_json(a: Applicant) -> dict[str, Any]:
    data = dataclasses.asdict(a)
    data["kind"] = int(a.kind)
    data["birth_date"] = a.birth_date.isoformat() if a.birth_date else None
    return data


def _applicant(data: dict[str, Any]) -> Applicant:
    data = dict(data)
    data["kind"] = ApplicantKind(data["kind"])
    data["birth_date"] = date.fromisoformat(data["birth_date"]) if data["birth_date"] else None
    return Applicant(**data)


def search_columns(a: Applicant) -> dict[str, str]:
    """The officials' search columns of an applicant (adapters/tables.py says what each is)."""
    folded = (" ".join(fold(n).split()) for n in (a.full_name, a.organization_name))
    names = " ".join(n for n in folded if n)
    return {
        "applicant_key": f" {names}"[:1100],
        "applicant_number": a.identity_number.strip()[:20],
        "applicant_org_code": a.organization_code.replace("-", "").strip()[:20],
    }


def _row_values(d: Dossier) -> dict[str, Any]:
    return {
        "id": d.id,
        "receipt_code": d.receipt_code,
        "request_id": d.request_id or None,
        "procedure_code": d.procedure_code,
        "procedure_name": d.procedure_name,
        "agency_code": d.agency_code,
        "status": int(d.status),
        "channel": int(d.channel),
        "applicant": _applicant_json(d.applicant),
        "papers": [dataclasses.asdict(p) for p in d.papers],
        "processing_days": d.processing_days,
        "submit_time": _utc(d.submit_time),
        "accept_time": _utc(d.accept_time),
        "due_date": d.due_date,
        "finish_time": _utc(d.finish_time),
        "return_time": _utc(d.return_time),
        "receiver_user_id": d.receiver_user_id,
        "handler_user_id": d.handler_user_id,
        "fee_vnd": d.fee_vnd,
        "fee_paid": d.fee_paid,
        "result_number": d.result_number,
        "result_attachment_id": d.result_attachment_id,
        "on_time": d.on_time,
        "status_reason": d.status_reason,
        "paused_since": _utc(d.paused_since),
        "paused_days": d.paused_days,
        "portal_code": d.portal_code or None,
        "payment_id": d.payment_id,
        "payment_url": d.payment_url,
        "paid_online": d.paid_online,
        "rating": d.rating,
        "rating_time": _utc(d.rating_time),
        "postal_tracking_number": d.postal_tracking_number,
        "postmark_date": d.postmark_date,
        "portal_synced": d.portal_synced,
        "rescheduled_date": d.rescheduled_date,
        "apology_reason": d.apology_reason,
        "apology_time": _utc(d.apology_time),
        "update_time": _utc(d.update_time),
        "version": d.version,
        **search_columns(d.applicant),
    }


def _dossier(row: Any) -> Dossier:
    v = row._asdict()
    return Dossier(
        id=v["id"],
        receipt_code=v["receipt_code"],
        request_id=v["request_id"] or "",
        procedure_code=v["procedure_code"],
        procedure_name=v["procedure_name"],
        agency_code=v["agency_code"],
        applicant=_applicant(v["applicant"]),
        status=Status(v["status"]),
        channel=Channel(v["channel"]),
        papers=tuple(Paper(**p) for p in v["papers"]),
        processing_days=v["processing_days"],
        submit_time=_utc(v["submit_time"]) or datetime.now(UTC),
        accept_time=_utc(v["accept_time"]),
        due_date=v["due_date"],
        finish_time=_utc(v["finish_time"]),
        return_time=_utc(v["return_time"]),
        receiver_user_id=v["receiver_user_id"],
        handler_user_id=v["handler_user_id"],
        fee_vnd=v["fee_vnd"],
        fee_paid=v["fee_paid"],
        result_number=v["result_number"],
        result_attachment_id=v["result_attachment_id"],
        on_time=v["on_time"],
        status_reason=v["status_reason"],
        paused_since=_utc(v["paused_since"]),
        paused_days=v["paused_days"],
        portal_code=v["portal_code"] or "",
        payment_id=v["payment_id"],
        payment_url=v["payment_url"],
        paid_online=v["paid_online"],
        rating=v["rating"],
        rating_time=_utc(v["rating_time"]),
        postal_tracking_number=v["postal_tracking_number"],
        postmark_date=v["postmark_date"],
        portal_synced=v["portal_synced"],
        rescheduled_date=v["rescheduled_date"],
        apology_reason=v["apology_reason"],
        apology_time=_utc(v["apology_time"]),
        update_time=_utc(v["update_time"]),
        version=v["version"],
    )


# For the other readers and writers of the table (dossier_search.py, bench/).
dossier_from_row, dossier_row = _dossier, _row_values


class DossierRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def next_sequence(self, agency_code: str, day: date) -> int:
        """The next number of `agency_code`'s receipts of `day` (the transaction holds the
        write lock, so two desks never get the same one; the receipt code is unique besides)."""
        key = (receipt_sequences.c.agency_code == agency_code, receipt_sequences.c.day == day)
        done = cast(
            "sa.CursorResult[Any]",
            self.session.execute(
                sa.update(receipt_sequences).where(*key).values(last=receipt_sequences.c.last + 1)
            ),
        )
        if done.rowcount == 0:
            self.session.execute(
                sa.insert(receipt_sequences).values(agency_code=agency_code, day=day, last=1)
            )
            return 1
        return int(
            self.session.execute(sa.select(receipt_sequences.c.last).where(*key)).scalar_one()
        )

    def add(self, d: Dossier) -> None:
        self.session.execute(sa.insert(dossiers).values(**_row_values(d)))
        self._append_history(d)

    def save(self, d: Dossier, expected_version: int) -> None:
        done = cast(
            "sa.CursorResult[Any]",
            self.session.execute(
                sa.update(dossiers)
                .where(dossiers.c.id == d.id, dossiers.c.version == expected_version)
                .values(**_row_values(d))
            ),
        )
        if done.rowcount != 1:
            raise StaleEtag(f"dossier {d.receipt_code} changed since it was read")
        self._append_history(d)

    def _append_history(self, d: Dossier) -> None:
        if d.new_history:
            self.session.execute(
                sa.insert(dossier_history),
                [
                    {
                        "dossier_id": d.id,
                        "time": _utc(h.time),
                        "actor_id": h.actor_id,
                        "from_status": int(h.from_status) if h.from_status else None,
                        "to_status": int(h.to_status),
                        "comment": h.comment,
                    }
                    for h in d.new_history
                ],
            )
            d.new_history.clear()

    def get(self, dossier_id: str) -> Dossier | None:
        row = self.session.execute(sa.select(dossiers).where(dossiers.c.id == dossier_id)).first()
        return None if row is None else _dossier(row)

    def by_receipt_code(self, code: str) -> Dossier | None:
        row = self.session.execute(
            sa.select(dossiers).where(dossiers.c.receipt_code == code)
        ).first()
        return None if row is None else _dossier(row)

    def by_payment_id(self, payment_id: str) -> Dossier | None:
        if not payment_id:
            return None
        row = self.session.execute(
            sa.select(dossiers).where(dossiers.c.payment_id == payment_id)
        ).first()
        return None if row is None else _dossier(row)

    def by_request_id(self, request_id: str) -> Dossier | None:
        row = self.session.execute(
            sa.select(dossiers).where(dossiers.c.request_id == request_id)
        ).first()
        return None if row is None else _dossier(row)

    def by_portal_code(self, code: str) -> Dossier | None:
        row = self.session.execute(
            sa.select(dossiers).where(dossiers.c.portal_code == code)
        ).first()
        return None if row is None else _dossier(row)

    def mark_portal_synced(self, dossier_id: str, status: Status, time: datetime) -> bool:
        """portal_synced = true if the dossier's latest step is the one the portal has
        (`status` at `time`); the version stays, so no clerk's etag goes stale."""
        last = self.session.execute(
            sa.select(dossier_history.c.to_status, dossier_history.c.time)
            .where(dossier_history.c.dossier_id == dossier_id)
            .order_by(dossier_history.c.id.desc())
            .limit(1)
        ).first()
        if last is None or last.to_status != int(status) or _utc(last.time) != _utc(time):
            return False
        self.session.execute(
            sa.update(dossiers).where(dossiers.c.id == dossier_id).values(portal_synced=True)
        )
        return True

    def history(self, dossier_id: str) -> list[HistoryEntry]:
        rows = self.session.execute(
            sa.select(dossier_history)
            .where(dossier_history.c.dossier_id == dossier_id)
            .order_by(dossier_history.c.id)
        )
        return [
            HistoryEntry(
                _utc(r.time) or datetime.now(UTC),
                r.actor_id,
                Status(r.from_status) if r.from_status else None,
                Status(r.to_status),
                r.comment,
            )
            for r in rows
        ]

    def count(self) -> int:
        return int(
            self.session.execute(sa.select(sa.func.count()).select_from(dossiers)).scalar_one()
        )
