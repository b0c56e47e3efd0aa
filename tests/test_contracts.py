"""The contracts: protos under proto/, their generated code under lgsp/api/, and buf.

`make test` fails here when lgsp/api is stale (someone edited a proto and did not run
`make proto`), when a generated module does not import, or when buf lint finds a problem.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from tests.fixtures import missing_server

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
BUF = ROOT / "node_modules" / ".bin" / "buf"
PROTOGEN = ROOT / "tools" / "protogen.py"
BUF_BREAKING = ROOT / "tools" / "buf_breaking.py"
PROTO_FILES = sorted(p.relative_to(PROTO).as_posix() for p in PROTO.rglob("*.proto"))
AREAS = ("identity", "documents", "dossiers", "search", "mail", "gateway", "events")


def _load_protogen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protogen", PROTOGEN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _module_name(proto: str) -> str:
    return proto.removesuffix(".proto").replace("/", ".") + "_pb2"


def _file_descriptor(proto: str) -> FileDescriptor:
    return importlib.import_module(_module_name(proto)).DESCRIPTOR


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


# --- generated code -----------------------------------------------------------------------


def test_generated_code_matches_protos() -> None:
    result = _run(sys.executable, PROTOGEN, "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_generation_is_deterministic(tmp_path: Path) -> None:
    protogen = _load_protogen()
    protogen.generate(tmp_path / "a")
    protogen.generate(tmp_path / "b")
    first, second = tmp_path / "a" / "lgsp" / "api", tmp_path / "b" / "lgsp" / "api"
    assert protogen.compare(first, second) == []
    assert any(first.rglob("documents_pb2.py"))


def test_check_names_stale_and_leftover_files(tmp_path: Path) -> None:
    shutil.copytree(PROTO, tmp_path / "proto")
    shutil.copytree(ROOT / "lgsp" / "api", tmp_path / "lgsp" / "api")
    search = tmp_path / "proto" / "lgsp" / "api" / "search" / "v1" / "search.proto"
    search.write_text(
        search.read_text(encoding="utf-8").replace(
            "message SuggestResponse {",
            "message SuggestResponse {\n  // Added.\n  int32 added = 9;",
        ),
        encoding="utf-8",
    )
    leftover = tmp_path / "lgsp" / "api" / "search" / "v1" / "old_pb2.py"
    leftover.write_text("# from a deleted proto\n", encoding="utf-8")

    check = _run(sys.executable, PROTOGEN, "--check", "--root", tmp_path)
    assert check.returncode == 1
    assert "stale: lgsp/api/search/v1/search_pb2.py" in check.stderr
    assert "stale: lgsp/api/search/v1/search_pb2.pyi" in check.stderr
    assert "not generated from any proto: lgsp/api/search/v1/old_pb2.py" in check.stderr
    assert "documents_pb2" not in check.stderr

    regenerate = _run(sys.executable, PROTOGEN, "--root", tmp_path)
    assert regenerate.returncode == 0, regenerate.stderr
    assert not leftover.exists()
    assert _run(sys.executable, PROTOGEN, "--check", "--root", tmp_path).returncode == 0


def test_services_get_grpc_modules_and_event_files_do_not(tmp_path: Path) -> None:
    api = ROOT / "lgsp" / "api"
    assert (api / "documents" / "v1" / "documents_pb2_grpc.py").exists()
    assert (api / "documents" / "v1" / "documents_pb2_grpc.pyi").exists()
    assert not (api / "documents" / "v1" / "events_pb2_grpc.py").exists()
    assert not (api / "events" / "v1" / "envelope_pb2_grpc.py").exists()


@pytest.mark.parametrize("proto", PROTO_FILES)
def test_every_generated_module_imports(proto: str) -> None:
    module = importlib.import_module(_module_name(proto))
    assert module.DESCRIPTOR.name == proto
    if module.DESCRIPTOR.services_by_name:
        grpc_module = importlib.import_module(_module_name(proto) + "_grpc")
        for service in module.DESCRIPTOR.services_by_name:
            assert hasattr(grpc_module, f"{service}Stub")
            assert hasattr(grpc_module, f"add_{service}Servicer_to_server")


def test_areas_import_as_documented() -> None:
    from lgsp.api.documents.v1 import documents_pb2, documents_pb2_grpc
    from lgsp.api.dossiers.v1 import dossiers_pb2
    from lgsp.api.events.v1 import envelope_pb2
    from lgsp.api.gateway.v1 import gateway_pb2
    from lgsp.api.identity.v1 import admin_pb2, identity_pb2
    from lgsp.api.mail.v1 import mail_pb2
    from lgsp.api.search.v1 import search_pb2

    assert documents_pb2.DESCRIPTOR.package == "lgsp.api.documents.v1"
    assert hasattr(documents_pb2_grpc, "DocumentServiceStub")
    assert set(dossiers_pb2.DESCRIPTOR.services_by_name) >= {
        "ProcedureService",
        "DossierService",
        "DossierLookupService",
    }
    assert "Envelope" in envelope_pb2.DESCRIPTOR.message_types_by_name
    assert set(gateway_pb2.DESCRIPTOR.services_by_name) >= {
        "MemberService",
        "AccessService",
        "MessageLogService",
        "SchemaRegistryService",
    }
    assert "IdentityService" in identity_pb2.DESCRIPTOR.services_by_name
    assert "AdminService" in admin_pb2.DESCRIPTOR.services_by_name
    assert "MailService" in mail_pb2.DESCRIPTOR.services_by_name
    assert "SearchService" in search_pb2.DESCRIPTOR.services_by_name


# --- the contracts themselves -------------------------------------------------------------


def test_every_area_has_a_v1_package() -> None:
    packages = {_file_descriptor(p).package for p in PROTO_FILES}
    assert {f"lgsp.api.{area}.v1" for area in AREAS} <= packages
    for proto in PROTO_FILES:
        area = proto.split("/")[2]
        assert _file_descriptor(proto).package == f"lgsp.api.{area}.v1", proto


def test_every_enum_starts_with_unspecified_zero() -> None:
    for proto in PROTO_FILES:
        for enum in _file_descriptor(proto).enum_types_by_name.values():
            zero = enum.values_by_number[0]
            assert zero.name.endswith("_UNSPECIFIED"), enum.full_name


def test_event_files_hold_only_event_messages_with_a_payload() -> None:
    events = [p for p in PROTO_FILES if p.endswith("/events.proto")]
    assert {p.split("/")[2] for p in events} >= {
        "identity",
        "documents",
        "dossiers",
        "mail",
        "gateway",
    }
    for proto in events:
        file = _file_descriptor(proto)
        assert not file.services_by_name, proto
        assert file.message_types_by_name, proto
        for message in file.message_types_by_name.values():
            assert message.fields, f"{message.full_name} carries nothing"


def test_event_round_trips_through_the_envelope_by_type_name() -> None:
    from lgsp.api.documents.v1 import documents_pb2, events_pb2
    from lgsp.api.events.v1 import envelope_pb2

    issued = events_pb2.DocumentIssued(
        document=documents_pb2.Document(
            id="d-1",
            number_notation="123/QĐ-UBND",
            subject="Về việc cải cách hành chính",
            signer=documents_pb2.Signer(
                full_name="Nguyễn Văn An", mode=documents_pb2.SIGNING_MODE_DEPUTY
            ),
        ),
        actor_id="u-1",
    )
    envelope = envelope_pb2.Envelope(
        id="e-1",
        type=issued.DESCRIPTOR.full_name,
        source="documents",
        subject="d-1",
        time=Timestamp(seconds=1_750_000_000),
        trace_context={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
        payload=issued.SerializeToString(),
    )
    received = envelope_pb2.Envelope.FromString(envelope.SerializeToString())

    assert received.type == "lgsp.api.documents.v1.DocumentIssued"
    descriptor = descriptor_pool.Default().FindMessageTypeByName(received.type)
    decoded = message_factory.GetMessageClass(descriptor).FromString(received.payload)
    assert isinstance(decoded, events_pb2.DocumentIssued)
    assert decoded == issued
    assert decoded.document.signer.mode == documents_pb2.SIGNING_MODE_DEPUTY


def test_status_numbers_are_the_official_codes() -> None:
    from lgsp.api.documents.v1 import documents_pb2
    from lgsp.api.dossiers.v1 import dossiers_pb2

    edxml = {
        name.removeprefix("INCOMING_STATUS_"): f"{number:02d}"
        for name, number in documents_pb2.IncomingStatus.items()
        if number
    }
    assert edxml == {
        "ARRIVED": "01",
        "REFUSED": "02",
        "ACCEPTED": "03",
        "ASSIGNED": "04",
        "IN_PROGRESS": "05",
        "DONE": "06",
        "RECALLED": "13",
        "RECALL_ACCEPTED": "15",  # answers to a recall (QCVN 102:2016 / the axis SDKs)
        "RECALL_REFUSED": "16",
    }
    dossier = {int(n): name for name, n in dossiers_pb2.DossierStatus.items() if n}
    assert sorted(dossier) == list(range(1, 11))
    assert dossier[1] == "DOSSIER_STATUS_SUBMITTED"
    assert dossier[5] == "DOSSIER_STATUS_SUPPLEMENT_REQUESTED"
    assert dossier[10] == "DOSSIER_STATUS_RESULT_RETURNED"


def test_lists_page_with_page_size_and_token() -> None:
    for proto in PROTO_FILES:
        for service in _file_descriptor(proto).services_by_name.values():
            for method in service.methods:
                if not method.name.startswith(("List", "Query")):
                    continue
                request, response = method.input_type, method.output_type
                if "page_size" not in request.fields_by_name:
                    # Small fixed lists (document types, fields, topics) come whole.
                    assert "next_page_token" not in response.fields_by_name, method.full_name
                    continue
                assert "page_token" in request.fields_by_name, method.full_name
                assert "next_page_token" in response.fields_by_name, method.full_name


# --- buf ----------------------------------------------------------------------------------


def _require_buf() -> None:
    if not BUF.exists():
        missing_server("buf not installed: run make setup")


def test_buf_lint_passes() -> None:
    _require_buf()
    result = _run(BUF, "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def _git(repo: Path, *args: str) -> str:
    result = _run(
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "-c",
        "init.defaultBranch=main",
        *args,
        cwd=repo,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_buf_breaking_compares_with_main(tmp_path: Path) -> None:
    _require_buf()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tools").mkdir()
    shutil.copy(BUF_BREAKING, repo / "tools")
    (repo / "node_modules").symlink_to(ROOT / "node_modules")
    (repo / ".gitignore").write_text("node_modules\n", encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "main before any proto")

    def check() -> subprocess.CompletedProcess[str]:
        return _run(sys.executable, repo / "tools" / "buf_breaking.py", cwd=repo)

    # Protos on a branch while main has none: nothing to compare, passes.
    _git(repo, "checkout", "-qb", "contracts")
    shutil.copytree(PROTO, repo / "proto")
    shutil.copy(ROOT / "buf.yaml", repo)
    first = check()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no proto/ yet" in first.stdout

    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "contracts")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--ff-only", "contracts")

    # A detached HEAD equal to main passes.
    _git(repo, "checkout", "-q", "--detach")
    clean = check()
    assert clean.returncode == 0, clean.stdout + clean.stderr

    # Renumbering an envelope field breaks the wire format: the check fails and says where.
    envelope = repo / "proto" / "lgsp" / "api" / "events" / "v1" / "envelope.proto"
    envelope.write_text(
        envelope.read_text(encoding="utf-8").replace("bytes payload = 7;", "bytes payload = 8;"),
        encoding="utf-8",
    )
    broken = check()
    assert broken.returncode != 0
    assert "envelope.proto" in broken.stdout + broken.stderr
