"""A stand-in OpenID provider for tests and benchmarks: signs tokens in the agreed format and
serves its JWKS, RFC 7662 introspection and a client-credentials token endpoint over HTTP on a
free loopback port. The tests and the benchmarks use it."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import free_port

REALM = "lgsp"
INTROSPECT_CLIENT = ("documents", "documents-secret")


class FakeIssuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/realms/{REALM}"
        self.keys: list[RSAKey | ECKey] = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.signing_kid = "k1"
        self.revoked: set[str] = set()
        self.jwks_hits = 0
        self.introspection_hits = 0
        self.introspection_down = False
        self.jwks_down = False
        # client_id -> secret accepted by the client-credentials token endpoint
        self.clients: dict[str, str] = {INTROSPECT_CLIENT[0]: INTROSPECT_CLIENT[1]}
        self.token_hits = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # --- keys ----------------------------------------------------------------------------

    def key(self, kid: str) -> RSAKey | ECKey:
        return next(k for k in self.keys if k.kid == kid)

    def add_key(self, kid: str, kind: str = "RSA", *, sign_with: bool = True) -> None:
        if kind == "RSA":
            self.keys.append(RSAKey.generate_key(2048, parameters={"kid": kid}))
        else:
            self.keys.append(ECKey.generate_key("P-256", parameters={"kid": kid}))
        if sign_with:
            self.signing_kid = kid

    def drop_key(self, kid: str) -> None:
        self.keys = [k for k in self.keys if k.kid != kid]

    # --- tokens --------------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "7f1c2a9e-0000-4000-8000-000000000001",
            "aud": ["lgsp", "account"],
            "azp": "lgsp-web",
            "exp": now + 300,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
            "typ": "Bearer",
            "scope": "openid profile email",
            "sid": str(uuid.uuid4()),
            "preferred_username": "nguyenvanan.stp",
            "name": "Nguyễn Văn An",
            "email": "nvan@hatinh.gov.vn",
            "realm_access": {"roles": ["specialist", "leader"]},
            "agency_code": "000.00.12.H27",
            "agency_roles": {"000.00.12.H27": ["specialist", "leader"]},
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, *, kid: str | None = None, alg: str | None = None, **overrides: Any) -> str:
        kid = kid or self.signing_kid
        key = self.key(kid)
        alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
        return jwt.encode({"alg": alg, "kid": kid}, self.claims(**overrides), key, algorithms=[alg])

    def client_token(self, client_id: str = "dvc-hatinh", **overrides: Any) -> str:
        return self.token(
            sub="5b0c9d8e-0000-4000-8000-00000000000c",
            azp=client_id,
            client_id=client_id,
            preferred_username=f"service-account-{client_id}",
            name=None,
            email=None,
            realm_access={"roles": ["operator"]},
            agency_code="000.00.00.H27",
            agency_roles={"000.00.00.H27": ["operator"]},
            **overrides,
        )

    # --- HTTP ----------------------------------------------------------------------------

    async def _jwks(self, request: Request) -> Response:
        self.jwks_hits += 1
        if self.jwks_down:
            return JSONResponse({"error": "down"}, status_code=503)
        keys = [k.as_dict(private=False) | {"use": "sig"} for k in self.keys]
        return JSONResponse({"keys": keys})

    async def _introspect(self, request: Request) -> Response:
        self.introspection_hits += 1
        if self.introspection_down:
            return JSONResponse({"error": "down"}, status_code=503)
        form = await request.form()
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client = tuple(base64.b64decode(auth[6:]).decode().split(":", 1))
        else:
            client = (str(form.get("client_id")), str(form.get("client_secret")))
        if client != INTROSPECT_CLIENT:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = str(form.get("token", ""))
        if token in self.revoked:
            return JSONResponse({"active": False})
        return JSONResponse({"active": True, "token_type": "Bearer"})

    async def _token(self, request: Request) -> Response:
        self.token_hits += 1
        form = await request.form()
        auth = request.headers.get("authorization", "")
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = str(form.get("client_id")), str(form.get("client_secret"))
        if self.clients.get(client_id) != secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse(
            {
                "access_token": self.client_token(client_id),
                "token_type": "Bearer",
                "expires_in": 300,
            }
        )

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route(f"/realms/{REALM}/protocol/openid-connect/certs", self._jwks),
                Route(
                    f"/realms/{REALM}/protocol/openid-connect/token",
                    self._token,
                    methods=["POST"],
                ),
                Route(
                    f"/realms/{REALM}/protocol/openid-connect/token/introspect",
                    self._introspect,
                    methods=["POST"],
                ),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("fake issuer did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
