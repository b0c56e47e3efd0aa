"""Official mail figures (issue 15), each beside a reference run in the same process:

- smtp:   messages accepted and delivered per second with 16 smtplib clients, beside a bare
          aiosmtpd handler that only answers 250 (bench/_mail_smtp.py);
- notify: notification latency from an event on the bus to the message in the mailbox
          (goal p99 < 1 s), beside a bare consumer of the same bus (bench/_mail_notify.py);
- imap:   IMAP FETCH of the headers of a 10,000-message mailbox, beside the same FETCH against
          pymap's in-memory backend (bench/_mail_imap.py).

    python -m bench.mail [--quick] [smtp|notify|imap ...]
"""

from __future__ import annotations

import argparse
import importlib
import time

PARTS = {"smtp": "bench._mail_smtp", "notify": "bench._mail_notify", "imap": "bench._mail_imap"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mail", description=__doc__)
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"of {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; known: {', '.join(PARTS)}")
    failed = 0
    for part in args.parts or list(PARTS):
        print(f"\n--- mail: {part} ---", flush=True)
        started = time.perf_counter()
        failed += bool(importlib.import_module(PARTS[part]).run(args.quick))
        print(f"--- mail: {part} done in {time.perf_counter() - started:.1f} s ---", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
