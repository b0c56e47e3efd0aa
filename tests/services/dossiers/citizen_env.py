"""A dossiers service with a clock the test moves and its HTTP side listening: what the citizen
tests (slip, apology, rating, lookup page) share."""

from __future__ import annotations

import asyncio
import io
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pypdf

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc.client import channel
from services.dossiers.plugin import PLUGIN
from tests.services.dossiers.test_grpc import AGENCIES, NOW, Env, birth_registration
from tests.support import free_port
from tests.support.issuer import FakeIssuer


@dataclass
class CitizenEnv(Env):
    http: str = ""
    now: list[datetime] = field(default_factory=lambda: [NOW])

    def advance(self, **delta: float) -> None:
        self.now[0] += timedelta(**delta)

    def lookup(self) -> Any:
        return dossiers_pb2_grpc.DossierLookupServiceStub(self.ch)

    async def accepted(self, **applicant: Any) -> pb.Dossier:
        clerk = self.dossiers("ts-vt")
        d = (await clerk.SubmitDossier(birth_registration(**applicant))).dossier
        return (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier

    async def returned(self) -> pb.Dossier:
        d = await self.accepted()
        clerk, leader = self.dossiers("ts-vt"), self.dossiers("ts-ld")
        d = (await leader.StartProcessing(pb.StartProcessingRequest(
            dossier_id=d.id, handler_user_id="ts-cv"))).dossier  # fmt: skip
        d = (await leader.CompleteProcessing(pb.CompleteProcessingRequest(
            dossier_id=d.id, result_number="123/XNHN"))).dossier  # fmt: skip
        return (await clerk.ReturnResult(pb.ReturnResultRequest(dossier_id=d.id))).dossier


async def start(tmp_path: Path, **settings: str) -> AsyncIterator[CitizenEnv]:
    issuer = FakeIssuer()
    await issuer.start()
    port = free_port()
    env = {
        "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
        "LGSP_DOSSIERS_HTTP_PORT": str(port),
        # Neither a gateway, a portal nor a payment platform here (their own tests).
        "LGSP_DOSSIERS_VERIFY_APPLICANTS": "false",
        "LGSP_DOSSIERS_PORTAL_SUBSCRIBE": "false",
        # Not the default ports, where `lgsp up` may be running the mocks.
        "LGSP_NATIONAL_PUBLIC_SERVICE_PORTAL_PORT": str(free_port()),
        "LGSP_NATIONAL_PAYMENT_PORT": str(free_port()),
        "LGSP_DOSSIERS_PAYMENT_RECONCILE_INTERVAL_S": "0",
        **{f"LGSP_DOSSIERS_{k.upper()}": v for k, v in settings.items()},
    }
    authn = JwtAuthenticator(issuer.issuer)
    now = [NOW]
    plugin = PLUGIN.with_options(agencies=AGENCIES, authenticator=authn, clock=lambda: now[0])
    runtime = ServiceRuntime(plugin, load_settings(env=env), port=0)
    await runtime.start()
    ch = channel(runtime.server.address, service_name="dossiers-test")
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield CitizenEnv(issuer, ch, runtime, http=base, now=now)
    finally:
        await ch.close()
        await runtime.stop(0)
        await authn.aclose()
        await issuer.stop()


def pdf_text(pdf: bytes) -> str:
    """The PDF's text as a reader extracts it, lines joined by spaces (the layout wraps)."""
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert unicodedata.is_normalized("NFC", text)
    return " ".join(text.split())
