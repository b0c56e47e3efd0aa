"""authenticator_from_settings: which issuer services trust in each identity mode."""

from __future__ import annotations

from lgsp.authn import HttpIntrospector, JwtAuthenticator, authenticator_from_settings
from lgsp.config import load_settings


def test_builtin_provider_issuer(tmp_path) -> None:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    authn = authenticator_from_settings(settings)
    assert isinstance(authn, JwtAuthenticator)
    assert authn.issuer == "http://127.0.0.1:8180/realms/lgsp"
    assert authn.jwks.url == "http://127.0.0.1:8180/realms/lgsp/protocol/openid-connect/certs"
    assert authn.audience == "lgsp" and authn.introspection is None


def test_builtin_provider_on_all_interfaces_is_reached_on_loopback(tmp_path) -> None:
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_PLATFORM_HOST": "0.0.0.0",
            "LGSP_IDENTITY_HTTP_PORT": "9180",
        }
    )
    authn = authenticator_from_settings(settings)
    assert isinstance(authn, JwtAuthenticator)
    assert authn.issuer == "http://127.0.0.1:9180/realms/lgsp"


def test_keycloak_issuer_and_introspection(tmp_path) -> None:
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_IDENTITY_PROVIDER": "keycloak",
            "LGSP_IDENTITY_KEYCLOAK_URL": "https://sso.hatinh.gov.vn/",
            "LGSP_IDENTITY_KEYCLOAK_REALM": "hatinh",
            "LGSP_IDENTITY_KEYCLOAK_CLIENT_SECRET": "s3cret",
        }
    )
    authn = authenticator_from_settings(settings, sensitive_methods=["/x.v1.S/Delete"])
    assert isinstance(authn, JwtAuthenticator)
    assert authn.issuer == "https://sso.hatinh.gov.vn/realms/hatinh"
    assert isinstance(authn.introspection, HttpIntrospector)
    assert authn.introspection.url == (
        "https://sso.hatinh.gov.vn/realms/hatinh/protocol/openid-connect/token/introspect"
    )
    assert authn.is_sensitive("/x.v1.S/Delete") and not authn.is_sensitive("/x.v1.S/Get")
