"""The operator console: health of every component, event lag, and traces received over OTLP.

Run it with `python -m console` (or `lgsp run console`); `create_app` builds the ASGI app.
"""

from console.app import create_app

__all__ = ["create_app"]
