"""The province's agency directory as every service sees it: codes, names, abbreviations and
the tree, owned by the identity service.

`AgencyDirectory` holds a list in memory (tests, tools); `IdentityAgencyDirectory` keeps
identity's tree: loaded with IdentityService.GetAgencyTree (with the service's own
client-credentials token, `identity_credentials`), followed from identity's events
(AgencyCreated / AgencyUpdated / AgencyDisabled on `lgsp.identity.v1`, `subscription()`), and
reloaded every `ttl_s` as a fallback (`run()`). Lookups are synchronous (role checks call
`ancestors()` inside a request) and answer from the current snapshot; an unknown code asks for
a reload in the background. Until the first load the directory is empty: every check fails
closed. Disabled (dissolved, merged) agencies stay, marked, so older documents still read.

    directory = IdentityAgencyDirectory.from_settings(
        settings, service="documents", client_id=..., client_secret=...)
    Wiring(..., subscriptions=[directory.subscription("documents-agencies")],
           background=[directory.run], closers=[directory.aclose])
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc.aio

from lgsp.api.identity.v1 import events_pb2, identity_pb2, identity_pb2_grpc
from lgsp.authn.client import ClientCredentials
from lgsp.config import Settings, peer

if TYPE_CHECKING:
    from lgsp.inbox import ReceivedEvent
    from lgsp.plugins import Subscription

__all__ = [
    "IDENTITY_TOPIC",
    "Agency",
    "AgencyDirectory",
    "IdentityAgencyDirectory",
    "LazyCredentials",
    "agencies_from_tree",
    "identity_address",
    "identity_credentials",
    "service_secret",
]

log = logging.getLogger("lgsp.agencies")

IDENTITY_TOPIC = "lgsp.identity.v1"
MetadataFactory = Callable[[], Awaitable[Sequence[tuple[str, str]]]]


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    short_name: str  # abbreviation used in notations: "UBND", "STP"
    parent_code: str = ""
    place_name: str = ""  # printed before the promulgation date: "Hà Tĩnh"
    disabled: bool = False  # dissolved or merged; kept so older documents stay readable
    successor_code: str = ""  # the agency that took over its work
    mail_domain: str = ""  # its own mail domain ("stp.hatinh.gov.vn"); "" = its parent's


def agency_from_proto(a: identity_pb2.Agency) -> Agency:
    return Agency(
        a.code,
        a.name,
        a.short_name,
        a.parent_code,
        a.place_name,
        disabled=a.status == identity_pb2.AGENCY_STATUS_DISABLED,
        successor_code=a.successor_code,
        mail_domain=a.mail_domain,
    )


def agencies_from_tree(response: identity_pb2.GetAgencyTreeResponse) -> list[Agency]:
    found: list[Agency] = []
    stack = list(response.roots)
    while stack:
        node = stack.pop()
        found.append(agency_from_proto(node.agency))
        stack.extend(node.children)
    return found


class AgencyDirectory:
    """Agencies held in memory. It is also the agency tree role checks walk (lgsp.auth)."""

    def __init__(self, agencies: Iterable[Agency] = ()) -> None:
        self._set(agencies)

    def _set(self, agencies: Iterable[Agency]) -> None:
        by_code = {a.code: a for a in agencies}
        children: dict[str, list[str]] = {}
        for a in by_code.values():
            if a.parent_code:
                children.setdefault(a.parent_code, []).append(a.code)
        # One assignment: a lookup on another thread sees the old snapshot or the new one.
        ancestors: dict[str, tuple[str, ...]] = {}
        self._by_code, self._children, self._ancestors = by_code, children, ancestors

    def _put(self, agency: Agency) -> None:
        self._set([*(a for a in self._by_code.values() if a.code != agency.code), agency])

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def codes(self) -> Sequence[str]:
        """Every agency code of the province."""
        return sorted(self._by_code)

    def ancestors(self, code: str) -> Sequence[str]:
        """`code`'s parent, grandparent, … up to the root (empty for a root or unknown code)."""
        by_code, cache = self._by_code, self._ancestors
        chain = cache.get(code)
        if chain is None:
            found: list[str] = []
            parent = by_code[code].parent_code if code in by_code else ""
            while parent and parent not in found and parent != code:  # a cycle in bad data
                found.append(parent)
                agency = by_code.get(parent)
                parent = agency.parent_code if agency else ""
            chain = cache[code] = tuple(found)
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

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __len__(self) -> int:
        return len(self._by_code)


