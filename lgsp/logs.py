"""Structured logging on the standard library: JSON lines for machines, text for people.

Every record carries the service name and the trace/span ids of the span current when it
was logged, so a log line leads to its trace in the operator console. Fields passed with
`extra={...}` become JSON keys (or `key=value` pairs in text).

Records bound for an OS stream (stderr, a pipe, a file) are formatted and written by a
background thread (`BackgroundHandler`): the event loop only captures the record and its
span context. A write per record from the event loop cost ~5x its formatting under load,
because each write releases the GIL to the gRPC poller thread (bench/grpc_overhead.py).
Nothing is lost at exit: `flush()` (called by serve_until_signal and logging.shutdown at
interpreter exit) writes what is pending, and a backlog past `max_pending` records is
written by the logging thread itself.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import sys
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

__all__ = [
    "BackgroundHandler",
    "JsonFormatter",
    "RecordMaker",
    "TextFormatter",
    "flush_logs",
    "setup_logging",
]

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

# Set on a record by BackgroundHandler: the span context current when it was logged.
_SPAN_ATTR = "_lgsp_span_context"
_FROZEN_ARG_TYPES = (str, int, float, bool, type(None))
_NOT_EXTRAS = _STANDARD_ATTRS | {_SPAN_ATTR}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _NOT_EXTRAS}


def _trace_ids(record: logging.LogRecord) -> tuple[str, str] | None:
    """(trace_id, span_id) as hex of the span current when `record` was logged, or None."""
    ctx = getattr(record, _SPAN_ATTR, None)
    if ctx is None:  # formatted in the logging thread itself
        ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, trace_id, span_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._encoder = json.JSONEncoder(ensure_ascii=False, default=str)
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds, like datetime.isoformat(timespec="milliseconds")."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            cached = self._second = (second, stamp)
        return f"{cached[1]}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = _trace_ids(record)
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return self._encoder.encode(entry)


class TextFormatter(logging.Formatter):
    """Readable one-liners: time level logger: message key=value… [trace=…]."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        parts = [f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"]
        parts += [f"{k}={v}" for k, v in _extras(record).items()]
        ids = _trace_ids(record)
        if ids is not None:
            parts.append(f"trace={ids[0]}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RecordMaker:
    """Makes the records of one frequent log call (the per-call access log) from a template.

    LogRecord.__init__ spends most of its ~8 µs on values that are the same for every call
    of such a site (source path split into file and module, process name, the message
    format). Here those are computed once, by the logger's own record factory, and each
    record copies them and sets what changes: level, time, thread, arguments and extras.
    The records are ordinary LogRecords: handlers, filters and formatters see no difference.
    """

    def __init__(self, logger: logging.Logger, msg: str, pathname: str) -> None:
        self.logger = logger
        template = logger.makeRecord(logger.name, logging.INFO, pathname, 0, msg, (), None)
        self._template = vars(template).copy()
        self._created = template.created
        self._relative = template.relativeCreated

    def make(self, level: int, args: tuple[Any, ...], extra: dict[str, Any]) -> logging.LogRecord:
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = record.__dict__
        fields.update(self._template)
        now = time.time()
        thread = threading.current_thread()
        fields["levelno"] = level
        fields["levelname"] = logging.getLevelName(level)
        fields["args"] = args
        fields["created"] = now
        fields["msecs"] = (now - int(now)) * 1000
        fields["relativeCreated"] = self._relative + (now - self._created) * 1000
        if logging.logThreads:
            fields["thread"], fields["threadName"] = thread.ident, thread.name
        if logging.logProcesses:
            fields["process"] = os.getpid()
        fields.update(extra)
        return record


class BackgroundHandler(logging.Handler):
    """Formats and writes records to `stream` on a daemon thread, a batch at a time.

    `emit` (on the logging thread) keeps the span context current at that moment, so the
    trace ids are the logging code's, and freezes the message when its arguments are not
    plain values. The writer sleeps until a record comes, then lets `interval` s of records
    gather into one write (none for WARNING and above); an idle process never wakes it.
    `flush()` writes everything pending before it returns; `close()` also stops the thread.
    """

    def __init__(
        self, stream: TextIO, *, interval: float = 0.05, max_pending: int = 10_000
    ) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.max_pending = max_pending
        self._pending: collections.deque[logging.LogRecord] = collections.deque()
        self._write_lock = threading.RLock()  # the writer may log while writing
        self._wake = threading.Event()  # a record is pending
        self._now = threading.Event()  # write it without waiting for more
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_thread()
        _live.add(self)

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lgsp-log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        setattr(record, _SPAN_ATTR, trace.get_current_span().get_span_context())
        if record.args and not all(isinstance(a, _FROZEN_ARG_TYPES) for a in record.args):
            record.msg, record.args = record.getMessage(), None  # args may change later
        self._pending.append(record)
        if self._closed or len(self._pending) >= self.max_pending:
            self.flush()  # the writer cannot keep up: write here rather than grow or drop
            return
        if record.levelno >= logging.WARNING:
            self._now.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._now.wait(self.interval)
            self._wake.clear()
            self._now.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        with self._write_lock:
            pending = self._pending
            lines: list[str] = []
            while pending:
                record = pending.popleft()
                try:
                    lines.append(self.format(record) + "\n")
                except Exception:
                    self.handleError(record)
            if lines:
                try:
                    self.stream.write("".join(lines))
                    self.stream.flush()
                except Exception:
                    self.handleError(record)

    def flush(self) -> None:
        """Write every record emitted so far (from any thread) before returning."""
        self._write_pending()

    def close(self) -> None:
        self._closed = True
        self._now.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()
        _live.discard(self)
        super().close()

    def _after_fork(self) -> None:
        self._pending.clear()  # the parent writes its own records
        self._write_lock = threading.RLock()  # the writer may log while writing
        self._wake = threading.Event()
        self._now = threading.Event()
        if not self._closed:
            self._start_thread()


_live: weakref.WeakSet[BackgroundHandler] = weakref.WeakSet()


def _restart_writers_after_fork() -> None:
    for handler in list(_live):
        handler._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_writers_after_fork)


