"""Documents service figures: issue + send per second end to end, and GetDocument latency
under 16 concurrent callers beside a bare grpc.aio Echo in the same process.

The service runs in-process (ServiceRuntime: embedded bus and SQLite in a temp dir, the real
gRPC server with token checks against a stand-in issuer). One pipeline is
CreateDraft → SubmitForReview → ReviewDocument → SignDocument → IssueDocument → SendDocument,
six calls by the officials whose roles they need, plus an UploadAttachment of the main PDF
before review; SignDocument signs that PDF (PAdES, the signer's certificate from the
development CA) and SendDocument carries it inside the edXML package, where the receiving
agency verifies it.

    python -m bench.documents [--quick] [--documents N] [--pipelines N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc.client import channel
from lgsp.grpc.diagnostics import DiagnosticsServicer
from services.documents.plugin import PLUGIN
from tests.services.documents.support import AGENCIES, OFFICIALS, SIGNER, draft, official_claims
from tests.support.issuer import FakeIssuer
from tests.support.pdf import minimal_pdf

CALLERS = 16


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _bench(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    issuer = FakeIssuer()
    await issuer.start()
    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": str(tmp), "LGSP_DOCUMENTS_NATIONAL_AXIS": "false"}
    )
    authn = JwtAuthenticator(issuer.issuer)
    plugin = PLUGIN.with_options(agencies=AGENCIES, authenticator=authn)
    runtime = ServiceRuntime(plugin, settings, port=0)
    await runtime.start()
    bare = grpc.aio.server()
    diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server(DiagnosticsServicer("bare"), bare)
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    ch = channel(runtime.server.address, service_name="bench", tracing=False)
    stub = documents_pb2_grpc.DocumentServiceStub(ch)
    tokens = {}
    for user in OFFICIALS:
        tokens[user] = (("authorization", f"Bearer {issuer.token(**official_claims(user))}"),)
    try:

        async def pipeline(i: int) -> pb.Document:
            d = (
                await stub.CreateDraft(
                    pb.CreateDraftRequest(document=draft()), metadata=tokens["ubnd-cv"]
                )
            ).document
            pdf = minimal_pdf(f"Van ban so {i}")

            async def parts() -> AsyncIterator[pb.UploadAttachmentRequest]:
                yield pb.UploadAttachmentRequest(
                    metadata=pb.AttachmentUpload(
                        document_id=d.id,
                        file_name="van-ban.pdf",
                        content_type="application/pdf",
                        main=True,
                        size_bytes=len(pdf),
                    )
                )
                yield pb.UploadAttachmentRequest(chunk=pdf)

            await stub.UploadAttachment(parts(), metadata=tokens["ubnd-cv"])
            d = (
                await stub.SubmitForReview(
                    pb.SubmitForReviewRequest(
                        document_id=d.id, etag=d.etag, reviewer_user_id="ubnd-ld"
                    ),
                    metadata=tokens["ubnd-cv"],
                )
            ).document
            d = (
                await stub.ReviewDocument(
                    pb.ReviewDocumentRequest(
                        document_id=d.id,
                        etag=d.etag,
                        decision=pb.REVIEW_DECISION_APPROVE,
                        signer_user_id="ubnd-ld",
                    ),
                    metadata=tokens["ubnd-ld"],
                )
            ).document
            d = (
                await stub.SignDocument(
                    pb.SignDocumentRequest(
                        document_id=d.id,
                        etag=d.etag,
                        signer=SIGNER,
                        sign_main_attachment=True,
                    ),
                    metadata=tokens["ubnd-ld"],
                )
            ).document
            d = (
                await stub.IssueDocument(
                    pb.IssueDocumentRequest(document_id=d.id, etag=d.etag),
                    metadata=tokens["ubnd-vt"],
                )
            ).document
            return (
                await stub.SendDocument(
                    pb.SendDocumentRequest(document_id=d.id, etag=d.etag),
                    metadata=tokens["ubnd-vt"],
                )
            ).document

        await pipeline(-1)  # warm up (JWKS fetch, token cache, schema load)
        queue = iter(range(args.documents))
        done: list[pb.Document] = []

        async def worker() -> None:
            for i in queue:
                done.append(await pipeline(i))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.pipelines)))
        elapsed = time.perf_counter() - started
        numbers = sorted(d.number for d in done)
        assert numbers == list(range(2, args.documents + 2)), "numbers must be gap-free"
        signed = sum(d.digitally_signed for d in done)
        print(
            f"issue+send end to end: {args.documents / elapsed:7.1f} documents/s "
            f"({args.documents} documents, {args.pipelines} concurrent pipelines, 7 calls each "
            f"with upload, PAdES signing, edXML with the PDF; "
            f"{signed}/{len(done)} digitally signed)"
        )

        # Let the receiving side (edXML parse, signature check, files) finish first, so the
        # latency below is GetDocument's own and not the consumer's CPU.
        stp = done[0].recipients[0].agency_code
        want = args.documents + 1
        while True:
            page = await stub.ListDocuments(
                pb.ListDocumentsRequest(
                    agency_code=stp, direction=pb.DIRECTION_INCOMING, page_size=1
                ),
                metadata=tokens["stp-vt"],
            )
            if page.total_size >= want:
                break
            await asyncio.sleep(0.2)
        print(f"received and verified by {stp}: {time.perf_counter() - started:.1f} s after start")

        target = done[0].id

        async def callers(call) -> list[float]:  # type: ignore[no-untyped-def]
            samples: list[float] = []

            async def one() -> None:
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - t0)

            await asyncio.gather(*(one() for _ in range(CALLERS)))
            return samples

        get = pb.GetDocumentRequest(id=target)
        md = tokens["ubnd-vt"]
        await callers(lambda: stub.GetDocument(get, metadata=md))  # warm up
        doc_samples = await callers(lambda: stub.GetDocument(get, metadata=md))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{bare_port}") as bare_ch:
            echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(bare_ch).Echo
            request = diagnostics_pb2.EchoRequest(message="xin chào")
            await callers(lambda: echo(request))
            echo_samples = await callers(lambda: echo(request))
        dp50, dp99 = _pct(doc_samples, 0.5), _pct(doc_samples, 0.99)
        ep50, ep99 = _pct(echo_samples, 0.5), _pct(echo_samples, 0.99)
        print(
            f"GetDocument ({CALLERS} callers, {len(doc_samples)} calls): "
            f"p50 {dp50:6.2f} ms  p99 {dp99:6.2f} ms"
        )
        print(
            f"bare grpc.aio Echo ({CALLERS} callers, {len(echo_samples)} calls): "
            f"p50 {ep50:6.2f} ms  p99 {ep99:6.2f} ms"
        )
        print(f"ratio GetDocument / bare Echo: p50 {dp50 / ep50:5.1f}×  p99 {dp99 / ep99:5.1f}×")
        print(f"mean GetDocument {statistics.fmean(doc_samples) * 1000:.2f} ms")
    finally:
        await ch.close()
        await bare.stop(0)
        await runtime.stop(0)
        await authn.aclose()
        await issuer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.documents", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--documents", type=int, default=None)
    parser.add_argument("--pipelines", type=int, default=4)
    parser.add_argument("--calls", type=int, default=None, help="GetDocument calls per caller")
    args = parser.parse_args(argv)
    args.documents = args.documents or (20 if args.quick else 200)
    args.calls = args.calls or (25 if args.quick else 200)
    return asyncio.run(_bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
