from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lgsp.authn import HttpIntrospector, JwtAuthenticator
from tests.support.issuer import INTROSPECT_CLIENT, FakeIssuer


@pytest.fixture
async def issuer() -> AsyncIterator[FakeIssuer]:
    fake = FakeIssuer()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def authn(issuer: FakeIssuer) -> AsyncIterator[JwtAuthenticator]:
    """Verifier for the fake issuer; /lgsp.test.v1.TestService/Fail is a sensitive method."""
    introspector = HttpIntrospector(
        f"{issuer.issuer}/protocol/openid-connect/token/introspect",
        client_id=INTROSPECT_CLIENT[0],
        client_secret=INTROSPECT_CLIENT[1],
    )
    verifier = JwtAuthenticator(
        issuer.issuer,
        introspection=introspector,
        sensitive_methods=["/lgsp.test.v1.TestService/Fail", "/lgsp.sensitive.v1.Admin/"],
        min_refresh_interval_s=0.0,
    )
    yield verifier
    await verifier.aclose()
