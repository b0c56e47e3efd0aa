"""Mail leaving for another server: what the relay hands the smarthost, what it answers,
and the rule that turns the answer into what happens to the queued row (RFC 5321 §4.2.1:
2yz done, 4yz try again later, 5yz never; §4.5.4.1: retry with growing intervals and give
up after some days — 5 here, as Postfix's maximal_queue_lifetime)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Envelope:
    mail_from: str  # "" for the null reverse-path <>
    rcpt_to: str
    raw: bytes


@dataclass(frozen=True)
class Outcome:
    """The smarthost's final answer for one message: reply code and text (code 0: no answer
    at all, the connection failed or was lost; NOT_TRIED: not begun, no attempt counted)."""

    code: int
    text: str
    remote: str = ""


NOT_TRIED = -1


class Next(Enum):
    AGAIN = "released"  # not tried: due again at once, no attempt counted
    SENT = "sent"
    RETRY = "retry"
    BOUNCE = "bounce"
    GIVE_UP = "give up"


@dataclass(frozen=True)
class RetryPolicy:
    retry_schedule_s: tuple[float, ...] = (60, 300, 900, 3600, 7200, 14400)
    bounce_after_s: float = 5 * 86400

    def decide(self, outcome: Outcome, queued_for_s: float) -> Next:
        if outcome.code == NOT_TRIED:
            return Next.AGAIN
        if 200 <= outcome.code < 300:
            return Next.SENT
        if 500 <= outcome.code < 600:
            return Next.BOUNCE
        return Next.GIVE_UP if queued_for_s >= self.bounce_after_s else Next.RETRY

    def wait_s(self, attempts_before: int) -> float:
        """The wait after the attempt that follows `attempts_before` earlier ones."""
        schedule = self.retry_schedule_s
        return schedule[min(attempts_before, len(schedule) - 1)]
