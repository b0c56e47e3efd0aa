"""Structured logging on the standard library: JSON lines for machines, text for people.

Every record carries the service name and the trace/span ids of the span current when it
was logged, so a log line leads to its trace in the operator console. Fields passed with
`extra={...}` become JSON keys (or `key=value` pairs in text).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from lgsp.telemetry import current_trace_ids

__all__ = ["JsonFormatter", "TextFormatter", "setup_logging"]

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, trace_id, span_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = current_trace_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable one-liners: time level logger: message key=value… [trace=…]."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        parts = [f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"]
        parts += [f"{k}={v}" for k, v in _extras(record).items()]
        ids = current_trace_ids()
        if ids is not None:
            parts.append(f"trace={ids[0]}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(
    service_name: str,
    level: str | int = "INFO",
    json: bool | None = None,
    *,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route the root logger to one handler on `stream` (stderr by default).

    `json=None` picks JSON when LGSP_LOG_FORMAT=json or the stream is not a terminal, text
    when LGSP_LOG_FORMAT=text or it is one. Calling again replaces the handler.
    """
    stream = stream if stream is not None else sys.stderr
    if json is None:
        fmt = os.environ.get("LGSP_LOG_FORMAT", "").strip().lower()
        json = fmt == "json" or (fmt != "text" and not _isatty(stream))
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(service_name) if json else TextFormatter(service_name))
    handler.set_name("lgsp")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "lgsp"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
