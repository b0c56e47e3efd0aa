"""ListDossiers and GetDossierFigures on the real gRPC server (tokens of a stand-in issuer):
the codes a caller gets (PERMISSION_DENIED, INVALID_ARGUMENT naming the field), the figures
of a dossier taken through the desk, and `lgsp dossiers stats` reading the same database."""

from __future__ import annotations

import json

import grpc
import pytest

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.cli import main
from tests.integration.test_new_service import bad_request_fields
from tests.services.dossiers import test_grpc
from tests.services.dossiers.test_grpc import (
    PROVINCE,
    THANH_SEN,
    TRAN_PHU,
    Env,
    birth_registration,
    refused,
)

env = test_grpc.env  # the service on a real gRPC server, with the officials' tokens


async def _one_processed(env: Env) -> pb.Dossier:
    clerk, leader = env.dossiers("ts-vt"), env.dossiers("ts-ld")
    d = (await clerk.SubmitDossier(birth_registration(full_name="Đặng Thị Hoa"))).dossier
    d = (await clerk.AcceptDossier(pb.AcceptDossierRequest(dossier_id=d.id))).dossier
    await leader.StartProcessing(pb.StartProcessingRequest(dossier_id=d.id, handler_user_id="cv"))
    return (
        await leader.CompleteProcessing(
            pb.CompleteProcessingRequest(dossier_id=d.id, result_number="1/XN")
        )
    ).dossier


async def test_figures_and_list_over_grpc(env: Env) -> None:
    d = await _one_processed(env)
    leader = env.dossiers("ts-ld")
    f = await leader.GetDossierFigures(
        pb.GetDossierFiguresRequest(
            agency_code=THANH_SEN,
            from_date="2026-05-01",
            to_date="2026-05-31",
            grouping=pb.FIGURES_GROUPING_PROCEDURE_AND_MONTH,
        )
    )
    assert (f.total.received, f.total.processed, f.total.processed_early) == (1, 1, 1)
    assert f.total.on_time_share == 1.0
    assert [(r.procedure_code, r.month) for r in f.rows] == [("1.004873", "2026-05")]
    province = await env.dossiers("admin").GetDossierFigures(
        pb.GetDossierFiguresRequest(agency_code=PROVINCE, include_sub_agencies=True)
    )
    assert province.total.processed == 1  # this month so far (the clock: 4 May 2026)

    found = await leader.ListDossiers(pb.ListDossiersRequest(query="dang thi hoa"))
    assert [x.receipt_code for x in found.dossiers] == [d.receipt_code]
    assert found.total_size == 1
    nothing = await env.dossiers("tp-vt").ListDossiers(pb.ListDossiersRequest(query="hoa"))
    assert list(nothing.dossiers) == [] and nothing.total_size == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetDossierFiguresRequest(from_date="2026-02-30"), "from_date"),
        (pb.GetDossierFiguresRequest(from_date="2026-05-09", to_date="2026-05-01"), "from_date"),
        (pb.GetDossierFiguresRequest(grouping=42), "grouping"),  # type: ignore[arg-type]
        (pb.ListDossiersRequest(page_token="AAAA.BBBB"), "page_token"),
        (pb.ListDossiersRequest(to_date="31/05/2026"), "to_date"),
        (pb.ListDossiersRequest(statuses=[77]), "statuses[0]"),  # type: ignore[list-item]
    ],
)
async def test_bad_requests_name_the_field(env: Env, request_: object, field: str) -> None:
    leader = env.dossiers("ts-ld")
    rpc = (
        leader.GetDossierFigures
        if isinstance(request_, pb.GetDossierFiguresRequest)
        else leader.ListDossiers
    )
    e = await refused(rpc(request_), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_request_fields(e) == [field]


async def test_other_agencies_are_refused(env: Env) -> None:
    tp = env.dossiers("tp-vt")
    await refused(
        tp.GetDossierFigures(pb.GetDossierFiguresRequest(agency_code=THANH_SEN)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        tp.ListDossiers(pb.ListDossiersRequest(agency_code=THANH_SEN)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(  # the platform admin reads figures, not citizens' dossiers
        env.dossiers("admin").ListDossiers(pb.ListDossiersRequest()),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    ok = await tp.GetDossierFigures(pb.GetDossierFiguresRequest(agency_code=TRAN_PHU))
    assert ok.total.received == 0


async def test_the_stats_command_reads_the_database(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await _one_processed(env)
    data_dir = env.runtime.settings.platform.data_dir
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(data_dir))
    monkeypatch.delenv("LGSP_CONFIG", raising=False)
    period = ["--from", "2026-05-01", "--to", "2026-05-31"]
    assert main(["dossiers", "stats", *period, "--by", "agency"]) == 0
    out = capsys.readouterr().out
    assert "dossiers 2026-05-01 .. 2026-05-31" in out
    row = next(line for line in out.splitlines() if line.startswith(THANH_SEN)).split()
    assert row[1:4] == ["1", "0.0%", "1"]  # received, online, processed
    assert main(["dossiers", "stats", *period, "--json", "--rebuild"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["processed_early"] == 1 and data["rows"] == []
    assert main(["dossiers", "stats", "--from", "2026-05-09", "--to", "2026-05-01"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "lgsp dossiers: --from: 2026-05-09 is after to_date 2026-05-01"
