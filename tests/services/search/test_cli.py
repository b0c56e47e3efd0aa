"""`lgsp search` and `lgsp search reindex` as a user runs them: separate processes against the
in-process documents + search services (same data directory and embedded bus)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from lgsp.api.search.v1 import search_pb2 as spb
from lgsp.config import load_settings
from services.search.cli import format_results, render
from tests.integration.test_search_service import draft, eventually, search_platform

LGSP = str(Path(sys.executable).parent / "lgsp")
ROOT = str(Path(__file__).resolve().parents[3])


async def _cli(tmp_path: Path, *args: str, token: str = "") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGSP_")}
    env["LGSP_PLATFORM_DATA_DIR"] = str(tmp_path)
    # This checkout's code, whichever checkout the virtualenv was installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, env.get("PYTHONPATH"))))
    if token:
        env["SEARCH_ACCESS_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        LGSP, "search", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_search_prints_a_readable_list_and_reindex_switches(tmp_path: Path) -> None:
    assert load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)}).bus.url.endswith(
        f"{tmp_path}/bus.db"
    )
    async with search_platform(tmp_path) as p:
        doc = await p.issue(draft(recipients=[]))
        await eventually(lambda: p.ids("ubnd-cv", "cai cach hanh chinh"))
        token = p.md("ubnd-cv")[0][1].removeprefix("Bearer ")
        search_address = f"--address={p.search_address}"
        code, out, err = await _cli(tmp_path, "cai cach hanh chinh", search_address, token=token)
        assert code == 0, err
        assert doc.number_notation in out and "1 văn bản" in out
        assert "Kế hoạch cải cách hành chính" in out and "\x1b[" not in out  # no colour in a pipe
        code, out, _ = await _cli(tmp_path, "cai cach", "--json", search_address, token=token)
        assert json.loads(out)["hits"][0]["id"] == doc.id
        # Another agency's token: nothing.
        other = p.md("snv-cv")[0][1].removeprefix("Bearer ")
        code, out, _ = await _cli(tmp_path, "cai cach", search_address, token=other)
        assert code == 0 and out.startswith("0 văn bản")
        # No token at all: a clear message, exit 2.
        code, _, err = await _cli(tmp_path, "cai cach", search_address)
        assert code == 2 and "SEARCH_ACCESS_TOKEN" in err

        old = p.serving.name
        code, out, err = await _cli(tmp_path, "reindex")
        assert code == 0, err
        assert "1 documents" in out and "reindex" in err  # tqdm draws on stderr
        await eventually(lambda: _serving_changed(p, old))
        assert await p.ids("ubnd-cv", "cai cach hanh chinh") == [doc.id]


async def _serving_changed(p: object, old: str | None) -> bool:
    return getattr(p, "serving").name != old  # noqa: B009


def test_format_results_renders_highlights_for_a_terminal() -> None:
    res = spb.SearchResponse(total_size=1, took_ms=3)
    hit = res.hits.add(id="d1", title="Về cải cách", reference="01/QĐ-UBND", agency_code="A")
    hit.fields["issued_date"] = "2026-01-02"
    hit.highlights.add(field="summary", fragments=["về <em>cải cách</em> &amp; số hóa"])
    plain = format_results(res)
    assert "01/QĐ-UBND · 2026-01-02 · A" in plain and "về cải cách & số hóa" in plain
    assert "\x1b[1;33mcải cách\x1b[0m" in render("<em>cải cách</em>", color=True)


def test_format_results_says_where_a_document_was_sent_and_received() -> None:
    res = spb.SearchResponse(total_size=2, took_ms=1)
    sent = res.hits.add(id="out", title="Về chuyển đổi số", reference="5/QĐ-UBND")
    sent.sent_to_agency_codes.extend(["STP", "SNV"])
    sent.copies.add(id="in-stp", agency_code="STP", direction="incoming", arrival_date="2026-03-03")
    received = res.hits.add(id="in-snv", title="Về chuyển đổi số", reference="5/QĐ-UBND")
    received.copies.add(id="out", agency_code="UBND", direction="outgoing")
    res.hits.add(id="d9", title="Một văn bản", reference="9/CV-X")  # no copies: no line
    lines = format_results(res).splitlines()
    assert "Gửi đến: STP, SNV · Bản đến tại: STP (2026-03-03)" in lines[3]
    assert "Bản gửi đi: UBND" in format_results(res)
    assert not any("Gửi" in line or "Bản" in line for line in lines[-3:])


def test_format_results_prints_facets_with_labels() -> None:
    res = spb.SearchResponse(total_size=3, took_ms=1)
    facet = res.facets.add(field="document_type_code")
    facet.values.add(value="QĐ", label="Quyết định", count=2)
    facet.values.add(value="XX", count=1)  # no label known: the code
    res.facets.add(field="year")  # nothing counted: not printed
    res.suggested_query = "truc tuyen"
    out = format_results(res)
    assert "Có phải bạn muốn tìm: truc tuyen?" in out
    assert "Loại văn bản: Quyết định (2), XX (1)" in out and "Năm" not in out


async def test_bad_limits_are_refused_not_clamped(tmp_path: Path) -> None:
    for bad in ("0", "-5", "101", "ten"):
        code, out, err = await _cli(tmp_path, "cai cach", f"--limit={bad}", token="t")
        assert code == 2 and "--limit" in err and out == "", (bad, err)
