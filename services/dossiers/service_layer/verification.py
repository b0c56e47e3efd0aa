"""The port through which intake has the applicant verified against the national databases
(the citizen at the population database, an enterprise at the business registry), before a
receipt code is spent. The adapter (adapters/national.py) asks the gateway's national API.

`verify(applicant)` returns when the applicant is who they say; otherwise it raises:
InvalidField naming the applicant's field that does not match or is unknown, NotEligible when
the enterprise may not file (dissolved, suspended), Unavailable when the national system or
the gateway cannot answer now (the desk retries; nothing was stored)."""

from __future__ import annotations

from typing import Protocol

from services.dossiers.domain.dossier import Applicant


class ApplicantVerifier(Protocol):
    def verify(self, applicant: Applicant) -> None: ...


class NoVerification:
    """[dossiers] verify_applicants = false: the form's check only (a site without the
    national connection, a test)."""

    def verify(self, applicant: Applicant) -> None:
        return None
