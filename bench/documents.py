"""Documents service figures: issue + send per second end to end, and GetDocument latency
under 16 concurrent callers beside a bare grpc.aio Echo in the same process.

The service runs in-process (ServiceRuntime: embedded bus and SQLite in a temp dir, the real
gRPC server with token checks against a stand-in issuer). One pipeline is
CreateDraft → SubmitForReview → ReviewDocument → SignDocument → IssueDocument → SendDocument,
six calls by the officials whose roles they need; with the signing module present each
document's PDF is signed (PAdES, development CA) and the signature verified at SignDocument.

    python -m bench.documents [--quick] [--documents N] [--pipelines N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
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
from services.documents.bootstrap import build_spec
from tests.lgsp.auth._issuer import FakeIssuer
from tests.services.documents.workflow_support import AGENCIES, OFFICIALS, SIGNER, draft

CALLERS = 16


class PadesSignatures:
    """A stand-in attachment store (id → signed PDF) whose signatures are verified with the
    signing module against the development CA, as SignDocument will once attachments land."""

    def __init__(self, directory: Path) -> None:
        from services.documents.signing import DevCA

        self.ca = DevCA.open_or_create(directory)
        self.credential = self.ca.issue_official(
            full_name="Nguyễn Văn An", agency_name="UBND tỉnh Hà Tĩnh", agency_code="000.00.00.H30"
        )
        self.files: dict[str, bytes] = {}

    def sign(self, text: str) -> str:
        from services.documents.signing import sign_pdf
        from tests.services.documents.pdfs import minimal_pdf

        attachment_id = str(uuid.uuid4())
        self.files[attachment_id] = sign_pdf(
            minimal_pdf(text), self.credential, reason="Ký ban hành"
        )
        return attachment_id

    def verify(self, document_id: str, attachment_id: str) -> bool:
        from services.documents.signing import verify_with_ca

        pdf = self.files.get(attachment_id)
        return pdf is not None and verify_with_ca(pdf, self.ca).valid


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _bench(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    issuer = FakeIssuer()
    await issuer.start()
    signatures: PadesSignatures | None
    try:
        signatures = PadesSignatures(tmp / "ca")
    except ImportError:
        signatures = None
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp)})
    authn = JwtAuthenticator(issuer.issuer)
    spec = build_spec(settings, agencies=AGENCIES, authenticator=authn, signatures=signatures)
    runtime = ServiceRuntime(spec, settings, port=0)
    await runtime.start()
    bare = grpc.aio.server()
    diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server(DiagnosticsServicer("bare"), bare)
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    ch = channel(runtime.server.address, service_name="bench", tracing=False)
    stub = documents_pb2_grpc.DocumentServiceStub(ch)
    tokens = {}
    for user, (agency, roles) in OFFICIALS.items():
        token = issuer.token(
            sub=user,
            realm_access={"roles": roles},
            agency_code=agency,
            agency_roles={agency: roles},
        )
        tokens[user] = (("authorization", f"Bearer {token}"),)
    try:

        async def pipeline(i: int) -> pb.Document:
            d = (
                await stub.CreateDraft(
                    pb.CreateDraftRequest(document=draft()), metadata=tokens["ubnd-cv"]
                )
            ).document
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
            attachment = ""
            if signatures is not None:
                attachment = await asyncio.to_thread(signatures.sign, f"Van ban {i}")
            d = (
                await stub.SignDocument(
                    pb.SignDocumentRequest(
                        document_id=d.id,
                        etag=d.etag,
                        signer=SIGNER,
                        signed_attachment_id=attachment,
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
        how_signed = (
            "PAdES signature signed+verified per document"
            if signatures
            else "NO digital signature (signing module missing)"
        )
        print(
            f"issue+send end to end: {args.documents / elapsed:7.1f} documents/s "
            f"({args.documents} documents, {args.pipelines} concurrent pipelines, 6 calls each, "
            f"{how_signed}; "
            f"{signed}/{len(done)} digitally signed)"
        )

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
