"""Platform configuration: one frozen Settings object for every process.

Sources, lowest to highest precedence: built-in defaults, one TOML file (``--config PATH``,
else ``LGSP_CONFIG``, else ``./lgsp.toml`` if it exists), environment variables
``LGSP_<SECTION>_<KEY>`` (``LGSP_BUS_URL``, ``LGSP_DOCUMENTS_GRPC_PORT``…). Anything unknown
or malformed stops start-up with a ConfigError naming the key and where it came from: a typo
in a production config must never silently fall back to a default.

Section names contain no underscore, so ``LGSP_DOCUMENTS_DATABASE_URL`` splits unambiguously
into section ``documents`` and key ``database_url``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENV_PREFIX = "LGSP_"
CONFIG_ENV = "LGSP_CONFIG"
# LGSP_* variables that are not settings; everything else under the prefix must be known.
RESERVED_ENV = frozenset(
    {
        CONFIG_ENV,
        "LGSP_LOG_FORMAT",  # read by lgsp.logs; process_env sets it from platform.log_format
        "LGSP_FAULTS",  # fault injection for crash tests (lgsp.db)
        "LGSP_TRACEBACK",  # lgsp.cli: show a failed command's whole traceback
    }
)
RESERVED_ENV_PREFIXES = ("LGSP_TEST_",)  # test fixtures' own knobs
DEFAULT_CONFIG_FILE = "lgsp.toml"

# Package name under national/ -> port key in [national].
NATIONAL_MOCKS = {
    "population": "population_port",
    "business_registry": "business_registry_port",
    "document_axis": "document_axis_port",
    "public_service_portal": "public_service_portal_port",
    "payment": "payment_port",
}
MASK = "********"


class ConfigError(Exception):
    """The configuration cannot be used; the message names every offending key and source."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --- field helpers: the metadata drives validation, masking and docs ---------------------


def port_field(default: int, *, listen: bool = True) -> Any:
    """A TCP port; `listen=False` for a port of another host (never checked for clashes)."""
    return field(default=default, metadata={"port": True, "listen": listen})


def url_field(default: str, *schemes: str) -> Any:
    """A URL whose scheme must be one of `schemes`; "" means "not set / derived"."""
    return field(default=default, metadata={"schemes": schemes})


def address_field() -> Any:
    """Where the other processes reach a component, "HOST:PORT" ("" = derived: lgsp.config.peer)."""
    return field(default="", metadata={"address": True})


