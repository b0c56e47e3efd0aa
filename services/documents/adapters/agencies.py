"""The agency directory: names, abbreviations and the tree, from the identity service
(production) or a fixed list (tests, tools)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import grpc.aio

from lgsp.api.identity.v1 import identity_pb2, identity_pb2_grpc
from services.documents.service_layer.ports import Agency

log = logging.getLogger("services.documents.agencies")


class StaticAgencyDirectory:
    def __init__(self, agencies: Iterable[Agency] = ()) -> None:
        self._set(agencies)

    def _set(self, agencies: Iterable[Agency]) -> None:
        by_code = {a.code: a for a in agencies}
        children: dict[str, list[str]] = {}
        for a in by_code.values():
            if a.parent_code:
                children.setdefault(a.parent_code, []).append(a.code)
        self._by_code, self._children = by_code, children
        self._ancestors: dict[str, tuple[str, ...]] = {}

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def codes(self) -> Sequence[str]:
        return sorted(self._by_code)

    def ancestors(self, code: str) -> Sequence[str]:
        chain = self._ancestors.get(code)
        if chain is None:
            found: list[str] = []
            parent = self._by_code[code].parent_code if code in self._by_code else ""
            while parent and parent not in found and parent != code:
                found.append(parent)
                agency = self._by_code.get(parent)
                parent = agency.parent_code if agency else ""
            chain = self._ancestors[code] = tuple(found)
        return chain

    def descendants(self, code: str) -> Sequence[str]:
        out: list[str] = []
        stack = list(self._children.get(code, ()))
        while stack:
            c = stack.pop()
            if c not in out:
                out.append(c)
                stack.extend(self._children.get(c, ()))
        return out

    def __len__(self) -> int:
        return len(self._by_code)


def agencies_from_tree(response: identity_pb2.GetAgencyTreeResponse) -> list[Agency]:
    found: list[Agency] = []
    stack = list(response.roots)
    while stack:
        node = stack.pop()
        a = node.agency
        found.append(Agency(a.code, a.name, a.short_name, a.parent_code, a.place_name))
        stack.extend(node.children)
    return found


class IdentityAgencyDirectory(StaticAgencyDirectory):
    """The directory kept from IdentityService.GetAgencyTree, refreshed every `ttl_s`.

    Lookups answer from the last snapshot (synchronous, as the role checks need); until the
    first fetch the directory is empty, so every check fails closed."""

    def __init__(
        self,
        channel: grpc.aio.Channel | Callable[[], grpc.aio.Channel],
        *,
        ttl_s: float = 300.0,
        metadata: Callable[[], Awaitable[Sequence[tuple[str, str]]]] | None = None,
    ) -> None:
        """`channel` may be a factory: a grpc.aio channel belongs to the event loop it was
        made in, so a service built before its loop runs passes one and the channel is made
        at the first load, inside the loop."""
        super().__init__()
        self._channel = channel
        self._stub: identity_pb2_grpc.IdentityServiceStub | None = None
        self._ttl = ttl_s
        self._metadata = metadata

    async def load(self) -> None:
        if self._stub is None:
            made = self._channel
            self._stub = identity_pb2_grpc.IdentityServiceStub(made() if callable(made) else made)
        metadata = tuple(await self._metadata()) if self._metadata else ()
        response = await self._stub.GetAgencyTree(
            identity_pb2.GetAgencyTreeRequest(include_disabled=True), metadata=metadata, timeout=5
        )
        self._set(agencies_from_tree(response))

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until `stop`; a failed fetch keeps the old snapshot and retries sooner."""
        while not stop.is_set():
            delay = self._ttl
            try:
                await self.load()
            except Exception as e:
                log.warning("cannot load the agency tree from identity: %s", e)
                delay = min(self._ttl, 5.0)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
