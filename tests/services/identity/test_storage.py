"""The directory and token service over their database, without the servers: once on SQLite and
once on PostgreSQL (db_url), where concurrency and constraint errors differ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from lgsp import db
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.db import outbox_table
from services.identity.adapters import tables as t
from services.identity.bootstrap import MIGRATIONS, Identity, wire
from services.identity.domain.access import SYSTEM
from services.identity.domain.errors import AlreadyExists, Invalid, Refused
from services.identity.domain.errors import Stale as Aborted
from services.identity.entrypoints.web import oauth_error_of
from services.identity.service_layer.logins import ClientContext

PROVINCE = "000.00.00.H27"
JUSTICE = "000.00.12.H27"
PASSWORD = "Chuyen-Vien-2025!"
CTX = ClientContext(remote_ip="10.0.0.7", user_agent="pytest")


@pytest.fixture
def ident(db_url: str) -> Iterator[Identity]:
    engine = db.create_engine(db_url)
    db.migrate(engine, MIGRATIONS)
    identity = wire(engine, "http://127.0.0.1:8180")
    d = identity.agencies
    d.create(
        SYSTEM,
        pb.Agency(code=PROVINCE, name="Ủy ban nhân dân tỉnh", level=pb.AGENCY_LEVEL_PROVINCE),
    )
    d.create(
        SYSTEM,
        pb.Agency(
            code=JUSTICE, name="Sở Tư pháp", level=pb.AGENCY_LEVEL_DEPARTMENT, parent_code=PROVINCE
        ),
    )
    yield identity
    engine.dispose()


def count(identity: Identity, table: sa.Table) -> int:
    with identity.storage.session() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def official(username: str) -> pb.User:
    return pb.User(username=username, display_name="Trần Thị Bích", agency_code=JUSTICE)


def test_agency_update_with_etags(ident: Identity) -> None:
    d = ident.agencies
    before = d.get(JUSTICE)
    change = pb.Agency(code=JUSTICE, etag=before.etag, mail_domain="stp.hatinh.gov.vn")
    after = d.update(SYSTEM, change, ["mail_domain"])
    assert after.etag != before.etag and after.mail_domain == "stp.hatinh.gov.vn"
    with pytest.raises(Aborted):  # the etag read before the change is stale now
        d.update(SYSTEM, change, ["mail_domain"])
    with pytest.raises(AlreadyExists):
        d.create(
            SYSTEM, pb.Agency(code=JUSTICE, name="Sở Tư pháp", level=pb.AGENCY_LEVEL_DEPARTMENT)
        )


def test_concurrent_updates_with_one_etag_only_one_wins(ident: Identity) -> None:
    d = ident.agencies
    etag = d.get(JUSTICE).etag

    def update(i: int) -> str:
        change = pb.Agency(code=JUSTICE, etag=etag, short_name=f"STP{i}")
        try:
            d.update(SYSTEM, change, ["short_name"])
            return "updated"
        except Aborted:
            return "stale"

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(update, range(6)))
    assert outcomes == ["stale"] * 5 + ["updated"]
    assert d.get(JUSTICE).etag != etag


def test_duplicate_usernames_even_when_created_at_once(ident: Identity) -> None:
    d = ident.users
    d.create(SYSTEM, official("tranthibich.stp"), password=PASSWORD)
    with pytest.raises(AlreadyExists):
        d.create(SYSTEM, official("TranThiBich.stp"), password=PASSWORD)
    # Eight requests for one new name at the same moment: one account, seven ALREADY_EXISTS
    # (on PostgreSQL the loser of the race meets the unique constraint, not the pre-check).
    name = f"vt{uuid.uuid4().hex[:6]}.stp"

    def create(_: int) -> str:
        try:
            d.create(SYSTEM, official(name))
            return "created"
        except AlreadyExists:
            return "exists"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(create, range(8)))
    assert outcomes == ["created"] + ["exists"] * 7
    with ident.storage.session() as s:
        users = s.execute(sa.select(t.users.c.id).where(t.users.c.username == name)).all()
    assert len(users) == 1


def test_concurrent_wrong_passwords_are_each_counted(ident: Identity) -> None:
    """Parallel guesses must not slip past the lockout: each failure is counted (on
    PostgreSQL, a read-then-write count lost concurrent failures)."""
    from services.identity.domain.access import REALM
    from services.identity.domain.model import Status
    from services.identity.domain.security import AddressThrottle, LockoutPolicy

    d, tk = ident.storage, ident.logins
    tk.policies = None  # this test's own lockout, not the realm's settings
    tk.lockout = LockoutPolicy(max_failures=1000)  # count only: no lock in the way
    tk.throttle = AddressThrottle(limit=1000)
    user, _ = ident.users.create(SYSTEM, official("nguyenvanan.stp"), password=PASSWORD)
    attempts = 12

    def guess(i: int) -> str:
        ctx = ClientContext(remote_ip=f"10.0.1.{i}", user_agent="pytest")
        try:
            tk.check_password(REALM, user.username, f"Sai-Mat-Khau-{i}", "", "documents", ctx)
        except Refused as err:
            return oauth_error_of(err).error
        return "accepted"

    with ThreadPoolExecutor(attempts) as pool:
        outcomes = list(pool.map(guess, range(attempts)))
    assert outcomes == ["invalid_grant"] * attempts
    with d.session() as s:
        failures = s.execute(
            sa.select(t.users.c.failed_logins).where(t.users.c.id == user.id)
        ).scalar_one()
    assert failures == attempts
    # The limit is reached by the count, not by whichever request read it last.
    tk.lockout = LockoutPolicy(max_failures=attempts + 1)
    with pytest.raises(Refused):
        tk.check_password(REALM, user.username, "Sai-nua", "", "documents", CTX)
    with d.session() as s:
        status = s.execute(sa.select(t.users.c.status).where(t.users.c.id == user.id)).scalar_one()
    assert status == Status.LOCKED


@pytest.mark.parametrize(
    ("user", "field"),
    [
        (pb.User(username="", display_name="X", agency_code=JUSTICE), "user.username"),
        (pb.User(username="a b", display_name="X", agency_code=JUSTICE), "user.username"),
        (
            pb.User(username="ok.name", display_name="X\x00", agency_code=JUSTICE),
            "user.display_name",
        ),
    ],
)
def test_bad_input_leaves_nothing_stored(ident: Identity, user: pb.User, field: str) -> None:
    before = [count(ident, tbl) for tbl in (t.users, t.audit_log, outbox_table)]
    with pytest.raises(Invalid) as err:
        ident.users.create(SYSTEM, user)
    assert err.value.field == field
    assert [count(ident, tbl) for tbl in (t.users, t.audit_log, outbox_table)] == before


def test_token_grants_refresh_rotation_and_audit(ident: Identity) -> None:
    tk, sessions = ident.grants, ident.sessions
    user, _ = ident.users.create(SYSTEM, official("lethihoa.stp"), password=PASSWORD)
    ident.roles.grant(SYSTEM, user.id, "clerk", JUSTICE)
    _, secret, _ = ident.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id="qlvb-stp", display_name="QLVB", owner_agency_code=JUSTICE),
        roles=["clerk"],
    )
    events_before = count(ident, outbox_table)
    first = tk.password_grant("lgsp", "qlvb-stp", secret, "lethihoa.stp", PASSWORD, "", "", CTX)
    claims = sessions.verify("lgsp", first["access_token"])
    assert claims["agency_roles"] == {JUSTICE: ["clerk"]} and claims["sid"]
    second = tk.refresh("lgsp", "qlvb-stp", secret, first["refresh_token"], CTX)
    assert second["session_state"] == first["session_state"]
    with pytest.raises(Refused, match="reused"):
        tk.refresh("lgsp", "qlvb-stp", secret, first["refresh_token"], CTX)
    with pytest.raises(Refused):  # the whole session is gone
        sessions.verify("lgsp", second["access_token"])
    cc = tk.client_credentials("lgsp", "qlvb-stp", secret, "", CTX)
    assert sessions.verify("lgsp", cc["access_token"])["client_id"] == "qlvb-stp"
    with pytest.raises(Refused):
        tk.client_credentials("lgsp", "qlvb-stp", "wrong", "", CTX)
    with ident.storage.session() as s:
        types = s.execute(
            sa.select(outbox_table.c.event_type).where(outbox_table.c.id > events_before)
        ).scalars()
        audit = s.execute(sa.select(t.audit_log.c.action, t.audit_log.c.outcome)).all()
    # Sign-ins are published (password, client credentials, the failure); a refresh is not;
    # the session the reused refresh token ended is (on the sessions topic).
    assert [x.rsplit(".", 1)[1] for x in types] == [
        "LoginSucceeded",
        "SessionEnded",
        "LoginSucceeded",
        "LoginFailed",
    ]
    assert ("refresh", "ok") in audit and ("refresh.reuse", "session_revoked") in audit
