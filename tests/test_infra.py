"""infra/ without Docker: the compose file, the Dockerfile, the realm and collector configs,
the Procfile and systemd units agree with the code they run; and peers on different loopback
addresses reach each other by their configured addresses (docs/operations.md, "Scale-out
with containers")."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.aio
import httpx
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from packaging.requirements import Requirement

from lgsp import otlp_token
from lgsp.config import (
    NATIONAL_MOCKS,
    RESERVED_ENV,
    Endpoint,
    _known_env_names,
    load_settings,
    peer,
)
from lgsp.healthcheck import components_of
from lgsp.healthcheck import problem as health_problem
from lgsp.runner import discover
from services.identity.keycloak_provisioning import _LGSP_MAPPERS, LGSP_ROLES
from tests.support import free_port

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
COMPOSE = INFRA / "docker-compose.scale-out.yml"
DOCKERFILE = REPO / "Dockerfile"
# An exact version: 3.9.0, 17.2, 3.11.11-slim-bookworm; never latest, 17 or 26.0-slim.
EXACT_TAG = re.compile(r"v?\d+\.\d+(\.\d+)*(-[a-z0-9]+)*")
LGSP_NAME = re.compile(r"\bLGSP_[A-Z0-9_]+\b")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and data["services"], "no services in the compose file"
    return data


def _interpolated(value: Any) -> str:
    """A compose value with ${VAR:-default} as its default and any other ${…} as "x1"."""
    text = str(value)
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\{[^}]+\}", "x1", text)


def _lgsp_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s["image"].startswith("lgsp:")}


def _component(service: dict[str, Any]) -> str:
    command = service["command"]
    assert command[0] == "run" and len(command) == 2, f"expected [run, NAME], got {command}"
    return str(command[1])


def _container_of(compose: dict[str, Any]) -> dict[str, str]:
    """component -> the compose service that runs it."""
    return {_component(s): n for n, s in _lgsp_services(compose).items()}


def _image_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{image}: no tag"
    return tag


# --- the compose file ----------------------------------------------------------------------


def test_every_image_is_pinned_to_an_exact_version(compose: dict[str, Any]) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, service in compose["services"].items():
        tag = _image_tag(service["image"])
        assert EXACT_TAG.fullmatch(tag), f"{name}: image {service['image']} is not pinned"
        if service["image"].startswith("lgsp:"):
            assert tag == version, f"{name}: lgsp image {tag} is not the project's {version}"
    froms = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text(), re.M)
    assert len(froms) == 1 and EXACT_TAG.fullmatch(_image_tag(froms[0])), froms


def test_every_component_has_its_container_and_runs_something_real(
    compose: dict[str, Any],
) -> None:
    installed = {c.name for c in discover()}
    containers = _container_of(compose)
    assert set(containers) == installed, "each component (services, mocks, console) once"
    # The national mocks the axis and the checks need are containers too.
    assert set(NATIONAL_MOCKS) <= set(containers)
    procfile = [line.split(":")[0] for line in (INFRA / "Procfile").read_text().splitlines()]
    assert {n for n in procfile if n and not n.startswith("#")} == installed
    target = (INFRA / "systemd" / "lgsp.target").read_text()
    assert set(re.findall(r"lgsp@(\w+)\.service", target)) == installed


def test_every_lgsp_name_is_a_real_setting() -> None:
    known = set(_known_env_names()) | RESERVED_ENV
    files = [
        COMPOSE,
        DOCKERFILE,
        INFRA / "Procfile",
        INFRA / "otel" / "collector.yaml",
        INFRA / "keycloak" / "realm-lgsp.json",
        *sorted((INFRA / "systemd").iterdir()),
    ]
    used = {(f.name, n) for f in files for n in LGSP_NAME.findall(f.read_text())}
    assert used, "no LGSP_* names found"
    unknown = sorted((f, n) for f, n in used if n not in known)
    assert not unknown, f"not settings: {unknown}"


def test_the_components_environment_loads_as_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    for service in _lgsp_services(compose).values():
        env = {k: _interpolated(v) for k, v in service["environment"].items()}
        env["LGSP_PLATFORM_DATA_DIR"] = str(tmp_path)  # the container's is not writable here
        load_settings(env=env)  # raises ConfigError naming the key
    # An unknown name or a bad value is refused, so the above can fail.
    with pytest.raises(Exception, match="LGSP_MAIL_RELAY_HOST"):
        load_settings(env={"LGSP_MAIL_RELAY_HOST": ""})


def test_peers_are_the_containers_that_run_them(compose: dict[str, Any], tmp_path: Path) -> None:
    services = compose["services"]
    env = {k: _interpolated(v) for k, v in compose["x-lgsp-env"].items()}
    settings = load_settings(env={**env, "LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    containers = _container_of(compose)
    for component, container in containers.items():
        p = peer(settings, component)
        assert p.host == container, f"{component} is reached at {p.host}, runs in {container}"
        assert p.port == p.listen_port, f"{component}: reached on {p.port}, listens on another"

    def host_of(url: str) -> str:
        return str(urlsplit(url).hostname)

    assert host_of(settings.telemetry.otlp_endpoint) in services
    assert host_of(settings.identity.keycloak_url) == "keycloak"
    assert host_of(settings.search.url) == "elasticsearch"
    assert host_of(settings.attachments.s3_endpoint) == "seaweedfs"
    assert settings.bus.url.removeprefix("kafka://").split(":")[0] == "kafka"
    created = re.findall(
        r"CREATE DATABASE (\w+);", (INFRA / "postgres" / "init-databases.sql").read_text()
    )
    for name in settings.services:
        url = urlsplit(settings.service(name).database_url)
        assert url.hostname == "postgres" and url.path.lstrip("/") in created, name
    # Only the gateway is trusted to say who the caller is (x-forwarded-for).
    gateway_ip = services["gateway"]["networks"]["lgsp"]["ipv4_address"]
    assert settings.dossiers.trusted_proxies == gateway_ip


def test_mounted_files_exist_and_parse(compose: dict[str, Any]) -> None:
    mounted = [
        (name, v.split(":")[0])
        for name, s in compose["services"].items()
        for v in s.get("volumes", [])
        if v.startswith("./")
    ]
    assert mounted
    for name, path in mounted:
        file = INFRA / path
        assert file.is_file(), f"{name} mounts {path}, which does not exist"
        text = file.read_text()
        if file.suffix == ".json":
            json.loads(text)
        elif file.suffix in (".yaml", ".yml"):
            yaml.safe_load(text)
        else:
            assert text.strip()


def test_realm_is_what_the_platform_expects(compose: dict[str, Any]) -> None:
    realm = json.loads((INFRA / "keycloak" / "realm-lgsp.json").read_text())
    settings = load_settings(env={})
    assert realm["realm"] == settings.identity.keycloak_realm
    roles = {r["name"]: r["description"] for r in realm["roles"]["realm"]}
    assert roles == dict(LGSP_ROLES)
    clients = {c["clientId"]: c for c in realm["clients"]}
    confidential = {
        settings.identity.keycloak_client_id,
        settings.console.client_id,
        *(getattr(settings.service(n), "client_id", None) for n in settings.services),
    } - {None}
    for client_id in confidential:
        client = clients[client_id]
        assert not client["publicClient"] and client["serviceAccountsEnabled"], client_id
        assert client["protocolMappers"] == _LGSP_MAPPERS, client_id
        account = [u for u in realm["users"] if u.get("serviceAccountClientId") == client_id]
        assert account and account[0]["attributes"]["agency_code"], client_id
    # mail checks officials' passwords with the password grant.
    assert clients[settings.mail.client_id]["directAccessGrantsEnabled"]
    # Operators sign in to the console: a public client with PKCE, back to /auth/callback.
    console = clients[settings.console.oidc_client_id]
    assert console["publicClient"] and console["standardFlowEnabled"]
    assert console["attributes"]["pkce.code.challenge.method"] == "S256"
    assert all(u.endswith("/auth/callback") for u in console["redirectUris"])
    # Keycloak keeps the attributes the mappers read (agency_code, agency_roles).
    (profile,) = realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
    policy = json.loads(profile["config"]["kc.user.profile.config"][0])
    assert policy["unmanagedAttributePolicy"] in ("ADMIN_EDIT", "ENABLED")
    # Every ${PLACEHOLDER} of the realm is set in Keycloak's container.
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)\}", json.dumps(realm)))
    assert placeholders <= set(compose["services"]["keycloak"]["environment"])
    # ...to the same values the services present.
    kc_env = compose["services"]["keycloak"]["environment"]
    for name in placeholders & set(compose["x-lgsp-env"]):
        assert kc_env[name] == compose["x-lgsp-env"][name].split(":?")[0].rstrip("}") + "}", name


def test_collector_exports_to_jaeger_and_the_console(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((INFRA / "otel" / "collector.yaml").read_text())
    traces = config["service"]["pipelines"]["traces"]
    exporters = {name: config["exporters"][name] for name in traces["exporters"]}
    hosts = {
        name: str(
            urlsplit(e["endpoint"] if "//" in e["endpoint"] else "//" + e["endpoint"]).hostname
        )
        for name, e in exporters.items()
    }
    assert set(hosts.values()) == {"jaeger", "console"}
    console = next(e for n, e in exporters.items() if hosts[n] == "console")
    (header,) = console["headers"]
    assert header == otlp_token.HEADER
    env_refs = set(re.findall(r"\$\{env:(\w+)\}", json.dumps(config)))
    assert env_refs <= set(compose["services"]["otel-collector"]["environment"])
    endpoint = compose["x-lgsp-env"]["LGSP_TELEMETRY_OTLP_ENDPOINT"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert urlsplit(endpoint).port == int(http.rpartition(":")[2])


# --- the image -----------------------------------------------------------------------------


def test_dockerfile_builds_in_stages_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [s for _, s in stages] == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/lgsp /opt/lgsp" in runtime
    users = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert users and users[-1] not in ("root", "0"), "the runtime stage must not run as root"
    assert re.search(r'^ENTRYPOINT \["lgsp"\]$', runtime, re.M)
    assert re.search(r'^\s+CMD \["python", "-m", "lgsp.healthcheck"\]$', runtime, re.M)
    # The venv comes from the lock, with the Makefile's uv.
    uv = re.search(r"uv==(\S+)", (REPO / "Makefile").read_text())
    assert uv and f"uv=={uv.group(1)}" in text
    assert "--constraint requirements.lock" in text and "uv pip sync" in text
    # Every file the build copies gets through .dockerignore.
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in sources.split():
            assert source in allowed and (REPO / source).exists(), source


def _runtime_distributions() -> set[str]:
    """Distributions the image installs: pyproject's dependencies, the keycloak extra, and
    what they need in turn (as installed here)."""

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = re.findall(r"--extra (\w+)", DOCKERFILE.read_text())
    todo = [Requirement(r) for r in project["dependencies"]]
    todo += [Requirement(r) for e in extras for r in project["optional-dependencies"][e]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if norm(req.name) in seen:
            continue
        seen.add(norm(req.name))
        for text in metadata.requires(req.name) or []:
            sub = Requirement(text)
            envs = [{"extra": e} for e in ("", *req.extras)]
            if sub.marker is None or any(sub.marker.evaluate(e) for e in envs):
                todo.append(sub)
    return seen


def test_the_image_installs_everything_the_code_imports() -> None:
    """An image without the dev extra once crashed dossiers (grpc_status) and mail
    (aiosmtpd) at import: every third-party import of the shipped packages is a runtime
    dependency."""
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()
    own = {"lgsp", "services", "console", "national"}
    missing: dict[str, str] = {}
    for root in sorted(own):
        for file in (REPO / root).rglob("*.py"):
            if "tests" in file.parts:
                continue
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for top in {n.split(".")[0] for n in names} - own - sys.stdlib_module_names:
                    dists = providers.get(top, [])
                    if not any(re.sub(r"[-_.]+", "-", d).lower() in runtime for d in dists):
                        missing.setdefault(top, str(file.relative_to(REPO)))
    assert not missing, f"imported but not a runtime dependency: {missing}"


def test_healthcheck_finds_the_container_component() -> None:
    assert components_of(["/opt/lgsp/.venv/bin/python", "-m", "services.documents"]) == [
        "documents"
    ]
    assert components_of(["python", "-m", "national.population"]) == ["population"]
    assert components_of(["python", "-m", "console"]) == ["console"]
    assert components_of(["/sbin/docker-init", "--", "lgsp", "run", "mail"]) == ["mail"]
    assert components_of(["/opt/lgsp/.venv/bin/lgsp", "up"]) is None
    assert components_of(["lgsp", "up", "--only", "console", "gateway"]) == ["console", "gateway"]
    assert components_of(["/bin/sh"]) == []


# --- peers on different addresses ----------------------------------------------------------


@pytest.fixture
def population_on_127_0_0_3(tmp_path: Path) -> Iterator[int]:
    """`lgsp run population` listening on 127.0.0.3 only."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGSP_")}
    env.update(
        LGSP_PLATFORM_HOST="127.0.0.3",
        LGSP_PLATFORM_DATA_DIR=str(tmp_path / "mock"),
        LGSP_NATIONAL_POPULATION_PORT=str(port),
        LGSP_TELEMETRY_ENABLED="false",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "lgsp.cli", "run", "population"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.3", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "population did not listen on 127.0.0.3"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_peers_reach_each_other_by_their_configured_addresses(
    population_on_127_0_0_3: int, tmp_path: Path
) -> None:
    """This process is on 127.0.0.2; the population mock (its own process) on 127.0.0.3 and
    a gRPC service on 127.0.0.4 are reached only through their address settings."""
    from lgsp.connectors import PopulationClient

    port = population_on_127_0_0_3
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    grpc_port = server.add_insecure_port(f"127.0.0.4:{free_port()}")
    await server.start()
    try:
        base = {
            "LGSP_PLATFORM_HOST": "127.0.0.2",
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path / "data"),
            "LGSP_NATIONAL_POPULATION_PORT": str(port),
        }
        alone = load_settings(env=base)
        # Without the address settings a peer is looked for on this host, where none is.
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as client:
                await client.get(peer(alone, "population").url() + "/healthz")
        settings = load_settings(
            env={
                **base,
                "LGSP_NATIONAL_POPULATION_URL": f"http://127.0.0.3:{port}",
                "LGSP_DOCUMENTS_ADDRESS": f"127.0.0.4:{grpc_port}",
            }
        )
        async with PopulationClient.from_settings(settings) as population:
            verified = await population.verify_citizen(
                "026093660531", "Nguyễn Đức Minh", "1993-08-07"
            )
        assert verified.match
        # The console's probes go where the peers are reached (gRPC health, HTTP /healthz).
        from console.health import probe_all

        wanted = [e for e in settings.endpoints() if e.component in ("documents", "population")]
        probes = await probe_all([peer(settings, e.component).reach(e) for e in wanted])
        assert {(p.endpoint.component, p.endpoint.host, p.state) for p in probes} == {
            ("documents", "127.0.0.4", "up"),
            ("population", "127.0.0.3", "up"),
        }
        # The image's HEALTHCHECK probes a component's own sockets the same way.
        listening = Endpoint("documents", "grpc", "127.0.0.4", grpc_port)
        assert await asyncio.to_thread(health_problem, listening) is None
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert "NOT_SERVING" in str(await asyncio.to_thread(health_problem, listening))
    finally:
        await server.stop(None)


