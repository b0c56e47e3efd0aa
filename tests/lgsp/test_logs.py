"""Quiet logs: libraries' loggers at the third-party level (WARNING unless the setting lowers
it), and the background writer still writing promptly although it now sleeps when idle."""

from __future__ import annotations

import logging
import os
import time

import pytest

from lgsp.config import load_settings
from lgsp.logs import THIRD_PARTY, THIRD_PARTY_LEVEL_ENV, setup_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in [h for h in root.handlers if h.get_name() == "lgsp"]:
        root.removeHandler(h)
        h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.WARNING)


def test_library_info_lines_are_dropped_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.delenv(THIRD_PARTY_LEVEL_ENV, raising=False)
    out = io.StringIO()
    setup_logging("t", "INFO", json=False, stream=out)
    for name in ("httpx", "alembic.runtime.migration", "kafka.conn", "mail.log", "pymap"):
        logging.getLogger(name).info("noise from %s", name)
    logging.getLogger("httpx").warning("a library warning")
    logging.getLogger("services.documents").info("document issued")
    text = out.getvalue()
    assert "noise from" not in text
    assert "a library warning" in text and "document issued" in text


def test_the_setting_lowers_the_library_level(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    settings = load_settings(env={"LGSP_PLATFORM_THIRD_PARTY_LOG_LEVEL": "DEBUG"})
    assert settings.platform.third_party_log_level == "DEBUG"
    # lgsp up hands every setting to its children as LGSP_* variables
    monkeypatch.setenv(THIRD_PARTY_LEVEL_ENV, settings.to_env()[THIRD_PARTY_LEVEL_ENV])
    out = io.StringIO()
    setup_logging("t", "DEBUG", json=False, stream=out)
    logging.getLogger("httpx").debug("HTTP Request: GET http://axis/poll")
    assert "HTTP Request: GET http://axis/poll" in out.getvalue()


def test_a_bad_third_party_level_is_a_configuration_error() -> None:
    from lgsp.config import ConfigError

    with pytest.raises(ConfigError, match="THIRD_PARTY_LOG_LEVEL: expected one of DEBUG, INFO"):
        load_settings(env={"LGSP_PLATFORM_THIRD_PARTY_LOG_LEVEL": "LOUD"})


def test_background_writer_writes_info_within_its_interval_and_warnings_at_once() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    stream = os.fdopen(write_fd, "w")
    handler = setup_logging("t", "INFO", json=False, stream=stream, background=True)
    try:
        log = logging.getLogger("tests.quiet")
        for level, limit in ((logging.INFO, 1.0), (logging.WARNING, 0.5)):
            time.sleep(0.3)  # the writer has gone back to sleep
            started = time.monotonic()
            log.log(level, "line at %s", level)
            got = b""
            while b"line at" not in got and time.monotonic() - started < 3:
                try:
                    got += os.read(read_fd, 4096)
                except BlockingIOError:
                    time.sleep(0.005)
            assert f"line at {level}".encode() in got
            assert time.monotonic() - started < limit
    finally:
        handler.close()
        stream.close()
        os.close(read_fd)
