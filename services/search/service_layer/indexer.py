"""The indexer: documents events in, index batches out, offsets committed after the index.

A projection, not an inbox consumer: the index is derived and rebuildable, so instead of the
platform's processed-event table (committed per event, before a batched index commit could
have made that event durable — a crash between the two would lose it) the indexer commits in
this order, per batch: index → its state store → bus offsets. A crash anywhere redelivers the
batch; every write is idempotent (versions are partition offsets, see projection.py).

Batches: each poll returns what is waiting (up to `max_batch` records); the index is committed
at most every `commit_interval` seconds, so a steady trickle still makes one commit per
interval while a backlog goes through in large batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from google.protobuf.message import Message as ProtoMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from lgsp import events, telemetry
from lgsp.api.events.v1.barrier_pb2 import ReplayBarrier
from lgsp.bus import Bus, Consumer, Message, TopicPartition
from lgsp.inbox import dead_letter_headers
from services.search.adapters.extract import Limits, extract_text
from services.search.adapters.state import StateStore
from services.search.index import IndexedDocument, SearchIndex
from services.search.index.base import copy_key, hidden_by
from services.search.service_layer import projection as pj

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("services.search.indexer")

TOPIC = "lgsp.documents.v1"
_HANDLED = {events.type_name(t) for t in pj.HANDLED}
_BARRIER = events.type_name(ReplayBarrier)


class AttachmentReader(Protocol):
    """Reads an attachment's bytes by sha256 (the documents service's store: shared disk in
    the embedded default, the same S3 bucket in scale-out)."""

    async def read(self, sha256: str) -> bytes: ...


@dataclass
class _Decoded:
    record: Message
    subject: str
    payload: ProtoMessage
    time_s: float  # envelope time, epoch seconds
    text: str = ""
    headers: dict[str, str | bytes] = field(default_factory=dict)


@dataclass
class Indexer:
    index: SearchIndex
    state: StateStore
    attachments: AttachmentReader | None = None
    bus: Bus | None = None  # for dead-lettering malformed records
    limits: Limits = field(default_factory=Limits)
    commit_interval: float = 0.1
    max_batch: int = 1000
    extract_timeout: float = 15.0
    counts: Counter[str] = field(default_factory=Counter)
    # Seconds from each event's time to its index commit, of the last batches (freshness).
    lags: list[float] = field(default_factory=list)
    # ReplayBarrier id -> the partitions it has been read on (lgsp.inbox.publish_barrier).
    barriers: dict[str, set[int]] = field(default_factory=dict)

    # --- the loop ------------------------------------------------------------------------

    async def run(
        self,
        consumer: Consumer,
        stop: asyncio.Event,
        *,
        until_idle: Callable[[], Awaitable[bool]] | None = None,
        on_batch: Callable[[int], None] | None = None,
        switch: Callable[[], bool] | None = None,
        until: Callable[[], bool] | None = None,
    ) -> None:
        """Consume until `stop` is set, or — with `until_idle` — until a poll comes back empty
        and `await until_idle()` says the group has caught up, or `switch()` says the serving
        generation changed (the caller then re-opens), or — with `until` — until a committed
        batch leaves `until()` true (a barrier read on every partition)."""
        pending: list[Message] = []
        last_commit = time.monotonic()
        # A publish wakes an idle poll at once: its timeout only bounds how soon a stop or a
        # generation switch is noticed (a catch-up checks for idleness more often).
        idle_wait = 0.2 if until_idle is not None else 1.0
        while not stop.is_set():
            got = await consumer.poll(
                timeout=0.05 if pending else idle_wait, max_records=self.max_batch
            )
            pending.extend(got)
            due = time.monotonic() - last_commit >= self.commit_interval
            if pending and (due or len(pending) >= self.max_batch):
                await self.apply(pending)
                await consumer.commit(_offsets(pending))
                if on_batch is not None:
                    on_batch(len(pending))
                pending = []
                last_commit = time.monotonic()
                if until is not None and until():
                    return
            if not got and not pending:
                if until is not None and until():
                    return
                if until_idle is not None and await until_idle():
                    return
                if switch is not None and switch():
                    return
        if pending:
            await self.apply(pending)
            await consumer.commit(_offsets(pending))

    # --- one batch -------------------------------------------------------------------------

    async def apply(self, records: Sequence[Message]) -> None:
        decoded = [d for r in records if (d := await self._decode(r)) is not None]
        for d in decoded:
            if isinstance(d.payload, pj.ev.AttachmentAdded):
                d.text = await self._attachment_text(d.payload)
        await asyncio.to_thread(self._write, decoded)

    async def _decode(self, record: Message) -> _Decoded | None:
        try:
            env = events.decode(record.value)
            if env.type == _BARRIER:
                barrier = events.payload_of(env)
                assert isinstance(barrier, ReplayBarrier)
                self.barriers.setdefault(barrier.id, set()).add(record.partition)
                return None
            if env.type not in _HANDLED:
                self.counts["ignored"] += 1
                return None
            payload = events.payload_of(env)
        except events.MalformedEvent as e:
            log.warning("malformed record %s[%d]@%d: %s", record.topic, record.partition,
                        record.offset, e)  # fmt: skip
            self.counts["malformed"] += 1
            await self._dead_letter(record, e)
            return None
        carrier: dict[str, str | bytes] = (
            dict(record.headers) if "traceparent" in record.headers else dict(env.trace_context)
        )
        return _Decoded(
            record, env.subject, payload, env.time.ToDatetime(tzinfo=UTC).timestamp(),
            headers=carrier,
        )  # fmt: skip

    async def _attachment_text(self, added: pj.ev.AttachmentAdded) -> str:
        a = added.attachment
        if self.attachments is None or not a.sha256:
            return ""
        if a.size_bytes > self.limits.max_bytes:
            log.info("attachment %s of %s: too large to extract", a.id, added.document_id)
            return ""
        try:
            data = await self.attachments.read(a.sha256)
            out = await asyncio.wait_for(
                asyncio.to_thread(extract_text, data, a.content_type, self.limits),
                self.extract_timeout,
            )
        except Exception as e:  # missing file, store down past its retries, timeout
            log.warning("attachment %s of %s: no text (%r)", a.id, added.document_id, e)
            self.counts["attachment-failed"] += 1
            return ""
        if out.reason and out.reason not in ("unsupported",):
            log.warning("attachment %s (%s) of %s: %s", a.id, a.file_name, added.document_id,
                        out.reason)  # fmt: skip
            self.counts["attachment-" + out.reason.split(":")[0]] += 1
        return out.text

    def _write(self, decoded: list[_Decoded]) -> None:
        cache: dict[str, pj.DocState | None] = {}
        touched: dict[str, pj.DocState] = {}  # states to store
        actions: dict[str, pj.Action] = {}  # the last index action per document
        groups: set[str] = set()  # the copy keys (base.copy_key) the batch's documents had
        for d in decoded:
            with _tracer.start_as_current_span(
                f"{events.type_name(d.payload)} index",
                context=telemetry.context_from_headers(d.headers),
                kind=SpanKind.CONSUMER,
                attributes={"messaging.destination.name": d.record.topic,
                            "messaging.kafka.offset": d.record.offset,
                            "lgsp.document.id": d.subject},
            ):  # fmt: skip
                if d.subject not in cache:
                    cache[d.subject] = self.state.get(d.subject)
                    if (old := cache[d.subject]) is not None:
                        groups.add(copy_key(old.doc))
                at = datetime.fromtimestamp(d.time_s, UTC)
                try:
                    new, action = pj.apply(
                        cache[d.subject],
                        d.payload,
                        d.record.offset,
                        at,
                        d.text,
                    )
                except Exception:
                    # A projection bug must not stall the index: log, count, move on.
                    log.exception("cannot index %s of %s", type(d.payload).__name__, d.subject)
                    self.counts["failed"] += 1
                    continue
                cache[d.subject] = new
                if new is not None:
                    touched[d.subject] = new
                if action != "none":
                    actions[d.subject] = action
                self.counts["applied"] += 1
        groups.update(copy_key(st.doc) for st in touched.values())
        self._hide_copies(groups - {""}, touched, actions)
        upserts: list[IndexedDocument] = []
        deletes: list[str] = []
        for doc_id, action in actions.items():
            if action == "upsert":
                upserts.append(touched[doc_id].indexed())
            else:
                deletes.append(doc_id)
        with _tracer.start_as_current_span(
            "search index commit", attributes={"upserts": len(upserts), "deletes": len(deletes)}
        ):
            if deletes:
                self.index.delete(deletes)
            if upserts:
                self.index.upsert(upserts)
            self.index.commit()
            for st in touched.values():
                self.state.put(st)
            self.state.commit()
        now = time.time()
        self.lags = [now - d.time_s for d in decoded][-1000:]
        self.counts["committed-batches"] += 1

    def _hide_copies(
        self, keys: set[str], touched: dict[str, pj.DocState], actions: dict[str, pj.Action]
    ) -> None:
        """Re-derives `hidden_by` of every copy of the documents the batch touched (their
        copy key before and after), so that each official finds one copy of a document
        (base.COPY_PREFIX); a copy whose `hidden_by` changed is re-indexed."""
        for st in touched.values():
            if st.doc.hidden_by and not copy_key(st.doc):  # no longer a copy of anything
                st.doc = dataclasses.replace(st.doc, hidden_by=())
                if actions.get(st.doc.id) != "delete" and st.searchable:
                    actions[st.doc.id] = "upsert"
        for key in sorted(keys):
            members = {s.doc.id: s for s in self.state.copies(key) if s.doc.id not in touched}
            members.update({i: s for i, s in touched.items() if copy_key(s.doc) == key})
            copies = {i: s for i, s in members.items() if s.searchable}
            for doc_id, hiders in hidden_by([s.doc for s in copies.values()]).items():
                st = copies[doc_id]
                if st.doc.hidden_by == hiders:
                    continue
                if doc_id not in touched:  # re-read with its attachments' text
                    st = self.state.get(doc_id) or st
                st.doc = dataclasses.replace(st.doc, hidden_by=hiders)
                touched[doc_id] = st
                if actions.get(doc_id) != "delete":
                    actions[doc_id] = "upsert"

    async def _dead_letter(self, record: Message, error: Exception) -> None:
        if self.bus is None:
            return
        reason = getattr(error, "reason", "malformed")
        headers = dead_letter_headers(record, consumer="search-indexer", reason=reason, error=error)
        try:
            await self.bus.publish(events.dlq_topic(record.topic), record.key, record.value,
                                   headers)  # fmt: skip
        except Exception:
            log.exception("dead-letter publish failed; the record is skipped")


def _offsets(records: Sequence[Message]) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        out[tp] = max(out.get(tp, 0), r.offset + 1)
    return out