def flush_logs() -> None:
    """Write the records still pending in background handlers (before exit or a test reads)."""
    for handler in list(_live):
        handler.flush()


def setup_logging(
    service_name: str,
    level: str | int = "INFO",
    json: bool | None = None,
    *,
    stream: TextIO | None = None,
    background: bool | None = None,
    third_party_level: str | int | None = None,
) -> logging.Handler:
    """Route the root logger to one handler on `stream` (stderr by default).

    `json=None` picks JSON when LGSP_LOG_FORMAT=json or the stream is not a terminal, text
    when LGSP_LOG_FORMAT=text or it is one. `background=None` writes through a
    BackgroundHandler when the stream is an OS file (stderr, a pipe), synchronously for
    in-memory streams (tests reading a StringIO). Calling again replaces the handler.
    The loggers of THIRD_PARTY get `third_party_level`, by default the setting
    `[platform] third_party_log_level` as `lgsp up` passes it (WARNING).
    """
    stream = stream if stream is not None else sys.stderr
    if json is None:
        fmt = os.environ.get("LGSP_LOG_FORMAT", "").strip().lower()
        json = fmt == "json" or (fmt != "text" and not _isatty(stream))
    if background is None:
        background = _has_fileno(stream)
    handler: logging.Handler = (
        BackgroundHandler(stream) if background else logging.StreamHandler(stream)
    )
    handler.setFormatter(JsonFormatter(service_name) if json else TextFormatter(service_name))
    handler.set_name("lgsp")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "lgsp"]:
        root.removeHandler(old)
        if isinstance(old, BackgroundHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    if third_party_level is None:
        third_party_level = os.environ.get(THIRD_PARTY_LEVEL_ENV, "").strip() or "WARNING"
    if isinstance(third_party_level, str):
        third_party_level = third_party_level.upper()
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(third_party_level)
    return handler


# Libraries whose INFO lines say nothing an operator acts on (one line per HTTP request of a
# poller, alembic's plugin set-up at every start, aiosmtpd's five per SMTP connection): at
# `[platform] third_party_log_level` (WARNING by default) and above only.
THIRD_PARTY_LEVEL_ENV = "LGSP_PLATFORM_THIRD_PARTY_LOG_LEVEL"
THIRD_PARTY = (
    "alembic",
    "httpx",
    "httpcore",
    "kafka",
    "botocore",
    "boto3",
    "urllib3",
    "elastic_transport",
    "pyhanko",
    "uvicorn.access",
    "fontTools",  # one INFO line per glyph table each time a PDF embeds a font subset
    "fpdf",
    "mail.log",  # aiosmtpd: peer, AUTH mechanisms, EOF… per connection (a health probe too)
    "mail.debug",
    "pymap",
    "grpc._cython",
)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _has_fileno(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError
        return False
    return True
