"""Ended sessions: every service refuses the tokens of a session that ended, within a second,
without asking identity on each call.

Identity publishes SessionEnded (logout, revocation, a replayed refresh token, an admin) and
SubjectTokensRevoked (a disabled account or client system) on SESSIONS_TOPIC. Each service
process follows that topic from its beginning with a consumer group of its own (every process
must see every partition, and it never commits: it re-reads what is still relevant at each
start), keeping the ended sessions and revoked subjects in memory until their tokens would
have expired anyway. A token check is two dictionary look-ups (bench/auth).

Until the follower has read everything the topic held when it started (a barrier read on
every partition, lgsp.inbox.publish_barrier), it cannot know which sessions ended: calls wait
for it up to `ready_timeout` and are then refused with UNAVAILABLE, never let through. An
authenticator used outside a service runtime (a test, a command) has no follower and checks
signatures only, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp import events
from lgsp.api.events.v1.barrier_pb2 import ReplayBarrier
from lgsp.api.identity.v1 import sessions_pb2 as pb
from lgsp.grpc.errors import Unauthenticated, Unavailable

log = logging.getLogger("lgsp.authn.sessions")

SESSIONS_TOPIC = "lgsp.identity.sessions.v1"
_ENDED = events.type_name(pb.SessionEnded)
_REVOKED = events.type_name(pb.SubjectTokensRevoked)
_BARRIER = events.type_name(ReplayBarrier)
# A token whose expiry the event does not say is remembered this long (longer than any
# access token the platform issues).
DEFAULT_KEEP_S = 24 * 3600.0


class EndedSessions:
    """The sessions and subjects whose tokens are refused, as the sessions topic says."""

    def __init__(
        self, *, ready_timeout: float = 3.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.sessions: dict[str, float] = {}  # sid -> until when to remember it
        self.subjects: dict[str, tuple[float, float]] = {}  # subject -> (not_before, until)
        self.ready_timeout = ready_timeout
        self._clock = clock
        self._ready = asyncio.Event()
        self.followed = False  # set by the runtime that follows the topic, before any call
        self.applied = 0

    @property
    def ready(self) -> bool:
        """Whether calls may be checked now: caught up, or nobody follows (no check)."""
        return self._ready.is_set() or not self.followed

    def mark_ready(self) -> None:
        """Caught up: calls are checked from now on without waiting."""
        self._ready.set()

    def check(self, sid: str, subject: str, iat: float | None) -> None:
        """Unauthenticated if the token's session ended or its subject's tokens were revoked
        (the caller made sure `ready`)."""
        if not self.followed:
            return
        if sid and sid in self.sessions:
            raise Unauthenticated("session ended: sign in again")
        revoked = self.subjects.get(subject)
        if revoked is not None and (iat is None or iat <= revoked[0]):
            raise Unauthenticated("token revoked: sign in again")

    async def wait_ready(self) -> None:
        """Return once the follower has caught up; UNAVAILABLE after `ready_timeout`."""
        if self.ready:
            return
        try:
            await asyncio.wait_for(self._ready.wait(), self.ready_timeout)
        except TimeoutError:
            raise Unavailable(
                "the list of ended sessions is still loading; retry shortly", retry_after=1.0
            ) from None

    def apply(self, payload: object) -> None:
        """One SessionEnded or SubjectTokensRevoked (others are ignored)."""
        now = self._clock()
        if isinstance(payload, pb.SessionEnded):
            until = _until(payload.expires_at, now)
            if payload.session_id and until > now:
                self.sessions[payload.session_id] = max(
                    until, self.sessions.get(payload.session_id, 0)
                )
                self.applied += 1
        elif isinstance(payload, pb.SubjectTokensRevoked):
            until = _until(payload.expires_at, now)
            if payload.subject and until > now:
                not_before = payload.not_before.ToMicroseconds() / 1e6
                old = self.subjects.get(payload.subject, (0.0, 0.0))
                self.subjects[payload.subject] = (max(old[0], not_before), max(old[1], until))
                self.applied += 1

    def prune(self) -> None:
        now = self._clock()
        self.sessions = {s: u for s, u in self.sessions.items() if u > now}
        self.subjects = {s: v for s, v in self.subjects.items() if v[1] > now}

    async def follow(self, bus: object, stop: asyncio.Event, *, source: str) -> None:
        """Read the sessions topic until `stop`, becoming ready once caught up."""
        from lgsp.bus import Bus
        from lgsp.bus.base import EPHEMERAL_SUFFIX
        from lgsp.inbox import ensure_topics, publish_barrier

        assert isinstance(bus, Bus)
        self.followed = True
        await ensure_topics(bus, [SESSIONS_TOPIC], with_dlq=False)
        # Its own group, to see every partition; ephemeral: no lag to report, never committed.
        group = f"{source}-sessions-{uuid.uuid4().hex[:12]}{EPHEMERAL_SUFFIX}"
        barrier = f"{group}/ready"
        partitions = await publish_barrier(bus, SESSIONS_TOPIC, barrier, source=source)
        seen: set[int] = set()
        consumer = bus.consumer(group, [SESSIONS_TOPIC])
        last_prune = self._clock()
        try:
            while not stop.is_set():
                # A publish wakes the poll at once; the timeout only bounds how long a stop waits.
                records = await consumer.poll(timeout=1.0, max_records=1000)
                for record in records:
                    try:
                        envelope = events.decode(record.value)
                        if envelope.type not in (_ENDED, _REVOKED, _BARRIER):
                            continue
                        payload = events.payload_of(envelope)
                    except events.MalformedEvent as e:
                        log.warning("sessions topic: skipped a malformed record: %s", e)
                        continue
                    if isinstance(payload, ReplayBarrier):
                        if payload.id == barrier:
                            seen.add(record.partition)
                        continue
                    self.apply(payload)
                if not self._ready.is_set() and len(seen) >= partitions:
                    self.mark_ready()
                    log.info(
                        "following ended sessions: %d sessions and %d subjects refused",
                        len(self.sessions),
                        len(self.subjects),
                    )
                if self._clock() - last_prune > 60:
                    self.prune()
                    last_prune = self._clock()
        finally:
            await consumer.close()


def _until(expires_at: Timestamp, now: float) -> float:
    seconds = expires_at.ToMicroseconds() / 1e6 if expires_at.ByteSize() else 0.0
    return seconds if seconds > 0 else now + DEFAULT_KEEP_S
