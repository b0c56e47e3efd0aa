"""The service plugin contract, and the discovery of installed services.

A service is a folder, ``services/<name>/``, whose ``plugin.py`` declares ``PLUGIN``: its
name, its settings section (a `ServiceSettings` subclass: defaults and validation), the
`wire(runtime)` function that builds its objects once the database engine and the bus are
open, its `lgsp` command group, and the API areas the gateway routes to it. The platform
builds everything else from the plugins it finds: the settings schema, the runner's
components, the gateway's routes and the `lgsp` subcommands. Nothing in lgsp/ names a
service.

`wire` is the service's one composition root (cosmicpython's ``bootstrap``): it builds the
adapters and use cases, hands each only what it needs, and returns a `Wiring`; tests and
benchmarks pass their own dependencies as keyword options (`Plugin.with_options`) instead
of patching module state. Discovery imports every plugin module in every process (to read
the settings schema), so `wire` and `cli` are named as "module:function" and imported only
when used:

    PLUGIN = Plugin(
        name="search",
        description="document search",
        settings=SearchSettings,
        wire="services.search.bootstrap:wire_service",
        cli="services.search.cli:register",
        migrations=Path(__file__).parent / "migrations",
        routes=("search",),
        public_methods=("/lgsp.api.search.v1.SearchService/Search",),  # if it were public
    )
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from google.protobuf.message import Message as ProtoMessage

    from lgsp.app import ServiceRuntime
    from lgsp.auth import Authenticator
    from lgsp.config import ServiceSettings
    from lgsp.inbox import Handler

PACKAGE = "services"


@dataclass(frozen=True)
class Subscription:
    """A consumer group reading `topics`, handing each event type to its handler."""

    group: str
    topics: Sequence[str]
    handlers: Mapping[str | type[ProtoMessage], Handler]
    max_attempts: int = 5


# The generated add_<Service>Servicer_to_server function and the servicer it registers.
ServicerPair = tuple[Callable[[Any, Any], None], Any]
# A task run beside the server until the stop event is set (an HTTP listener, a poller…).
Background = Callable[["asyncio.Event"], Awaitable[None]]


@dataclass(frozen=True)
class Wiring:
    """What a service's `wire(runtime)` built: the runtime serves and runs it."""

    servicers: Sequence[ServicerPair] = ()
    subscriptions: Sequence[Subscription] = ()
    background: Sequence[Background] = ()
    # The gRPC token checks; None = anonymous calls allowed.
    authenticator: Authenticator | None = None
    public_methods: Sequence[str] = ()
    # Called after the server drained and the background tasks ended, in this order.
    closers: Sequence[Callable[[], Awaitable[None]]] = ()
    # The service's composition root (its use cases), for tests and benchmarks.
    app: Any = None


@dataclass(frozen=True)
class Plugin:
    """One service, as the platform sees it."""

    name: str
    description: str
    settings: type[ServiceSettings]
    # wire(runtime, **options) -> Wiring, called once after the engine and the bus are open;
    # a function or its "module:function" name.
    wire: Callable[..., Wiring] | str
    migrations: Path | None = None
    # register(subparsers): adds the service's `lgsp` command group(s) (see lgsp.cli); a
    # function, its "module:function" name, or several names.
    cli: Callable[[Any], None] | str | Sequence[str] | None = None
    # backup(settings) -> [lgsp.backup.Item]: what the service keeps besides its database
    # (keys, an index…), for `lgsp backup`; a "module:function" name.
    backup: Callable[[Any], Any] | str | None = None
    # API areas (lgsp.api.<area>.v1) the gateway routes to this service's gRPC port.
    routes: Sequence[str] = ()
    # Full method paths ("/lgsp.api.<area>.v1.<Service>/<Method>") callable without a token:
    # the service's own server and the gateway (rate-limited per caller address) admit
    # anonymous calls to them, and only to them.
    public_methods: Sequence[str] = ()
    # Start order among services (lower first); the gateway, which routes to all, goes first.
    order: int = 50
    grace_seconds: float = 10.0
    # Keyword arguments for `wire` (tests, benchmarks): their own directory, authenticator…
    options: Mapping[str, Any] = field(default_factory=dict)

    def with_options(self, **options: Any) -> Plugin:
        return dataclasses.replace(self, options={**self.options, **options})

    def wire_runtime(self, runtime: ServiceRuntime) -> Wiring:
        """Run the service's composition root with the plugin's options."""
        wiring: Wiring = resolve(self.wire)(runtime, **self.options)
        return wiring

    def register_cli(self, subparsers: Any) -> None:
        """Add the service's command groups to the `lgsp` parser."""
        refs = [self.cli] if callable(self.cli) or isinstance(self.cli, str) else self.cli or []
        for ref in refs:
            resolve(ref)(subparsers)


def resolve(ref: Callable[..., Any] | str) -> Callable[..., Any]:
    """A function, or the function a "module:function" name names (imported now)."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    if not name:
        raise PluginError(f"{ref!r}: expected 'module:function'")
    found = getattr(importlib.import_module(module), name, None)
    if not callable(found):
        raise PluginError(f"{ref!r} names no function")
    return found


class PluginError(Exception):
    """A folder under services/ declares no usable plugin."""


_found: dict[tuple[str, ...], dict[str, Plugin]] = {}


def discover() -> dict[str, Plugin]:
    """Every installed service's plugin by name, in start order (cached per search path)."""
    locations = tuple(str(p) for p in package_locations(PACKAGE))
    if locations not in _found:
        plugins: dict[str, Plugin] = {}
        for location in locations:
            for path in sorted(Path(location).glob("*/plugin.py")):
                name = path.parent.name
                if name.startswith(("_", ".")) or name in plugins:
                    continue
                plugins[name] = load(name)
        ordered = sorted(plugins.values(), key=lambda p: (p.order, p.name))
        _found[locations] = {p.name: p for p in ordered}
    return _found[locations]


def load(name: str) -> Plugin:
    """The plugin declared by services/<name>/plugin.py."""
    module = importlib.import_module(f"{PACKAGE}.{name}.plugin")
    plugin = getattr(module, "PLUGIN", None)
    if not isinstance(plugin, Plugin):
        raise PluginError(f"{module.__name__} declares no PLUGIN = lgsp.plugins.Plugin(…)")
    if plugin.name != name:
        raise PluginError(f"{module.__name__}: PLUGIN.name is {plugin.name!r}, not {name!r}")
    return plugin


def package_locations(package: str) -> list[Path]:
    """The folders a package's modules are found in (several when it spans sys.path)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or spec.submodule_search_locations is None:
        return []
    return [Path(p) for p in spec.submodule_search_locations]
