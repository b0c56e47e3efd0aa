"""The demo's members: what `make run` needs to work a dossier through the gateway."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

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
