"""The console's sign-in routes (the flow is described in console/auth.py)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.auth import (
    LOGIN_COOKIE,
    LOGIN_TTL_S,
    ROLES,
    SESSION_COOKIE,
    OidcClient,
    Sessions,
    safe_next,
)
from console.templating import templates
from lgsp.grpc.errors import Unauthenticated

log = logging.getLogger("console.signin")

NOT_OPERATOR = (
    "Tài khoản {name} không có vai trò vận hành (operator hoặc admin) nên không được vào "
    "bảng điều khiển."
)
FAILED = "Đăng nhập không thành công hoặc đã quá hạn. Xin ông/bà đăng nhập lại."


def sign_in_routes(sessions: Sessions, oidc: OidcClient) -> list[Route]:
    secure = oidc.redirect_uri.startswith("https:")

    def login_page(request: Request, error: str = "", status: int = 200) -> Response:
        next_path = safe_next(request.query_params.get("next"))
        context = {"error": error, "next_path": next_path}
        return templates.TemplateResponse(request, "login.html", context, status_code=status)

    async def login(request: Request) -> Response:
        if sessions.get(request.cookies.get(SESSION_COOKIE)):
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return login_page(request)

    async def start(request: Request) -> Response:
        state, browser, challenge = sessions.begin_login(
            safe_next(request.query_params.get("next"))
        )
        resp = RedirectResponse(oidc.authorization_url(state, challenge), status_code=303)
        resp.set_cookie(
            LOGIN_COOKIE,
            sessions.sign(browser),
            max_age=int(LOGIN_TTL_S),
            path="/auth/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        return resp

    async def callback(request: Request) -> Response:
        params = request.query_params
        browser = sessions.unsign(request.cookies.get(LOGIN_COOKIE))
        pending = sessions.finish_login(params.get("state", ""), browser)
        if pending is None or "code" not in params:
            return login_page(request, FAILED, 400)
        try:
            operator, refresh = await oidc.exchange(params["code"], pending.verifier)
        except Unauthenticated as exc:
            log.warning("console sign-in refused: %s", exc)
            return login_page(request, FAILED, 401)
        if not operator.roles & ROLES:
            await oidc.logout(refresh)
            log.info("console sign-in refused to %s: no operator role", operator.username)
            return login_page(request, NOT_OPERATOR.format(name=operator.username), 403)
        sid = sessions.create(operator, refresh)
        log.info("operator %s signed in to the console", operator.username)
        resp = RedirectResponse(pending.next_path, status_code=303)
        resp.delete_cookie(LOGIN_COOKIE, path="/auth/")
        resp.set_cookie(
            SESSION_COOKIE,
            sessions.sign(sid),
            max_age=int(sessions.ttl_s),
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        return resp

    async def logout(request: Request) -> Response:
        session = sessions.end(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            await oidc.logout(session.refresh_token)
            log.info("operator %s signed out of the console", session.operator.username)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    return [
        Route("/login", login),
        Route("/auth/start", start),
        Route("/auth/callback", callback),
        Route("/logout", logout, methods=["POST"]),
    ]
