"""The [identity] settings section. Its issuer keys are also the platform's trust anchor:
lgsp.authn.issuer_from_settings reads them to know which tokens every service accepts."""

from __future__ import annotations

from dataclasses import dataclass

from lgsp.config import (
    HTTP_SCHEMES,
    Endpoint,
    ServiceSettings,
    choice_field,
    num_field,
    port_field,
    secret_field,
    url_field,
)
from lgsp.netaddr import address_problems, parse_addresses


@dataclass(frozen=True)
class IdentitySettings(ServiceSettings):
    grpc_port: int = port_field(50051)
    http_port: int = port_field(8180)  # built-in OpenID Connect provider
    provider: str = choice_field("builtin", "builtin", "keycloak")
    keycloak_url: str = url_field("", *HTTP_SCHEMES)
    keycloak_realm: str = "lgsp"
    keycloak_client_id: str = "lgsp"
    keycloak_client_secret: str = secret_field()
    # Built-in provider: the public URL its issuers start with ("" = http://{host}:{http_port}),
    # e.g. "https://sso.hatinh.gov.vn" behind a reverse proxy.
    issuer_base_url: str = url_field("", *HTTP_SCHEMES)
    # Seed the demo province (random passwords and secrets in <data_dir>/identity-demo.json)
    # on first start when the directory is empty; `make run` turns it on.
    demo_seed: bool = False
    # …also when platform.host is not loopback (demo accounts reachable from the network).
    demo_seed_allow_remote: bool = False
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or CIDR networks); "" = none: the client is the TCP peer, so a forged header
    # neither escapes the per-address throttle nor reaches the audit log.
    trusted_proxies: str = ""
    # App passwords (mail clients of officials with a second factor) an official may hold;
    # also the argon2 verifies (~15 ms each) every wrong app password costs.
    app_passwords_per_user: int = num_field(10, 1, 50)
    # The browser's SSO session (Keycloak's "SSO Session Idle" and "SSO Session Max"): ends
    # when unused this long, and at the latest this long after the sign-in.
    sso_session_idle_seconds: int = num_field(1800, 60, 86400)
    sso_session_max_seconds: int = num_field(36000, 300, 30 * 86400)
    # The master realm's bootstrap admin password ("" = generate into data/identity-admin-password).
    admin_password: str = secret_field()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.provider == "keycloak" and not self.keycloak_url:
            out.append(("keycloak_url", "identity.provider = keycloak needs keycloak_url"))
        out.extend(address_problems("trusted_proxies", self.trusted_proxies))
        return out

    def proxies(self) -> list[str]:
        """trusted_proxies as a list."""
        return parse_addresses(self.trusted_proxies)

    def endpoints(self, name: str, host: str) -> list[Endpoint]:
        return [
            *super().endpoints(name, host),
            Endpoint(name, "http", host, self.http_port, "OpenID Connect"),
        ]
