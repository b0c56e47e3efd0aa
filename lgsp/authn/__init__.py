"""Token checks for LGSP services: access-token verification (JWT against the issuer's JWKS),
token introspection for sensitive calls, and the client-credentials tokens a service presents
when it calls another (the agency tree role checks walk is `lgsp.agencies`).

    authenticator = JwtAuthenticator("http://127.0.0.1:8180/realms/lgsp")
    server = build_server("documents", servicers=[...], authenticator=authenticator)

`authenticator_from_settings(settings)` builds the configured one. lgsp.auth (principals,
roles, the Authenticator protocol) knows nothing of this package; this package builds on it.
"""

from lgsp.authn.client import ClientCredentials
from lgsp.authn.introspection import HttpIntrospector, Introspector
from lgsp.authn.jwt import (
    ALLOWED_ALGORITHMS,
    JwksCache,
    JwtAuthenticator,
    authenticator_from_settings,
    issuer_from_settings,
    principal_from_claims,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "ClientCredentials",
    "HttpIntrospector",
    "Introspector",
    "JwksCache",
    "JwtAuthenticator",
    "authenticator_from_settings",
    "issuer_from_settings",
    "principal_from_claims",
]