def choice_field(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": choices})


def num_field(default: float, lo: float | None = None, hi: float | None = None) -> Any:
    return field(default=default, metadata={"min": lo, "max": hi})


def secret_field(default: str = "") -> Any:
    return field(default=default, metadata={"secret": True})


def _dates() -> Any:
    """Comma-separated ISO dates ("2026-02-13, 2026-02-28"); "" for none."""
    return field(default="", metadata={"dates": True})


def parse_dates(text: str) -> list[date]:
    """The dates of a `_dates()` setting; ValueError naming the first bad one."""
    found: list[date] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            found.append(date.fromisoformat(part.strip()))
        except ValueError:
            raise ValueError(
                f"expected comma-separated ISO dates (YYYY-MM-DD), got bad date {part.strip()!r}"
            ) from None
    return found


DB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
HTTP_SCHEMES = ("http", "https")


# --- sections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformSettings:
    data_dir: str = "./data"
    host: str = "127.0.0.1"
    log_level: str = choice_field("INFO", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    # Libraries' loggers (lgsp.logs.THIRD_PARTY: httpx, alembic, kafka, aiosmtpd…): their INFO
    # lines are one per poller request or per start; lower this to debug them.
    third_party_log_level: str = choice_field(
        "WARNING", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"
    )
    # auto: JSON when a process's log stream is not a terminal (lgsp.logs decides).
    log_format: str = choice_field("auto", "auto", "text", "json")
    # Each service process serves Prometheus metrics on its [<service>] metrics_port.
    metrics: bool = True


@dataclass(frozen=True)
class BusSettings:
    # "" = sqlite:///<data_dir>/bus.db; kafka://host:port[,host:port…] for the scale-out stack.
    url: str = url_field("", "sqlite", "kafka")
    partitions: int = num_field(4, 1, 1024)  # the embedded bus's default


@dataclass(frozen=True)
class TelemetrySettings:
    enabled: bool = True
    # "" = the operator console's OTLP/HTTP receiver (http://<host>:<console.port>).
    otlp_endpoint: str = url_field("", *HTTP_SCHEMES)
    sampling_ratio: float = num_field(1.0, 0.0, 1.0)


@dataclass(frozen=True)
class ConsoleSettings:
    port: int = port_field(8100)
    retention_spans: int = num_field(200_000, 100)
    retention_hours: float = num_field(24.0, 0.01)
    max_otlp_bytes: int = num_field(8 * 1024 * 1024, 1024)
    # "" = the per-installation token in <data_dir>/console-otlp.token (lgsp.otlp_token).
    otlp_token: str = secret_field()
    # OpenID Connect client the console signs operators in with (identity's demo seed
    # registers `console` with <console_url>auth/callback as its redirect URI).
    oidc_client_id: str = "console"
    session_hours: float = num_field(8.0, 0.1, 24.0)
    # The figures page calls documents and dossiers as this identity client ("" secret = the
    # one identity's demo seed wrote), for this agency and every agency below it.
    client_id: str = "lgsp-console"
    client_secret: str = secret_field()
    figures_agency_code: str = "000.00.00.H27"
    # Where the other processes reach the console (OTLP, links); "" = <platform.host>:<port>.
    address: str = address_field()


@dataclass(frozen=True)
class ServiceSettings:
    """The settings section every service plugin extends with its own keys.

    A subclass is a frozen dataclass built with the field helpers above; its defaults are the
    service's, its `derived` fills what depends on other settings, its `problems` are the
    cross-checks of its own keys and `endpoints` says where it listens."""

    grpc_port: int = port_field(0)
    # "" = sqlite:///<data_dir>/<service>.db
    database_url: str = url_field("", *DB_SCHEMES)
    # Prometheus /metrics of the service's process (lgsp.metrics); 0 = its gRPC port + 1000.
    metrics_port: int = num_field(0, 0, 65535)
    # Where the other processes reach this service ("documents:50052" in a container per
    # service); "" = <platform.host>:<grpc_port>. Its other ports are reached on that host.
    address: str = address_field()

    def metrics_listen_port(self) -> int:
        return self.metrics_port or self.grpc_port + 1000

    def derived(self, name: str, data_dir: Path) -> ServiceSettings:
        """These settings with what is derived from the platform's filled in."""
        if self.database_url:
            return self
        return dataclasses.replace(self, database_url=f"sqlite:///{data_dir / (name + '.db')}")

    def problems(self) -> list[tuple[str, str]]:
        """(key, message) for each combination of this section's values that cannot work."""
        return []

    def endpoints(self, name: str, host: str) -> list[Endpoint]:
        """Where the service listens: its gRPC port, plus what a subclass adds."""
        return [Endpoint(name, "grpc", host, self.grpc_port)]


@dataclass(frozen=True)
class AttachmentsSettings:
    backend: str = choice_field("disk", "disk", "s3")
    dir: str = ""  # "" = <data_dir>/attachments
    s3_endpoint: str = url_field("", *HTTP_SCHEMES)
    s3_bucket: str = "lgsp-attachments"
    s3_region: str = "us-east-1"
    s3_access_key: str = secret_field()
    s3_secret_key: str = secret_field()


@dataclass(frozen=True)
class CalendarSettings:
    """The province's own changes to the national working-day calendar (lgsp.workdays)."""

    days_off: str = _dates()  # extra days off the province declares
    working_days: str = _dates()  # make-up working days (Saturdays worked in exchange)


@dataclass(frozen=True)
class NationalSettings:
    # Key the connectors send to the national systems (the mocks accept this one by default).
    api_key: str = secret_field("lgsp-dev-key")
    # Where the connectors reach each system ("" = http://<platform.host>:<its port>): the
    # mocks' containers ("http://population:8201") or the real national systems.
    population_url: str = url_field("", *HTTP_SCHEMES)
    business_registry_url: str = url_field("", *HTTP_SCHEMES)
    document_axis_url: str = url_field("", *HTTP_SCHEMES)
    public_service_portal_url: str = url_field("", *HTTP_SCHEMES)
    payment_url: str = url_field("", *HTTP_SCHEMES)
    population_port: int = port_field(8201)
    business_registry_port: int = port_field(8202)
    document_axis_port: int = port_field(8203)
    public_service_portal_port: int = port_field(8204)
    payment_port: int = port_field(8205)


@dataclass(frozen=True)
class TlsSettings:
    """TLS on every listener of the platform (lgsp.tls): gRPC, HTTP, metrics, OTLP."""

    enabled: bool = False
    # PEM files; "" = a server certificate the development CA (<data_dir>/ca) issues into
    # <data_dir>/tls/ for `hosts`, and that CA's root as ca_file. With your own cert_file and
    # key_file, ca_file "" = the system's trust store.
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    # Extra names (comma-separated DNS names or IP addresses) the issued certificate covers
    # besides loopback, platform.host, this machine's name and every component's name.
    hosts: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One listening socket of one component, for the runner's table and console health."""

    component: str
    protocol: str  # "grpc", "http", "smtp", "otlp/http"
    host: str
    port: int
    what: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Peer:
    """Where the other processes reach one component: `peer(settings, name)`."""

    component: str
    host: str  # as it goes in a URL or a gRPC target: "documents", "127.0.0.1", "[::1]"
    port: int  # its main port: a service's gRPC port, the console's, a national system's
    base_url: str  # http(s)://host:port[/path]: the console, a national system
    listen_port: int  # the port setting it listens on (an endpoint there is reached at port)
    scheme: str = "http"  # of its other HTTP ports: https when [tls] is enabled

    @property
    def address(self) -> str:
        """HOST:PORT, a gRPC target."""
        return f"{self.host}:{self.port}"

    def url(self, port: int | None = None) -> str:
        """scheme://host:port of another of its ports (its HTTP side), or its base URL."""
        if port is None or port == self.port:
            return self.base_url
        return f"{self.scheme}://{self.host}:{port}"

    def reach(self, endpoint: Endpoint) -> Endpoint:
        """One of the component's listening endpoints, as the other processes reach it."""
        port = self.port if endpoint.port == self.listen_port else endpoint.port
        return dataclasses.replace(endpoint, host=self.host, port=port)


def peer(settings: Settings, component: str) -> Peer:
    """Where `component` (a service, "console" or a national system) is reached: its
    `address` / `[national] <name>_url` setting, else platform.host (a wildcard listen
    address reached on loopback) and its port. Every client of a peer asks here; none formats
    host:port itself. KeyError for an unknown component."""
    default_host = _url_host(settings.platform.host)
    scheme = settings.http_scheme
    if component in NATIONAL_MOCKS:
        port = getattr(settings.national, NATIONAL_MOCKS[component])
        url = getattr(settings.national, f"{component}_url").rstrip("/")
        if not url:
            base = f"{scheme}://{default_host}:{port}"
            return Peer(component, default_host, port, base, port, scheme)
        parts = urlsplit(url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else str(parts.hostname)
        default = 443 if parts.scheme == "https" else 80
        return Peer(component, host, parts.port or default, url, port, parts.scheme)
    if component == "console":
        listen, given = settings.console.port, settings.console.address
    else:
        section = settings.service(component)
        listen, given = section.grpc_port, section.address
    host, port = _split_address(given) if given else (default_host, listen)
    return Peer(component, host, port, f"{scheme}://{host}:{port}", listen, scheme)


def _split_address(address: str) -> tuple[str, int]:
    """("host", port) of "HOST:PORT" ("[v6]:PORT" keeps its brackets); ValueError if not."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (e.g. documents:50052), got {address!r}")
    if ":" in host and not host.startswith("["):
        raise ValueError(f"expected [IPv6]:PORT with brackets, got {address!r}")
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    attachments: AttachmentsSettings = field(default_factory=AttachmentsSettings)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    national: NationalSettings = field(default_factory=NationalSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    # One section per installed service, from its plugin (lgsp.plugins): read as
    # settings.documents, settings.service("documents").
    services: Mapping[str, ServiceSettings] = field(default_factory=lambda: _default_services())
    # Absolute path of the TOML file these settings came from (not itself a setting).
    config_file: str | None = field(default=None, compare=False)

    def __getattr__(self, name: str) -> Any:
        # Only reached when no field matched: a service's section by its name.
        if name.startswith("__") or name == "services":
            raise AttributeError(name)
        try:
            return self.services[name]
        except KeyError:
            raise AttributeError(
                f"no settings section {name!r} (services installed: "
                f"{', '.join(self.services) or 'none'})"
            ) from None

    @property
    def data_dir(self) -> Path:
        return Path(self.platform.data_dir)

    def service(self, name: str) -> ServiceSettings:
        """The section of service `name` (gateway, identity, documents, …); KeyError if none."""
        return self.services[name]

    def sections(self) -> list[tuple[str, Any]]:
        """(name, section) of the core's sections, then each installed service's."""
        return [(n, getattr(self, n)) for n in _core_section_names()] + list(self.services.items())

    def with_section(self, name: str, section: Any) -> Settings:
        """A copy with one section (core or service) replaced."""
        if name in self.services:
            return dataclasses.replace(self, services={**self.services, name: section})
        return dataclasses.replace(self, **{name: section})

    def peer_hosts(self) -> list[str]:
        """The hosts the services and the console are reached at (`peer()`), brackets off:
        what a server certificate for the platform must name. Not the national systems' URLs:
        those name the real systems, which have certificates of their own."""
        return [peer(self, name).host.strip("[]") for name in ("console", *self.services)]

    @property
    def http_scheme(self) -> str:
        """The scheme of the platform's own HTTP listeners: https when [tls] is enabled."""
        return "https" if self.tls.enabled else "http"

    @property
    def console_url(self) -> str:
        return f"{self.console_otlp_endpoint}/"

    @property
    def console_otlp_endpoint(self) -> str:
        """The console's own OTLP receiver (only it is sent the installation's token)."""
        return peer(self, "console").url()

    def endpoints(self, component: str | None = None) -> list[Endpoint]:
        """Where each known component listens (all of them, or only `component`'s)."""
        host = self.platform.host
        eps = [
            Endpoint("console", "http", host, self.console.port, "operator console + OTLP"),
        ]
        for name, section in self.services.items():
            eps.extend(section.endpoints(name, host))
        for mock, key in NATIONAL_MOCKS.items():
            eps.append(Endpoint(mock, "http", host, getattr(self.national, key)))
        if component is not None:
            eps = [e for e in eps if e.component == component]
        return eps

    def dump(self, mask_secrets: bool = True) -> str:
        """The effective settings as TOML (loadable again with load_settings)."""
        out: list[str] = []
        for section_name, section in self.sections():
            out.append(f"[{section_name}]")
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if mask_secrets:
                    value = _masked(f, value)
                out.append(f"{f.name} = {_toml_value(value)}")
            out.append("")
        return "\n".join(out)

    def to_env(self) -> dict[str, str]:
        """Every setting as LGSP_<SECTION>_<KEY>, so a child process sees exactly these."""
        env: dict[str, str] = {}
        for section_name, section in self.sections():
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                env[f"{ENV_PREFIX}{section_name.upper()}_{f.name.upper()}"] = text
        return env

    def process_env(self, component: str, *, telemetry: bool = True) -> dict[str, str]:
        """Environment additions for the child process running `component`.

        The OTEL_* variables are the SDK's standard ones, so lgsp.telemetry (or any OTLP
        exporter) picks them up without reading Settings.
        """
        env = self.to_env()
        if self.config_file:
            env[CONFIG_ENV] = self.config_file
        env["OTEL_SERVICE_NAME"] = component
        if self.platform.log_format != "auto":
            env["LGSP_LOG_FORMAT"] = self.platform.log_format
        if telemetry and self.telemetry.enabled:
            env["OTEL_SDK_DISABLED"] = "false"
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.telemetry.otlp_endpoint
            env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
            env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            env["OTEL_TRACES_SAMPLER_ARG"] = repr(self.telemetry.sampling_ratio)
            # Only the console is sent the token (a collector elsewhere is not), unless it
            # was configured for a stack whose console is not on platform.host.
            if (
                self.telemetry.otlp_endpoint == self.console_otlp_endpoint
                or self.console.otlp_token
            ):
                from lgsp.otlp_token import HEADER, installation_token

                token = installation_token(self.platform.data_dir, self.console.otlp_token)
                env["OTEL_EXPORTER_OTLP_HEADERS"] = f"{HEADER}={token}"
        else:
            env["OTEL_SDK_DISABLED"] = "true"
        if self.tls.enabled:
            from lgsp.tls import trust_env

            env.update(trust_env(self))
        return env


# --- loading -------------------------------------------------------------------------------


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults < TOML file < LGSP_* environment variables, validated; raises ConfigError."""
    env = os.environ if env is None else env
    problems: list[str] = []
    raw: dict[str, dict[str, tuple[Any, str]]] = {}  # section -> key -> (value, source)
    config_file = _find_config_file(path, env, problems)
    if config_file is not None:
        _read_file(config_file, raw, problems)
    _read_env(env, raw, problems)

    schema = _schema()
    sections: dict[str, Any] = {}
    for name, cls in schema.items():
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        known = {sf.name: sf for sf in dataclasses.fields(cls)}
        for key, (value, source) in raw.get(name, {}).items():
            try:
                from_env = source.startswith("env ")
                values[key] = _coerce(value, hints[key], known[key], from_env=from_env)
            except ValueError as exc:
                problems.append(f"{source}: {exc}")
        sections[name] = cls(**values)
    if problems:
        raise ConfigError(problems)

    core = {name: sections.pop(name) for name in _core_section_names()}
    settings = _derive(Settings(**core, services=sections, config_file=config_file))
    _cross_check(settings, raw, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def _find_config_file(path: str | None, env: Mapping[str, str], problems: list[str]) -> str | None:
    if path is not None:
        origin = "--config"
    elif env.get(CONFIG_ENV):
        path, origin = env[CONFIG_ENV], f"env {CONFIG_ENV}"
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        path, origin = DEFAULT_CONFIG_FILE, "default"
    else:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        problems.append(f"{origin}: configuration file {path!r} does not exist")
        raise ConfigError(problems)
    return str(p.resolve())


def _read_file(path: str, raw: dict[str, dict[str, tuple[Any, str]]], problems: list[str]) -> None:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read TOML: {exc}"]) from exc
    sections = _section_names()
    for section, table in data.items():
        if section not in sections:
            problems.append(f"{path}:{section}: unknown section{_hint(section, sections)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}:{section}: expected a table [{section}]")
            continue
        keys = [f.name for f in dataclasses.fields(_section_class(section))]
        for key, value in table.items():
            if key not in keys:
                problems.append(
                    f"{path}:{section}.{key}: unknown key in [{section}]{_hint(key, keys)}"
                    f" (known: {', '.join(keys)})"
                )
                continue
            raw.setdefault(section, {})[key] = (value, f"{path}:{section}.{key}")


def _read_env(
    env: Mapping[str, str], raw: dict[str, dict[str, tuple[Any, str]]], problems: list[str]
) -> None:
    known = _known_env_names()
    for name, value in env.items():
        if (
            not name.startswith(ENV_PREFIX)
            or name in RESERVED_ENV
            or name.startswith(RESERVED_ENV_PREFIXES)
        ):
            continue
        if name not in known:
            problems.append(f"env {name}: unknown LGSP setting{_hint(name, list(known))}")
            continue
        section, key = known[name]
        raw.setdefault(section, {})[key] = (value, f"env {name}")


def _known_env_names() -> dict[str, tuple[str, str]]:
    return {
        f"{ENV_PREFIX}{s.upper()}_{f.name.upper()}": (s, f.name)
        for s in _section_names()
        for f in dataclasses.fields(_section_class(s))
    }


def _coerce(value: Any, typ: Any, f: dataclasses.Field[Any], *, from_env: bool) -> Any:
    """Check/convert one value; ValueError's message says what was expected."""
    meta = f.metadata
    if typ is bool:
        if isinstance(value, bool):
            return value
        if from_env and value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if from_env and value.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if typ is int:
        if from_env:
            try:
                value = int(value.strip())
            except ValueError:
                pass
        if not isinstance(value, int) or isinstance(value, bool):
            what = "a TCP port number (1-65535)" if meta.get("port") else "an integer"
            raise ValueError(f"expected {what}, got {value!r}")
        if meta.get("port") and not 1 <= value <= 65535:
            raise ValueError(f"expected a TCP port number (1-65535), got {value}")
        _check_range(value, meta)
        return value
    if typ is float:
        if from_env:
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        _check_range(value, meta)
        return float(value)
    # str
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    if "choices" in meta:
        choices: tuple[str, ...] = meta["choices"]
        match = [c for c in choices if c.lower() == value.strip().lower()]
        if not match:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return match[0]
    if "schemes" in meta and value:
        _check_url(value, meta["schemes"])
    if meta.get("dates"):
        parse_dates(value)
    if meta.get("address") and value:
        _split_address(value)
    return value


def _check_range(value: float, meta: Mapping[str, Any]) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ValueError(f"expected a value >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"expected a value <= {hi}, got {value}")


def _check_url(value: str, schemes: tuple[str, ...]) -> None:
    expected = f"a URL with scheme {' or '.join(s + '://' for s in schemes)}"
    try:
        parts = urlsplit(value)
        if parts.scheme != "kafka":
            _ = parts.port  # raises ValueError on a port out of range
    except ValueError as exc:
        raise ValueError(f"expected {expected}, got {value!r} ({exc})") from None
    if parts.scheme not in schemes:
        raise ValueError(f"unsupported URL scheme in {value!r}: expected {expected}")
    if parts.scheme == "sqlite":
        if not parts.path.strip("/"):
            raise ValueError(f"expected sqlite:///PATH, got {value!r}")
        return
    if parts.scheme == "kafka":
        # kafka://host:port[,host:port…]: comma-separated bootstrap servers.
        for server in parts.netloc.split(","):
            host, sep, p = server.rpartition(":")
            if not sep or not host or not p.isdigit() or not 1 <= int(p) <= 65535:
                raise ValueError(f"expected kafka://HOST:PORT[,HOST:PORT…], got {value!r}")
        return
    if not parts.hostname:
        raise ValueError(f"expected {expected} with a host, got {value!r}")


def _derive(s: Settings) -> Settings:
    """Fill the defaults that depend on other settings (data_dir, host, console port)."""
    data_dir = Path(s.platform.data_dir).expanduser().resolve()
    platform = dataclasses.replace(s.platform, data_dir=str(data_dir))
    changes: dict[str, Any] = {"platform": platform}
    if not s.bus.url:
        changes["bus"] = dataclasses.replace(s.bus, url=f"sqlite:///{data_dir / 'bus.db'}")
    if not s.telemetry.otlp_endpoint:
        changes["telemetry"] = dataclasses.replace(
            s.telemetry,
            otlp_endpoint=peer(s, "console").url(),
        )
    changes["services"] = {
        name: section.derived(name, data_dir) for name, section in s.services.items()
    }
    if not s.attachments.dir:
        changes["attachments"] = dataclasses.replace(
            s.attachments, dir=str(data_dir / "attachments")
        )
    return dataclasses.replace(s, **changes)


def _cross_check(
    s: Settings, raw: dict[str, dict[str, tuple[Any, str]]], problems: list[str]
) -> None:
    def src(section: str, key: str) -> str:
        given = raw.get(section, {}).get(key)
        return given[1] if given else f"{section}.{key} (default)"

    for name, section in s.services.items():
        for key, problem in section.problems():
            problems.append(f"{src(name, key)}: {problem}")
    if s.attachments.backend == "s3" and not s.attachments.s3_endpoint:
        problems.append(
            f"{src('attachments', 's3_endpoint')}: attachments.backend = s3 needs s3_endpoint"
        )
    both = set(parse_dates(s.calendar.days_off)) & set(parse_dates(s.calendar.working_days))
    if both:
        problems.append(
            f"{src('calendar', 'working_days')}: {min(both).isoformat()} is also in "
            "calendar.days_off"
        )
    from lgsp.tls import tls_problems

    problems.extend(f"{src('tls', key)}: {problem}" for key, problem in tls_problems(s))
    # Two components on one port would make the second one crash-loop at start-up.
    seen: dict[int, str] = {}
    for section_name, section in s.sections():
        for f in dataclasses.fields(section):
            if not f.metadata.get("port") or not f.metadata.get("listen", True):
                continue
            port, key = getattr(section, f.name), f"{section_name}.{f.name}"
            if port in seen:
                problems.append(
                    f"{src(section_name, f.name)}: port {port} is already used by {seen[port]}"
                )
            else:
                seen[port] = key


# --- small helpers -------------------------------------------------------------------------


def _core_section_names() -> list[str]:
    skip = ("services", "config_file")
    return [f.name for f in dataclasses.fields(Settings) if f.name not in skip]


def _schema() -> dict[str, type]:
    """Section name -> its dataclass: the core's, then each installed service's."""
    hints = typing.get_type_hints(Settings)
    schema: dict[str, type] = {n: hints[n] for n in _core_section_names()}
    from lgsp.plugins import discover  # plugins import this module for ServiceSettings

    for name, plugin in discover().items():
        schema[name] = plugin.settings
    return schema


def _default_services() -> dict[str, ServiceSettings]:
    from lgsp.plugins import discover

    return {name: plugin.settings() for name, plugin in discover().items()}


def _section_names() -> list[str]:
    return list(_schema())


def _section_class(name: str) -> type:
    return _schema()[name]


def _hint(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _url_host(host: str) -> str:
    """A listen address as it goes in a URL to reach it (0.0.0.0 is not reachable)."""
    if host in {"0.0.0.0", ""}:
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _masked(f: dataclasses.Field[Any], value: Any) -> Any:
    if f.metadata.get("secret"):
        return MASK if value else ""
    if isinstance(value, str) and "schemes" in f.metadata and "@" in value:
        return mask_url(value)
    return value


def mask_url(url: str) -> str:
    """The URL with any password replaced, for logs and `config show`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a valid TOML basic string once non-ASCII is left as is.
    return json.dumps(str(value), ensure_ascii=False)
