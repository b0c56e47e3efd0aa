"""Each fault of a mock, seen through a connector: bounded, clear failures, no corruption."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lgsp.connectors import (
    BusinessRegistryClient,
    CircuitOpen,
    ClientOptions,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    PopulationClient,
    RetryPolicy,
    Unauthorized,
    Unavailable,
)
from lgsp.telemetry import setup_telemetry
from tests.national.mockproc import API_KEY, MockProcess

MINH = ("026093660531", "Nguyễn Đức Minh", "1993-08-07")
FAST = ClientOptions(
    deadline_s=2.0,
    attempt_timeout_s=1.0,
    retry=RetryPolicy(max_attempts=4, base_delay_s=0.02, max_delay_s=0.1),
    breaker_failures=3,
    breaker_window_s=30,
    breaker_open_s=0.5,
)


@pytest.fixture
async def client(population: MockProcess) -> AsyncIterator[PopulationClient]:
    async with PopulationClient(population.url, API_KEY, FAST) as c:
        yield c


async def test_latency_under_the_deadline_succeeds(
    client: PopulationClient, population: MockProcess
) -> None:
    population.faults(latency_ms=300)
    assert (await client.verify_citizen(*MINH)).match
    assert population.calls() == 1


async def test_latency_over_the_deadline_is_deadline_exceeded_in_bound(
    population: MockProcess,
) -> None:
    population.faults(latency_ms=1500)
    options = ClientOptions(deadline_s=0.8, attempt_timeout_s=0.8)
    async with PopulationClient(population.url, API_KEY, options) as c:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as err:
            await c.verify_citizen(*MINH)
        assert 0.75 <= time.monotonic() - started < 1.1
    assert err.value.system == "population" and err.value.retryable


async def test_errors_are_retried_within_budget(
    client: PopulationClient, population: MockProcess, caplog: pytest.LogCaptureFixture
) -> None:
    population.faults(fail_next=2)
    with caplog.at_level(logging.INFO):
        assert (await client.verify_citizen(*MINH)).match
    assert population.calls() == 3
    # A retry that succeeds is no news for an operator (and a poller during an outage would
    # repeat such lines at every pass): nothing at INFO or above.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("lgsp.connectors")] == []


async def test_random_error_rate_is_absorbed_by_retries(population: MockProcess) -> None:
    population.faults(error_rate=0.3, seed=4)
    options = ClientOptions(retry=RetryPolicy(6, 0.01, 0.05), breaker_failures=100)
    async with PopulationClient(population.url, API_KEY, options) as c:
        for _ in range(15):
            c.http.cache.clear()
            assert (await c.get_household(MINH[0])).household_id == "1500000001"
    assert population.calls() > 15  # some calls needed retries, every one succeeded


async def test_timeout_fault_ends_in_deadline_exceeded_within_the_bound(
    client: PopulationClient, population: MockProcess
) -> None:
    population.faults(timeout_rate=1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as err:
        await client.verify_citizen(*MINH)
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 2.4  # FAST.deadline_s, not the mock's 30 s hold
    assert err.value.attempts == 2  # two attempts of 1 s fit in the 2 s deadline


async def test_down_opens_the_circuit_then_half_open_recovers(
    client: PopulationClient, population: MockProcess
) -> None:
    population.faults(down=True)
    with pytest.raises(Unavailable) as err:
        await client.get_citizen(MINH[0])
    assert not isinstance(err.value, CircuitOpen) and err.value.status == 503
    assert population.calls() == 3  # breaker_failures=3 opened it mid-call
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(CircuitOpen):
            await client.get_citizen(MINH[0])
        assert time.monotonic() - started < 0.05
    assert population.calls() == 3  # fast failures never reached the mock
    breaker = client.http.breaker("GET", "/api/v1/citizens/{id}")
    assert breaker.state == "open"
    # Other endpoints have their own breaker.
    with pytest.raises(Unavailable):
        await client.verify_citizen(*MINH)
    assert population.calls() == 6

    population.faults()  # back up
    await asyncio.sleep(FAST.breaker_open_s + 0.05)
    assert (await client.get_citizen(MINH[0])).full_name == "Nguyễn Đức Minh"
    assert breaker.state == "closed"
    assert population.calls() == 7


async def test_failed_probe_reopens_the_circuit(
    client: PopulationClient, population: MockProcess
) -> None:
    population.faults(down=True)
    with pytest.raises(Unavailable):
        await client.get_citizen(MINH[0])
    await asyncio.sleep(FAST.breaker_open_s + 0.05)
    with pytest.raises(Unavailable):
        await client.get_citizen(MINH[0])  # the probe: one request, then refused again
    assert population.calls() == 4
    with pytest.raises(CircuitOpen):
        await client.get_citizen(MINH[0])


async def test_non_retryable_errors_are_not_retried(
    client: PopulationClient, population: MockProcess
) -> None:
    with pytest.raises(NotFound) as err:
        await client.get_citizen("026093660532")
    assert (err.value.code, err.value.message) == ("CITIZEN_NOT_FOUND", "Không tìm thấy công dân")
    with pytest.raises(InvalidRequest) as bad:
        await client.verify_citizen(MINH[0], MINH[1], "1993-13-45")
    assert bad.value.field == "birth_date"
    assert population.calls() == 2
    with pytest.raises(InvalidRequest) as local:
        await client.get_household("12345")  # refused before any call
    assert local.value.field == "id_number" and population.calls() == 2
    async with PopulationClient(population.url, "wrong", FAST) as wrong:
        with pytest.raises(Unauthorized):
            await wrong.get_citizen(MINH[0])
    assert population.calls() == 3


async def test_rate_limit_honours_retry_after_within_the_deadline(
    population: MockProcess,
) -> None:
    population.faults(rate_limit=1, rate_burst=1)
    async with PopulationClient(population.url, API_KEY, ClientOptions(deadline_s=3.0)) as c:
        await c.get_citizen(MINH[0])
        c.http.cache.clear()
        started = time.monotonic()
        await c.get_citizen(MINH[0])  # 429, Retry-After: 1, then success
        assert 0.95 <= time.monotonic() - started < 2.0
    async with PopulationClient(population.url, API_KEY, ClientOptions(deadline_s=0.5)) as c:
        with pytest.raises(Unavailable) as err:
            await c.get_household(MINH[0])
        assert err.value.status == 429 and err.value.retry_after == 1.0


async def test_cache_hit_avoids_a_call(client: PopulationClient, population: MockProcess) -> None:
    first = await client.verify_citizen(*MINH)
    second = await client.verify_citizen(*MINH)
    assert first == second and population.calls() == 1
    await client.verify_citizen(MINH[0], "Nguyễn Văn Khác", MINH[2])
    assert population.calls() == 2


async def test_enterprise_lookup_is_cached_and_validated(business_registry: MockProcess) -> None:
    async with BusinessRegistryClient(business_registry.url, API_KEY, FAST) as c:
        ent = await c.get_enterprise("5858229469")
        assert ent.name == "Công ty TNHH Thủy sản Hòa Phát" and not ent.is_branch
        assert (await c.get_enterprise("5858229469")) == ent
        branch = await c.get_enterprise("4799319980-001")
        assert branch.is_branch and branch.parent_tax_code == "4799319980"
        with pytest.raises(InvalidRequest):
            await c.get_enterprise("5858229468")  # wrong check digit: never sent
        with pytest.raises(NotFound):
            await c.get_enterprise("0100109106")
    assert business_registry.calls() == 3


async def test_each_attempt_is_a_client_span_with_traceparent(
    client: PopulationClient, population: MockProcess
) -> None:
    exporter = InMemorySpanExporter()
    setup_telemetry("lgsp-test", exporter=exporter)
    population.faults(fail_next=1)
    await client.get_citizen(MINH[0])
    spans = exporter.get_finished_spans()
    attempts = [s for s in spans if s.kind == SpanKind.CLIENT]
    [call] = [s for s in spans if s.name == "population.get_citizen"]
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 200]
    assert [a.attributes["http.request.resend_count"] for a in attempts] == [0, 1]
    assert all(a.parent is not None and a.parent.span_id == call.context.span_id for a in attempts)
    exporter.shutdown()
