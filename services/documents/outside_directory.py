"""The agencies outside the province, as the national document axis lists them: what an
outside recipient's code is checked against when a draft is made.

The list is fetched when the service starts and every `refresh_seconds` after; while it has
never been fetched (the axis unreachable) `knows` answers None and any well-formed code is
accepted — the relay then fails an unknown recipient alone, on its recipient line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from lgsp.connectors.errors import ConnectorError

log = logging.getLogger("services.documents.outside_directory")


class OutsideDirectory:
    def __init__(
        self,
        fetch: Callable[[], Awaitable[Iterable[Any]]],
        *,
        refresh_seconds: float = 600.0,
        retry_seconds: float = 30.0,
    ) -> None:
        self._fetch = fetch  # → objects with .code and .name (lgsp.connectors.document_axis)
        self._names: dict[str, str] | None = None
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds

    def knows(self, code: str) -> bool | None:
        """Whether the axis lists `code`; None before the first successful fetch."""
        return None if self._names is None else code in self._names

    def name_of(self, code: str) -> str:
        return (self._names or {}).get(code, "")

    def load(self, agencies: Iterable[Any]) -> None:
        self._names = {a.code: a.name for a in agencies}

    async def refresh(self) -> None:
        before = None if self._names is None else len(self._names)
        self.load(await self._fetch())
        if before != len(self._names or {}):  # one line when the list changes, not per round
            log.info("national axis directory: %d agencies", len(self._names or {}))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = self.refresh_seconds
            try:
                await self.refresh()
            except ConnectorError as e:
                log.debug("national axis directory not fetched: %s", e)
                wait = self.retry_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
