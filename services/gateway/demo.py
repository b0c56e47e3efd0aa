"""The demo's members: the platform's own services registered at the gateway with the rights
they use, so `make run` works end to end (the dossiers service verifies applicants through
the national API). Idempotent: a member that exists is left as it is, a right granted again is
the same right. Only with [gateway] demo_seed; a real province registers its members with
`lgsp member register` / `lgsp access grant` under its own agreements.
"""

from __future__ import annotations

import logging

from lgsp.api.gateway.v1 import gateway_pb2 as pb
from lgsp.grpc.errors import AlreadyExists
from services.gateway.registry import Registry

log = logging.getLogger("services.gateway")

ACTOR = "demo-seed"
PROVINCE = "000.00.00.H27"  # the demo province's people's committee (identity's demo seed)
# Decree 45/2020/ND-CP (administrative procedures in the electronic environment): data held
# in national databases is looked up there rather than asked of the applicant again. The
# article was not verified (docs/dossiers.md); a real right names the province's agreement.
LEGAL_BASIS = "Nghị định 45/2020/NĐ-CP (demo)"

# (member code, client id, name, [(service, methods)])
MEMBERS: list[tuple[str, str, str, list[tuple[str, list[str]]]]] = [
    (
        f"{PROVINCE}:dossiers",
        "dossiers",
        "Dịch vụ hồ sơ một cửa",
        [
            ("lgsp.api.national.v1.PopulationService", ["VerifyCitizen"]),
            ("lgsp.api.national.v1.BusinessRegistryService", ["GetEnterprise"]),
        ],
    ),
    # The one-stop desks' systems (identity's demo clients of the same names): their officials
    # sign in through them and work dossiers through the gateway; without these, `make run`
    # answered every desk call "client … is not a registered LGSP member".
    (
        "000.00.61.H27:motcua-thanhsen",
        "motcua-thanhsen",
        "Hệ thống một cửa phường Thành Sen",
        [("lgsp.api.dossiers.v1.*", [])],
    ),
    (
        "000.00.20.H27:dvc-hatinh",
        "dvc-hatinh",
        "Cổng dịch vụ công tỉnh Hà Tĩnh",
        [("lgsp.api.dossiers.v1.*", [])],
    ),
]


def seed_demo_members(registry: Registry) -> int:
    """Register the demo members and grant their rights; the number of members registered."""
    registered = 0
    for code, client_id, name, rights in MEMBERS:
        try:
            registry.register_member(
                ACTOR,
                pb.Member(
                    code=code,
                    name=name,
                    agency_code=code.partition(":")[0],
                    kind=(
                        pb.MEMBER_KIND_PLATFORM_SERVICE
                        if code.startswith(PROVINCE)
                        else pb.MEMBER_KIND_PROVINCIAL_SYSTEM
                    ),
                    client_id=client_id,
                ),
            )
            registered += 1
        except AlreadyExists:
            pass
        for service, methods in rights:
            registry.grant(
                ACTOR,
                pb.AccessRight(
                    member_code=code,
                    service=pb.ServiceTarget(service=service, methods=methods),
                    legal_basis=LEGAL_BASIS,
                ),
            )
    if registered:
        log.info("demo members registered at the gateway: %d", registered)
    return registered