# --- the address settings ------------------------------------------------------------------


def test_peer_addresses_default_to_platform_host_and_follow_the_settings() -> None:
    from lgsp.authn import issuer_from_settings
    from lgsp.connectors import PaymentClient
    from services.gateway.app import routes_from_settings

    wildcard = load_settings(env={"LGSP_PLATFORM_HOST": "0.0.0.0"})
    assert peer(wildcard, "documents").address == "127.0.0.1:50052"
    assert peer(load_settings(env={"LGSP_PLATFORM_HOST": "::"}), "console").url() == (
        "http://[::1]:8100"
    )
    s = load_settings(
        env={
            "LGSP_PLATFORM_HOST": "0.0.0.0",
            "LGSP_IDENTITY_ADDRESS": "identity:50051",
            "LGSP_DOCUMENTS_ADDRESS": "[fd00::7]:6000",
            "LGSP_CONSOLE_ADDRESS": "console:8100",
            "LGSP_NATIONAL_PAYMENT_URL": "https://thanhtoan.gov.vn/api/",
        }
    )
    assert peer(s, "documents").address == "[fd00::7]:6000"
    assert routes_from_settings(s)["documents"].target == "[fd00::7]:6000"
    # identity's other port (its OpenID Connect side) is on the host of its address.
    assert issuer_from_settings(s) == "http://identity:8180/realms/lgsp"
    assert s.telemetry.otlp_endpoint == s.console_otlp_endpoint == "http://console:8100"
    pay = peer(s, "payment")
    assert (pay.host, pay.port, pay.url()) == (
        "thanhtoan.gov.vn",
        443,
        "https://thanhtoan.gov.vn/api",
    )
    assert PaymentClient.from_settings(s).http.base_url == "https://thanhtoan.gov.vn/api"
    with pytest.raises(KeyError):
        peer(s, "nonexistent")


@pytest.mark.parametrize("bad", ["documents", "documents:", ":50052", "documents:0", "::1:50052"])
def test_a_bad_address_is_refused_naming_the_variable(bad: str) -> None:
    from lgsp.config import ConfigError

    with pytest.raises(ConfigError, match="env LGSP_DOCUMENTS_ADDRESS: expected"):
        load_settings(env={"LGSP_DOCUMENTS_ADDRESS": bad})
