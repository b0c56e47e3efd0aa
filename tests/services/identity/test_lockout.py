"""Issue 13 items 2 and 4: the lockout holds under parallel guessing (each attempt decided
atomically, on SQLite and PostgreSQL), and tells nobody which accounts exist.

Attacks are real HTTP requests to the token endpoint, many in flight at once; argon2
verifications of wrong passwords are counted where the service makes them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.db import outbox_table
from services.identity.domain import security
from services.identity.domain.access import SYSTEM
from services.identity.domain.model import Status
from tests.services.identity.conftest import OFFICIAL_PASSWORD, Running

JUSTICE = "000.00.12.H27"
SECRET = "qlvb-stp-secret-2025-abcdef"


class Verifications:
    """Counts argon2 verifications against one account's real hash, by outcome."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real_hash = ""
        self.wrong = 0
        self.right = 0
        self._lock = threading.Lock()
        original = security.verify_password

        def counting(stored: str | None, password: str) -> bool:
            ok = original(stored, password)
            if stored is not None and stored == self.real_hash:
                with self._lock:
                    if ok:
                        self.right += 1
                    else:
                        self.wrong += 1
            return ok

        monkeypatch.setattr(security, "verify_password", counting)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[Verifications]:
    yield Verifications(monkeypatch)


def setup(run: Running, verifications: Verifications) -> tuple[str, str]:
    """An official, a client allowed the password grant, no per-address throttle in the way
    (the attacker has many addresses): (user id, username)."""
    ident = run.identity
    ident.logins.throttle = security.AddressThrottle(limit=100_000)
    ident.agencies.create(
        SYSTEM, pb.Agency(code=JUSTICE, name="Sở Tư pháp", level=pb.AGENCY_LEVEL_DEPARTMENT)
    )
    ident.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id="qlvb-stp", display_name="QLVB", owner_agency_code=JUSTICE),
        secret=SECRET,
        roles=["clerk"],
    )
    user, _ = ident.users.create(
        SYSTEM,
        pb.User(username="tranthibich.stp", display_name="Trần Thị Bích", agency_code=JUSTICE),
        password=OFFICIAL_PASSWORD,
    )
    verifications.real_hash = ident.users.row(user.id)["password_hash"]
    return user.id, "tranthibich.stp"


async def grant(
    http: httpx.AsyncClient, run: Running, username: str, password: str
) -> httpx.Response:
    return await http.post(
        f"{run.base_url}/realms/lgsp/protocol/openid-connect/token",
        data={"grant_type": "password", "username": username, "password": password},
        auth=("qlvb-stp", SECRET),
    )


def events_of(run: Running, user_id: str) -> list[str]:
    """The user's events in commit order."""
    with run.identity.storage.session() as s:
        rows = s.execute(
            sa.select(outbox_table.c.event_type)
            .where(outbox_table.c.key == user_id)
            .order_by(outbox_table.c.id)
        ).scalars()
        return [t.rsplit(".", 1)[1] for t in rows]


def status_of(run: Running, user_id: str) -> int:
    return int(run.identity.users.row(user_id)["status"])


async def test_sixty_parallel_wrong_passwords_check_five_and_lock_once(
    identity: Running, verifications: Verifications
) -> None:
    uid, username = await asyncio.to_thread(setup, identity, verifications)
    async with httpx.AsyncClient(timeout=60) as http:
        answers = await asyncio.gather(
            *(grant(http, identity, username, f"Sai-Mat-Khau-{i}") for i in range(60))
        )
        assert {(r.status_code, r.text) for r in answers} == {
            (401, '{"error":"invalid_grant","error_description":"Invalid user credentials"}')
        }
        assert verifications.wrong == 5  # the policy, not 8-10
        assert status_of(identity, uid) == Status.LOCKED
        assert events_of(identity, uid).count("UserLocked") == 1
        # Locked: the right password gets no token either.
        late = await grant(http, identity, username, OFFICIAL_PASSWORD)
        assert late.status_code == 401 and "access_token" not in late.text
    assert verifications.wrong == 5


async def test_right_passwords_racing_a_lockout_get_no_token_after_it(
    identity: Running, verifications: Verifications
) -> None:
    """The owner signs in while an attacker guesses: a token is issued only while the account
    is not locked, decided atomically with the lock."""
    uid, username = await asyncio.to_thread(setup, identity, verifications)
    passwords = [f"Sai-Mat-Khau-{i}" for i in range(50)] + [OFFICIAL_PASSWORD] * 10
    passwords = passwords[::2] + passwords[1::2]  # interleaved
    async with httpx.AsyncClient(timeout=60) as http:
        answers = await asyncio.gather(*(grant(http, identity, username, p) for p in passwords))
    tokens = sum(1 for r in answers if r.status_code == 200)
    events = events_of(identity, uid)
    locks = events.count("UserLocked")
    assert events.count("LoginSucceeded") == tokens
    if locks:
        # Nothing signed in after the lock (commit order), and one event per lockout.
        assert "LoginSucceeded" not in events[events.index("UserLocked") :]
        assert locks == 1
        assert status_of(identity, uid) == Status.LOCKED
    # Each success starts a new run of five; never more wrong passwords checked than that.
    assert verifications.wrong <= 5 * (1 + tokens)
    for r in answers:
        assert r.status_code in (200, 401), r.text


async def test_a_locked_account_and_an_unknown_username_answer_alike(
    identity: Running, verifications: Verifications
) -> None:
    uid, username = await asyncio.to_thread(setup, identity, verifications)
    async with httpx.AsyncClient(timeout=60) as http:
        for i in range(5):
            await grant(http, identity, username, f"Sai-Mat-Khau-{i}")
        assert status_of(identity, uid) == Status.LOCKED
        timings: dict[str, list[float]] = {"locked": [], "unknown": [], "locked-right": []}
        bodies: dict[str, set[tuple[int, str]]] = {k: set() for k in timings}
        for i in range(10):
            for kind, user, password in (
                ("locked", username, f"Doan-Mo-{i}"),
                ("locked-right", username, OFFICIAL_PASSWORD),
                ("unknown", f"khong.ton.tai{i}", f"Doan-Mo-{i}"),
            ):
                started = time.perf_counter()
                r = await grant(http, identity, user, password)
                timings[kind].append(time.perf_counter() - started)
                bodies[kind].add((r.status_code, r.text))
    assert bodies["locked"] == bodies["unknown"] == bodies["locked-right"]
    assert {s for s, _ in bodies["unknown"]} == {401}
    # Roughly the same time: an argon2 verify either way (against a dummy hash when locked).
    # (The fastest of ten each: the machine's other load only ever adds.)
    locked, unknown = min(timings["locked"]), min(timings["unknown"])
    assert 0.5 < locked / unknown < 2.0, (timings["locked"], timings["unknown"])
    assert verifications.wrong == 5 and verifications.right == 0  # no oracle while locked
