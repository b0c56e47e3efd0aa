"""edXML figures: build + parse of a 1 MB package (a 1 MB attachment is most of it) per second.

Beside it, in the same process, the floor any edXML reader pays: a plain lxml parse of the same
bytes (no hardening checks, no schema) plus base64-decoding its payload, and the ratio.
Our parse also validates against the XSD, checks every field and caps sizes before decoding.

    python -m bench.edxml [--quick]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import time
from collections.abc import Callable

from lxml import etree

from services.documents.edxml import EDXML_NS, build_package, parse_package
from tests.services.documents.edxml_samples import sample_package

MiB = 1024 * 1024


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up (schema load, allocator)
    n, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        fn()
        n += 1
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edxml", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 3.0

    base = sample_package()
    attachment = dataclasses.replace(base.attachments[0], data=os.urandom(MiB))
    package = dataclasses.replace(base, attachments=(attachment,))
    data = build_package(package)
    assert parse_package(data) == package
    print(f"  package: {len(data) / MiB:.2f} MiB on the wire, 1 MiB attachment", flush=True)

    def ours() -> None:
        parse_package(build_package(package))

    plain = etree.XMLParser(huge_tree=False)
    tag = f"{{{EDXML_NS}}}ContentTransferEncoded"

    def reference() -> None:
        # Serialising the same tree and reading it back is the reference for build + parse.
        root = etree.fromstring(data, plain)
        etree.tostring(root)
        for element in root.iter(tag):
            base64.b64decode(element.text or "")

    parse_only = rate(lambda: parse_package(data), seconds)
    build_only = rate(lambda: build_package(package), seconds)
    ours_rate = rate(ours, seconds)
    ref_rate = rate(reference, seconds)
    print(f"  parse only (validate + decode): {parse_only:8.1f}/s", flush=True)
    print(f"  build only (encode + validate): {build_only:8.1f}/s", flush=True)
    ratio = ours_rate / ref_rate if ref_rate else 0.0
    ok = ours_rate >= 50
    print(
        f"{'edXML build+parse, 1 MB package':<36} {ours_rate:8.1f} pkg/s "
        f"({ours_rate * len(data) / MiB:6.1f} MiB/s) | plain lxml parse+serialise+b64decode "
        f"{ref_rate:8.1f} pkg/s | ratio {ratio:4.2f}× | goal ≥ 50 pkg/s"
        f"{'  OK' if ok else '  BELOW GOAL'}",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
