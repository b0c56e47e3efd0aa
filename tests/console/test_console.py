"""The operator console: OTLP receiver, trace pages, health probes, /healthz."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.trace import Status, StatusCode

from console.app import create_app
from console.health import probe
from console.store import SpanRecord, SpanStore
from lgsp.config import Endpoint, Settings, load_settings
from tests.console.support import FakeOidc, otlp_headers, provider_for, running_console, sign_in
from tests.fixtures import free_port

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """A real console on a free loopback port (uvicorn on a thread), for the module."""
    data = tmp_path_factory.mktemp("console-data")
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(data),
            "LGSP_CONSOLE_PORT": str(free_port()),
            "LGSP_CONSOLE_MAX_OTLP_BYTES": "65536",
        }
    )
    with running_console(settings, oidc=FakeOidc(settings)) as base:
        yield base, settings


@pytest.fixture(scope="module")
def web(console: tuple[str, Settings]) -> Iterator[httpx.Client]:
    """A signed-in operator's client."""
    with httpx.Client(timeout=20) as client:
        sign_in(client, console[0])
        yield client


def export_trace(console: tuple[str, Settings], service: str, root_name: str) -> str:
    """Send one two-span trace with the real SDK exporter; returns its trace id (hex)."""
    provider = provider_for(*console, service)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(root_name, attributes={"note": '"><img src=x>'}) as root:
        with tracer.start_as_current_span("child-step") as child:
            child.set_status(Status(StatusCode.ERROR, "boom <b>"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def test_healthz(console: tuple[str, Settings]) -> None:
    base, _ = console
    resp = httpx.get(f"{base}/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_exported_trace_appears_in_list_and_waterfall(
    console: tuple[str, Settings], web: httpx.Client
) -> None:
    base, _ = console
    trace_id = export_trace(console, "documents", "IssueDocument")
    listing = web.get(f"{base}/traces").text
    assert f'href="/traces/{trace_id}"' in listing
    assert "IssueDocument" in listing and ">error<" in listing
    page = web.get(f"{base}/traces/{trace_id}")
    assert page.status_code == 200
    assert page.text.count('class="wf-row"') == 2
    assert "IssueDocument" in page.text and "child-step" in page.text
    assert "wf-bar error" in page.text  # the failed child is drawn as an error
    filtered = web.get(f"{base}/traces", params={"service": "nosuch"}).text
    assert trace_id not in filtered


def test_hostile_span_names_and_attributes_are_escaped(
    console: tuple[str, Settings], web: httpx.Client
) -> None:
    base, _ = console
    trace_id = export_trace(console, "<i>svc</i>", HOSTILE)
    for url in (f"{base}/traces", f"{base}/traces/{trace_id}"):
        text = web.get(url).text
        assert "<script>" not in text and "<img" not in text and "<i>svc" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert "&#34;&gt;&lt;img src=x&gt;" in web.get(f"{base}/traces/{trace_id}").text


def test_otlp_json_is_accepted(console: tuple[str, Settings], web: httpx.Client) -> None:
    base, _ = console
    trace_id = "5b8efff798038103d269b633813fc60c"
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "mail"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "DeliverMail",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    resp = httpx.post(f"{base}/v1/traces", json=body, headers=otlp_headers(console[1]))
    assert resp.status_code == 200, resp.text
    page = web.get(f"{base}/traces/{trace_id}").text
    assert "DeliverMail" in page and "250.0 ms" in page


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\xff\xff\xff garbage", {"content-type": "application/x-protobuf"}, 400),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b"x", {"content-type": "text/plain"}, 400),
        (b"\x00" * 70000, {"content-type": "application/x-protobuf"}, 413),
        (
            gzip.compress(b"\x00" * 200000),
            {"content-type": "application/x-protobuf", "content-encoding": "gzip"},
            413,
        ),
        (b"not gzip", {"content-type": "application/x-protobuf", "content-encoding": "gzip"}, 400),
    ],
)
def test_bad_or_oversized_bodies_are_refused_not_fatal(
    console: tuple[str, Settings], body: bytes, headers: dict[str, str], status: int
) -> None:
    base, settings = console
    headers = {**headers, **otlp_headers(settings)}
    assert httpx.post(f"{base}/v1/traces", content=body, headers=headers).status_code == status
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_oversized_chunked_body_without_length_is_refused(console: tuple[str, Settings]) -> None:
    base, _ = console

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"\x00" * 8192

    headers = {"content-type": "application/x-protobuf", **otlp_headers(console[1])}
    resp = httpx.post(f"{base}/v1/traces", content=chunks(), headers=headers)
    assert resp.status_code == 413


