"""App passwords (issue 15 item 2): an official with a second factor signs a mail client in
with a password made for it. Real gRPC for the self-service and admin calls, real HTTP to
the token endpoint and the login page, the lockout, revocation, hostile input."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pyotp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from google.protobuf.field_mask_pb2 import FieldMask

from lgsp import db, events
from lgsp.api.identity.v1 import admin_pb2 as apb
from lgsp.api.identity.v1 import admin_pb2_grpc, identity_pb2_grpc
from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.db import outbox_table
from lgsp.grpc.client import channel
from services.identity.adapters import tables as t
from services.identity.bootstrap import MIGRATIONS
from services.identity.domain import security
from services.identity.domain.access import SYSTEM
from services.identity.domain.model import Status
from tests.services.identity.conftest import (
    OFFICIAL_PASSWORD,
    Running,
    start_identity,
)
from tests.services.identity.test_grpc import field_of, md

ASYNC = pytest.mark.asyncio(loop_scope="module")

JUSTICE = "000.00.12.H27"
MAIL_SECRET = "mail-secret-2025-abcdefghijk"
QLVB_SECRET = "qlvb-stp-secret-2025-abcdef"
CALLBACK = "http://127.0.0.1:8100/callback"
SHAPE = re.compile(r"^[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}$")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(
    tmp_path_factory: pytest.TempPathFactory, module_db_url: str
) -> AsyncIterator[Running]:
    """One service for the module (on SQLite, then on PostgreSQL): the mail client (allows
    app passwords), a document system's client (does not), the web client of the login page."""
    tmp = tmp_path_factory.mktemp("identity")
    runtime, ident, base = await start_identity(tmp, module_db_url)
    ident.logins.throttle = security.AddressThrottle(limit=100_000)  # lockout, not throttle
    ident.agencies.create(
        SYSTEM, pb.Agency(code=JUSTICE, name="Sở Tư pháp", level=pb.AGENCY_LEVEL_DEPARTMENT)
    )
    ident.clients.create(
        SYSTEM,
        pb.ClientSystem(
            client_id="mail",
            display_name="Thư công vụ",
            owner_agency_code=JUSTICE,
            allow_app_passwords=True,
        ),
        secret=MAIL_SECRET,
    )
    ident.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id="qlvb-stp", display_name="QLVB", owner_agency_code=JUSTICE),
        secret=QLVB_SECRET,
        roles=["clerk"],
    )
    ident.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id="lgsp-web", display_name="Web"),
        secret=None,
        service_accounts=False,
        redirect_uris=[CALLBACK],
    )
    try:
        yield Running(runtime, ident, base, runtime.server.address, tmp)
    finally:
        await runtime.stop(grace=1)


def official(run: Running, *roles: str) -> tuple[str, str]:
    """A fresh official of Sở Tư pháp: (user id, username)."""
    username = f"cv{uuid.uuid4().hex[:8]}.stp"
    user, _ = run.identity.users.create(
        SYSTEM,
        pb.User(username=username, display_name="Trần Thị Bích", agency_code=JUSTICE),
        password=OFFICIAL_PASSWORD,
    )
    for role in roles:
        run.identity.roles.grant(SYSTEM, user.id, role, JUSTICE if role != "admin" else "")
    return user.id, username


async def grant(
    run: Running, client: str, username: str, password: str, **extra: str
) -> httpx.Response:
    secret = MAIL_SECRET if client == "mail" else QLVB_SECRET
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{run.base_url}/realms/lgsp/protocol/openid-connect/token",
            data={"grant_type": "password", "username": username, "password": password, **extra},
            auth=(client, secret),
        )


async def token(run: Running, username: str, **extra: str) -> str:
    """An official's access token from the document system's client (password grant)."""
    r = await grant(run, "qlvb-stp", username, OFFICIAL_PASSWORD, **extra)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def create(run: Running, tok: str, name: str = "Thunderbird ở cơ quan") -> tuple[str, str]:
    """(app password id, secret) made by the official behind `tok`."""
    async with channel(run.grpc_address) as ch:
        out = await identity_pb2_grpc.IdentityServiceStub(ch).CreateAppPassword(
            pb.CreateAppPasswordRequest(name=name), metadata=md(tok)
        )
    return out.app_password.id, out.secret