class IdentityAgencyDirectory(AgencyDirectory):
    """The directory kept from the identity service (see the module docstring)."""

    def __init__(
        self,
        channel: grpc.aio.Channel | Callable[[], grpc.aio.Channel],
        *,
        ttl_s: float = 300.0,
        min_refresh_interval_s: float = 5.0,
        timeout_s: float = 5.0,
        metadata: MetadataFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`channel` may be a factory: a grpc.aio channel belongs to the event loop it was
        made in, so a service built before its loop runs passes one and the channel is made
        at the first load, inside the loop."""
        super().__init__()
        self._channel = channel
        self._stub: identity_pb2_grpc.IdentityServiceStub | None = None
        self._ttl = ttl_s
        self._min_interval = min_refresh_interval_s
        self._timeout = timeout_s
        self._metadata = metadata
        self._clock = clock
        self._on_close = on_close
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._generation = 0  # loads completed: a caller that waited on the lock skips a repeat
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self._during_load: list[Agency] | None = None  # events that arrived while loading
        self.fetches = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, service: str, client_id: str, client_secret: str = ""
    ) -> IdentityAgencyDirectory:
        """Identity at its configured gRPC port, called with `client_id`'s token. The
        credentials are looked for at each load until found: on a first start identity may
        not have written its demo secrets yet."""
        from lgsp.grpc.client import channel, channel_credentials

        address = identity_address(settings)
        token = LazyCredentials(settings, client_id, client_secret)
        tls = channel_credentials(settings)
        return cls(
            lambda: channel(address, service_name=service, credentials=tls),
            metadata=token.metadata,
            on_close=token.aclose,
        )

    async def load(self, *, force: bool = False) -> IdentityAgencyDirectory:
        """The tree no older than the TTL (fetched now if needed; one fetch at a time)."""
        if not force and not self._stale():
            return self
        generation = self._generation
        async with self._lock:
            if self._generation != generation and self._loaded_at is not None:
                return self  # another caller loaded while this one waited
            self._attempted_at = self._clock()
            self._during_load = []
            try:
                if self._stub is None:
                    made = self._channel
                    self._stub = identity_pb2_grpc.IdentityServiceStub(
                        made() if callable(made) else made
                    )
                metadata = tuple(await self._metadata()) if self._metadata else ()
                self.fetches += 1
                response = await self._stub.GetAgencyTree(
                    identity_pb2.GetAgencyTreeRequest(include_disabled=True),
                    metadata=metadata,
                    timeout=self._timeout,
                )
                late, self._during_load = self._during_load or [], None
                self._set(agencies_from_tree(response))
                for agency in late:  # the answer may predate an event applied meanwhile
                    self._put(agency)
                self._loaded_at = self._clock()
            finally:
                self._during_load = None
                self._generation += 1
        return self

    async def run(self, stop: asyncio.Event) -> None:
        """Reload every `ttl_s` until `stop` (the events keep it current in between); a
        failed load keeps the old snapshot and is retried sooner. Closes the credentials."""
        started = self._clock()
        waited = False
        try:
            while not stop.is_set():
                delay = self._ttl
                try:
                    await self.load(force=True)
                    if waited:
                        log.info("agency tree loaded from identity (%d agencies)", len(self))
                        waited = False
                except Exception as e:
                    delay = min(self._ttl, self._min_interval)
                    # At a platform's start identity comes up with the others and writes the
                    # demo secrets a moment later: say it once, warn only if it lasts.
                    if self._clock() - started < STARTUP_GRACE_S:
                        if not waited:
                            log.info("waiting for identity's agency tree (%s)", _short(e))
                    else:
                        log.warning("cannot load the agency tree from identity: %s", _short(e))
                    waited = True
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            await self.aclose()

    # --- identity's events ---------------------------------------------------------------

    def subscription(self, group: str) -> Subscription:
        """A consumer of identity's topic that keeps this directory current. Each process
        of a service should have its own `group`: a group shares the partitions out among
        its members, and a replica that misses an event waits for the next reload."""
        from lgsp.plugins import Subscription

        async def handle(event: ReceivedEvent, uow: Any) -> None:
            self.apply(event.payload)

        return Subscription(
            group,
            [IDENTITY_TOPIC],
            {
                events_pb2.AgencyCreated: handle,
                events_pb2.AgencyUpdated: handle,
                events_pb2.AgencyDisabled: handle,
            },
        )

    def apply(self, event: Any) -> None:
        """Follow one AgencyCreated / AgencyUpdated / AgencyDisabled event."""
        if isinstance(event, events_pb2.AgencyCreated | events_pb2.AgencyUpdated):
            agency = agency_from_proto(event.agency)
        elif isinstance(event, events_pb2.AgencyDisabled):
            known = self.get(event.code)
            if known is None:
                self._refresh_in_background()  # not loaded yet: the reload brings it
                return
            agency = dataclasses.replace(known, disabled=True, successor_code=event.successor_code)
        else:
            return
        self._put(agency)
        if self._during_load is not None:
            self._during_load.append(agency)

    # --- lookups ---------------------------------------------------------------------------

    def get(self, code: str) -> Agency | None:
        found = super().get(code)
        if found is None or self._stale():
            self._refresh_in_background()
        return found

    def ancestors(self, code: str) -> Sequence[str]:
        if code not in self or self._stale():
            self._refresh_in_background()
        return super().ancestors(code)

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

        async def reload() -> None:
            try:
                await self.load(force=True)
            except Exception as exc:  # the old snapshot stays in use
                log.warning("cannot refresh the agency tree: %s", exc)

        self._background = loop.create_task(reload())

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
        if self._on_close is not None:
            await self._on_close()


@dataclass(frozen=True)
class Followed:
    """Identity's agency tree as a service follows it, and what that adds to its Wiring."""

    directory: IdentityAgencyDirectory
    subscriptions: tuple[Subscription, ...]
    background: tuple[Callable[[asyncio.Event], Awaitable[None]], ...]
    closers: tuple[Callable[[], Awaitable[None]], ...]


def follow_identity(settings: Settings, service: str) -> Followed:
    """The tree for `service`: asked of identity with the service's own client ([<service>]
    client_id and client_secret), kept current from identity's agency events (consumer group
    "<service>-agencies"), reloaded in the background, closed at stop."""
    section = settings.service(service)
    directory = IdentityAgencyDirectory.from_settings(
        settings,
        service=service,
        client_id=str(getattr(section, "client_id", service)),
        client_secret=str(getattr(section, "client_secret", "")),
    )
    return Followed(
        directory,
        (directory.subscription(f"{service}-agencies"),),
        (directory.run,),
        (directory.aclose,),
    )


# How long after start a failing load is expected (identity starting beside the service).
STARTUP_GRACE_S = 30.0


def _short(error: Exception) -> str:
    """One line of an error (a gRPC error's repr spans lines)."""
    details = getattr(error, "details", None)
    text = details() if callable(details) else str(error)
    code = getattr(error, "code", None)
    name = code().name if callable(code) else type(error).__name__
    return f"{name}: {str(text).splitlines()[0] if text else ''}"


def identity_address(settings: Settings) -> str:
    """host:port of identity's gRPC server (lgsp.config.peer)."""
    return peer(settings, "identity").address


def identity_credentials(
    settings: Settings, client_id: str, client_secret: str = ""
) -> ClientCredentials | None:
    """The client-credentials token a service presents to identity as `client_id`.

    The secret is `client_secret` (the service's setting), else the one identity's demo seed
    writes to <data_dir>/identity-demo.json on first start (embedded default). None when
    neither is there yet (the caller's load then fails and says so)."""
    from lgsp.authn.jwt import issuer_from_settings
    from lgsp.tls import https_verify

    secret = service_secret(settings, client_id, client_secret)
    if not secret:
        log.debug("no client secret for %s yet: identity calls go without a token", client_id)
        return None
    token_url = f"{issuer_from_settings(settings)}/protocol/openid-connect/token"
    return ClientCredentials(token_url, client_id, secret, verify=https_verify(settings))


class LazyCredentials:
    """A service's token metadata for its calls (to identity, to the gateway), made from
    `identity_credentials` on the first call that finds the secret: on a first start
    identity may not have written its demo secrets yet, so until then calls go without a
    token (and the callee says why)."""

    def __init__(self, settings: Settings, client_id: str, client_secret: str = "") -> None:
        self._args = (settings, client_id, client_secret)
        self._credentials: ClientCredentials | None = None

    async def metadata(self) -> Sequence[tuple[str, str]]:
        if self._credentials is None:
            self._credentials = identity_credentials(*self._args)
            if self._credentials is None:
                return ()
        return await self._credentials.metadata()

    async def aclose(self) -> None:
        if self._credentials is not None:
            await self._credentials.aclose()


def service_secret(settings: Settings, client_id: str, client_secret: str = "") -> str:
    """A service's client secret at identity: its setting, else the one identity's demo seed
    wrote to <data_dir>/identity-demo.json on first start; "" when neither is there yet."""
    if client_secret:
        return client_secret
    demo = settings.data_dir / "identity-demo.json"
    try:
        return str(json.loads(demo.read_text()).get("client_secrets", {}).get(client_id, ""))
    except (OSError, ValueError):
        return ""
