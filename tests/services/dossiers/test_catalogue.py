"""The procedure catalogue: the seed is real and fits the demo province; ListProcedures'
filters, accent-insensitive query, paging and its tokens, inactive procedures for admins only;
ListFields; the import/export commands (all or nothing, events, round trip)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from lgsp import db, events
from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.cli import main
from lgsp.config import load_settings
from lgsp.textfold import fold
from services.dossiers.catalogue import CATALOGUE, load_catalogue
from services.dossiers.domain.procedure import PROCEDURE_CODE, OnlineLevel
from services.identity.seed import AGENCIES as DEMO_AGENCIES
from tests.integration.test_new_service import bad_request_fields
from tests.services.dossiers.test_grpc import PROVINCE, THANH_SEN, Env, env, refused

__all__ = ["env"]  # the gRPC fixture of test_grpc, shared

SO_XAY_DUNG = "000.00.14.H27"


def test_the_seed_catalogue_is_real_and_fits_the_demo_province() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 50
    assert len({p.code for p in catalogue}) == len(catalogue)
    demo = {a[0] for a in DEMO_AGENCIES}
    names: dict[str, str] = {}
    for p in catalogue:
        assert PROCEDURE_CODE.fullmatch(p.code) and p.name == p.name.strip(), p.code
        assert set(p.agency_codes) <= demo, p.code
        assert p.source_url.startswith("https://dichvucong.gov.vn/thu-tuc-hanh-chinh/"), p.code
        assert sum(s.working_days for s in p.steps) == p.processing_days or not p.steps, p.code
        assert (p.processing_days == 0) == (not p.steps), p.code
        assert p.required_papers and p.legal_basis and p.result_description, p.code
        assert names.setdefault(p.field.code, p.field.name) == p.field.name, p.code
    # Commune, department and province level alike, in a dozen fields.
    assert len(names) >= 12
    assert {THANH_SEN, SO_XAY_DUNG, "000.00.02.H27", "000.00.03.H27", "000.00.17.H27"} <= {
        a for p in catalogue for a in p.agency_codes
    }


def stub(env: Env) -> Any:
    return dossiers_pb2_grpc.ProcedureServiceStub(env.ch)


async def list_all(env: Env, user: str | None = None, **filters: Any) -> pb.ListProceduresResponse:
    md = env.md(user) if user else None
    return await stub(env).ListProcedures(
        pb.ListProceduresRequest(page_size=500, **filters), metadata=md
    )


async def test_filters_and_the_accent_insensitive_query_need_no_token(env: Env) -> None:
    everything = await list_all(env)
    assert everything.total_size == len(everything.procedures) == len(load_catalogue())
    codes = [p.code for p in everything.procedures]
    assert codes == sorted(codes)

    civil = await list_all(env, field_code="HT")
    assert civil.total_size == len(civil.procedures) >= 10
    assert {p.field.code for p in civil.procedures} == {"HT"}

    department = await list_all(env, agency_code=SO_XAY_DUNG)
    assert {p.code for p in department.procedures} == {"1.013236", "1.000703"}
    # The province finds what its communes handle (its sub-agencies), not an unrelated code.
    province = {p.code for p in (await list_all(env, agency_code=PROVINCE)).procedures}
    assert "1.001193" in province and "1.013236" not in province
    assert (await list_all(env, agency_code="000.00.99.H27")).total_size == 0

    full = await list_all(env, min_online_service_level=pb.ONLINE_SERVICE_LEVEL_FULL)
    assert full.procedures and all(
        p.online_service_level == OnlineLevel.FULL for p in full.procedures
    )
    assert len(full.procedures) < len(everything.procedures)

    plain = await list_all(env, query="dang ky khai sinh")
    upper = await list_all(env, query="  ĐĂNG KÝ KHAI SINH ")
    found = {p.code for p in plain.procedures}
    assert found == {p.code for p in upper.procedures}
    assert {"1.001193", "1.004772", "1.000689", "2.000528"} <= found
    assert all("dang ky khai sinh" in fold(p.name) for p in plain.procedures)
    assert {p.code for p in (await list_all(env, query="1.00119")).procedures} == {"1.001193"}
    both = await list_all(env, query="khai sinh", field_code="HT", agency_code=THANH_SEN)
    assert "1.001193" in {p.code for p in both.procedures}
    assert (await list_all(env, query="100%_")).total_size == 0  # LIKE's wildcards are literal


async def test_pages_follow_each_other_and_a_changed_token_is_refused(env: Env) -> None:
    seen: list[str] = []
    token = ""
    while True:
        page = await stub(env).ListProcedures(
            pb.ListProceduresRequest(page_size=7, page_token=token)
        )
        assert len(page.procedures) <= 7 and page.total_size == len(load_catalogue())
        seen += [p.code for p in page.procedures]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(set(seen)) and len(seen) == len(load_catalogue())

    first = await stub(env).ListProcedures(pb.ListProceduresRequest(page_size=5, field_code="HT"))
    token = first.next_page_token
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (tampered, "not-a-token", token[:10]):
        error = await refused(
            stub(env).ListProcedures(
                pb.ListProceduresRequest(page_size=5, field_code="HT", page_token=bad)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert bad_request_fields(error) == ["page_token"]
    # A token is for the filters it was made for.
    error = await refused(
        stub(env).ListProcedures(
            pb.ListProceduresRequest(page_size=5, field_code="CT", page_token=token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_request_fields(error) == ["page_token"]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": -1}, "page_size"),
        ({"min_online_service_level": 7}, "min_online_service_level"),
        ({"agency_code": "phường Thành Sen"}, "agency_code"),
        ({"query": "khai\x00sinh"}, "query"),
        ({"query": "x" * 201}, "query"),
        ({"field_code": "H" * 41}, "field_code"),
    ],
)
async def test_bad_list_requests_name_the_field(
    env: Env, request_fields: dict[str, Any], field: str
) -> None:
    error = await refused(
        stub(env).ListProcedures(pb.ListProceduresRequest(**request_fields)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_request_fields(error) == [field]


async def test_inactive_procedures_are_listed_for_admins_only(env: Env) -> None:
    p = (await stub(env).GetProcedure(pb.GetProcedureRequest(code="1.012591"))).procedure
    p.active = False
    update = pb.UpdateProcedureRequest(procedure=p)
    update.update_mask.paths.append("active")
    await stub(env).UpdateProcedure(update, metadata=env.md("admin"))

    assert "1.012591" not in {p.code for p in (await list_all(env)).procedures}
    assert "1.012591" not in {p.code for p in (await list_all(env, "ts-vt")).procedures}
    await refused(
        stub(env).ListProcedures(
            pb.ListProceduresRequest(include_inactive=True), metadata=env.md("ts-vt")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        stub(env).ListProcedures(pb.ListProceduresRequest(include_inactive=True)),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    admin = await list_all(env, "admin", include_inactive=True)
    assert "1.012591" in {p.code for p in admin.procedures}
    assert admin.total_size == len(load_catalogue())


async def test_fields_are_ordered_by_name(env: Env) -> None:
    fields = (await stub(env).ListFields(pb.ListFieldsRequest())).fields
    names = [f.name for f in fields]
    assert names == sorted(names, key=fold) and "Hộ tịch" in names
    assert (
        len({f.code for f in fields})
        == len(fields)
        == len({p.field.code for p in load_catalogue()})
    )


# --- lgsp dossiers procedures export|import -------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    return tmp_path


def outbox(data_dir: Path) -> list[Any]:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(data_dir)})
    engine = db.create_engine(settings.service("dossiers").database_url)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(sa.select(db.outbox_table).order_by(db.outbox_table.c.id)))
    finally:
        engine.dispose()
    return [events.decode(r.value) for r in rows]


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_import_is_all_or_nothing_and_export_round_trips(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dossiers", "procedures", "import", str(CATALOGUE)]) == 0
    n = len(load_catalogue())
    assert f"created {n}, updated 0, unchanged 0" in capsys.readouterr().out
    created = outbox(data_dir)
    assert len(created) == n and {e.type.rsplit(".", 1)[1] for e in created} == {"ProcedureCreated"}

    exported = data_dir / "export.json"
    assert main(["dossiers", "procedures", "export", str(exported)]) == 0
    document = json.loads(exported.read_text("utf-8"))
    assert [p["code"] for p in document["procedures"]] == sorted(p.code for p in load_catalogue())
    capsys.readouterr()
    assert main(["dossiers", "procedures", "import", str(exported)]) == 0
    assert f"created 0, updated 0, unchanged {n}" in capsys.readouterr().out
    assert len(outbox(data_dir)) == n

    # One good change and one bad entry: refused whole, the bad entry and field named.
    changed = json.loads(exported.read_text("utf-8"))
    changed["procedures"][0]["fee_vnd"] = 99000
    changed["procedures"][3]["processing_days"] = 400
    bad = write(data_dir / "bad.json", changed)
    assert main(["dossiers", "procedures", "import", bad]) == 1
    assert "procedures[3].processing_days" in capsys.readouterr().err
    changed["procedures"][3] = dict(changed["procedures"][3], processing_days=None)
    assert main(["dossiers", "procedures", "import", write(data_dir / "bad.json", changed)]) == 1
    assert "procedures[3]" in capsys.readouterr().err
    changed["procedures"][3] = dict(changed["procedures"][4])
    assert main(["dossiers", "procedures", "import", write(data_dir / "bad.json", changed)]) == 1
    assert "procedures[4].code" in capsys.readouterr().err  # the second of the two
    del changed["procedures"][3]["name"]
    assert main(["dossiers", "procedures", "import", write(data_dir / "bad.json", changed)]) == 1
    assert "procedures[3].name" in capsys.readouterr().err
    assert main(["dossiers", "procedures", "import", write(data_dir / "bad.json", [])]) == 1
    assert len(outbox(data_dir)) == n
    main(["dossiers", "procedures", "export", str(data_dir / "again.json")])
    assert json.loads((data_dir / "again.json").read_text("utf-8")) == document

    # The good change alone: one update, its event naming the field that changed.
    good = json.loads(exported.read_text("utf-8"))
    good["procedures"][0]["fee_vnd"] = 99000
    capsys.readouterr()
    assert main(["dossiers", "procedures", "import", write(data_dir / "good.json", good)]) == 0
    assert f"created 0, updated 1, unchanged {n - 1}" in capsys.readouterr().out
    last = outbox(data_dir)[-1]
    assert last.type.endswith("ProcedureUpdated") and last.subject == good["procedures"][0]["code"]


def test_revision_0003_fills_the_listing_columns_of_stored_procedures(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from services.dossiers.adapters.repository import ProcedureRepository, procedure_to_json
    from services.dossiers.domain.procedure import ProcedureQuery
    from services.dossiers.plugin import PLUGIN

    assert PLUGIN.migrations is not None
    engine = db.create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(PLUGIN.migrations))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        birth = next(p for p in load_catalogue() if p.code == "1.001193")
        conn.execute(
            sa.text(
                "insert into procedures"
                " (code, name, field_code, active, data, version, update_time)"
                " values (:c, :n, 'HT', 1, :d, 1, '2026-01-01 00:00:00')"
            ),
            {"c": birth.code, "n": birth.name, "d": json.dumps(procedure_to_json(birth))},
        )
    db.migrate(engine, PLUGIN.migrations)
    with db.UnitOfWork(engine, source="test") as uow:
        repo = ProcedureRepository(uow.session)
        found = repo.search(
            ProcedureQuery(agency_codes=frozenset({THANH_SEN}), text="khai sinh"), "", 10
        )
        assert [p.code for p in found] == ["1.001193"]
        assert repo.fields()[0].name == "Hộ tịch"
    engine.dispose()
