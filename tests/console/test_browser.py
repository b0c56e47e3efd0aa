"""The console in a real browser (Playwright driving Debian's chromium) against a real identity
service with the demo province: an operator signs in on identity's login page, finds a trace
by a document number, opens its waterfall, and signs out; a clerk is turned away; hostile
span text is shown as text. Screenshots are kept under the test's tmp dir (screenshots/)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from opentelemetry.trace import Status, StatusCode

from lgsp.app import ServiceRuntime
from lgsp.config import Settings, load_settings
from lgsp.telemetry import DOCUMENT_NUMBER
from services.identity.plugin import PLUGIN
from services.identity.seed import officials, read_demo
from tests.console.support import provider_for, running_console
from tests.fixtures import free_port, missing_server

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@dataclass
class Env:
    settings: Settings
    console: str
    screenshots: Path

    def account(self, position: str) -> tuple[str, str]:
        """(username, password) of the province's demo official holding `position`."""
        username = next(o["username"] for o in officials() if o["position"] == position)
        return username, read_demo(self.settings.platform.data_dir).passwords[username]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    if not os.access(CHROMIUM, os.X_OK):
        missing_server(f"{CHROMIUM} not installed (make setup installs it as root)")
    data = tmp_path_factory.mktemp("platform")
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(data),
            "LGSP_CONSOLE_PORT": str(free_port()),
            "LGSP_IDENTITY_HTTP_PORT": str(free_port()),
            "LGSP_IDENTITY_ADMIN_PASSWORD": "Quan-Tri-Th3-Test!",
            "LGSP_IDENTITY_DEMO_SEED": "true",
            "LGSP_TELEMETRY_ENABLED": "false",
        }
    )
    identity = ServiceRuntime(PLUGIN, settings, port=0)
    await identity.start()
    try:
        issuer = f"http://127.0.0.1:{settings.identity.http_port}/realms/lgsp"
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    if (await client.get(f"{issuer}/.well-known/openid-configuration")).is_success:
                        break
                except httpx.TransportError:
                    pass
                import asyncio

                await asyncio.sleep(0.05)
        with running_console(settings) as base:
            yield Env(settings, base, tmp_path_factory.mktemp("screenshots"))
    finally:
        await identity.stop(grace=1)


def export_issue(env: Env, number: str) -> str:
    """A documents → search trace whose issuing span carries `number` and hostile text."""
    provider = provider_for(env.console, env.settings, "documents")
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("IssueDocument", attributes={DOCUMENT_NUMBER: number}) as s:
        with tracer.start_as_current_span(HOSTILE, attributes={"note": HOSTILE}) as child:
            child.set_status(Status(StatusCode.ERROR, HOSTILE))
        trace_id = format(s.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


async def _sign_in(page: object, env: Env, position: str, shots: str) -> None:
    username, password = env.account(position)
    await page.goto(f"{env.console}/traces")  # type: ignore[attr-defined]
    await page.wait_for_selector("#sign-in")  # type: ignore[attr-defined]
    await page.screenshot(path=env.screenshots / f"{shots}-1-console-login.png")  # type: ignore[attr-defined]
    await page.click("#sign-in")  # type: ignore[attr-defined]
    await page.wait_for_selector("#username")  # identity's own login page
    await page.screenshot(path=env.screenshots / f"{shots}-2-identity-login.png")  # type: ignore[attr-defined]
    await page.fill("#username", username)  # type: ignore[attr-defined]
    await page.fill("#password", password)  # type: ignore[attr-defined]
    await page.click("button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_load_state()  # type: ignore[attr-defined]


@pytest.mark.asyncio(loop_scope="module")
async def test_an_operator_finds_a_trace_by_document_number_and_opens_it(env: Env) -> None:
    from playwright.async_api import async_playwright

    trace_id = export_issue(env, "15/QĐ-UBND")
    export_issue(env, "16/QĐ-UBND")  # another document: must not be found
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: dialogs.append(d.message))
            await _sign_in(page, env, "Cán bộ vận hành", "operator")
            await page.wait_for_selector("form.search")
            assert page.url.startswith(f"{env.console}/traces")
            await page.fill("#key", "15/QĐ-UBND")
            await page.click("form.search button[type=submit]")
            await page.wait_for_selector("#results")
            await page.screenshot(path=env.screenshots / "operator-3-search.png", full_page=True)
            links = page.locator("#results a")
            assert await links.count() == 1
            await links.first.click()
            await page.wait_for_selector("#waterfall")
            assert page.url == f"{env.console}/traces/{trace_id}"
            await page.screenshot(path=env.screenshots / "operator-4-waterfall.png", full_page=True)
            assert await page.locator(".wf-row").count() == 2
            assert await page.locator(".wf-bar.error").count() == 1
            # The hostile span name is shown as text: no element, no script ran.
            text = await page.inner_text("#waterfall")
            assert HOSTILE in text
            assert await page.locator("#waterfall img, #waterfall script").count() == 0
            await page.click("header form.who button")
            await page.wait_for_selector("#sign-in")
            await page.goto(f"{env.console}/traces/{trace_id}")
            await page.wait_for_selector("#sign-in")  # signed out: back to the login page
            assert not dialogs, dialogs
        finally:
            await browser.close()
    shots = sorted(p.name for p in env.screenshots.iterdir())
    assert "operator-4-waterfall.png" in shots


@pytest.mark.asyncio(loop_scope="module")
async def test_a_clerk_is_turned_away(env: Env) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await _sign_in(page, env, "Văn thư", "clerk")
            await page.wait_for_selector("p.err")
            await page.screenshot(path=env.screenshots / "clerk-3-refused.png")
            assert "không có vai trò vận hành" in await page.inner_text("p.err")
            resp = await page.goto(f"{env.console}/traces")
            assert resp is not None and "/login" in page.url
        finally:
            await browser.close()
