"""The agency tree from the identity service, cached for authorization checks.

`RemoteAgencyTree` fetches IdentityService.GetAgencyTree and keeps it for `ttl_s` seconds.
`ancestors()` is synchronous (Principal.has_role calls it) and answers from the last snapshot;
a stale snapshot or an unknown code schedules a refresh in the background. Call `await
tree.load()` at start-up (or before a check that must see a new agency) for a fresh snapshot.
Until the first load an unknown code has no ancestors: only exact-agency grants count, so the
check fails closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from lgsp.api.identity.v1 import identity_pb2, identity_pb2_grpc
from lgsp.auth import StaticAgencyTree

__all__ = ["RemoteAgencyTree", "tree_from_response"]

log = logging.getLogger("lgsp.auth")

MetadataFactory = Callable[[], Awaitable[Sequence[tuple[str, str]]]]


def tree_from_response(response: identity_pb2.GetAgencyTreeResponse) -> StaticAgencyTree:
    parent_of: dict[str, str | None] = {}
    stack: list[tuple[Any, str | None]] = [(root, None) for root in response.roots]
    while stack:
        node, parent = stack.pop()
        code = node.agency.code
        parent_of[code] = parent if parent is not None else (node.agency.parent_code or None)
        stack.extend((child, code) for child in node.children)
    return StaticAgencyTree(parent_of)


class RemoteAgencyTree:
    """An AgencyTree backed by IdentityService.GetAgencyTree over `channel`.

    `metadata` supplies call metadata (e.g. a client-credentials bearer token) per fetch.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        ttl_s: float = 300.0,
        min_refresh_interval_s: float = 5.0,
        timeout_s: float = 5.0,
        metadata: MetadataFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._ttl = ttl_s
        self._min_interval = min_refresh_interval_s
        self._timeout = timeout_s
        self._metadata = metadata
        self._clock = clock
        self._tree = StaticAgencyTree({})
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._generation = 0  # fetches completed: waiters on the lock skip a repeat
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self.fetches = 0

    @property
    def snapshot(self) -> StaticAgencyTree:
        return self._tree

    async def load(self, *, force: bool = False) -> StaticAgencyTree:
        """A snapshot no older than the TTL (fetched now if needed; single flight)."""
        if not force and not self._stale():
            return self._tree
        generation = self._generation
        async with self._lock:
            if self._generation != generation and self._loaded_at is not None:
                return self._tree  # another caller fetched while this one waited
            self._attempted_at = self._clock()
            try:
                metadata = tuple(await self._metadata()) if self._metadata else ()
                self.fetches += 1
                response = await self._stub.GetAgencyTree(
                    identity_pb2.GetAgencyTreeRequest(include_disabled=True),
                    metadata=metadata,
                    timeout=self._timeout,
                )
            finally:
                self._generation += 1
            self._tree = tree_from_response(response)
            self._loaded_at = self._clock()
        return self._tree

    def ancestors(self, code: str) -> Sequence[str]:
        if self._stale() or code not in self._tree:
            self._refresh_in_background()
        return self._tree.ancestors(code)

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at > self._ttl

    def _refresh_in_background(self) -> None:
        if self._background is not None and not self._background.done():
            return
        now = self._clock()
        if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # called outside the event loop: the caller should load() first
        self._attempted_at = now

        async def run() -> None:
            try:
                await self.load(force=True)
            except Exception as exc:  # the old snapshot stays in use
                log.warning("cannot refresh the agency tree: %s", exc)

        self._background = loop.create_task(run())

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
