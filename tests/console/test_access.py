"""Who may use the console: a session for every page and API (sign-in, CSRF, logout), and the
installation's token for the OTLP receiver — all through real HTTP clients on a real port."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from console.auth import SESSION_COOKIE
from lgsp.config import Settings, load_settings
from lgsp.otlp_token import FILE_NAME, HEADER
from tests.console.support import FakeOidc, csrf_of, otlp_headers, running_console, sign_in
from tests.fixtures import free_port


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, FakeOidc]]:
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path_factory.mktemp("console")),
            "LGSP_CONSOLE_PORT": str(free_port()),
        }
    )
    oidc = FakeOidc(settings)
    with running_console(settings, oidc=oidc) as base:
        yield base, settings, oidc


PAGES = ["/", "/traces", f"/traces/{'a' * 32}", "/service-map", "/traces?key=1"]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_without_a_session(env: tuple[str, Settings, FakeOidc], path: str) -> None:
    base, _, _ = env
    page = httpx.get(base + path, headers={"accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=%2F")
    api = httpx.get(base + path, headers={"accept": "application/json"})
    assert api.status_code == 401 and api.json() == {"error": "sign in first"}
    forged = httpx.get(base + path, cookies={SESSION_COOKIE: "made-up.0123"})
    assert forged.status_code == 401


def test_health_and_login_need_no_session(env: tuple[str, Settings, FakeOidc]) -> None:
    base, _, _ = env
    assert httpx.get(f"{base}/healthz").status_code == 200
    login = httpx.get(f"{base}/login")
    assert login.status_code == 200 and "Đăng nhập qua hệ thống định danh" in login.text
    assert login.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]


def test_sign_in_sets_a_signed_httponly_samesite_cookie_and_returns_to_the_page(
    env: tuple[str, Settings, FakeOidc],
) -> None:
    base, _, _ = env
    with httpx.Client() as client:
        start = client.get(f"{base}/auth/start", params={"next": "/traces?service=documents"})
        assert start.status_code == 303
        assert "httponly" in start.headers["set-cookie"].lower()
        back = client.get(start.headers["location"])
        assert back.status_code == 303 and back.headers["location"] == "/traces?service=documents"
        cookie = next(
            h for h in back.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        )
        flags = cookie.lower()
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
        page = client.get(base + back.headers["location"])
        assert page.status_code == 200 and "Cán bộ vận hành" in page.text
        # The signature is checked: one character changed and the session is gone.
        value = client.cookies[SESSION_COOKIE]
        tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
        r = httpx.get(f"{base}/traces", cookies={SESSION_COOKIE: tampered})
        assert r.status_code == 401


def test_a_callback_from_another_browser_or_replayed_is_refused(
    env: tuple[str, Settings, FakeOidc],
) -> None:
    base, _, _ = env
    with httpx.Client() as victim, httpx.Client() as attacker:
        start = attacker.get(f"{base}/auth/start")
        # Login CSRF: the attacker's callback URL opened in the victim's browser.
        r = victim.get(start.headers["location"])
        assert r.status_code == 400 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
        # The state was spent by that attempt: the attacker cannot use it either.
        r = attacker.get(start.headers["location"])
        assert r.status_code == 400
        r = attacker.get(f"{base}/auth/callback", params={"code": "good", "state": "guess"})
        assert r.status_code == 400
        assert "Đăng nhập không thành công" in r.text


def test_next_cannot_redirect_off_the_console(env: tuple[str, Settings, FakeOidc]) -> None:
    base, _, _ = env
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        with httpx.Client() as client:
            start = client.get(f"{base}/auth/start", params={"next": target})
            back = client.get(start.headers["location"])
            assert back.headers["location"] == "/"


def test_an_account_without_the_operator_role_is_refused(
    env: tuple[str, Settings, FakeOidc],
) -> None:
    base, _, oidc = env
    oidc.roles = frozenset({"clerk"})
    try:
        with httpx.Client(follow_redirects=True) as client:
            r = client.get(f"{base}/auth/start")
            assert r.status_code == 403
            assert "không có vai trò vận hành" in r.text
            assert SESSION_COOKIE not in client.cookies
            assert client.get(f"{base}/traces").status_code == 401
        assert oidc.logged_out[-1] == "refresh-1"  # identity's session is ended too
    finally:
        oidc.roles = frozenset({"operator"})


def test_post_needs_the_csrf_token_and_logout_ends_the_session(
    env: tuple[str, Settings, FakeOidc],
) -> None:
    base, _, oidc = env
    with httpx.Client() as client:
        token = sign_in(client, base)
        assert client.post(f"{base}/logout").status_code == 403
        assert client.post(f"{base}/logout", data={"csrf_token": "forged"}).status_code == 403
        assert client.post(f"{base}/logout", data={"csrf_token": "x" * 70000}).status_code == 413
        assert client.get(f"{base}/traces").status_code == 200  # still signed in
        before = len(oidc.logged_out)
        r = client.post(f"{base}/logout", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert len(oidc.logged_out) == before + 1
        assert client.get(f"{base}/traces").status_code == 401
    with httpx.Client() as other:
        sign_in(other, base)
        assert other.post(f"{base}/logout", headers={"x-csrf-token": token}).status_code == 403
        good = csrf_of(other, base)
        assert other.post(f"{base}/logout", headers={"x-csrf-token": good}).status_code == 303


def _exporter(base: str, headers: dict[str, str] | None) -> tuple[TracerProvider, list[int]]:
    """A real SDK exporter; the list collects the HTTP statuses the console answered."""
    statuses: list[int] = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, **_: statuses.append(r.status_code))
    exporter = OTLPSpanExporter(
        endpoint=f"{base}/v1/traces", timeout=5, headers=headers, session=session
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "intruder"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, statuses


def test_otlp_needs_the_installation_token(
    env: tuple[str, Settings, FakeOidc], caplog: pytest.LogCaptureFixture
) -> None:
    base, settings, _ = env
    path = Path(settings.platform.data_dir) / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for headers, status in ((None, 401), ({HEADER: "0" * 64}, 401), (otlp_headers(settings), 200)):
        provider, statuses = _exporter(base, headers)
        with provider.get_tracer("t").start_as_current_span("probe"):
            pass
        provider.shutdown()
        assert statuses and statuses[0] == status
    r = httpx.post(f"{base}/v1/traces", content=b"\x00" * 10)
    assert r.status_code == 401 and HEADER in r.text
    refusals = [m for m in caplog.messages if m.startswith("refused spans from 127.0.0.1")]
    assert len(refusals) == 1  # three refusals, one line


def test_processes_are_given_the_token_only_for_the_console(tmp_path: Path) -> None:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    env = settings.process_env("documents")
    token = (tmp_path / FILE_NAME).read_text().strip()
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == f"{HEADER}={token}"
    assert (
        settings.process_env("documents")["OTEL_EXPORTER_OTLP_HEADERS"]
        == env["OTEL_EXPORTER_OTLP_HEADERS"]
    )  # the same token on every start
    elsewhere = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_TELEMETRY_OTLP_ENDPOINT": "http://collector.example:4318",
        }
    )
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in elsewhere.process_env("documents")


def test_the_sdk_exporter_sends_the_token_from_the_process_environment(
    env: tuple[str, Settings, FakeOidc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a process started by `lgsp up` does: Settings.process_env's OTEL_* variables only."""
    base, settings, _ = env
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_HEADERS",
        settings.process_env("documents")["OTEL_EXPORTER_OTLP_HEADERS"],
    )
    provider, statuses = _exporter(base, None)
    with provider.get_tracer("t").start_as_current_span("from the environment"):
        pass
    provider.shutdown()
    assert statuses == [200]
