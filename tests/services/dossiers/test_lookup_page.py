"""The public lookup page on the service's HTTP side: over plain HTTP (headers, CSRF, escaping,
hostile and oversized input, the limit per address, the same words for an unknown code and
wrong digits) and in a real browser (Playwright driving Debian's chromium: the QR's URL,
the answer, the rating)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures import missing_server
from tests.services.dossiers.citizen_env import CitizenEnv, start
from tests.services.dossiers.test_grpc import THANH_SEN

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    async for e in start(tmp_path, lookup_per_minute="6000", lookup_burst="100"):
        yield e


async def _form(client: httpx.AsyncClient, base: str, code: str = "") -> str:
    """GET the form (which sets the CSRF cookie) and return its token."""
    r = await client.get(f"{base}/tra-cuu", params={"ma": code} if code else None)
    assert r.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert match
    return match.group(1)


async def test_the_page_answers_status_and_appointment_and_nothing_personal(
    env: CitizenEnv,
) -> None:
    d = await env.accepted()
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{env.http}/tra-cuu", params={"ma": d.receipt_code})
        assert f'value="{d.receipt_code}"' in r.text  # prefilled from the QR's URL
        for header, value in (
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
        ):
            assert r.headers[header] == value
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "frame-ancestors 'none'" in csp
        token = await _form(client, env.http)
        r = await client.post(
            f"{env.http}/tra-cuu", data={"ma": d.receipt_code, "so": "1234", "csrf": token}
        )
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        for text in ("Đã tiếp nhận", "Hẹn trả kết quả", "17 giờ 00, ngày 07/05/2026"):
            assert text in r.text
        for personal in ("Nguyễn", "042195001234", "0912345678", "ts-vt"):
            assert personal not in r.text
        assert "Đánh giá" not in r.text  # not returned yet: no rating form


async def test_unknown_code_and_wrong_digits_get_the_same_page(env: CitizenEnv) -> None:
    d = await env.accepted()
    async with httpx.AsyncClient() as client:
        token = await _form(client, env.http)
        answers = [
            await client.post(f"{env.http}/tra-cuu", data={"ma": code, "so": digits, "csrf": token})
            for code, digits in ((d.receipt_code, "9999"), (f"{THANH_SEN}-260504-0077", "1234"))
        ]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[0].text == answers[1].text
        assert "Không tìm thấy hồ sơ" in answers[0].text


async def test_hostile_and_oversized_input_is_refused_and_escaped(env: CitizenEnv) -> None:
    script = "<script>alert(1)</script>"
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{env.http}/tra-cuu", params={"ma": script})
        assert r.status_code == 200
        assert script not in r.text and "&lt;script&gt;" in r.text
        token = await _form(client, env.http)
        r = await client.post(f"{env.http}/tra-cuu", data={"ma": script, "so": "1", "csrf": token})
        assert r.status_code == 400 and script not in r.text
        assert "không đúng định dạng" in r.text
        # No CSRF token, or another one: refused before anything is looked up.
        r = await client.post(f"{env.http}/tra-cuu", data={"ma": "x", "so": "1234"})
        assert r.status_code == 403 and "Phiên làm việc đã hết hạn" in r.text
        r = await client.post(f"{env.http}/tra-cuu", data={"ma": "x", "so": "1", "csrf": "forged"})
        assert r.status_code == 403
        r = await client.post(
            f"{env.http}/tra-cuu", data={"ma": "x" * 5000, "so": "1234", "csrf": token}
        )
        assert r.status_code == 413
        r = await client.post(f"{env.http}/tra-cuu", json={"ma": "x", "so": "1234", "csrf": token})
        assert r.status_code == 415
        r = await client.post(
            f"{env.http}/tra-cuu",
            content=b"ma=%ff%fe&so=1234&csrf=" + token.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code in (400, 404)  # undecodable bytes: refused, never a crash
        r = await client.post(
            f"{env.http}/tra-cuu/danh-gia",
            data={"ma": "x", "so": "1234", "diem": "<b>", "csrf": token},
        )
        assert r.status_code == 400


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    async for e in start(tmp_path, lookup_per_minute="1", lookup_burst="3"):
        yield e


async def test_too_many_requests_from_one_address_get_429(tight: CitizenEnv) -> None:
    async with httpx.AsyncClient() as client:
        statuses = [(await client.get(f"{tight.http}/tra-cuu")) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    refused = statuses[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "Quá nhiều yêu cầu" in refused.text
    assert refused.headers["cache-control"] == "no-store"


async def test_a_citizen_in_a_browser_follows_the_qr_and_rates(env: CitizenEnv) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        missing_server(f"{CHROMIUM} not installed (make setup installs it as root)")
    from playwright.async_api import async_playwright

    d = await env.returned()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{env.http}/tra-cuu?ma={d.receipt_code}")
            assert await page.input_value("#ma") == d.receipt_code
            await page.fill("#so", "5678")
            await page.click("button[type=submit]")
            await page.wait_for_selector("dl")
            body = await page.inner_text("main")
            assert "Đã trả kết quả" in body and "Hẹn trả kết quả" in body
            assert "Nguyễn" not in body
            await page.check("input[name=diem][value='3']")
            await page.click("form[action='/tra-cuu/danh-gia'] button")
            await page.wait_for_selector(".note")
            body = await page.inner_text("main")
            assert "Cảm ơn ông/bà đã đánh giá" in body and "Rất hài lòng" in body
            # Looked up again: rated, so no rating form any more.
            await page.goto(f"{env.http}/tra-cuu?ma={d.receipt_code}")
            await page.fill("#so", "5678")
            await page.click("button[type=submit]")
            await page.wait_for_selector("dl")
            assert await page.locator("input[name=diem]").count() == 0
            assert not errors, errors  # the CSP blocked nothing the page needs
        finally:
            await browser.close()
