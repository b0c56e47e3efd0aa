"""`python -m console`: serve the operator console (and its OTLP receiver) with uvicorn."""

from __future__ import annotations

import logging
import os
import sys

# The console receives everyone's spans; tracing itself would feed it its own exports.
os.environ["OTEL_SDK_DISABLED"] = "true"

import uvicorn

from console.app import create_app
from lgsp.config import ConfigError, load_settings
from lgsp.http_server import run_quietly
from lgsp.logs import setup_logging
from lgsp.tls import uvicorn_ssl


class _QuietOtlp(logging.Filter):
    """Drop access-log lines of OTLP exports: every process posts one every few seconds."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "/v1/traces" not in record.getMessage()


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"console: configuration error:\n{exc}", file=sys.stderr)
        return 2
    # The platform's logging (JSON when asked, libraries at the third-party level): without
    # it the console's own INFO lines (sign-ins, replays) were lost and uvicorn wrote one
    # plain-text line per request.
    setup_logging(
        "console",
        settings.platform.log_level,
        json={"json": True, "text": False}.get(settings.platform.log_format),
        third_party_level=settings.platform.third_party_log_level,
    )
    app = create_app(settings)
    logging.getLogger("uvicorn.access").addFilter(_QuietOtlp())
    print(f"operator console on {settings.console_url}", flush=True)
    run_quietly(
        uvicorn.Config(
            app,
            host=settings.platform.host,
            port=settings.console.port,
            log_config=None,  # the handlers are lgsp.logs' (above); uvicorn's own loggers
            log_level=settings.platform.third_party_log_level.lower(),  # are a library's
            timeout_graceful_shutdown=5,
            **uvicorn_ssl(settings),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
