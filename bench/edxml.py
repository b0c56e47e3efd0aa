"""edXML figures: reading and validating 1 MiB packages in both forms real senders use.

Each figure is printed beside a reference run in the same process, with the ratio:
- inline form (files base64 in AttachmentEncoded): our parse (hardening, normalisation of SDK
  variants, XSD validation, field checks, size caps before decoding, base64 decode) beside a
  plain lxml parse of the same bytes plus base64-decoding its payload — the floor any reader pays;
- MIME form (the XML part and the file as a base64 part, cid: referenced): our parse, which
  also validates the XML part, beside the standard library's email parser alone reading the
  message and decoding every part (no XML at all);
- build + parse of the inline form, beside lxml parse + serialise + base64 decode (as before).

    python -m bench edxml [--quick]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import email
import email.policy
import os
import time
from collections.abc import Callable

from lxml import etree

from services.documents.edxml import EDXML_NS, build_package, parse_package
from tests.services.documents.edxml_samples import mime_package, sample_package

MiB = 1024 * 1024


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up (schema load, allocator)
    n, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        fn()
        n += 1
    return n / elapsed


def line(label: str, ours: float, size: int, ref_label: str, ref: float, goal: str) -> str:
    ratio = ours / ref if ref else 0.0
    return (
        f"{label:<34} {ours:8.1f} pkg/s ({ours * size / MiB:6.1f} MiB/s) | "
        f"{ref_label} {ref:8.1f} pkg/s | ratio {ratio:4.2f}× | goal {goal}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edxml", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 3.0

    base = sample_package()
    attachment = dataclasses.replace(base.attachments[0], data=os.urandom(MiB))
    package = dataclasses.replace(base, attachments=(attachment,))
    inline = build_package(package)
    mime = mime_package(package)
    assert parse_package(inline) == package and parse_package(mime) == package
    print(
        f"  package: 1 MiB file; {len(inline) / MiB:.2f} MiB inline, {len(mime) / MiB:.2f} MiB "
        "as MIME (bare edXMLEnvelope + base64 part)",
        flush=True,
    )

    plain = etree.XMLParser(huge_tree=False)
    tag = f"{{{EDXML_NS}}}ContentTransferEncoded"

    def lxml_b64(data: bytes, serialise: bool = False) -> None:
        root = etree.fromstring(data, plain)
        if serialise:
            etree.tostring(root)
        for element in root.iter(tag):
            base64.b64decode(element.text or "")

    def stdlib_mime() -> None:
        message = email.message_from_bytes(mime, policy=email.policy.default)
        for part in message.iter_parts():
            part.get_payload(decode=True)

    inline_ours = rate(lambda: parse_package(inline), seconds)
    inline_ref = rate(lambda: lxml_b64(inline), seconds)
    mime_ours = rate(lambda: parse_package(mime), seconds)
    mime_ref = rate(stdlib_mime, seconds)
    both_ours = rate(lambda: parse_package(build_package(package)), seconds)
    both_ref = rate(lambda: lxml_b64(inline, serialise=True), seconds)

    results = [
        (inline_ours >= 50, line(
            "read+validate, inline base64", inline_ours, len(inline),
            "plain lxml + b64decode", inline_ref, "≥ 50 pkg/s")),
        (mime_ours >= 50, line(
            "read+validate, MIME parts", mime_ours, len(mime),
            "stdlib email parse+decode", mime_ref, "≥ 50 pkg/s")),
        (both_ours >= 50, line(
            "build+read, inline base64", both_ours, len(inline),
            "lxml parse+serialise+b64", both_ref, "≥ 50 pkg/s")),
    ]  # fmt: skip
    ok = True
    for passed, text in results:
        print(f"{text}{'  OK' if passed else '  BELOW GOAL'}", flush=True)
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
