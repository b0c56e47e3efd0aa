"""Settings: precedence of defaults < TOML file < environment, and loud failure on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lgsp.cli import main
from lgsp.config import MASK, ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stray ./lgsp.toml and no LGSP_* variables from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    import os

    for name in list(os.environ):
        if name.startswith("LGSP_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_follow_the_port_plan_and_derive_from_data_dir(tmp_path: Path) -> None:
    s = load_settings(env={})
    data = tmp_path / "data"
    assert s.platform.data_dir == str(data)
    assert s.bus.url == f"sqlite:///{data}/bus.db"
    assert s.documents.database_url == f"sqlite:///{data}/documents.db"
    # One section per installed service, from its plugin, by the port plan.
    ports = {name: section.grpc_port for name, section in s.services.items()}
    assert ports == {
        "gateway": 50050,
        "identity": 50051,
        "documents": 50052,
        "dossiers": 50053,
        "search": 50054,
        "mail": 50055,
    }
    assert (s.identity.http_port, s.console.port) == (8180, 8100)
    assert s.telemetry.otlp_endpoint == "http://127.0.0.1:8100"
    assert s.config_file is None


def test_precedence_default_then_file_then_env(tmp_path: Path) -> None:
    cfg = write(tmp_path / "x.toml", "[console]\nport = 9000\n[documents]\ngrpc_port = 9001\n")
    s = load_settings(cfg, env={"LGSP_CONSOLE_PORT": "9100"})
    assert s.console.port == 9100  # env beats file
    assert s.documents.grpc_port == 9001  # file beats default
    assert s.search.grpc_port == 50054  # default
    assert s.config_file == cfg
    # The derived OTLP endpoint follows the effective console port.
    assert s.telemetry.otlp_endpoint == "http://127.0.0.1:9100"


def test_file_location_flag_then_env_then_cwd(tmp_path: Path) -> None:
    write(tmp_path / "lgsp.toml", "[console]\nport = 9001\n")
    write(tmp_path / "env.toml", "[console]\nport = 9002\n")
    write(tmp_path / "flag.toml", "[console]\nport = 9003\n")
    assert load_settings(env={}).console.port == 9001
    assert load_settings(env={"LGSP_CONFIG": "env.toml"}).console.port == 9002
    assert load_settings("flag.toml", env={"LGSP_CONFIG": "env.toml"}).console.port == 9003


def test_missing_config_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml.*does not exist"):
        load_settings("nope.toml", env={})


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "lgsp.toml", '[bus]\nurll = "kafka://a:1"\n[nonsense]\nx = 1\n')
    with pytest.raises(ConfigError) as err:
        load_settings(env={})
    message = str(err.value)
    assert f"{cfg}:bus.urll: unknown key in [bus] (did you mean url?)" in message
    assert f"{cfg}:nonsense: unknown section" in message


def test_unknown_env_variable_is_named() -> None:
    with pytest.raises(
        ConfigError, match=r"env LGSP_BUS_URLL: unknown LGSP setting .*LGSP_BUS_URL"
    ):
        load_settings(env={"LGSP_BUS_URLL": "sqlite:///x.db", "OTHER": "ignored"})


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LGSP_DOCUMENTS_GRPC_PORT": "abc"}, "env LGSP_DOCUMENTS_GRPC_PORT: expected a TCP port"),
        (
            {"LGSP_CONSOLE_PORT": "70000"},
            "env LGSP_CONSOLE_PORT: expected a TCP port number (1-65535), got 70000",
        ),
        ({"LGSP_CONSOLE_PORT": "0"}, "env LGSP_CONSOLE_PORT: expected a TCP port"),
        ({"LGSP_BUS_URL": "ftp://files.example/bus"}, "env LGSP_BUS_URL: unsupported URL scheme"),
        ({"LGSP_BUS_URL": "kafka://broker"}, "env LGSP_BUS_URL: expected kafka://HOST:PORT"),
        ({"LGSP_DOCUMENTS_DATABASE_URL": "mysql://x/y"}, "env LGSP_DOCUMENTS_DATABASE_URL"),
        (
            {"LGSP_TELEMETRY_SAMPLING_RATIO": "1.5"},
            "env LGSP_TELEMETRY_SAMPLING_RATIO: expected a value <= 1.0",
        ),
        ({"LGSP_TELEMETRY_ENABLED": "maybe"}, "env LGSP_TELEMETRY_ENABLED: expected true or false"),
        (
            {"LGSP_SEARCH_BACKEND": "solr"},
            "env LGSP_SEARCH_BACKEND: expected one of tantivy, elasticsearch",
        ),
    ],
)
def test_bad_env_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    assert needle in str(err.value)


def test_bad_file_values_name_file_and_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml",
        '[console]\nport = "8100"\n[identity]\nhttp_port = 99999\n[bus]\nurl = "ftp://x/y"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    problems = err.value.problems
    assert any(p.startswith(f"{cfg}:console.port: expected a TCP port") for p in problems)
    assert any(p.startswith(f"{cfg}:identity.http_port: expected a TCP port") for p in problems)
    assert any(p.startswith(f"{cfg}:bus.url: unsupported URL scheme") for p in problems)


def test_env_values_are_converted() -> None:
    s = load_settings(
        env={
            "LGSP_TELEMETRY_ENABLED": "no",
            "LGSP_TELEMETRY_SAMPLING_RATIO": "0.25",
            "LGSP_BUS_URL": "kafka://k1:19092,k2:19092",
            "LGSP_PLATFORM_LOG_LEVEL": "debug",
        }
    )
    assert s.telemetry.enabled is False
    assert s.telemetry.sampling_ratio == 0.25
    assert s.bus.url == "kafka://k1:19092,k2:19092"
    assert s.platform.log_level == "DEBUG"


def test_gateway_keys_convert_validate_and_tls_needs_its_files() -> None:
    s = load_settings(
        env={
            "LGSP_GATEWAY_RATE_PER_MINUTE": "600",
            "LGSP_GATEWAY_BURST_SECONDS": "2.5",
            "LGSP_GATEWAY_MAX_CONCURRENT_PER_MEMBER": "8",
            "LGSP_GATEWAY_SEAL_EVERY_ENTRIES": "500",
            "LGSP_GATEWAY_SEAL_EVERY_SECONDS": "2",
            "LGSP_GATEWAY_LOG_RETENTION_DAYS": "365",
            "LGSP_GATEWAY_TLS_PORT": "50443",
            "LGSP_GATEWAY_TLS_CERT": "/etc/lgsp/gateway.crt",
            "LGSP_GATEWAY_TLS_KEY": "/etc/lgsp/gateway.key",
            "LGSP_GATEWAY_TLS_CLIENT_CA": "/etc/lgsp/members-ca.crt",
        }
    )
    g = s.gateway
    assert (g.rate_per_minute, g.burst_seconds, g.max_concurrent_per_member) == (600, 2.5, 8)
    assert (g.seal_every_entries, g.seal_every_seconds, g.log_retention_days) == (500, 2.0, 365)
    assert (g.tls_port, g.tls_client_ca) == (50443, "/etc/lgsp/members-ca.crt")
    assert load_settings(env={}).gateway.tls_port == 0  # off by default
    with pytest.raises(ConfigError, match=r"gateway\.tls_port needs tls_cert and tls_key"):
        load_settings(env={"LGSP_GATEWAY_TLS_PORT": "50443"})
    with pytest.raises(ConfigError, match="LGSP_GATEWAY_MAX_CONCURRENT_PER_MEMBER"):
        load_settings(env={"LGSP_GATEWAY_MAX_CONCURRENT_PER_MEMBER": "0"})


def test_same_port_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="LGSP_DOCUMENTS_GRPC_PORT: port 50051 is already used"):
        load_settings(env={"LGSP_DOCUMENTS_GRPC_PORT": "50051"})


def test_backend_choice_needs_its_settings() -> None:
    with pytest.raises(ConfigError, match=r"identity\.provider = keycloak needs keycloak_url"):
        load_settings(env={"LGSP_IDENTITY_PROVIDER": "keycloak"})
    s = load_settings(
        env={
            "LGSP_IDENTITY_PROVIDER": "keycloak",
            "LGSP_IDENTITY_KEYCLOAK_URL": "https://sso.example.gov.vn",
        }
    )
    assert s.identity.provider == "keycloak"


def test_dump_is_loadable_toml_and_masks_secrets(tmp_path: Path) -> None:
    s = load_settings(
        env={
            "LGSP_SEARCH_PASSWORD": "hunter2",
            "LGSP_DOCUMENTS_DATABASE_URL": "postgresql://lgsp:s3cret@db:5433/documents",
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path / 'dữ liệu "q"'),
        }
    )
    masked = s.dump()
    assert "hunter2" not in masked and "s3cret" not in masked
    assert f'password = "{MASK}"' in masked
    assert f"postgresql://lgsp:{MASK}@db:5433/documents" in masked
    again = load_settings(write(tmp_path / "dump.toml", s.dump(mask_secrets=False)), env={})
    assert again == s


def test_to_env_reproduces_the_settings(tmp_path: Path) -> None:
    s = load_settings(env={"LGSP_CONSOLE_PORT": "8111", "LGSP_SEARCH_URL": "http://es.gov.vn:9200"})
    assert load_settings(env=s.to_env()) == s


def test_process_env_points_telemetry_at_the_console() -> None:
    s = load_settings(env={"LGSP_CONSOLE_PORT": "8111"})
    env = s.process_env("documents")
    assert env["OTEL_SERVICE_NAME"] == "documents"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:8111"
    assert env["OTEL_SDK_DISABLED"] == "false"
    assert s.process_env("console", telemetry=False)["OTEL_SDK_DISABLED"] == "true"
    other = load_settings(env={"LGSP_TELEMETRY_OTLP_ENDPOINT": "http://jaeger:4318"})
    assert other.process_env("search")["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"


def test_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.console.port = 1  # type: ignore[misc]


def test_cli_config_check_reports_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LGSP_CONSOLE_PORT", "abc")
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "env LGSP_CONSOLE_PORT" in err
    monkeypatch.setenv("LGSP_CONSOLE_PORT", "8100")
    assert main(["config", "check"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_cli_config_show_masks_and_accepts_config_after_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path / "c.toml", '[attachments]\ns3_secret_key = "topsecret"\n')
    assert main(["config", "show", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "topsecret" not in out and f's3_secret_key = "{MASK}"' in out
    assert main(["--config", cfg, "config", "show", "--show-secrets"]) == 0
    assert 's3_secret_key = "topsecret"' in capsys.readouterr().out


def test_lgsp_config_check_as_a_real_process(tmp_path: Path) -> None:
    cfg = write(tmp_path / "bad.toml", '[bus]\nurl = "ftp://nowhere/x"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "lgsp.cli", "config", "check", "--config", cfg],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2
    assert f"{cfg}:bus.url: unsupported URL scheme" in proc.stderr


def test_cli_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "run", "config", "version"):
        assert command in out


def test_example_configuration_lists_every_key_with_its_default() -> None:
    import dataclasses
    import tomllib

    example = REPO / "infra" / "lgsp.example.toml"
    with example.open("rb") as fh:
        data = tomllib.load(fh)
    defaults = Settings()
    expected = {
        name: {f.name for f in dataclasses.fields(sec)} for name, sec in defaults.sections()
    }
    assert {s: set(keys) for s, keys in data.items()} == expected
    assert load_settings(str(example), env={}) == load_settings(env={})


def test_non_setting_lgsp_variables_used_by_the_platform_are_allowed() -> None:
    s = load_settings(
        env={
            "LGSP_FAULTS": "relay.after_publish",
            "LGSP_LOG_FORMAT": "json",
            "LGSP_TEST_POSTGRES": "postgresql://x/y",
            "LGSP_CONFIG": "",
        }
    )
    assert s == load_settings(env={})


def test_identity_issuer_base_url_demo_seed_and_admin_password() -> None:
    from lgsp.authn import issuer_from_settings

    s = load_settings(env={})
    assert (s.identity.issuer_base_url, s.identity.demo_seed, s.identity.admin_password) == (
        "",
        False,  # demo data only when asked (issue 13 item 8)
        "",
    )
    assert issuer_from_settings(s) == "http://127.0.0.1:8180/realms/lgsp"
    s = load_settings(
        env={
            "LGSP_IDENTITY_ISSUER_BASE_URL": "https://sso.hatinh.gov.vn/",
            "LGSP_IDENTITY_DEMO_SEED": "true",
            "LGSP_IDENTITY_ADMIN_PASSWORD": "Quan-tri-2025!",
        }
    )
    assert issuer_from_settings(s) == "https://sso.hatinh.gov.vn/realms/lgsp"
    assert s.identity.demo_seed is True
    assert "Quan-tri-2025!" not in s.dump()  # a secret
    with pytest.raises(ConfigError, match="LGSP_IDENTITY_ISSUER_BASE_URL"):
        load_settings(env={"LGSP_IDENTITY_ISSUER_BASE_URL": "sso.hatinh.gov.vn"})
