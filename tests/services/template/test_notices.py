"""The service template's layers, in process over a real SQLite database: the use case
commits the notice and its NoticePosted event together, or nothing; the servicer maps the
domain's refusals to the platform's errors, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lgsp import db, events
from lgsp.api.template.v1 import events_pb2, template_pb2
from lgsp.grpc.errors import InvalidArgument
from services._template.adapters.repository import NoticeRepository
from services._template.domain.errors import InvalidField
from services._template.domain.model import MAX_TITLE, post_notice
from services._template.entrypoints.grpc import TemplateServicer
from services._template.plugin import PLUGIN
from services._template.service_layer.notices import Notices

AGENCY = "000.00.12.H27"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.create_engine(f"sqlite:///{tmp_path}/template.db")
    assert PLUGIN.migrations is not None
    db.migrate(engine, PLUGIN.migrations)
    yield engine
    engine.dispose()


def outbox(engine: Engine) -> list[sa.Row[sa.Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(db.outbox_table)))


def test_post_stores_the_notice_and_its_event_in_one_commit(engine: Engine) -> None:
    woken: list[bool] = []
    notices = Notices(engine, after_commit=lambda: woken.append(True))

    notice = notices.post(AGENCY, "  Lịch tiếp công dân tháng 7  ", author_id="u-1")

    assert notice.title == "Lịch tiếp công dân tháng 7"  # trimmed
    with notices.uow() as uow:
        assert NoticeRepository(uow.session).get(notice.id) == notice
    assert notices.count() == 1
    (row,) = outbox(engine)
    assert row.topic == "lgsp.template.v1"
    assert row.key == notice.id
    env = events.decode(row.value)
    assert env.type == "lgsp.api.template.v1.NoticePosted"
    assert env.source == "template"
    payload = events_pb2.NoticePosted.FromString(env.payload)
    assert payload.notice.id == notice.id
    assert payload.notice.title == notice.title
    assert payload.notice.author_id == "u-1"
    assert woken == [True]


def test_a_refused_notice_stores_nothing(engine: Engine) -> None:
    notices = Notices(engine)
    with pytest.raises(InvalidField) as refused:
        notices.post(AGENCY, "x" * (MAX_TITLE + 1), author_id="u-1")
    assert refused.value.field == "title"
    assert notices.count() == 0
    assert outbox(engine) == []


@pytest.mark.parametrize(
    ("agency_code", "title", "field"),
    [
        (AGENCY, "", "title"),
        (AGENCY, "   ", "title"),
        ("", "Thông báo", "agency_code"),
        ("không phải mã", "Thông báo", "agency_code"),
        ("0" * 36, "Thông báo", "agency_code"),
    ],
)
def test_the_rules_name_the_field(agency_code: str, title: str, field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        post_notice(agency_code, title, author_id="u-1")
    assert refused.value.field == field


def test_a_title_of_exactly_the_limit_is_accepted() -> None:
    assert len(post_notice(AGENCY, "x" * MAX_TITLE, author_id="u-1").title) == MAX_TITLE


async def test_the_servicer_maps_a_refusal_to_invalid_argument(engine: Engine) -> None:
    servicer = TemplateServicer(Notices(engine))
    with pytest.raises(InvalidArgument) as refused:
        await servicer.PostNotice(
            template_pb2.PostNoticeRequest(agency_code=AGENCY, title="x" * 501), None
        )
    assert refused.value.violations[0][0] == "title"
    reply = await servicer.PostNotice(
        template_pb2.PostNoticeRequest(agency_code=AGENCY, title="Thông báo nghỉ lễ"), None
    )
    assert reply.notice.id and reply.notice.posted_time.seconds > 0
    assert Notices(engine).count() == 1
