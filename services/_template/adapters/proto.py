"""Domain ↔ contract (lgsp.api.template.v1): the one place that knows both."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.template.v1 import events_pb2, template_pb2
from services._template.domain.model import Notice


def notice_to_proto(notice: Notice) -> template_pb2.Notice:
    posted = Timestamp()
    posted.FromDatetime(notice.posted_time)
    return template_pb2.Notice(
        id=notice.id,
        agency_code=notice.agency_code,
        title=notice.title,
        author_id=notice.author_id,
        posted_time=posted,
    )


def notice_posted(notice: Notice) -> events_pb2.NoticePosted:
    return events_pb2.NoticePosted(notice=notice_to_proto(notice))
