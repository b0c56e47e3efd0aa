"""Jinja2 for the console's pages: autoescape on for every template, the shared layout in
templates/base.html, and the signed-in operator and CSRF token in every page's context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from console.pages import fmt_duration, fmt_time

ENV = Environment(
    loader=PackageLoader("console", "templates"),
    autoescape=True,  # span names and attributes come from outside: escape everything
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


ENV.filters["time_ns"] = fmt_time
ENV.filters["duration_ns"] = fmt_duration
ENV.filters["utc"] = lambda ms: (
    datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"
)


def _session_context(request: Request) -> dict[str, Any]:
    return {
        "user": getattr(request.state, "user", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
    }


templates = Jinja2Templates(env=ENV, context_processors=[_session_context])


def render(request: Request, template: str, **context: Any) -> str:
    """A page as a string, with the signed-in operator and CSRF token as every page has them."""
    context.setdefault("refresh", None)
    return ENV.get_template(template).render(**_session_context(request), **context)
