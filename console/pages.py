"""What the pages show: view models for the Jinja2 templates (console/templates, autoescape
on). Span names, attributes and probe details come from outside and are never marked safe."""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from console.health import Probe
from console.search import Edge
from console.store import SpanRecord
from lgsp.bus.base import is_dlq_topic

KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def e(value: object) -> str:
    """HTML-escape anything (quotes included: values also land in attributes)."""
    return html.escape(str(value), quote=True)


def fmt_duration(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


def fmt_time(ns: int) -> str:
    secs = ns / 1e9
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs)) + f".{int(ns % 1e9 / 1e6):03d}"


def overview(
    rows: Sequence[tuple[str, str, str, list[Probe]]],
    lag: dict[tuple[str, str, int], int] | str,
    span_count: int,
    settings_summary: dict[str, str],
    schemes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The overview's context for templates/overview.html. rows: (component, description,
    installed note, probes); lag: records behind per (group, topic, partition), or why it could
    not be read; schemes: how a protocol is written (lgsp.tls.TLS_SCHEMES under TLS).
    Dead-letter topics are shown apart: their lag is what waits for a replay."""
    schemes = schemes or {}
    health = []
    for name, what, note, probes in rows:
        shown = [
            {
                "label": f"{schemes.get(p.endpoint.protocol, p.endpoint.protocol)}://"
                f"{p.endpoint.address}",
                "state": p.detail if p.state != "up" else f"up ({p.detail})",
                "css": p.state if p.state in {"up", "down", "degraded"} else "unknown",
            }
            for p in probes
        ]
        health.append({"name": name, "what": what, "note": note, "probes": shown})
    context: dict[str, Any] = {
        "title": "Overview",
        "refresh": 10,
        "health": health,
        "dead_letters": None,
        "lag": [],
        "lag_error": lag if isinstance(lag, str) else "",
        "platform": settings_summary,
        "span_count": span_count,
    }
    if isinstance(lag, str):
        return context
    waiting: dict[str, int] = {}
    totals: dict[tuple[str, str], int] = {}
    parts: dict[tuple[str, str], list[str]] = {}
    for (group, topic, partition), behind in sorted(lag.items()):
        if is_dlq_topic(topic):
            waiting[topic] = waiting.get(topic, 0) + behind
            continue
        totals[(group, topic)] = totals.get((group, topic), 0) + behind
        parts.setdefault((group, topic), []).append(f"{partition}: {behind}")
    context["dead_letters"] = [(t, n) for t, n in sorted(waiting.items()) if n]
    context["lag"] = [
        {"group": g, "topic": t, "total": n, "parts": ", ".join(parts[(g, t)])}
        for (g, t), n in sorted(totals.items())
    ]
    return context


def tree_order(spans: Sequence[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """(depth, span) in depth-first order; spans whose parent is missing become roots."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    for s in spans:
        if s.parent_span_id and s.parent_span_id in ids and s.parent_span_id != s.span_id:
            children.setdefault(s.parent_span_id, []).append(s)
        else:
            roots.append(s)
    out: list[tuple[int, SpanRecord]] = []
    seen: set[str] = set()
    stack = [(0, s) for s in sorted(roots, key=lambda s: s.start_ns, reverse=True)]
    while stack:
        depth, span = stack.pop()
        if span.span_id in seen:  # duplicate ids or cycles from a broken exporter
            continue
        seen.add(span.span_id)
        out.append((depth, span))
        kids = sorted(children.get(span.span_id, []), key=lambda s: s.start_ns, reverse=True)
        stack.extend((depth + 1, k) for k in kids)
    # Anything unreachable (a parent cycle) is still shown.
    out.extend((0, s) for s in spans if s.span_id not in seen)
    return out


def waterfall_rows(spans: Sequence[SpanRecord]) -> dict[str, Any]:
    """What templates/trace.html draws: each span's depth, bar position (percent of the
    trace) and details, in depth-first order."""
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    total = max(end - start, 1)
    rows = []
    for depth, s in tree_order(spans):
        left = (s.start_ns - start) / total * 100
        width = s.duration_ns / total * 100
        kind = KINDS.get(s.kind, "")
        details = {
            "span_id": s.span_id,
            "parent_span_id": s.parent_span_id or None,
            "kind": kind or s.kind,
            "status": {0: "unset", 1: "ok", 2: "error"}.get(s.status_code, s.status_code),
            "status_message": s.status_message or None,
            "attributes": s.attributes,
            "events": s.events or None,
        }
        shown = {k: v for k, v in details.items() if v is not None}
        rows.append(
            {
                "depth": depth,
                "span": s,
                "kind": kind,
                "left": left,
                "width": width,
                "label_left": min(left + width, 85.0),
                "details": _pretty(shown),
            }
        )
    return {
        "rows": rows,
        "start_ns": start,
        "total_ns": end - start,
        "errors": sum(1 for s in spans if s.status_code == 2),
        "services": sorted({s.service for s in spans}),
    }


def map_layout(nodes: dict[str, int], edges: Sequence[Edge], size: int = 640) -> dict[str, Any]:
    """Services on a circle, edges as arrows between them (templates/service_map.html)."""
    names = sorted(nodes)
    radius, centre = size / 2 - 60, size / 2
    at: dict[str, tuple[float, float]] = {}
    for i, name in enumerate(names):
        angle = 2 * math.pi * i / max(len(names), 1) - math.pi / 2
        at[name] = (centre + radius * math.cos(angle), centre + radius * math.sin(angle))
    lines = []
    for edge in edges:
        (x1, y1), (x2, y2) = at[edge.caller], at[edge.callee]
        # Stop short of the callee's circle so the arrowhead shows.
        dx, dy = x2 - x1, y2 - y1
        length = max(math.hypot(dx, dy), 1.0)
        x2, y2 = x2 - dx / length * 10, y2 - dy / length * 10
        lines.append(
            {"edge": edge, "x1": round(x1), "y1": round(y1), "x2": round(x2), "y2": round(y2)}
        )
    points = [{"name": n, "x": round(at[n][0]), "y": round(at[n][1])} for n in names]
    return {"nodes": points, "edges": lines, "size": size}


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
