"""Applicants verified at the national databases through the gateway, with real parts: the
population and business registry mocks as processes, the gateway's national API (rights,
limits, message log), the dossiers service wired from settings (its own client-credentials
token at the gateway). A refusal or an unreachable national system stores nothing and spends
no receipt number."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.api.national.v1 import national_pb2 as npb
from lgsp.api.national.v1 import national_pb2_grpc as npbg
from lgsp.national_api import bad_field
from tests.services.dossiers.national_chain import (
    Chain,
    Person,
    citizens,
    enterprises,
    start_chain,
    submission,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

VERIFY = "/lgsp.api.national.v1.PopulationService/VerifyCitizen"
GET_ENTERPRISE = "/lgsp.api.national.v1.BusinessRegistryService/GetEnterprise"
PEOPLE = citizens(12)
TIMEOUT_S = 1.0  # [dossiers] verify_timeout_s here: the slow-mock test waits that long


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chain]:
    c = await start_chain(tmp_path_factory.mktemp("chain"), verify_timeout_s=TIMEOUT_S)
    # The demo seed's one-stop desk system (000.00.61.H27:motcua-thanhsen) is a member with
    # no right on the national API.
    try:
        yield c
    finally:
        await c.aclose()


@pytest.fixture(autouse=True)
def _clean(chain: Chain) -> None:
    chain.population.reset()
    chain.business_registry.reset()


def desk(chain: Chain) -> Any:
    stub = dossiers_pb2_grpc.DossierServiceStub(chain.dossiers_ch)

    async def submit(request: pb.SubmitDossierRequest) -> pb.Dossier:
        answer = await stub.SubmitDossier(request, metadata=chain.clerk(), timeout=20)
        return answer.dossier

    return submit


async def refused(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == code, e.value.details()
    return e.value


async def test_a_matching_citizen_is_taken_in(chain: Chain) -> None:
    d = await desk(chain)(submission(PEOPLE[0]))
    assert d.status == pb.DOSSIER_STATUS_SUBMITTED and d.receipt_code
    assert chain.population.calls() == 1
    entries = [e for e in await chain.log_entries() if e["method"] == VERIFY]
    assert entries[-1]["client_member"] == "000.00.00.H27:dossiers"
    assert entries[-1]["service_member"] == "national:population"
    assert entries[-1]["status_code"] == 0 and entries[-1]["response_size"] > 0


async def test_mismatches_and_unknown_numbers_are_refused_naming_the_field(chain: Chain) -> None:
    submit, p = desk(chain), PEOPLE[1]
    before = chain.count("dossiers")
    other_day = p.birth_date.replace(day=28 if p.birth_date.day != 28 else 27)
    unknown = p.id_number[:-1] + ("0" if p.id_number[-1] != "0" else "1")
    for request, field in [
        (submission(p, full_name=p.full_name + " An"), "applicant.full_name"),
        (submission(p, birth_date=other_day.isoformat()), "applicant.birth_date"),
        (submission(Person(unknown, p.full_name, p.birth_date)), "applicant.identity_number"),
        (submission(p, birth_date=""), "applicant.birth_date"),  # required to verify
    ]:
        e = await refused(submit(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert bad_field(e) == field, e.details()
    e = await refused(
        submit(submission(Person(unknown, p.full_name, p.birth_date))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "unknown at the national population database" in (e.details() or "")
    assert chain.count("dossiers") == before
    d = await submit(submission(p))  # the next number is the next one: none was spent
    assert d.receipt_code.endswith(f"-{before + 1:04d}")


async def test_a_malformed_number_is_refused_before_any_national_call(chain: Chain) -> None:
    submit, p = desk(chain), PEOPLE[2]
    for bad in ("12345", "003093660531", "02609366053x"):
        e = await refused(
            submit(submission(Person(bad, p.full_name, p.birth_date))),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert bad_field(e) == "applicant.identity_number"
    # Straight at the gateway: its connector refuses the form before sending.
    stub = npbg.PopulationServiceStub(chain.gateway_ch)
    pin, good, long = p.id_number, "1990-01-01", "x" * 201
    for request, field in [
        (npb.VerifyCitizenRequest(id_number="12345", full_name="A", birth_date=good), "id_number"),
        (npb.VerifyCitizenRequest(id_number=pin, full_name="A", birth_date="1/1/90"), "birth_date"),
        (npb.VerifyCitizenRequest(id_number=pin, full_name=long, birth_date=good), "full_name"),
    ]:
        e = await refused(
            stub.VerifyCitizen(request, metadata=chain.member("dossiers")),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert bad_field(e) == field
    assert chain.population.calls() == 0


async def test_the_gateway_refuses_members_without_the_right_and_logs_it(chain: Chain) -> None:
    stub = npbg.PopulationServiceStub(chain.gateway_ch)
    p = PEOPLE[3]
    request = npb.VerifyCitizenRequest(
        id_number=p.id_number, full_name=p.full_name, birth_date=p.birth_date.isoformat()
    )
    e = await refused(
        stub.VerifyCitizen(request, metadata=chain.member("motcua-thanhsen")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "may not call" in (e.details() or "")
    await refused(
        stub.VerifyCitizen(request, metadata=chain.member("not-a-member")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(stub.VerifyCitizen(request), grpc.StatusCode.UNAUTHENTICATED)
    assert chain.population.calls() == 0
    entries = [e for e in await chain.log_entries() if e["method"] == VERIFY]
    refusals = [(e["client_member"], e["status_code"]) for e in entries[-3:]]
    assert refusals == [
        ("000.00.61.H27:motcua-thanhsen", grpc.StatusCode.PERMISSION_DENIED.value[0]),
        ("", grpc.StatusCode.PERMISSION_DENIED.value[0]),
        ("", grpc.StatusCode.UNAUTHENTICATED.value[0]),
    ]
    # The member with the right: the answer says only whether each value matches.
    ok = await stub.VerifyCitizen(request, metadata=chain.member("dossiers"))
    assert (ok.match, ok.full_name_matches, ok.birth_date_matches) == (True, True, True)
    wrong = await stub.VerifyCitizen(
        npb.VerifyCitizenRequest(
            id_number=p.id_number, full_name="Nguyen Van A", birth_date=p.birth_date.isoformat()
        ),
        metadata=chain.member("dossiers"),
    )
    assert (wrong.match, wrong.full_name_matches, wrong.birth_date_matches) == (False, False, True)
    assert p.full_name not in str(wrong)


async def test_enterprises_by_tax_code(chain: Chain) -> None:
    submit = desk(chain)
    registry = enterprises()
    active = next(
        e for e in registry.values() if e.status == "Đang hoạt động" and not e.parent_tax_code
    )
    dissolved = next(e for e in registry.values() if e.status == "Đã giải thể")
    rep = active.representative

    def org(e: Any, filer: Any = None, **kw: Any) -> pb.SubmitDossierRequest:
        filer = filer or rep
        fields = {
            "kind": pb.APPLICANT_KIND_ORGANIZATION,
            "organization_name": e.name,
            "organization_code": e.tax_code,
            **kw,
        }
        return submission(Person(filer.id_number, filer.full_name, filer.birth_date), **fields)

    d = await submit(org(active))
    assert d.applicant.organization_code == active.tax_code
    e = await refused(submit(org(dissolved)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "Đã giải thể" in (e.details() or "")
    e = await refused(
        submit(org(active, organization_code="0100109106")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert bad_field(e) == "applicant.organization_code"
    assert "unknown at the national business registry" in (e.details() or "")
    # The person filing for the enterprise is verified too.
    e = await refused(submit(org(active, full_name="Người Khác")), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_field(e) == "applicant.full_name"
    stub = npbg.BusinessRegistryServiceStub(chain.gateway_ch)
    got = await stub.GetEnterprise(
        npb.GetEnterpriseRequest(tax_code=active.tax_code), metadata=chain.member("dossiers")
    )
    assert got.enterprise.name == active.name and got.enterprise.active
    assert got.enterprise.representative_id_number == rep.id_number
    await refused(
        stub.GetEnterprise(
            npb.GetEnterpriseRequest(tax_code="0100109106"), metadata=chain.member("dossiers")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert [e["method"] for e in await chain.log_entries()].count(GET_ENTERPRISE) >= 5


async def test_population_down_stores_nothing_and_spends_no_number(chain: Chain) -> None:
    submit, p = desk(chain), PEOPLE[4]  # never verified before: not in the gateway's cache
    before, events = chain.count("dossiers"), chain.count("outbox")
    chain.population.faults(down=True)
    started = time.monotonic()
    e = await refused(submit(submission(p)), grpc.StatusCode.UNAVAILABLE)
    assert time.monotonic() - started < TIMEOUT_S + 1.0
    assert "nothing was stored" in (e.details() or "")
    assert chain.population.calls() >= 1
    assert chain.count("dossiers") == before and chain.count("outbox") == events
    entries = [e for e in await chain.log_entries() if e["method"] == VERIFY]
    assert entries[-1]["status_code"] in (
        grpc.StatusCode.UNAVAILABLE.value[0],
        grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
    )
    chain.population.faults()
    chain.population.reset()
    await _until_breaker_closes(chain, p)
    d = await submit(submission(p))
    assert d.receipt_code.endswith(f"-{before + 1:04d}")


async def test_a_slow_population_database_answers_within_the_deadline(chain: Chain) -> None:
    submit, p = desk(chain), PEOPLE[5]
    before = chain.count("dossiers")
    chain.population.faults(latency_ms=3000)
    # At the gateway: its connector gives up just before the caller's deadline and says so.
    stub = npbg.PopulationServiceStub(chain.gateway_ch)
    request = npb.VerifyCitizenRequest(
        id_number=p.id_number, full_name=p.full_name, birth_date=p.birth_date.isoformat()
    )
    started = time.monotonic()
    e = await refused(
        stub.VerifyCitizen(request, metadata=chain.member("dossiers"), timeout=0.5),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    assert "too slow" in (e.details() or "") and time.monotonic() - started < 0.9
    # At the desk: UNAVAILABLE (retry) within verify_timeout_s, nothing stored.
    started = time.monotonic()
    e = await refused(submit(submission(p)), grpc.StatusCode.UNAVAILABLE)
    took = time.monotonic() - started
    assert took < TIMEOUT_S + 0.5, took
    # Too slow, or (the failures of this module counted by the connector's breaker within its
    # window) the circuit opened: either way the desk is told at once to retry.
    details = e.details() or ""
    assert "DEADLINE_EXCEEDED" in details or "circuit open" in details, details
    assert chain.count("dossiers") == before


async def _until_breaker_closes(chain: Chain, p: Person) -> None:
    """The failures above may have opened the connector's circuit (it half-opens after
    breaker_open_s): wait until a call goes through again."""
    stub = npbg.PopulationServiceStub(chain.gateway_ch)
    request = npb.VerifyCitizenRequest(
        id_number=p.id_number, full_name=p.full_name, birth_date=p.birth_date.isoformat()
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            await stub.VerifyCitizen(request, metadata=chain.member("dossiers"))
            return
        except grpc.aio.AioRpcError as e:
            if e.code() is not grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
