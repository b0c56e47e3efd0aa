"""Jinja2 for the console's pages: autoescaped (span names, event headers and errors come from
whoever can reach the platform and are untrusted), templates in console/templates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from console.pages import CSS

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,  # every template, whatever its file name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["utc"] = lambda ms: (
    datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"
)


def render(template: str, **context: Any) -> str:
    context.setdefault("refresh", None)
    context.setdefault("css", CSS)
    return _env.get_template(template).render(**context)
