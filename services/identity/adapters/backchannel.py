"""OpenID Connect Back-Channel Logout 1.0 §2.5: POST a logout token to a client's registered
back-channel logout URI. A client that does not answer within the timeout is logged and
left: the session has ended at identity whatever the client does (its tokens are refused
everywhere through the sessions topic)."""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger("services.identity.backchannel")

TIMEOUT = 5.0


def deliver(uri: str, logout_token: str, client_id: str) -> bool:
    """True when the client answered 200 or 204 (§2.8)."""
    try:
        r = httpx.post(
            uri,
            data={"logout_token": logout_token},
            timeout=TIMEOUT,
            follow_redirects=False,  # §2.5: the client answers, it does not redirect
        )
    except httpx.HTTPError as e:
        log.warning("back-channel logout to %s at %s failed: %s", client_id, uri, e)
        return False
    ok = r.status_code in (200, 204)
    log.info("back-channel logout to %s: HTTP %d", client_id, r.status_code)
    return ok