async def listed(run: Running, tok: str) -> list[pb.AppPassword]:
    async with channel(run.grpc_address) as ch:
        out = await identity_pb2_grpc.IdentityServiceStub(ch).ListAppPasswords(
            pb.ListAppPasswordsRequest(), metadata=md(tok)
        )
    return list(out.app_passwords)


def payload(jwt: str) -> dict[str, object]:
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def events_of(run: Running, user_id: str) -> list[bytes | str]:
    with run.identity.storage.session() as s:
        rows = s.execute(
            sa.select(outbox_table.c.event_type)
            .where(outbox_table.c.key == user_id)
            .order_by(outbox_table.c.id)
        ).scalars()
        return [r.rsplit(".", 1)[1] for r in rows]


def audit_logins(run: Running, user_id: str) -> list[tuple[str, str]]:
    """(outcome, method) of the account's sign-ins, in order."""
    with run.identity.storage.session() as s:
        rows = s.execute(
            sa.select(t.audit_log.c.outcome, t.audit_log.c.details)
            .where(t.audit_log.c.action == "login", t.audit_log.c.subject == user_id)
            .order_by(t.audit_log.c.id)
        ).all()
    return [(r[0], r[1]["method"]) for r in rows]


@ASYNC
async def test_create_list_revoke_and_the_secret_is_shown_once(run: Running) -> None:
    uid, username = official(run)
    tok = await token(run, username)
    ap_id, secret = await create(run, tok)
    assert SHAPE.match(secret), secret
    found = await listed(run, tok)
    assert [(a.id, a.name) for a in found] == [(ap_id, "Thunderbird ở cơ quan")]
    assert found[0].create_time.seconds > 0 and not found[0].HasField("last_use_time")
    # Never again: not in the list, not in the database (an argon2id hash only).
    letters = secret.replace(" ", "")
    assert letters not in str(found) and secret not in str(found)
    with run.identity.storage.session() as s:
        stored = s.execute(sa.select(t.app_passwords)).mappings().all()
    mine = [r for r in stored if r["user_id"] == uid]
    assert mine[0]["secret_hash"].startswith("$argon2id$")
    assert all(letters not in str(dict(r)) for r in stored)

    async with channel(run.grpc_address) as ch:
        stub = identity_pb2_grpc.IdentityServiceStub(ch)
        await stub.RevokeAppPassword(pb.RevokeAppPasswordRequest(id=ap_id), metadata=md(tok))
        assert await listed(run, tok) == []
        with pytest.raises(grpc.aio.AioRpcError) as e:  # revoked already
            await stub.RevokeAppPassword(pb.RevokeAppPasswordRequest(id=ap_id), metadata=md(tok))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert events_of(run, uid)[-2:] == ["AppPasswordCreated", "AppPasswordRevoked"]
    r = await grant(run, "mail", username, secret)
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"


