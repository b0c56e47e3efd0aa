"""The dossiers use cases in process on a real database (SQLite file or PostgreSQL), a clock
the test moves, and officials as principals: for the listing and figures tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from lgsp import db
from lgsp.agencies import Agency, AgencyDirectory
from lgsp.auth import Principal
from lgsp.workdays import PROVINCE_TZ, WorkingCalendar
from services.dossiers.catalogue import load_catalogue
from services.dossiers.domain.deadlines import DueDateRule
from services.dossiers.domain.dossier import Applicant, ApplicantKind, Channel, Dossier, Paper
from services.dossiers.plugin import PLUGIN
from services.dossiers.service_layer.dossiers import DossiersApp

PROVINCE, THANH_SEN, TRAN_PHU = "000.00.00.H27", "000.00.61.H27", "000.00.62.H27"
AGENCIES = AgencyDirectory(
    [
        Agency(PROVINCE, "Ủy ban nhân dân tỉnh Hà Tĩnh", "UBND", "", "Hà Tĩnh"),
        Agency(THANH_SEN, "Ủy ban nhân dân phường Thành Sen", "UBND", PROVINCE, "Hà Tĩnh"),
        Agency(TRAN_PHU, "Ủy ban nhân dân phường Trần Phú", "UBND", PROVINCE, "Hà Tĩnh"),
    ]
)
MARRIAGE_STATUS = "1.004873"  # Cấp Giấy xác nhận tình trạng hôn nhân: 3 working days, paper TK


def official(user: str, agency: str, *roles: str) -> Principal:
    return Principal(subject=user, kind="user", grants={agency: frozenset(roles)})


TS_CLERK = official("ts-vt", THANH_SEN, "clerk")
TS_LEADER = official("ts-ld", THANH_SEN, "leader")
TP_CLERK = official("tp-vt", TRAN_PHU, "clerk")
TP_LEADER = official("tp-ld", TRAN_PHU, "leader")
PROVINCE_LEADER = official("tinh-ld", PROVINCE, "leader")
ADMIN = official("admin", PROVINCE, "admin")
AUDITOR = Principal(subject="kt", kind="user", roles=frozenset({"auditor"}))


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PROVINCE_TZ)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    """The app and its clock, with the steps a test needs in one line each."""

    app: DossiersApp
    clock: Clock

    def at(self, when: datetime) -> Desk:
        self.clock.now = when
        return self

    def file(
        self,
        when: datetime,
        *,
        name: str = "Nguyễn Thị Hoa",
        pin: str = "042195001234",
        agency: str = THANH_SEN,
        clerk: Principal = TS_CLERK,
        organization: tuple[str, str] = ("", ""),
    ) -> Dossier:
        self.at(when)
        kind = ApplicantKind.ORGANIZATION if organization[0] else ApplicantKind.CITIZEN
        return self.app.submit(
            procedure_code=MARRIAGE_STATUS,
            agency_code=agency,
            applicant=Applicant(
                kind,
                name,
                pin,
                date(1995, 3, 1),
                organization_name=organization[0],
                organization_code=organization[1],
            ),
            channel=Channel.COUNTER,
            papers=[Paper("TK", "Tờ khai", originals=1)],
            request_id="",
            principal=clerk,
        )

    def accepted(self, when: datetime, **kw: object) -> Dossier:
        d = self.file(when, **kw)  # type: ignore[arg-type]
        return self.app.accept(d.id, "", _clerk_of(d))

    def processed(self, d: Dossier, when: datetime, comment: str = "") -> Dossier:
        leader = TS_LEADER if d.agency_code == THANH_SEN else TP_LEADER
        self.at(when)
        if d.status == 2:
            d = self.app.start_processing(d.id, "", "cv", leader)
        return self.app.complete(d.id, "", "12/XN", "", comment, leader)


def _clerk_of(d: Dossier) -> Principal:
    return TS_CLERK if d.agency_code == THANH_SEN else TP_CLERK


def make_desk(url: str, now: datetime) -> Desk:
    engine = db.create_engine(url)
    assert PLUGIN.migrations is not None
    db.migrate(engine, PLUGIN.migrations)
    clock = Clock(now)
    app = DossiersApp(engine, AGENCIES, DueDateRule(WorkingCalendar()), clock=clock)
    app.seed(load_catalogue())
    return Desk(app, clock)
