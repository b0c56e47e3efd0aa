"""The province's calendar: deadlines and books are counted in Vietnam time (UTC+7, no DST)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

PROVINCE_TZ = timezone(timedelta(hours=7), "ICT")


def local_date(moment: datetime) -> date:
    return moment.astimezone(PROVINCE_TZ).date()
