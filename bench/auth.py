"""What checking an access token costs a service call, with the JWKS already cached.

Rows, in one process:
- reference: a bare RSA-2048 PKCS#1 v1.5 SHA-256 signature check with cryptography (the
  floor any RS256 verification pays);
- JwtAuthenticator.authenticate, full verification each time (parse, key lookup, signature,
  exp/nbf/iss/aud, Principal) — the verified-token cache turned off;
- the same with the verified-token cache on, the caller reusing its token (the usual case:
  a token lives minutes and serves many calls);
- that cached path again with the ended-session check (lgsp.authn.sessions) followed and
  holding 10,000 ended sessions and 1,000 revoked subjects: its extra cost (goal < 5 µs),
  and the check alone;
- an Echo gRPC call through build_server without auth, then with JwtAuthenticator (full
  verification, then cached): the per-call µs the check adds end to end.

    python -m bench.auth [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc.aio
import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.jwk import RSAKey

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.api.identity.v1 import sessions_pb2 as pb
from lgsp.authn import JwtAuthenticator
from lgsp.authn.sessions import EndedSessions
from lgsp.grpc import build_server

ISSUER = "http://127.0.0.1:8180/realms/lgsp"
METHOD = "/lgsp.api.documents.v1.DocumentsService/GetDocument"


def _token(key: RSAKey) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": str(uuid.uuid4()),
        "aud": ["lgsp", "account"],
        "azp": "lgsp-web",
        "exp": now + 3600,
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
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key, algorithms=["RS256"])


def _authenticator(
    key: RSAKey, cache_size: int, sessions: EndedSessions | None = None
) -> JwtAuthenticator:
    jwks = {"keys": [key.as_dict(private=False) | {"use": "sig"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    return JwtAuthenticator(
        ISSUER,
        http_client=httpx.AsyncClient(transport=transport),
        cache_size=cache_size,
        sessions=sessions,
    )


def _ended_sessions() -> EndedSessions:
    """A follower that has caught up, with a busy day's ended sessions and revocations."""
    ended = EndedSessions()
    ended.followed = True
    ended.mark_ready()
    for i in range(10_000):
        ended.apply(pb.SessionEnded(session_id=str(uuid.uuid4()), user_id=f"u{i}"))
    for i in range(1_000):
        revoked = pb.SubjectTokensRevoked(subject=f"client:c{i}")
        revoked.not_before.FromSeconds(int(time.time()))
        ended.apply(revoked)
    return ended


async def _nothing() -> None:
    return None


async def _per_op_us(op: Callable[[], Awaitable[object]], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            await op()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


async def _bench(args: argparse.Namespace) -> int:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    token = _token(key)
    metadata = {"authorization": f"Bearer {token}"}

    public = key.get_op_key("verify")
    signing_input, _, sig_b64 = token.rpartition(".")
    signature = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))

    async def bare_verify() -> None:
        public.verify(signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    full = _authenticator(key, cache_size=0)
    cached = _authenticator(key, cache_size=4096)
    ended = _ended_sessions()
    checked = _authenticator(key, cache_size=4096, sessions=ended)
    await full.authenticate(metadata, METHOD)  # warm the JWKS caches
    await cached.authenticate(metadata, METHOD)
    await checked.authenticate(metadata, METHOD)
    sid = str(uuid.uuid4())

    async def check_alone() -> None:
        ended.check(sid, "7f1c2a9e-0000-4000-8000-000000000001", time.time())

    n, rounds = args.n, args.rounds
    ref = await _per_op_us(bare_verify, n, rounds)
    full_us = await _per_op_us(lambda: full.authenticate(metadata, METHOD), n, rounds)
    cached_us = await _per_op_us(lambda: cached.authenticate(metadata, METHOD), n, rounds)
    checked_us = await _per_op_us(lambda: checked.authenticate(metadata, METHOD), n, rounds)
    alone_us = await _per_op_us(check_alone, n, rounds)
    nothing_us = await _per_op_us(_nothing, n, rounds)
    assert full.jwks.fetches == 1 and cached.jwks.fetches == 1

    print(f"token: {len(token)} chars, RS256, RSA-2048; best of {rounds} rounds × {n}")
    print(f"{'':<44} {'µs/op':>8} {'× ref':>7}")
    print(f"{'reference: bare RSA verify (cryptography)':<44} {ref:>8.1f} {1:>7.2f}")
    print(f"{'authenticate, full verification':<44} {full_us:>8.1f} {full_us / ref:>7.2f}")
    hit = "authenticate, verified-token cache hit"
    print(f"{hit:<44} {cached_us:>8.2f} {cached_us / ref:>7.2f}")
    with_check = "  + ended-session check (11k entries)"
    print(f"{with_check:<44} {checked_us:>8.2f} {checked_us / ref:>7.2f}")
    print(
        f"ended-session check on the cached path: +{checked_us - cached_us:.2f} µs per call "
        f"(goal < 5); the check alone {max(0.0, alone_us - nothing_us):.2f} µs "
        f"(an awaited no-op: {nothing_us:.2f} µs)"
    )

    # --- end to end through gRPC --------------------------------------------------------
    servers = {
        "no auth (AllowAnonymous)": build_server("bench", tracing=False),
        "JwtAuthenticator, full verification": build_server(
            "bench", tracing=False, authenticator=full
        ),
        "JwtAuthenticator, cached token": build_server(
            "bench", tracing=False, authenticator=cached
        ),
    }
    channels = []
    stubs = {}
    for name, server in servers.items():
        await server.start()
        ch = grpc.aio.insecure_channel(server.address)
        channels.append(ch)
        stubs[name] = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch)
    grpc_md = (("authorization", f"Bearer {token}"),)
    request = diagnostics_pb2.EchoRequest(message="xin chào")
    samples: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for stub in stubs.values():
            for _ in range(200):
                await stub.Echo(request, metadata=grpc_md)
        chunk = 100
        for _ in range(args.calls // chunk):  # interleaved so background load hits all alike
            for name, stub in stubs.items():
                for _ in range(chunk):
                    t0 = time.perf_counter()
                    await stub.Echo(request, metadata=grpc_md)
                    samples[name].append(time.perf_counter() - t0)
    finally:
        for ch in channels:
            await ch.close()
        for server in servers.values():
            await server.stop(0)
        await full.aclose()
        await cached.aclose()
        await checked.aclose()

    print(f"\nEcho over gRPC, 1 caller × {args.calls} sequential calls per row (token sent)")
    print(f"{'':<44} {'p50 µs':>8} {'+µs':>7} {'mean µs':>8}")
    base_p50 = statistics.median(samples["no auth (AllowAnonymous)"]) * 1e6
    for name, values in samples.items():
        p50 = statistics.median(values) * 1e6
        mean = statistics.fmean(values) * 1e6
        print(f"{name:<44} {p50:>8.0f} {p50 - base_p50:>+7.0f} {mean:>8.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args(argv)
    args.n = 500 if args.quick else 5_000
    args.rounds = 3 if args.quick else 5
    args.calls = 1_000 if args.quick else 5_000
    return asyncio.run(_bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
