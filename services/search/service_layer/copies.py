"""Where a hit was sent and received: the other copies of its document the caller may read.

The index finds one copy per document for each caller (base.COPY_PREFIX); the others are
looked up here in the indexer's state store (copies share `base.copy_key`), and each is
shown only if the caller could have found it: the same readers terms, the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.search.adapters.state import StateStore
from services.search.index.base import Caller, copy_key, copy_order, readers, rights_terms
from services.search.service_layer.projection import DocState

MAX_COPIES = 200  # per hit: a circular sent to every agency of a province stays listable


@dataclass(frozen=True, slots=True)
class Copy:
    id: str
    agency_code: str
    direction: str  # outgoing | incoming
    status: str
    arrival_date: str  # YYYY-MM-DD, incoming only


@dataclass(frozen=True, slots=True)
class Copies:
    others: tuple[Copy, ...]  # the other copies the caller may read, the sender's first
    sent_to: tuple[str, ...]  # recipients, when the caller may read the sender's copy


def copies_of(state: StateStore, hit_ids: list[str], caller: Caller) -> dict[str, Copies]:
    """For each hit that has other copies the caller may read: those copies."""
    may = set(rights_terms(caller))
    out: dict[str, Copies] = {}
    groups: dict[str, list[DocState]] = {}
    for doc_id, st in state.docs(hit_ids).items():
        key = copy_key(st.doc)
        if not key:
            continue
        if key not in groups:
            found = [c for c in state.copies(key) if c.searchable and may & set(readers(c.doc))]
            groups[key] = sorted(found, key=lambda c: copy_order(c.doc))
        mine = groups[key]
        sender = next((c for c in mine if c.doc.direction != "incoming"), None)
        others = tuple(
            Copy(
                c.doc.id,
                c.doc.agency_code,
                c.doc.direction,
                c.doc.status,
                c.doc.arrival_date.isoformat() if c.doc.arrival_date else "",
            )
            for c in mine
            if c.doc.id != doc_id
        )[:MAX_COPIES]
        sent_to = sender.delivered if sender is not None else ()
        if others or sent_to:
            out[doc_id] = Copies(others, tuple(sent_to))
    return out
