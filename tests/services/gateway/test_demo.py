"""The demo's members: what `make run` needs to work a dossier through the gateway."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from lgsp.api.gateway.v1 import gateway_pb2
from lgsp.db import platform_metadata
from services.gateway import tables as t
from services.gateway.demo import seed_demo_members
from services.gateway.registry import Registry


def test_the_one_stop_desks_systems_may_call_the_dossiers_service(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    t.metadata.create_all(engine)
    platform_metadata.create_all(engine)
    registry = Registry(engine)
    assert seed_demo_members(registry) == 3
    assert seed_demo_members(registry) == 0  # idempotent
    registry.reload()
    desk = registry.member_for_client("motcua-thanhsen")
    assert desk is not None and desk.code == "000.00.61.H27:motcua-thanhsen"
    for method in (
        "/lgsp.api.dossiers.v1.DossierService/SubmitDossier",
        "/lgsp.api.dossiers.v1.DossierLookupService/LookupDossier",
    ):
        assert registry.check_method(desk.code, method).allowed
    assert not registry.check_method(
        desk.code, "/lgsp.api.national.v1.PopulationService/VerifyCitizen"
    ).allowed
    service = registry.member_for_client("dossiers")
    assert service is not None
    assert not registry.check_method(
        service.code, "/lgsp.api.dossiers.v1.DossierService/SubmitDossier"
    ).allowed


def test_refresh_sees_another_process_change_and_reads_nothing_else_while_idle(
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    t.metadata.create_all(engine)
    platform_metadata.create_all(engine)
    gateway, cli = Registry(engine), Registry(engine)  # the running gateway, `lgsp member`
    seed_demo_members(cli)
    gateway.refresh()
    assert gateway.member_for_client("motcua-thanhsen") is not None
    reloads = 0
    reload = gateway.reload

    def counted() -> None:
        nonlocal reloads
        reloads += 1
        reload()

    gateway.reload = counted  # type: ignore[method-assign]
    for _ in range(3):
        gateway.refresh()
    assert reloads == 0  # nothing changed: one number read, no snapshot rebuilt
    code = "000.00.61.H27:motcua-thanhsen"
    cli.set_status("admin", code, "", gateway_pb2.MEMBER_STATUS_SUSPENDED, "thử nghiệm")
    gateway.refresh()
    assert reloads == 1
    member = gateway.member(code)
    assert member is not None and not member.active