def test_unknown_trace_is_404(console: tuple[str, Settings], web: httpx.Client) -> None:
    base, _ = console
    assert web.get(f"{base}/traces/{'0' * 32}").status_code == 404
    assert web.get(f"{base}/traces/..%2Fetc").status_code == 404


def test_overview_shows_components_and_lag(
    console: tuple[str, Settings], web: httpx.Client
) -> None:
    base, _ = console
    page = web.get(f"{base}/", timeout=20)
    assert page.status_code == 200
    assert "operator console" in page.text and "this console" in page.text
    for name in ("gateway", "identity", "documents", "dossiers", "search"):
        assert f"<td>{name}</td>" in page.text
    assert "Event lag per consumer group" in page.text
    assert "Traceback" not in page.text


def test_overview_shows_a_crash_looping_component(
    console: tuple[str, Settings], web: httpx.Client
) -> None:
    """What `lgsp up` knows (its state file) is on the health table."""
    import json
    import os

    base, settings = console
    state = {
        "supervisor": os.getpid(),  # alive, as a running `lgsp up` would be
        "since": time.time(),
        "components": {
            "search": {
                "state": "crash-looping",
                "pid": None,
                "starts": 7,
                "quick_crashes_in_a_row": 7,
                "last_exit": "code 3",
                "next_start": time.time() + 30,
            }
        },
    }
    path = settings.data_dir / "lgsp-up.json"
    path.write_text(json.dumps(state))
    try:
        page = web.get(f"{base}/", timeout=20).text
    finally:
        path.unlink()
    assert "crash-looping, started 7 time(s), last exit code 3" in page
    assert "crash-looping" not in web.get(f"{base}/", timeout=20).text


async def test_grpc_probe_reports_up_and_not_running() -> None:
    port = free_port()
    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        up = await probe(Endpoint("documents", "grpc", "127.0.0.1", port))
        assert (up.state, up.detail) == ("up", "SERVING")
        await health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        degraded = await probe(Endpoint("documents", "grpc", "127.0.0.1", port))
        assert (degraded.state, degraded.detail) == ("degraded", "NOT_SERVING")
    finally:
        await server.stop(None)
    down = await probe(Endpoint("documents", "grpc", "127.0.0.1", free_port()))
    assert (down.state, down.detail) == ("down", "not running")


async def test_http_and_smtp_probes_report_not_running() -> None:
    for proto in ("http", "smtp"):
        result = await probe(Endpoint("x", proto, "127.0.0.1", free_port()))
        assert (result.state, result.detail) == ("down", "not running")


