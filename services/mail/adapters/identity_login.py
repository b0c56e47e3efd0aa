"""Officials' passwords checked by identity (SMTP AUTH): the OAuth password grant at
identity's token endpoint with the mail service's own client, so identity's lockout, its
throttle and its audit log (LoginFailed / UserLocked) apply to mail clients as to the web.
The access token it answers with is verified like any other (signature, issuer) to learn
the official's user id; the session it opened is revoked at once: SMTP needs no session.

With the Keycloak provider this is Keycloak's "direct access grant", the same request.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

import httpx

from lgsp.auth import Principal
from lgsp.grpc.errors import Unauthenticated, Unavailable
from services.mail.domain.errors import AppPasswordRequired

log = logging.getLogger("services.mail.login")


class IdentityPasswords:
    """`await check(username, password)` → the official's user id, or None when identity
    refuses (wrong password, unknown, locked, disabled: identity answers all alike);
    Unavailable when identity cannot be asked (the SMTP server answers 454, try later)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: Callable[[], str],
        verify: Callable[[str], Awaitable[Principal]],
        *,
        timeout_s: float = 10.0,
        tls: ssl.SSLContext | bool = True,
    ) -> None:
        self.token_url = f"{issuer}/protocol/openid-connect/token"
        self.revoke_url = f"{issuer}/protocol/openid-connect/revoke"
        self._client_id = client_id
        self._secret = client_secret
        self._verify = verify
        self._http = httpx.AsyncClient(timeout=timeout_s, verify=tls)

    async def check(self, username: str, password: str) -> str | None:
        auth = (self._client_id, self._secret())
        try:
            r = await self._http.post(
                self.token_url,
                data={"grant_type": "password", "username": username, "password": password},
                auth=auth,
            )
        except httpx.HTTPError as e:
            raise Unavailable(f"identity unreachable: {e}") from None
        if r.status_code in (400, 401, 429) and _error(r) == "invalid_grant":
            if "app password" in _error(r, "error_description"):
                raise AppPasswordRequired("the account needs an app password for mail clients")
            return None
        if r.status_code != 200:
            # invalid_client (the mail client is not set up) is the operator's problem.
            raise Unavailable(f"identity answered {r.status_code} {_error(r)}")
        answer = r.json()
        try:
            principal = await self._verify(str(answer["access_token"]))
        except (KeyError, Unauthenticated) as e:
            raise Unavailable(f"identity's token did not verify: {e}") from None
        refresh = answer.get("refresh_token")
        if refresh:
            try:
                await self._http.post(
                    self.revoke_url,
                    data={"token": refresh, "token_type_hint": "refresh_token"},
                    auth=auth,
                )
            except httpx.HTTPError:
                log.warning("could not end the session of an SMTP login at identity")
        return principal.subject

    async def aclose(self) -> None:
        await self._http.aclose()


def _error(r: httpx.Response, field: str = "error") -> str:
    try:
        return str(r.json().get(field, ""))
    except ValueError:
        return ""
