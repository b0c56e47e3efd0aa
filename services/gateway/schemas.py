"""The event schema registry: what each Envelope.type is and which topic carries it, answered
from the protobuf descriptor pool (every lgsp.api module loaded), so it can never disagree with
the generated code. Event types are the messages of each area's events.proto."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from dataclasses import dataclass

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FileDescriptor

from lgsp import events
from lgsp.api.gateway.v1 import gateway_pb2 as pb

__all__ = ["SchemaRegistry"]


@dataclass(frozen=True)
class _Event:
    type: str
    topic: str
    source: str
    file: FileDescriptor
    desc: Descriptor


def _file_set(file: FileDescriptor) -> bytes:
    """A FileDescriptorSet with `file` and its imports, dependencies first."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(f: FileDescriptor) -> None:
        if f.name in seen:
            return
        seen.add(f.name)
        for dep in f.dependencies:
            add(dep)
        proto = out.file.add()
        f.CopyToProto(proto)

    add(file)
    return out.SerializeToString()


class SchemaRegistry:
    def __init__(self, partitions: int = 4) -> None:
        self.partitions = partitions
        events._load_registry()
        import lgsp.api

        found: dict[str, _Event] = {}
        for info in pkgutil.walk_packages(lgsp.api.__path__, prefix="lgsp.api."):
            if not info.name.endswith(".events_pb2"):
                continue
            module = importlib.import_module(info.name)
            file: FileDescriptor = module.DESCRIPTOR
            area = info.name.split(".")[2]
            if area == "events":  # the Envelope itself is not an event
                continue
            for desc in file.message_types_by_name.values():
                found[desc.full_name] = _Event(
                    desc.full_name, events.topic_for_type(desc.full_name), area, file, desc
                )
        self._events = dict(sorted(found.items()))

    def types(self) -> list[str]:
        return list(self._events)

    def schema(self, name: str, *, with_descriptors: bool = True) -> pb.EventSchema | None:
        ev = self._events.get(name)
        if ev is None:
            return None
        proto = descriptor_pb2.DescriptorProto()
        ev.desc.CopyToProto(proto)
        return pb.EventSchema(
            type=ev.type,
            topic=ev.topic,
            source=ev.source,
            proto_file=ev.file.name,
            file_descriptor_set=_file_set(ev.file) if with_descriptors else b"",
            fingerprint=hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest(),
        )

    def list_schemas(self, topic: str = "", source: str = "") -> list[pb.EventSchema]:
        return [
            s
            for name, ev in self._events.items()
            if (not topic or ev.topic == topic) and (not source or ev.source == source)
            if (s := self.schema(name, with_descriptors=False)) is not None
        ]

    def topics(self) -> list[pb.Topic]:
        by_topic: dict[str, list[_Event]] = {}
        for ev in self._events.values():
            by_topic.setdefault(ev.topic, []).append(ev)
        return [
            pb.Topic(
                name=name,
                partitions=self.partitions,
                owner=evs[0].source,
                event_types=[e.type for e in evs],
            )
            for name, evs in sorted(by_topic.items())
        ]
