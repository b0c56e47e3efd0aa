"""Event bus: one interface (lgsp.bus.base), an embedded SQLite log and a Kafka backend.

`open_bus("sqlite:///var/lgsp/bus.db")` or `open_bus("kafka://host:9092,host2:9092")`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from lgsp.bus.base import Bus, BusError, Consumer, Headers, Message, TopicPartition
from lgsp.bus.loop import run_consumer

__all__ = [
    "Bus",
    "BusError",
    "Consumer",
    "Headers",
    "Message",
    "TopicPartition",
    "interactive_options",
    "open_bus",
    "run_consumer",
]


def interactive_options(url: str) -> dict[str, object]:
    """Options for a bus a person waits on (a command): a broker that is down is reported
    within about five seconds instead of the services' patient defaults."""
    if url.startswith("kafka://"):
        return {"request_timeout_ms": 5000, "publish_timeout": 5.0}
    return {}


def open_bus(url: str, *, client_id: str = "lgsp", **options: object) -> Bus:
    """The bus named by `url`; `options` go to the backend's constructor.

    - ``sqlite:///relative/path.db`` or ``sqlite:////abs/path.db`` (SQLAlchemy's convention):
      embedded log (lgsp.bus.embedded.EmbeddedBus, default 4 partitions per topic).
    - ``kafka://host:port[,host:port]``: Kafka (lgsp.bus.kafka.KafkaBus, default 3 partitions).
    """
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise BusError(f"bad sqlite bus url {url!r}: expected sqlite:///path.db")
        from lgsp.bus.embedded import EmbeddedBus

        return EmbeddedBus(rest[1:], client_id=client_id, **options)  # type: ignore[arg-type]
    if scheme == "kafka":
        netloc = urlsplit(url).netloc
        servers = [s for s in netloc.split(",") if s]
        if not servers:
            raise BusError(f"bad kafka bus url {url!r}: expected kafka://host:port[,host:port]")
        from lgsp.bus.kafka import KafkaBus

        return KafkaBus(servers, client_id=client_id, **options)  # type: ignore[arg-type]
    raise BusError(f"unknown bus url scheme in {url!r} (expected sqlite:// or kafka://)")
