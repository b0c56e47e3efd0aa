"""Agency mailboxes delivered to the officials who hold the clerk role (văn thư).

The model: an AGENCY mailbox (e.g. vanthu@stp.hatinh.gov.vn, made by an administrator) is
opened by the officials holding ROLE_CLERK in its agency as **implicit delegates**: they read
it, file and flag its mail and send as it, over gRPC and IMAP, exactly as named delegates
(Mailbox.may_open, MailStore.delegated_to). The mail itself stays in the one agency mailbox —
one copy, one Seen/Answered state that every clerk sees, so two clerks never register the
same incoming letter twice, and a clerk who leaves loses access to all of it at once. Each
clerk also gets a **short notice** in their own Inbox (sender and subject, never the body),
so a phone set up with the personal account alone still tells them that the agency's mail
has work; a clerk who chose the daily digest gets it there.

The clerk list (`mailboxes.clerk_user_ids`) follows identity's events: the grants in
UserCreated/UserUpdated, RoleGranted, RoleRevoked, and UserDisabled/UserEnabled (a disabled
account is no clerk). Clerks of a parent or a child agency are not clerks of this one. It is
kept apart from the administrators' `delegate_user_ids`, so a role change never touches a
delegate an administrator named, and without a new version (an etag stays good).
"""

from __future__ import annotations

from lgsp.api.identity.v1 import identity_pb2
from lgsp.db import UnitOfWork
from services.mail.adapters.notice_rows import CLERK
from services.mail.adapters.store import MailStore
from services.mail.domain import notice_templates as texts
from services.mail.domain.mailbox import Kind, Mailbox
from services.mail.domain.message import Summary
from services.mail.service_layer.notices import Notices


class Vanthu(Notices):
    def sync_clerk(self, uow: UnitOfWork, user_id: str) -> None:
        """Put `user_id` on the clerk lists of the agency mailboxes they are a clerk of, and
        off the others."""
        store = MailStore(uow.session)
        user = store.user(user_id)
        agencies = (
            {a for role, a in user["roles"] if role == CLERK} if user and user["active"] else set()
        )
        for address, _ in store.agency_mailboxes(agencies) if agencies else []:
            ids = store.clerk_ids(address)
            if user_id not in ids:
                store.set_clerks(address, [*ids, user_id])
        for address in store.clerk_mailboxes(user_id):
            mb = store.mailbox(address)
            if mb is not None and mb.agency_code not in agencies:
                store.set_clerks(address, [u for u in mb.clerk_user_ids if u != user_id])

    def on_role_change(
        self, uow: UnitOfWork, user_id: str, role: int, agency_code: str, granted: bool
    ) -> None:
        """RoleGranted / RoleRevoked: the official's grants in mail_users, then the lists."""
        store = MailStore(uow.session)
        user = store.user(user_id)
        if user is None:
            return  # not followed yet: their UserCreated brings the grants
        pair = [identity_pb2.Role.Name(role), agency_code]  # type: ignore[arg-type]
        roles = [r for r in user["roles"] if r != pair] + ([pair] if granted else [])
        store.set_user_roles(user_id, roles, self.clock())
        self.sync_clerk(uow, user_id)

    def on_local_delivery(self, uow: UnitOfWork, mb: Mailbox, summary: Summary) -> None:
        """Mail stored in an agency mailbox: a short notice to each of its clerks."""
        if mb.kind is not Kind.AGENCY or mb.address == self.notice_sender:
            return
        sender = summary.sender
        notice = texts.agency_mail(
            mailbox_name=mb.display_name,
            mailbox_address=mb.address,
            from_text=f"{sender.display_name} <{sender.address}>".strip()
            if sender.display_name
            else sender.address,
            subject=summary.subject,
            sender=self.rules.notice_sender_name,
        )
        for user_id in mb.clerk_user_ids:
            self.notify_user(uow, user_id, notice, ("", ""), "agency-mail")
