"""The online and postal channels and the status sync, against the real portal mock process
and the dossiers service on a real gRPC server (ServiceRuntime, embedded bus): the portal's
signed pushes, replayed and concurrent duplicates, forged and old signatures, a push the
rules refuse, the catch-up pull after the province was down, postal intake, the status sync
in order after the portal was down, and a permanent refusal dead-lettered."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from lgsp import db, events
from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.connectors.http import ClientOptions
from lgsp.connectors.portal_push import sign
from lgsp.connectors.resilience import RetryPolicy
from lgsp.grpc.client import channel
from services.dossiers.national_portal import PUSH_PATH, SYNC_GROUP
from services.dossiers.plugin import PLUGIN
from tests.integration.test_new_service import bad_request_fields
from tests.national.mockproc import API_KEY, MockProcess
from tests.services.dossiers.isolated import isolated_env
from tests.services.dossiers.test_grpc import AGENCIES, OFFICIALS, THANH_SEN, refused
from tests.support import free_port
from tests.support.issuer import FakeIssuer

SECRET = "a-shared-push-secret-of-the-test"
FAST = ClientOptions(deadline_s=2.0, retry=RetryPolicy(3, 0.02, 0.1), breaker_open_s=0.3)
APPLICANT = {
    "full_name": "Nguyễn Thị Hoa",
    "identity_number": "042195001234",
    "birth_date": "1995-03-01",
    "phone": "0912345678",
}
# Cấp Giấy xác nhận tình trạng hôn nhân: one mandatory paper, the declaration (TK).
PROCEDURE, PAPERS = "1.004873", [{"paper_code": "TK", "name": "Tờ khai", "originals": 1}]


@pytest.fixture
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProcess]:
    # One per test: each test's province starts its receipt numbers afresh.
    mock = MockProcess(
        # No seeded online dossiers: each test counts what it files.
        "public_service_portal",
        tmp_path_factory.mktemp("portal"),
        "--seed-dossiers",
        "0",
    ).start()
    yield mock
    mock.stop()


@dataclass
class Env:
    runtime: ServiceRuntime
    portal: MockProcess
    issuer: FakeIssuer
    ch: grpc.aio.Channel
    push_url: str

    def rows(self, query: str) -> list[Any]:
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(sa.text(query)))

    def count(self) -> int:
        return int(self.rows("select count(*) from dossiers")[0][0])

    def events(self, name: str) -> list[Any]:
        with self.runtime.engine.connect() as conn:
            rows = list(conn.execute(sa.select(db.outbox_table).order_by(db.outbox_table.c.id)))
        found = [events.payload_of(events.decode(r.value)) for r in rows]
        return [m for m in found if type(m).__name__ == name]

    def file_online(self, **change: Any) -> str:
        body = {
            "agency_code": THANH_SEN,
            "procedure_code": PROCEDURE,
            "applicant": APPLICANT,
            "papers": PAPERS,
            **change,
        }
        with self.portal.api() as api:
            reply = api.post("/api/v1/dossiers", json=body)
            assert reply.status_code == 201, reply.text
            return str(reply.json()["portal_code"])

    def at_portal(self, code: str) -> dict[str, Any]:
        with self.portal.api() as api:
            return dict(api.get(f"/api/v1/dossiers/{code}").json())

    async def push(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(
                self.push_url, content=body, headers={"Content-Type": "application/json", **headers}
            )

    def clerk(self, user: str = "ts-vt") -> Any:
        agency, roles = OFFICIALS[user]
        token = self.issuer.token(
            sub=user,
            agency_code=agency,
            agency_roles={agency: roles},
            realm_access={"roles": roles},
        )
        stub = dossiers_pb2_grpc.DossierServiceStub(self.ch)
        md = (("authorization", f"Bearer {token}"),)

        class Caller:
            def __getattr__(self, name: str) -> Any:
                return lambda req: getattr(stub, name)(req, metadata=md, timeout=20)

        return Caller()


async def eventually(check: Callable[[], Any], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


def desk_request() -> pb.SubmitDossierRequest:
    return pb.SubmitDossierRequest(
        procedure_code=PROCEDURE,
        agency_code=THANH_SEN,
        applicant=pb.Applicant(kind=pb.APPLICANT_KIND_CITIZEN, **APPLICANT),
        channel=pb.CHANNEL_COUNTER,
        papers=[pb.SubmittedPaper(paper_code="TK", name="Tờ khai", originals=1)],
    )


@pytest.fixture
async def start(
    tmp_path: Path, portal: MockProcess
) -> AsyncIterator[Callable[..., Awaitable[Env]]]:
    issuer = FakeIssuer()
    await issuer.start()
    authn = JwtAuthenticator(issuer.issuer)
    portal.reset()
    started: list[Env] = []

    async def launch(**settings: str) -> Env:
        http_port = free_port()
        env = {
            **isolated_env(tmp_path),
            "LGSP_DOSSIERS_PORTAL_SUBSCRIBE": "true",
            "LGSP_DOSSIERS_HTTP_PORT": str(http_port),
            "LGSP_NATIONAL_PUBLIC_SERVICE_PORTAL_PORT": str(portal.port),
            "LGSP_NATIONAL_API_KEY": API_KEY,
            "LGSP_DOSSIERS_PORTAL_PUSH_SECRET": SECRET,
            "LGSP_DOSSIERS_PORTAL_PROVINCE": "H27",
            "LGSP_DOSSIERS_PORTAL_POLL_SECONDS": "0.2",
            **settings,
        }
        plugin = PLUGIN.with_options(agencies=AGENCIES, authenticator=authn, portal_options=FAST)
        runtime = ServiceRuntime(plugin, load_settings(env=env), port=0)
        await runtime.start()
        ch = channel(runtime.server.address, service_name="dossiers-portal-test")
        url = f"http://127.0.0.1:{http_port}{PUSH_PATH}"

        def listening() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        await eventually(listening)
        started.append(Env(runtime, portal, issuer, ch, url))
        return started[-1]

    try:
        yield launch
    finally:
        for env in started:
            await env.ch.close()
            await env.runtime.stop(0)
        await authn.aclose()
        await issuer.stop()
        portal.reset()


async def test_an_online_dossier_is_pushed_taken_in_once_and_synced(start: Any) -> None:
    env = await start()
    code = env.file_online()
    receipt = await eventually(lambda: env.at_portal(code)["receipt_code"])
    assert receipt.startswith(f"{THANH_SEN}-")
    [row] = env.rows(f"select channel, receipt_code, receiver_user_id from dossiers "
                     f"where portal_code = '{code}'")  # fmt: skip
    assert tuple(row) == (pb.CHANNEL_ONLINE, receipt, "")

    # A replayed push (the same bytes and signature) and one signed anew: the same receipt.
    # (In a thread: the mock calls back into the service, which runs on this loop.)
    with env.portal.api() as api:
        for fresh in (False, True):
            again = await asyncio.to_thread(
                lambda f=fresh: api.post(f"/_pushes/{code}/replay", json={"fresh": f}).json()
            )
            assert again["status"] == 200, again
            assert again["body"]["receipt_code"] == receipt and again["body"]["duplicate"]
    # Concurrent duplicate pushes of a new dossier: one dossier, one receipt code.
    body = json.dumps(
        {"portal_code": "DVCQG-TEST-000001", "agency_code": THANH_SEN, "procedure_code": PROCEDURE,
         "applicant": APPLICANT, "papers": PAPERS}
    ).encode()  # fmt: skip
    answers = await asyncio.gather(*(env.push(body, sign(SECRET, body)) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["receipt_code"] for a in answers}) == 1
    assert env.count() == 2

    # The status sync tells the portal the first status, and marks the dossier.
    portal_view = await eventually(lambda: env.at_portal(receipt)["history"])
    assert [h["status"] for h in portal_view] == [1]
    await eventually(
        lambda: env.rows(f"select portal_synced from dossiers where receipt_code='{receipt}'")[0][0]
    )
    synced = [e for e in env.events("DossierPortalSynced") if e.receipt_code == receipt]
    assert synced and synced[0].portal_reference == code


async def test_forged_old_and_malformed_pushes_store_nothing(start: Any) -> None:
    env = await start(LGSP_DOSSIERS_PORTAL_SUBSCRIBE="false")
    good = {"portal_code": "DVCQG-TEST-000002", "agency_code": THANH_SEN,
            "procedure_code": PROCEDURE, "applicant": APPLICANT, "papers": PAPERS}  # fmt: skip
    body = json.dumps(good).encode()
    assert (await env.push(body, {})).status_code == 401
    assert (await env.push(body, sign("another-secret-of-the-forger", body))).status_code == 401
    tampered = body.replace(b"Hoa", b"Hoa2")
    assert (await env.push(tampered, sign(SECRET, body))).status_code == 401
    old = await env.push(body, sign(SECRET, body, now=time.time() - 600))
    assert old.status_code == 403 and old.json()["code"] == "STALE_PUSH"
    for change, field in (
        ({"applicant": {**APPLICANT, "full_name": 5}}, "applicant.full_name"),
        ({"papers": [{"paper_code": "TK", "originals": "1"}]}, "papers[0].originals"),
        ({"portal_code": ""}, "portal_code"),
    ):
        bad = json.dumps({**good, **change}).encode()
        reply = await env.push(bad, sign(SECRET, bad))
        assert reply.status_code == 400 and reply.json()["field"] == field, reply.text
    not_json = b"{not json"
    assert (await env.push(not_json, sign(SECRET, not_json))).json()["field"] == "body"
    huge = json.dumps({**good, "x": "a" * 300_000}).encode()
    assert (await env.push(huge, sign(SECRET, huge))).status_code == 413
    assert env.count() == 0 and env.rows("select count(*) from receipt_sequences")[0][0] == 0


async def test_a_push_the_rules_refuse_is_refused_at_the_portal(start: Any) -> None:
    env = await start()
    unknown = env.file_online(procedure_code="1.999999")
    no_papers = env.file_online(papers=[])
    for code, word in ((unknown, "danh mục"), (no_papers, "thiếu thành phần")):
        seen = await eventually(lambda c=code: env.at_portal(c)["status"] == 3 and env.at_portal(c))
        assert word in seen["history"][-1]["reason"], seen
        assert seen["receipt_code"] is None
    assert env.count() == 0
    with env.portal.api() as api:
        left = api.get("/api/v1/handover", params={"province_code": "H27"}).json()["dossiers"]
    assert not {unknown, no_papers} & {d["portal_code"] for d in left}


async def test_the_catch_up_pull_takes_what_the_push_missed(start: Any) -> None:
    # No push subscription: the province was down when the portal pushed.
    first = await start(
        LGSP_DOSSIERS_PORTAL_SUBSCRIBE="false", LGSP_DOSSIERS_PORTAL_POLL_SECONDS="3600"
    )
    await first.runtime.stop(0)
    await first.ch.close()
    code = None
    with first.portal.api() as api:
        reply = api.post("/api/v1/dossiers", json={
            "agency_code": THANH_SEN, "procedure_code": PROCEDURE, "applicant": APPLICANT,
            "papers": PAPERS})  # fmt: skip
        code = reply.json()["portal_code"]
    started = first.runtime.settings  # same data directory: the province comes back
    env = await start(LGSP_DOSSIERS_PORTAL_SUBSCRIBE="false")
    assert env.runtime.settings.data_dir == started.data_dir
    receipt = await eventually(lambda: env.at_portal(code)["receipt_code"])
    [row] = env.rows(f"select receipt_code, channel from dossiers where portal_code='{code}'")
    assert tuple(row) == (receipt, pb.CHANNEL_ONLINE)
    with env.portal.api() as api:
        pushes = api.get("/_pushes", params={"portal_code": code}).json()["pushes"]
    assert pushes and pushes[0]["state"] == "pending"  # never pushed: taken by the pull


async def test_postal_intake(start: Any) -> None:
    env = await start(LGSP_DOSSIERS_PORTAL_SUBSCRIBE="false")
    clerk = env.clerk()

    def postal(**fields: str) -> pb.SubmitDossierRequest:
        return pb.SubmitDossierRequest(
            procedure_code=PROCEDURE,
            agency_code=THANH_SEN,
            applicant=pb.Applicant(kind=pb.APPLICANT_KIND_CITIZEN, **APPLICANT),
            channel=pb.CHANNEL_POSTAL,
            papers=[pb.SubmittedPaper(paper_code="TK", name="Tờ khai", originals=1)],
            **fields,
        )

    req = postal(postal_tracking_number="eb 123456785 vn", postmark_date="2025-01-02")
    d = (await clerk.SubmitDossier(req)).dossier
    assert (d.channel, d.postal_tracking_number, d.postmark_date) == (
        pb.CHANNEL_POSTAL, "EB123456785VN", "2025-01-02")  # fmt: skip
    for req, field in (
        (postal(), "postal_tracking_number"),
        (postal(postal_tracking_number="EB123456789VN"), "postal_tracking_number"),
        (postal(postal_tracking_number="EB123456785VN", postmark_date="2999-01-01"),
         "postmark_date"),
    ):  # fmt: skip
        error = await refused(clerk.SubmitDossier(req), grpc.StatusCode.INVALID_ARGUMENT)
        assert bad_request_fields(error) == [field]
    desk = postal(postal_tracking_number="EB123456785VN")
    desk.channel = pb.CHANNEL_COUNTER
    error = await refused(clerk.SubmitDossier(desk), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_request_fields(error) == ["postal_tracking_number"]
    desk.channel = pb.CHANNEL_ONLINE
    error = await refused(clerk.SubmitDossier(desk), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_request_fields(error) == ["channel"]
    assert env.count() == 1


async def test_statuses_reach_the_portal_in_order_after_it_was_down(start: Any) -> None:
    env = await start(LGSP_DOSSIERS_PORTAL_SUBSCRIBE="false")
    clerk, leader = env.clerk(), env.clerk("ts-ld")
    env.portal.faults(down=True)
    submitted = (await clerk.SubmitDossier(desk_request())).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=submitted.id))).dossier
    d = (await leader.StartProcessing(
        pb.StartProcessingRequest(dossier_id=d.id, handler_user_id="ts-cv"))).dossier  # fmt: skip
    await asyncio.sleep(1.0)  # the desk went on; the portal saw nothing
    assert not d.portal_synced and env.events("DossierPortalSynced") == []
    env.portal.faults()
    # A desk dossier the portal did not know: created from its first status, then in order.
    history = await eventually(lambda: len(env.at_portal(d.receipt_code).get("history", [])) == 3
                               and env.at_portal(d.receipt_code)["history"])  # fmt: skip
    assert [h["status"] for h in history] == [1, 2, 4]
    assert env.at_portal(d.receipt_code)["portal_code"] is None
    await eventually(lambda: env.rows("select portal_synced from dossiers")[0][0])
    assert [e.status for e in env.events("DossierPortalSynced")] == [1, 2, 4]
    assert not any(e.duplicate for e in env.events("DossierPortalSynced"))
    # The etag a clerk holds stays good: the sync does not make a new version.
    got = (await clerk.GetDossier(pb.GetDossierRequest(id=d.id))).dossier
    assert got.etag == d.etag and got.portal_synced


async def test_a_permanent_refusal_is_dead_lettered_and_the_sync_goes_on(start: Any) -> None:
    env = await start(LGSP_DOSSIERS_PORTAL_SUBSCRIBE="false",
                      LGSP_DOSSIERS_PORTAL_POLL_SECONDS="3600")  # fmt: skip
    await asyncio.sleep(0.5)  # the one catch-up pull at start is done
    clerk = env.clerk()

    async def submit() -> pb.Dossier:
        return (await clerk.SubmitDossier(desk_request())).dossier

    env.portal.faults(fail_next=1, error_status=400)
    lost = await submit()
    processor = env.runtime.processors[SYNC_GROUP]
    await eventually(lambda: processor.counts["dead-lettered"] == 1)
    kept = await submit()
    history = await eventually(lambda: env.at_portal(kept.receipt_code).get("history"))
    assert [h["status"] for h in history] == [1]
    with env.portal.api() as api:
        assert api.get(f"/api/v1/dossiers/{lost.receipt_code}").status_code == 404
