"""What the citizen holds and sees: the public lookup and the rating (receipt code + 4
digits, with a lock on wrong digits per receipt code), the receipt slip and the apology
letter printed for the desk."""

from __future__ import annotations

import dataclasses
from typing import Any

from lgsp.auth import Principal, require_role
from lgsp.db import UnitOfWork
from lgsp.ratelimit import FailureWindow
from lgsp.workdays import local_date
from services.dossiers.adapters import papers_pdf
from services.dossiers.adapters.proto import apology_issued, dossier_rated
from services.dossiers.adapters.repository import DossierRepository
from services.dossiers.domain import citizen
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.errors import Exhausted, InvalidField, NotFound
from services.dossiers.domain.fields import check_date
from services.dossiers.domain.receipt import parse_receipt_code
from services.dossiers.service_layer.base import LEADER, OFFICIALS, SPECIALIST, AppBase

# Wrong verifications per receipt code before the code is locked, and over how long: 10 a day
# makes the 10,000 possible 4-digit answers a matter of years, from any number of addresses.
VERIFY_FAILURES, VERIFY_WINDOW = 10, 24 * 3600.0


class Locked(Exhausted):
    """Too many wrong verifications for one receipt code (→ RESOURCE_EXHAUSTED)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CitizenUseCases(AppBase):
    def __init__(self, *args: Any, public_url: str = "http://127.0.0.1:8183", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.public_url = public_url  # where the lookup page is, for the slip's QR code
        self.verify_failures = FailureWindow(VERIFY_FAILURES, VERIFY_WINDOW)

    # --- the citizen, with receipt code and 4 digits --------------------------------------

    def lookup(self, receipt: str, verification: str) -> tuple[Dossier, str]:
        """The dossier and its agency's name, for the public lookup: NOT_FOUND alike for an
        unknown code and for a wrong verification (the last 4 digits of the applicant's
        identity number or phone); each counts toward the code's lock."""
        with self.uow() as uow:
            d = self._verified(DossierRepository(uow.session), receipt, verification)
        return d, self._agency_name(d.agency_code)

    def rate(self, receipt: str, verification: str, rating: int) -> tuple[Dossier, str]:
        """The applicant's rating, once, after the result is returned; DossierRated with it."""
        now = self.clock()
        with self.uow() as uow:
            repo = DossierRepository(uow.session)
            d = self._verified(repo, receipt, verification)
            version = d.version
            before = dataclasses.replace(d, new_history=[])
            citizen.rate(d, rating, now=now)
            repo.save(d, version)
            self._record_figures(uow, before, d)
            uow.emit(dossier_rated(d), subject=d.receipt_code)
            uow.commit()
        self.after_commit()
        return d, self._agency_name(d.agency_code)

    def _verified(self, repo: DossierRepository, receipt: str, verification: str) -> Dossier:
        receipt = receipt.strip()
        parse_receipt_code(receipt)
        verification = verification.strip()
        if len(verification) != 4 or not (verification.isascii() and verification.isdigit()):
            raise InvalidField("verification", "the last 4 digits of the identity number or phone")
        wait = self.verify_failures.retry_after(receipt)
        if wait:
            raise Locked(
                "too many wrong verifications for this receipt code; try again later", wait
            )
        d = repo.by_receipt_code(receipt)
        phone = "".join(c for c in (d.applicant.phone if d else "") if c.isdigit())
        if d is None or verification not in (d.applicant.identity_number[-4:], phone[-4:]):
            self.verify_failures.failed(receipt)
            raise NotFound("no dossier with this receipt code and verification")
        return d

    def _agency_name(self, code: str) -> str:
        agency = self.agencies.get(code)
        return agency.name if agency else code

    # --- the agency's papers ----------------------------------------------------------------

    def issue_apology(
        self, dossier_id: str, etag: str, new_due_date: str, reason: str, principal: Principal
    ) -> tuple[Dossier, bytes]:
        """The apology and new appointment of a late dossier (a leader, or the specialist who
        drafts it for the head's signature): stored with a history entry and
        DossierApologyIssued in one commit, and the letter printed."""
        new_date = check_date("new_due_date", new_due_date)
        if new_date is None:
            raise InvalidField("new_due_date", "a date YYYY-MM-DD")

        def change(d: Dossier, now: Any, who: str) -> None:
            citizen.issue_apology(
                d,
                new_date,
                reason,
                calendar=self.rule.calendar,
                today=local_date(now),
                now=now,
                actor=who,
            )

        def emit(uow: UnitOfWork, d: Dossier, who: str) -> None:
            uow.emit(apology_issued(d, who), subject=d.receipt_code)

        d = self._step(dossier_id, etag, principal, (LEADER, SPECIALIST), change, emit=emit)
        return d, self._letter(d)

    def receipt_slip(self, dossier_id: str, principal: Principal) -> tuple[bytes, str]:
        d = self._readable(dossier_id, principal)
        if d.due_date is None:
            raise citizen.NotApplicable(
                f"dossier {d.receipt_code} is {d.status}: the slip is printed once it is "
                "accepted and the appointment fixed"
            )
        name = d.receiver_user_id
        if principal.subject == d.receiver_user_id:
            name = str(principal.claims.get("name") or principal.username or name)
        pdf = papers_pdf.receipt_slip(
            d,
            self._issuer(d.agency_code),
            lookup=papers_pdf.lookup_url(self.public_url, d.receipt_code),
            receiver_name=name,
        )
        return pdf, f"giay-tiep-nhan-{d.receipt_code}.pdf"

    def apology_letter(self, dossier_id: str, principal: Principal) -> tuple[bytes, str]:
        d = self._readable(dossier_id, principal)
        if d.rescheduled_date is None:
            raise citizen.NotApplicable(f"no apology letter was issued for {d.receipt_code}")
        return self._letter(d), f"phieu-xin-loi-{d.receipt_code}.pdf"

    def _letter(self, d: Dossier) -> bytes:
        return papers_pdf.apology_letter(
            d,
            self._issuer(d.agency_code),
            lookup=papers_pdf.lookup_url(self.public_url, d.receipt_code),
            signer_title="Thủ trưởng cơ quan",
        )

    def _readable(self, dossier_id: str, principal: Principal) -> Dossier:
        if not dossier_id.strip():
            raise InvalidField("dossier_id", "required")
        with self.uow() as uow:
            d = DossierRepository(uow.session).get(dossier_id.strip())
        if d is None:
            raise NotFound(f"no dossier {dossier_id}")
        require_role(OFFICIALS, d.agency_code, tree=self.agencies, principal=principal)
        return d

    def _issuer(self, code: str) -> papers_pdf.Issuer:
        agency = self.agencies.get(code)
        if agency is None:
            return papers_pdf.Issuer(code)
        parent = self.agencies.get(agency.parent_code) if agency.parent_code else None
        return papers_pdf.Issuer(agency.name, parent.name if parent else "", agency.place_name)