@ASYNC
async def test_the_mail_client_takes_it_other_clients_and_the_login_page_do_not(
    run: Running,
) -> None:
    uid, username = official(run)
    tok = await token(run, username)
    _, secret = await create(run, tok)

    r = await grant(run, "mail", username, secret)
    assert r.status_code == 200, r.text
    answer = r.json()
    claims = payload(answer["access_token"])
    assert claims["sub"] == uid and claims["azp"] == "mail" and claims["amr"] == ["app_password"]
    assert "refresh_token" not in answer and "sid" not in claims  # no session to end
    # As typed on a phone: without the spaces, in capitals.
    r = await grant(run, "mail", username, secret.replace(" ", "").upper())
    assert r.status_code == 200, r.text
    assert (await listed(run, tok))[0].HasField("last_use_time")
    assert audit_logins(run, uid)[-2:] == [("ok", "LOGIN_METHOD_APP_PASSWORD")] * 2

    # Another client: it is no password there (a wrong password, counted as one).
    r = await grant(run, "qlvb-stp", username, secret)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_grant")
    assert run.identity.users.row(uid)["failed_logins"] == 1

    # The login page: the same.
    auth = f"{run.base_url}/realms/lgsp/protocol/openid-connect/auth"
    params = {
        "client_id": "lgsp-web",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid",
        "state": "s1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient() as http:
        form = await http.get(auth, params=params)
        found = re.search(r'name="form_token" value="([^"]+)"', form.text)
        assert found is not None
        page = await http.post(
            auth,
            data={
                **params,
                "form_token": found.group(1),
                "username": username,
                "password": secret,
            },
        )
    assert page.status_code != 302 and "code=" not in page.headers.get("location", "")
    assert run.identity.users.row(uid)["failed_logins"] == 2
    # The official's own password still works at the mail client (no second factor).
    r = await grant(run, "mail", username, OFFICIAL_PASSWORD)
    assert r.status_code == 200, r.text


@ASYNC
async def test_with_a_second_factor_the_mail_client_needs_an_app_password(run: Running) -> None:
    uid, username = official(run)
    tok = await token(run, username)  # before TOTP is on
    _, secret = await create(run, tok)
    totp = run.identity.users.set_totp(SYSTEM, uid, True)

    # The right password at the mail client: a clear refusal, never counted (a mail client
    # retrying it must not lock the official out).
    for _ in range(6):
        r = await grant(run, "mail", username, OFFICIAL_PASSWORD)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
        assert "app password" in r.json()["error_description"]
    assert run.identity.users.row(uid)["status"] == Status.ACTIVE
    assert run.identity.users.row(uid)["failed_logins"] == 0
    # A wrong password there says nothing of a second factor.
    r = await grant(run, "mail", username, "Sai-Mat-Khau-2025!")
    assert (r.status_code, r.json()["error_description"]) == (401, "Invalid user credentials")
    # The app password replaces password and code at the mail client.
    r = await grant(run, "mail", username, secret)
    assert r.status_code == 200, r.text
    # Elsewhere, password and code as before.
    r = await grant(run, "qlvb-stp", username, OFFICIAL_PASSWORD)
    assert r.status_code == 401
    r = await grant(run, "qlvb-stp", username, OFFICIAL_PASSWORD, totp=pyotp.TOTP(totp).now())
    assert r.status_code == 200, r.text


@ASYNC
async def test_failed_app_passwords_count_toward_the_lockout(run: Running) -> None:
    uid, username = official(run)
    tok = await token(run, username)
    _, secret = await create(run, tok)
    wrong = "abcd efgh ijkl mnop"
    # Two wrong passwords and three wrong app passwords: five failures in a row.
    for password in ("Sai-Mat-Khau-2025!", "Sai-Mat-Khau-2026!"):
        assert (await grant(run, "mail", username, password)).status_code == 401
    for _ in range(3):
        assert (await grant(run, "mail", username, wrong)).status_code == 401
    assert run.identity.users.row(uid)["status"] == Status.LOCKED
    assert events_of(run, uid).count("UserLocked") == 1
    # Locked: the right app password is refused alike.
    r = await grant(run, "mail", username, secret)
    assert (r.status_code, r.json()["error_description"]) == (401, "Invalid user credentials")
    logins = audit_logins(run, uid)
    assert logins[-4:-1] == [("bad_credentials", "LOGIN_METHOD_APP_PASSWORD")] * 3
    assert logins[-1] == ("locked", "LOGIN_METHOD_APP_PASSWORD")
    with run.identity.storage.session() as s:
        payloads = s.execute(
            sa.select(outbox_table.c.value)
            .where(
                outbox_table.c.key == uid,
                outbox_table.c.event_type == "lgsp.api.identity.v1.LoginFailed",
            )
            .order_by(outbox_table.c.id)
        ).scalars()
        failed = [ev.LoginFailed.FromString(events.decode(p).payload) for p in payloads]
    assert [f.consecutive_failures for f in failed[2:5]] == [3, 4, 5]
    assert failed[-1].method == ev.LOGIN_METHOD_APP_PASSWORD


@ASYNC
async def test_thirty_parallel_wrong_app_passwords_lock_once(
    run: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Racing guesses take attempt slots like passwords: at most five reach the account's
    app passwords, one UserLocked, and the right one is refused after."""
    uid, username = official(run)
    _, secret = await create(run, await token(run, username))
    with run.identity.storage.session() as db_session:
        real = set(
            db_session.execute(
                sa.select(t.app_passwords.c.secret_hash).where(t.app_passwords.c.user_id == uid)
            ).scalars()
        )
    checked = []
    original = security.verify_password

    def counting(stored: str | None, password: str) -> bool:
        if stored in real:
            checked.append(password)
        return original(stored, password)

    monkeypatch.setattr(security, "verify_password", counting)
    monkeypatch.setattr(run.identity.logins, "app_password_verifies", 1)
    guesses = [f"{i:0>16}".translate(str.maketrans("0123456789", "abcdefghij")) for i in range(30)]
    answers = await asyncio.gather(*(grant(run, "mail", username, g) for g in guesses))
    assert {r.status_code for r in answers} == {401}
    assert len(checked) <= 5
    assert run.identity.users.row(uid)["status"] == Status.LOCKED
    assert events_of(run, uid).count("UserLocked") == 1
    assert (await grant(run, "mail", username, secret)).status_code == 401


@ASYNC
async def test_a_wrong_one_costs_the_same_whoever_it_is_for(
    run: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 verifies per login, counted where the service makes them: a wrong app password
    costs app_passwords_per_user of them for an unknown username, an account with none and
    one with two; a right one is found with the one used last tried first."""
    calls = []
    original = security.verify_password

    def counting(stored: str | None, password: str) -> bool:
        calls.append(stored)
        return original(stored, password)

    monkeypatch.setattr(security, "verify_password", counting)
    _, none = official(run)
    _, two = official(run)
    tok = await token(run, two)
    _, older = await create(run, tok, "Thunderbird")
    await create(run, tok, "Điện thoại")

    async def verifies(username: str, password: str) -> tuple[int, int]:
        calls.clear()
        r = await grant(run, "mail", username, password)
        return r.status_code, len(calls)

    wrong = "abcd efgh ijkl mnop"
    per_user = run.identity.app_passwords.per_user
    for username in (f"khongco{uuid.uuid4().hex[:6]}", none, two):
        assert await verifies(username, wrong) == (401, per_user)
    assert await verifies(two, older) == (200, 2)  # the newer one first: never used
    assert await verifies(two, older) == (200, 1)  # now the one used last comes first


@ASYNC
async def test_revoked_by_a_password_reset_and_by_disabling(run: Running) -> None:
    uid, username = official(run)
    tok = await token(run, username)
    _, first = await create(run, tok, "Điện thoại")
    run.identity.users.reset_password(SYSTEM, uid, OFFICIAL_PASSWORD, temporary=False)
    assert (await grant(run, "mail", username, first)).status_code == 401
    tok = await token(run, username)
    assert await listed(run, tok) == []
    _, second = await create(run, tok, "Outlook")
    assert (await grant(run, "mail", username, second)).status_code == 200
    run.identity.users.set_status(SYSTEM, uid, "", False, "nghỉ hưu")
    r = await grant(run, "mail", username, second)
    assert (r.status_code, r.json()["error_description"]) == (401, "Invalid user credentials")
    run.identity.users.set_status(SYSTEM, uid, "", True)
    assert (await grant(run, "mail", username, second)).status_code == 401  # stays revoked
    with run.identity.storage.session() as s:
        reasons = s.execute(
            sa.select(t.app_passwords.c.revoked_reason)
            .where(t.app_passwords.c.user_id == uid)
            .order_by(t.app_passwords.c.created_at)
        ).scalars()
        assert list(reasons) == ["password reset", "user disabled"]
    assert events_of(run, uid).count("AppPasswordRevoked") == 2


@ASYNC
async def test_hostile_and_unauthorized_calls(run: Running) -> None:
    uid, username = official(run)
    other_uid, other = official(run)
    tok, other_tok = await token(run, username), await token(run, other)
    theirs, _ = await create(run, other_tok)
    async with channel(run.grpc_address) as ch:
        stub = identity_pb2_grpc.IdentityServiceStub(ch)
        admin = admin_pb2_grpc.AdminServiceStub(ch)
        for name, field in (("x" * 101, "name"), ("Máy\r\nBcc: x", "name"), ("  ", "name")):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.CreateAppPassword(
                    pb.CreateAppPasswordRequest(name=name), metadata=md(tok)
                )
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field_of(e.value) == field
        # Another official's app password: as if it did not exist.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.RevokeAppPassword(pb.RevokeAppPasswordRequest(id=theirs), metadata=md(tok))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.RevokeAppPassword(
                pb.RevokeAppPasswordRequest(id="' OR 1=1 --"), metadata=md(tok)
            )
        assert (e.value.code(), field_of(e.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "id")
        # An official is no administrator of someone else's app passwords.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin.ListUserAppPasswords(
                apb.ListUserAppPasswordsRequest(user_id=other_uid), metadata=md(tok)
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert [a.id for a in await listed(run, other_tok)] == [theirs]

        # A client system has no account of its own to make them for.
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{run.base_url}/realms/lgsp/protocol/openid-connect/token",
                data={"grant_type": "client_credentials"},
                auth=("qlvb-stp", QLVB_SECRET),
            )
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.CreateAppPassword(
                pb.CreateAppPasswordRequest(name="máy chủ"),
                metadata=md(r.json()["access_token"]),
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # A token got with an app password manages nothing, even an administrator's.
        admin_uid, admin_name = official(run, "admin")
        _, admin_secret = await create(run, await token(run, admin_name))
        r = await grant(run, "mail", admin_name, admin_secret)
        by_app = r.json()["access_token"]
        for call in (
            stub.CreateAppPassword(pb.CreateAppPasswordRequest(name="thêm"), metadata=md(by_app)),
            stub.ListAppPasswords(pb.ListAppPasswordsRequest(), metadata=md(by_app)),
            admin.ListUserAppPasswords(
                apb.ListUserAppPasswordsRequest(user_id=other_uid), metadata=md(by_app)
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED

        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"{run.base_url}/admin/realms/lgsp/users",
                headers={"Authorization": f"Bearer {by_app}"},
            )
        assert r.status_code == 403

        # The administrator's own token: lists and revokes another official's.
        admin_tok = await token(run, admin_name)
        listed_by_admin = await admin.ListUserAppPasswords(
            apb.ListUserAppPasswordsRequest(user_id=other_uid), metadata=md(admin_tok)
        )
        assert [a.id for a in listed_by_admin.app_passwords] == [theirs]
        out = await admin.RevokeUserAppPassword(
            apb.RevokeUserAppPasswordRequest(user_id=other_uid, reason="máy bị mất"),
            metadata=md(admin_tok),
        )
        assert out.revoked_count == 1 and await listed(run, other_tok) == []

    # At most per_user live ones.
    run.identity.app_passwords.per_user = 2
    try:
        await create(run, tok, "một")
        await create(run, tok, "hai")
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await create(run, tok, "ba")
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        run.identity.app_passwords.per_user = 10
    assert admin_uid and uid


@ASYNC
async def test_an_administrator_lets_a_client_take_app_passwords(run: Running) -> None:
    """UpdateClientSystem sets the flag; from then on that client's password grant takes
    them (the change lands at once: the token path's cache follows the directory)."""
    _, username = official(run)
    _, secret = await create(run, await token(run, username))
    admin_tok = await token(run, official(run, "admin")[1])
    client, cs = run.identity.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id=f"imap-{uuid.uuid4().hex[:6]}", owner_agency_code=JUSTICE),
    )[:2]

    async def login() -> int:
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{run.base_url}/realms/lgsp/protocol/openid-connect/token",
                data={"grant_type": "password", "username": username, "password": secret},
                auth=(client.client_id, cs),
            )
        return r.status_code

    assert await login() == 401
    async with channel(run.grpc_address) as ch:
        out = await admin_pb2_grpc.AdminServiceStub(ch).UpdateClientSystem(
            apb.UpdateClientSystemRequest(
                client=pb.ClientSystem(
                    client_id=client.client_id, etag=client.etag, allow_app_passwords=True
                ),
                update_mask=FieldMask(paths=["allow_app_passwords"]),
            ),
            metadata=md(admin_tok),
        )
    assert out.client.allow_app_passwords
    assert await login() == 200


def test_migration_0002_flags_an_existing_mail_client(tmp_path: Path) -> None:
    """A database made at 0001 (the mail client seeded then) gets the table and the flag."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'identity.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["version_table"] = "alembic_version"
    with db.for_writing(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for client_id in ("mail", "documents"):
            conn.execute(
                sa.text(
                    "INSERT INTO clients (id, realm, client_id, display_name, owner_agency_code,"
                    " redirect_uris, scopes, service_accounts, direct_grants, status, token_ttl,"
                    " created_at, version) VALUES (:id, 'lgsp', :cid, '', '', '[]', '[]', 1, 1,"
                    " 1, 0, 0, 1)"
                ),
                {"id": str(uuid.uuid4()), "cid": client_id},
            )
    db.migrate(engine, MIGRATIONS)
    with engine.connect() as conn:
        flags = dict(
            conn.execute(sa.select(t.clients.c.client_id, t.clients.c.allow_app_passwords)).all()
        )
        assert flags == {"mail": True, "documents": False}
        assert conn.execute(sa.select(sa.func.count()).select_from(t.app_passwords)).scalar() == 0
    engine.dispose()
