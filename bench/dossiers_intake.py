"""Intake at the one-stop desk end to end, with the applicant verified at the national
population database through the gateway, beside the same intake without verification.

Parts (tests/services/dossiers/national_chain.py, wired as in production): the population and
business registry mocks as processes, the gateway (national API: token, right, limits, signed
message log, connector) and the dossiers service (SQLite) in this process's event loop, the
clerks' calls too. Two chains run side by side, identical but for [dossiers]
verify_applicants; rounds alternate between them. Every verified dossier is for a different
citizen of the mock, so the gateway's verification cache (5 minutes) never answers: each
intake is one real national call. A third row is the bare VerifyCitizen rate through the
gateway (what verification adds, without the dossier's write).

Figures: dossiers per second with N concurrent clerks (best of the rounds), p50 and p95 of a
SubmitDossier, and the ratio of each row to the unverified intake.

    python -m bench.dossiers_intake [--quick] [--clerks N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.api.national.v1 import national_pb2 as npb
from lgsp.api.national.v1 import national_pb2_grpc as npbg
from tests.services.dossiers.national_chain import Chain, Person, citizens, start_chain, submission


@dataclass
class Row:
    name: str
    rates: list[float]
    latencies_ms: list[float]

    @property
    def best(self) -> float:
        return max(self.rates)

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]


class People:
    """Distinct citizens, handed out once each."""

    def __init__(self, people: list[Person]) -> None:
        self._people = people
        self._next = 0

    def take(self) -> Person:
        if self._next >= len(self._people):
            raise SystemExit("out of distinct citizens: lower --calls")
        p = self._people[self._next]
        self._next += 1
        return p


async def _round(
    call: Callable[[Person], Awaitable[Any]], people: People, calls: int, clerks: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    todo = [people.take() for _ in range(calls)]

    async def clerk(mine: list[Person]) -> None:
        for p in mine:
            t0 = time.perf_counter()
            await call(p)
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(clerk(todo[i::clerks]) for i in range(clerks)))
    return calls / (time.perf_counter() - started), latencies


def _intake(chain: Chain) -> Callable[[Person], Awaitable[Any]]:
    stub = dossiers_pb2_grpc.DossierServiceStub(chain.dossiers_ch)
    md = chain.clerk()

    async def submit(p: Person) -> Any:
        return await stub.SubmitDossier(submission(p), metadata=md, timeout=30)

    return submit


def _verify(chain: Chain) -> Callable[[Person], Awaitable[Any]]:
    stub = npbg.PopulationServiceStub(chain.gateway_ch)
    md = chain.member("dossiers")

    async def verify(p: Person) -> Any:
        request = npb.VerifyCitizenRequest(
            id_number=p.id_number, full_name=p.full_name, birth_date=p.birth_date.isoformat()
        )
        answer = await stub.VerifyCitizen(request, metadata=md, timeout=30)
        assert answer.match
        return answer

    return verify


async def _bench(args: argparse.Namespace, tmp: Path) -> int:
    # One after the other: migrations (alembic) are not safe to run in parallel threads.
    off = await start_chain(tmp / "off", verify=False)
    on = await start_chain(tmp / "on", verify=True)
    try:
        everyone = citizens(7000)
        unverified, verified = People(list(everyone)), People(list(everyone))
        # The unverified row makes no national call: it may reuse the citizens the verified
        # rows each take once.
        rows = {
            "intake, verification off (ref)": (_intake(off), unverified, Row("", [], [])),
            "intake, verified via gateway": (_intake(on), verified, Row("", [], [])),
            "VerifyCitizen via gateway": (_verify(on), verified, Row("", [], [])),
        }
        for call, people, _ in rows.values():  # warm-up: connections, tokens, procedures
            await _round(call, people, args.warmup, args.clerks)
        for _ in range(args.rounds):
            for call, people, row in rows.values():
                rate, lat = await _round(call, people, args.calls, args.clerks)
                row.rates.append(rate)
                row.latencies_ms.extend(lat)
        calls_at_mock = on.population.calls()
    finally:
        await asyncio.gather(off.aclose(), on.aclose())
    ref = rows["intake, verification off (ref)"][2].best
    print(
        f"dossiers intake at the desk: {args.clerks} clerks, {args.calls} calls × {args.rounds} "
        "round(s), every verified call a distinct citizen (no cache hit)"
    )
    print(f"{'':<34} {'calls/s':>9} {'ratio':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, (_, _, row) in rows.items():
        print(
            f"{name:<34} {row.best:>9.0f} {row.best / ref:>6.2f} "
            f"{statistics.median(row.latencies_ms):>8.2f} {row.pct(0.95):>8.2f}"
        )
    print(f"population mock: {calls_at_mock} national calls (since the last reset)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dossiers_intake", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--clerks", type=int, default=8, help="concurrent callers")
    parser.add_argument("--calls", type=int, default=None, help="calls per row and round")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.calls = args.calls or (200 if args.quick else 1000)
    args.warmup = 20 if args.quick else 100
    args.rounds = 1 if args.quick else 2
    with tempfile.TemporaryDirectory(prefix="lgsp-bench-dossiers-") as tmp:
        return asyncio.run(_bench(args, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
