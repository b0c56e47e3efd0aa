"""Directive tasks: followed from DirectiveTaskAssigned / DirectiveTaskStatusChanged (in the
event processor's unit of work), reminded by a periodic job (bootstrap.notices_task):

    "sắp đến hạn"  once, when the deadline is `[mail] task_reminder_days` working days away
                   or closer (lgsp.workdays: weekends and Vietnamese public holidays skipped)
    "quá hạn"      once, the day after the deadline (a deadline is the end of its day in the
                   province); a task found already overdue gets only this one

Done or cancelled tasks get nothing more. A task of a whole agency (no assignee user) goes to
the agency's clerks (văn thư), who register and route its work. Each notice and its mark
commit together: a crash between them cannot send one twice.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import events_pb2 as dev
from lgsp.db import UnitOfWork
from lgsp.workdays import local_date
from services.mail.adapters.store import MailStore
from services.mail.domain import notice_templates as texts
from services.mail.domain.notice_templates import Notice
from services.mail.service_layer.notices import Notices

log = logging.getLogger("services.mail.notices")
CLOSED = (dpb.TASK_STATUS_DONE, dpb.TASK_STATUS_CANCELLED)


class Reminders(Notices):
    def on_task_assigned(self, uow: UnitOfWork, task: dpb.DirectiveTask) -> None:
        MailStore(uow.session).put_task(
            dict(
                task_id=task.id,
                document_id=task.document_id,
                description=task.description[:500],
                assignee_agency_code=task.assignee_agency_code,
                assignee_user_id=task.assignee_user_id,
                due_date=task.due_date,
                open=task.status not in CLOSED,
            )
        )

    def on_task_status(self, uow: UnitOfWork, ev: dev.DirectiveTaskStatusChanged) -> None:
        MailStore(uow.session).set_task_open(ev.task_id, ev.to_status not in CLOSED)

    def remind_tasks(self) -> int:
        """Send the reminders due today; the number of notices stored."""
        today = local_date(self.clock())
        horizon = self.calendar.add_working_days(today, self.rules.task_reminder_days)
        sent = 0
        with self.uow() as uow:
            store = MailStore(uow.session)
            for task in store.due_tasks(horizon.isoformat()):
                due = date.fromisoformat(task["due_date"])
                if due < today:
                    notice = texts.task_overdue(
                        description=task["description"],
                        due_date=task["due_date"],
                        sender=self.rules.notice_sender_name,
                    )
                    kind, marks = "task-overdue", dict(nearing=True, overdue=True)
                elif not task["nearing_sent"]:
                    notice = texts.task_nearing(
                        description=task["description"],
                        due_date=task["due_date"],
                        days_left=max(self.calendar.working_days_between(today, due), 0),
                        sender=self.rules.notice_sender_name,
                    )
                    kind, marks = "task-nearing", dict(nearing=True, overdue=False)
                else:
                    continue
                sent += self._to_assignees(uow, task, notice, kind)
                store.mark_task(task["task_id"], **marks)
            uow.commit()
        if sent:
            self.after_commit()
        return sent

    def _to_assignees(
        self, uow: UnitOfWork, task: dict[str, Any], notice: Notice, kind: str
    ) -> int:
        store = MailStore(uow.session)
        people = (
            [task["assignee_user_id"]]
            if task["assignee_user_id"]
            else store.clerks_of(task["assignee_agency_code"])
        )
        related = (task["document_id"], "")
        return sum(self.notify_user(uow, u, notice, related, kind) != "skipped" for u in people)
