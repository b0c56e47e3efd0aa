"""Finding traces: every search criterion, business keys, the service map, and retention by age
and count that never lets one stray span empty the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.app import query_from_params
from console.search import TraceQuery
from console.store import SpanRecord, SpanStore
from lgsp import telemetry

NOW = time.time_ns()
MS = 1_000_000


def span(
    trace: int,
    span_no: int,
    name: str,
    service: str,
    *,
    parent: int | None = None,
    start_ms: float = 0,
    dur_ms: float = 1,
    error: bool = False,
    attrs: dict[str, object] | None = None,
    at: int = NOW,
) -> SpanRecord:
    start = at + int(start_ms * MS)
    return SpanRecord(
        trace_id=f"{trace:032x}",
        span_id=f"{trace * 100 + span_no:016x}",
        parent_span_id="" if parent is None else f"{trace * 100 + parent:016x}",
        name=name,
        service=service,
        kind=2,
        start_ns=start,
        end_ns=start + int(dur_ms * MS),
        status_code=2 if error else 0,
        status_message="",
        attributes=attrs or {},
        events=[],
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SpanStore]:
    s = SpanStore(tmp_path / "t.db", max_spans=10_000, max_age_s=3600)
    # Trace 1: gateway → documents (issue, document 12/QĐ-UBND) → bus → search.
    s.add(
        [
            span(1, 0, "POST /documents", "gateway", dur_ms=40),
            span(
                1,
                1,
                "IssueDocument",
                "documents",
                parent=0,
                start_ms=2,
                dur_ms=30,
                attrs={
                    telemetry.DOCUMENT_NUMBER: "12/QĐ-UBND",
                    telemetry.DOCUMENT_NOTATION: "QĐ-UBND",
                    telemetry.AGENCY_CODE: "000.00.00.H27",
                },
            ),
            span(1, 2, "documents.issued process", "search", parent=1, start_ms=35, dur_ms=3),
        ]
    )
    # Trace 2: a failed dossier submission, later.
    s.add(
        [
            span(
                2,
                0,
                "SubmitDossier",
                "dossiers",
                start_ms=1000,
                dur_ms=500,
                error=True,
                attrs={telemetry.DOSSIER_RECEIPT_CODE: "000.00.61.H27-260504-0001"},
            )
        ]
    )
    # Trace 3: a quick read on documents, latest.
    s.add([span(3, 0, "GetDocument", "documents", start_ms=2000, dur_ms=2)])
    yield s
    s.close()


def ids(found: list) -> list[int]:
    return [int(t.trace_id, 16) for t in found]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TraceQuery(), [3, 2, 1]),
        (TraceQuery(service="documents"), [3, 1]),
        (TraceQuery(service="search"), [1]),
        (TraceQuery(operation="IssueDocument"), [1]),
        (TraceQuery(errors_only=True), [2]),
        (TraceQuery(min_duration_ns=100 * MS), [2]),  # whole traces
        (TraceQuery(service="documents", min_duration_ns=10 * MS), [1]),  # a matching span
        (TraceQuery(start_ns=NOW + 900 * MS, end_ns=NOW + 1900 * MS), [2]),
        (TraceQuery(trace_id=f"{2:032x}"), [2]),
        (TraceQuery(trace_id="f" * 32), []),
        (TraceQuery(key="12/QĐ-UBND"), [1]),
        (TraceQuery(key="QĐ-UBND"), [1]),
        (TraceQuery(key="000.00.61.H27-260504-0001"), [2]),
        (TraceQuery(key="000.00.00.H27", service="documents"), [1]),
        (TraceQuery(key="12/QĐ"), []),  # exact values, not prefixes
        (TraceQuery(service="nosuch"), []),
    ],
)
def test_search_by_each_criterion(store: SpanStore, query: TraceQuery, expected: list) -> None:
    assert ids(store.search(query)) == expected


def test_a_search_summary_is_the_whole_trace(store: SpanStore) -> None:
    (t,) = store.search(TraceQuery(key="12/QĐ-UBND"))
    assert (t.root_name, t.service, t.span_count) == ("POST /documents", "gateway", 3)
    assert t.services == ["documents", "gateway", "search"]


def test_the_form_is_parsed_and_bad_input_is_named() -> None:
    q, _ = query_from_params(
        {"service": " documents ", "status": "error", "min_ms": "2.5", "key": "12/QĐ-UBND"}
    )
    assert q == TraceQuery(
        service="documents", errors_only=True, min_duration_ns=2_500_000, key="12/QĐ-UBND"
    )
    q, _ = query_from_params({"from": "2026-05-04T08:00", "to": "2026-05-04T09:00:30"})
    assert q.end_ns is not None and q.start_ns is not None
    assert q.end_ns - q.start_ns == 3630 * 10**9
    for params, message in (
        ({"trace_id": "xyz"}, "32 hexadecimal"),
        ({"min_ms": "fast"}, "number of milliseconds"),
        ({"min_ms": "-1"}, "between 0"),
        ({"from": "yesterday"}, "from must be a date"),
    ):
        with pytest.raises(ValueError, match=message):
            query_from_params(params)


def test_service_map_draws_edges_across_services(store: SpanStore) -> None:
    nodes, edges = store.service_map(NOW - 10**9)
    assert nodes == {"gateway": 1, "documents": 2, "search": 1, "dossiers": 1}
    assert [(e.caller, e.callee, e.calls, e.errors) for e in edges] == [
        ("documents", "search", 1, 0),
        ("gateway", "documents", 1, 0),
    ]
    assert store.service_map(NOW + 10**12) == ({}, [])


def test_retention_by_age_keeps_young_spans_whatever_arrives(tmp_path: Path) -> None:
    s = SpanStore(tmp_path / "t.db", max_spans=1000, max_age_s=60)
    now = time.time_ns()  # not the module's NOW: a long run makes that older than 60 s
    s.add([span(i, 0, f"young{i}", "svc", at=now) for i in range(1, 6)])
    # A span from two hours ago arrives last (a late exporter, a skewed clock).
    s.add([span(99, 0, "stale", "svc", at=now - 7200 * 10**9, attrs={"lgsp.document.id": "d"})])
    s.prune()
    assert sorted(ids(s.search(TraceQuery()))) == [1, 2, 3, 4, 5]
    assert s.search(TraceQuery(key="d")) == []
    assert s.count_spans() == 5
    s.close()


def test_retention_by_count_drops_the_oldest_and_says_when_it_cuts_the_promise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = SpanStore(tmp_path / "t.db", max_spans=100, max_age_s=3600)
    with caplog.at_level(logging.WARNING, logger="console.store"):
        for batch in range(5):
            s.add(
                span(batch * 100 + i + 1, 0, "op", "svc", attrs={"lgsp.dossier.id": f"k{i}"})
                for i in range(100)
            )
        s.prune()
    assert s.count_spans() == 100
    assert sorted(ids(s.search(TraceQuery(), limit=1000))) == list(range(401, 501))
    assert ids(s.search(TraceQuery(key="k7"))) == [408]  # keys of dropped spans went too
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "retention_spans (100)" in warnings[0]
    s.close()


def test_tag_business_keys_puts_the_keys_on_the_current_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("IssueDocument"):
        telemetry.tag_business_keys(document_number="12/QĐ-UBND", receipt_code="")
    telemetry.tag_business_keys(document_number="outside a span: nothing happens")
    (finished,) = exporter.get_finished_spans()
    assert dict(finished.attributes or {}) == {"lgsp.document.number": "12/QĐ-UBND"}
