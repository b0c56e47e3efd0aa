"""MailApp: every group of mail use cases in one object, what bootstrap hands the servicer,
the SMTP servers and the event consumer."""

from __future__ import annotations

from services.mail.service_layer.accounts import Accounts
from services.mail.service_layer.base import AgencyDirectory, MailRules
from services.mail.service_layer.delivery import Delivered, Delivery
from services.mail.service_layer.event_notices import EventNotices
from services.mail.service_layer.imap import ImapAccess
from services.mail.service_layer.reading import Reading
from services.mail.service_layer.reminders import Reminders
from services.mail.service_layer.vanthu import Vanthu


class MailApp(Accounts, Delivery, Reading, EventNotices, Reminders, Vanthu, ImapAccess):
    """Mailboxes (accounts.py), delivery (delivery.py), reading (reading.py), notices from
    events (event_notices.py, reminders.py, notices.py), agency mailboxes' clerks
    (vanthu.py) and the IMAP server's use cases (imap.py)."""


__all__ = ["AgencyDirectory", "Delivered", "MailApp", "MailRules"]
