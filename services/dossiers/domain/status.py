"""Dossier statuses and the only jumps the one-stop rules allow between them.

The numbers are the status codes of the national public service portal (the same as the
contract's DossierStatus). Every change of status goes through `check_transition`; the table
below is the single place that says which changes are legal.
"""

from __future__ import annotations

from enum import IntEnum

from services.dossiers.domain.errors import IllegalTransition


class Status(IntEnum):
    SUBMITTED = 1  # mới nộp, chờ bộ phận một cửa kiểm tra
    ACCEPTED = 2  # đã tiếp nhận, hẹn trả đã định
    REFUSED = 3  # từ chối tiếp nhận
    IN_PROGRESS = 4  # đang xử lý
    SUPPLEMENT_REQUESTED = 5  # yêu cầu bổ sung: thời hạn tạm dừng
    FEE_REQUESTED = 6  # chờ nộp phí, lệ phí: thời hạn tạm dừng
    WITHDRAWN = 7  # công dân rút hồ sơ
    STOPPED = 8  # dừng xử lý
    PROCESSED = 9  # đã có kết quả, chờ trả
    RESULT_RETURNED = 10  # đã trả kết quả

    def __str__(self) -> str:
        return f"{self.value} {self.name}"


S = Status

# from → the statuses it may go to. Nothing leaves 3, 7, 8 or 10: they are final.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.SUBMITTED: frozenset({S.ACCEPTED, S.REFUSED, S.WITHDRAWN}),
    S.ACCEPTED: frozenset(
        {S.IN_PROGRESS, S.SUPPLEMENT_REQUESTED, S.FEE_REQUESTED, S.WITHDRAWN, S.STOPPED}
    ),
    S.IN_PROGRESS: frozenset(
        {S.SUPPLEMENT_REQUESTED, S.FEE_REQUESTED, S.PROCESSED, S.WITHDRAWN, S.STOPPED}
    ),
    # Papers supplemented or fee paid: processing resumes (the clock restarts).
    S.SUPPLEMENT_REQUESTED: frozenset({S.IN_PROGRESS, S.WITHDRAWN, S.STOPPED}),
    S.FEE_REQUESTED: frozenset({S.IN_PROGRESS, S.WITHDRAWN, S.STOPPED}),
    S.PROCESSED: frozenset({S.RESULT_RETURNED}),
    S.REFUSED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.STOPPED: frozenset(),
    S.RESULT_RETURNED: frozenset(),
}

# While a dossier waits on the applicant the processing time does not run.
CLOCK_STOPPED = frozenset({S.SUPPLEMENT_REQUESTED, S.FEE_REQUESTED})
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def check_transition(current: Status, wanted: Status) -> None:
    """IllegalTransition, naming both statuses, unless `current` → `wanted` is allowed."""
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)