async def overview_page(settings: Settings) -> str:
    """The console's overview page, rendered by its app in process."""
    app = create_app(settings, oidc=FakeOidc(settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.console_url) as client:
        await client.get("/auth/start", follow_redirects=True)
        return (await client.get("/")).text


async def test_lag_of_the_embedded_bus_is_shown(tmp_path: Path) -> None:
    from lgsp.bus import open_bus
    from lgsp.bus.base import TopicPartition

    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    bus = open_bus(settings.bus.url)
    try:
        await bus.ensure_topic("documents.issued", 1)
        for i in range(3):
            await bus.publish("documents.issued", b"k", f"v{i}".encode())
        consumer = bus.consumer("search-indexer", ["documents.issued"])
        assert await consumer.poll(timeout=5, max_records=1)  # joins the group, gets partition 0
        await consumer.commit({TopicPartition("documents.issued", 0): 1})
        await consumer.close()
    finally:
        await bus.close()
    page = await overview_page(settings)
    row = '<td>search-indexer</td><td>documents.issued</td><td class="num err">2</td>'
    assert row in page
    assert re.search(r'<h2>Dead letters</h2>\s*<p class="muted">none waiting</p>', page)


async def test_dead_letters_waiting_are_shown_apart_from_the_lag(tmp_path: Path) -> None:
    from lgsp.bus import open_bus

    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    bus = open_bus(settings.bus.url)
    try:
        await bus.ensure_topic("lgsp.exchange.v1.dlq", 2)
        for i in range(3):
            await bus.publish("lgsp.exchange.v1.dlq", f"k{i}", b"v")
    finally:
        await bus.close()
    page = await overview_page(settings)
    assert '<tr><td>lgsp.exchange.v1.dlq</td><td class="num err">3</td></tr>' in page
    assert "lgsp dlq replay TOPIC" in page
    assert "lgsp-dlq-replay" not in page  # not listed as a consumer group's lag


def test_store_keeps_only_the_newest_spans(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "s.db", max_spans=100, max_age_s=3600)
    now = time.time_ns()

    def span(i: int) -> SpanRecord:
        return SpanRecord(
            f"{i:032x}", f"{i:016x}", "", f"op{i}", "svc", 1, now + i, now + i + 5, 0, "", {}, []
        )

    for batch in range(5):
        store.add(span(batch * 100 + i) for i in range(100))
    assert store.count_spans() == 100
    names = {t.root_name for t in store.recent_traces(limit=1000)}
    assert names == {f"op{i}" for i in range(400, 500)}
    # Too old: pruned by age.
    old = SpanRecord("f" * 32, "f" * 16, "", "ancient", "svc", 1, 1, 2, 0, "", {}, [])
    store.add([old])
    store.prune()
    assert "ancient" not in {t.root_name for t in store.recent_traces(limit=1000)}
    store.close()


def test_console_does_not_trace_itself() -> None:
    import subprocess
    import sys

    code = "import console.__main__, os; print(os.environ['OTEL_SDK_DISABLED'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert out.stdout.strip() == "true", out.stderr


def test_search_page_finds_by_business_key_and_names_bad_input(
    console: tuple[str, Settings], web: httpx.Client
) -> None:
    from lgsp.telemetry import DOCUMENT_NUMBER

    base, settings = console
    provider = provider_for(base, settings, "documents")
    with provider.get_tracer("t").start_as_current_span(
        "IssueDocument", attributes={DOCUMENT_NUMBER: "7/TB-UBND"}
    ) as s:
        trace_id = format(s.get_span_context().trace_id, "032x")
    provider.shutdown()
    found = web.get(f"{base}/traces", params={"key": "7/TB-UBND"})
    assert found.status_code == 200 and found.text.count('href="/traces/') == 1
    assert f'href="/traces/{trace_id}"' in found.text
    assert 'value="7/TB-UBND"' in found.text  # the form keeps what was asked
    other = web.get(f"{base}/traces", params={"key": "8/TB-UBND"})
    assert 'id="none"' in other.text
    bad = web.get(f"{base}/traces", params={"trace_id": "<b>x</b>", "min_ms": "1"})
    assert bad.status_code == 400 and "32 hexadecimal digits" in bad.text
    assert "<b>x</b>" not in bad.text


def test_service_map_page_draws_a_call_between_services(
    console: tuple[str, Settings], web: httpx.Client
) -> None:
    from opentelemetry import trace

    base, settings = console
    gateway = provider_for(base, settings, "gw-map")
    documents = provider_for(base, settings, "docs-map")
    with gateway.get_tracer("t").start_as_current_span("POST /x") as parent:
        ctx = trace.set_span_in_context(parent)
        with documents.get_tracer("t").start_as_current_span("GetDocument", context=ctx):
            pass
    gateway.shutdown()
    documents.shutdown()
    page = web.get(f"{base}/service-map", params={"hours": "1"})
    assert page.status_code == 200
    assert "<td>gw-map</td><td>docs-map</td>" in page.text.replace("\n", "")
    assert "<svg" in page.text and "gw-map → docs-map: 1 call(s)" in page.text


async def test_the_health_table_names_tls_endpoints_with_their_tls_schemes(tmp_path: Path) -> None:
    """Under [tls] every listener speaks TLS: the operator reads https:// and grpcs://, as
    `lgsp up` prints them, not the plain schemes a client could not connect with."""
    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_TLS_ENABLED": "true"}
    )
    page = await overview_page(settings)
    documents = settings.endpoints("documents")[0]
    identity_http = next(e for e in settings.endpoints("identity") if e.protocol == "http")
    assert f"<code>grpcs://{documents.address}</code>" in page
    assert f"<code>https://{identity_http.address}</code>" in page
    assert "<code>grpc://" not in page and "<code>http://" not in page
