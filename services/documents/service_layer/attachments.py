"""The use cases that move file bytes: upload, download, digital signing of the main text,
sending with files, receiving files. They run on the event loop (the attachment store is
async) and hand every database step to DocumentsApp on its worker threads, so no transaction
stays open while bytes stream or a PDF is signed.

Order of work, so nothing is half-done: bytes go to the content-addressed store first (a
refused or broken stream leaves nothing, see attachments.store); then the row, its document
checks and the AttachmentAdded event commit in one unit of work. If that commit fails, a
file stored by this call and used by no row is deleted again.

A call can be cancelled at any await (the client gives up, a proxy dies). From the moment
the file is in the store, the rest — the unit of work on its worker thread, and the removal
of the file if that unit of work fails — runs in a task of its own that the cancellation
does not reach (`_link`): a cancelled call no longer removes a file whose row its worker
thread is about to commit. Removal and reuse of one content are ordered too: a call that
found its content already stored "claims" it until its row is committed or given up, the
removal skips claimed content, and a call whose content was removed just before its claim
fails (ABORTED, send again) rather than commit a row without its file. Claims live in this
process: one documents process serves the province."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lgsp.blobs import AttachmentStore, StoredFile, safe_file_name
from lgsp.blobs.errors import AttachmentError, AttachmentTooLarge
from services.documents import edxml
from services.documents.domain.errors import InvalidField, InvalidTransition, StaleVersion
from services.documents.domain.model import PDF, Attachment, Document, Signer
from services.documents.service_layer.documents import DocumentsApp
from services.documents.service_layer.exchange import Arrival, parse_delivery
from services.documents.service_layer.ports import (
    DocumentSigner,
    SignatureVerifier,
    SigningIdentity,
)
from services.documents.transport import Delivery

log = logging.getLogger("services.documents.attachments")

# Every file must be able to travel inside an edXML package (its per-file cap, 7 MiB).
DEFAULT_MAX_FILE_BYTES = edxml.DEFAULT_LIMITS.max_attachment_bytes
# Where store errors point in the upload request.
_UPLOAD_FIELDS = {
    "content": "chunk",
    "content_type": "metadata.content_type",
    "size_bytes": "metadata.size_bytes",
    "sha256": "metadata.sha256",
    "file_name": "metadata.file_name",
}


class FileTooLarge(InvalidField):
    """A file over the size limit (→ RESOURCE_EXHAUSTED naming the field)."""


@dataclass(frozen=True)
class Upload:
    """The metadata message of an upload stream."""

    document_id: str
    file_name: str
    content_type: str = ""
    main: bool = False
    size_bytes: int = 0
    sha256: str = ""


class DocumentFiles:
    def __init__(
        self,
        app: DocumentsApp,
        store: AttachmentStore,
        *,
        verifier: SignatureVerifier | None = None,
        signer: DocumentSigner | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.app = app
        self.store = store
        self.verifier = verifier
        self.signer = signer
        self.max_file_bytes = min(max_file_bytes, DEFAULT_MAX_FILE_BYTES)
        # Contents a call is linking to a row right now (sha256 → calls), see _link.
        self._claims: Counter[str] = Counter()
        self._removal = asyncio.Lock()  # one removal or reuse check at a time
        self._linking: set[asyncio.Task[Any]] = set()

    # --- upload / download -----------------------------------------------------------------

    async def upload(self, caller: Any, up: Upload, chunks: AsyncIterator[bytes]) -> Attachment:
        if not up.document_id:
            raise InvalidField("metadata.document_id", "the document's id is required")
        try:
            name = safe_file_name(up.file_name)
        except AttachmentError as e:
            raise InvalidField("metadata.file_name", e.reason) from None
        if up.size_bytes < 0:
            raise InvalidField("metadata.size_bytes", "cannot be negative")
        if up.size_bytes > self.max_file_bytes:
            raise FileTooLarge(
                "metadata.size_bytes", f"a file may have at most {self.max_file_bytes} bytes"
            )
        await self.app.run(self.app.attach_target, caller, up.document_id, up.main)
        try:
            stored = await self.store.put(
                chunks,
                declared_type=up.content_type,
                expected_size=up.size_bytes or None,
                expected_sha256=up.sha256 or None,
                max_bytes=self.max_file_bytes,
            )
        except AttachmentTooLarge:
            raise FileTooLarge(
                "chunk", f"the file is over the {self.max_file_bytes}-byte limit"
            ) from None
        except AttachmentError as e:
            raise InvalidField(_UPLOAD_FIELDS.get(e.field, e.field), e.reason) from None
        row = Attachment(
            id=str(uuid.uuid4()),
            document_id=up.document_id,
            file_name=name,
            content_type=stored.content_type,
            size_bytes=stored.size,
            sha256=stored.sha256,
            uploaded_by=caller.subject,
            create_time=self.app.now(),
            main=up.main,
        )
        return await self._link(stored, self.app.add_attachment, caller, row)

    async def download(
        self, caller: Any, document_id: str, attachment_id: str
    ) -> tuple[Attachment, AsyncIterator[bytes]]:
        """The attachment's metadata and its bytes; NOT_FOUND for a document the caller may
        not read or an attachment of another document."""
        row = await self.app.run(self.app.attachment, caller, document_id, attachment_id)
        return row, self.store.get(row.sha256)

    async def _link(self, stored: StoredFile, step: Any, *args: Any) -> Any:
        """Run the unit of work that references `stored` to its end, even if this call is
        cancelled meanwhile; if it fails, drop a file this call created and nobody uses.
        Called right after the store's put returned (no await in between): the claim is
        taken before any other task can remove the content."""
        self._claims[stored.sha256] += 1
        task = asyncio.get_running_loop().create_task(self._link_or_drop(stored, step, *args))
        self._linking.add(task)
        task.add_done_callback(self._linked)
        return await asyncio.shield(task)

    def _linked(self, task: asyncio.Task[Any]) -> None:
        self._linking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("linking a file failed after its call ended: %s", task.exception())

    async def _link_or_drop(self, stored: StoredFile, step: Any, *args: Any) -> Any:
        try:
            if not stored.created:
                # Deduplicated: the file was there when put looked. Make sure no removal
                # took it since (a removal waits for this check, and skips claimed content).
                async with self._removal:
                    if not await self.store.exists(stored.sha256):
                        raise StaleVersion(
                            "the file's stored content was removed while it was uploaded; "
                            "send it again"
                        )
            try:
                return await self.app.run(step, *args)
            except BaseException:
                await self._drop_unused(stored)
                raise
        finally:
            self._claims[stored.sha256] -= 1
            if self._claims[stored.sha256] <= 0:
                del self._claims[stored.sha256]

    async def _drop_unused(self, stored: StoredFile) -> None:
        """Remove a file this call created if no row uses it and no other call is linking it
        (this call's own claim is still held, hence `> 1`)."""
        if not stored.created:
            return
        async with self._removal:
            if self._claims[stored.sha256] > 1:
                return
            if not await self.app.run(self.app.sha256_in_use, stored.sha256):
                await self.store.delete(stored.sha256)

    async def close(self) -> None:
        """Let units of work of cancelled calls finish (shutdown)."""
        if self._linking:
            await asyncio.wait(set(self._linking), timeout=10)

    # --- signing ---------------------------------------------------------------------------

    async def sign(
        self,
        caller: Any,
        document_id: str,
        etag: str,
        signer: Signer,
        signed_attachment_id: str = "",
        sign_main: bool = False,
    ) -> Document:
        """SignDocument. With `sign_main` the current main text (a PDF) is signed with the
        signer's certificate and the signed copy becomes its next version; with
        `signed_attachment_id` an uploaded main text signed elsewhere is verified; neither:
        signed on paper (not counted as digitally signed)."""
        if signed_attachment_id:
            return await self._sign_uploaded(
                caller, document_id, etag, signer, signed_attachment_id
            )
        if not sign_main:
            _, main = await self.app.run(self.app.sign_target, caller, document_id, etag, signer)
            if main is not None and main.content_type == PDF:
                await self._check_existing_signatures(
                    document_id, await self.store.read(main.sha256)
                )
            return await self.app.run(self.app.sign, caller, document_id, etag, signer)
        if self.signer is None:
            raise InvalidTransition("sign: digital signing is not configured on this service")
        doc, main = await self.app.run(self.app.sign_target, caller, document_id, etag, signer)
        if main is None or main.content_type != PDF:
            raise InvalidField(
                "sign_main_attachment", "the document has no main text in PDF to sign"
            )
        agency = self.app.agencies.get(doc.agency_code)
        who = SigningIdentity(
            caller.subject,
            signer.full_name,
            doc.agency_code,
            agency.name if agency else doc.agency_code,
        )
        pdf = await self.store.read(main.sha256)
        await self._check_existing_signatures(doc.id, pdf)
        signed_pdf, serial = await self.app.run(
            functools.partial(
                self.signer.sign,
                reason="Ký ban hành văn bản",
                location=(agency.place_name if agency else "") or doc.promulgation_place,
            ),
            pdf,
            who,
        )
        stored = await self.store.put_bytes(signed_pdf, declared_type=PDF)
        copy = Attachment(
            id=str(uuid.uuid4()),
            document_id=doc.id,
            file_name=_signed_name(main.file_name),
            content_type=PDF,
            size_bytes=stored.size,
            sha256=stored.sha256,
            uploaded_by=caller.subject,
            create_time=self.app.now(),
            main=True,
            version=main.version + 1,
            digitally_signed=True,
            signer_serial=serial,
            replaces_id=main.id,
        )
        result: Document = await self._link(
            stored, self.app.sign, caller, document_id, etag, signer, copy
        )
        return result

    async def _check_existing_signatures(self, document_id: str, pdf: bytes) -> None:
        """A main text that already carries signatures (a co-signed or pre-signed PDF) is
        signed only if every one of them verifies: a recipient verifies them all and would
        refuse the document (02) after it was signed, numbered and sent. Refused here, before
        the signature and so before a number is taken (FAILED_PRECONDITION with the reason)."""
        if self.verifier is None:
            return
        check = await self.app.run(self.verifier.verify, pdf)
        if check.signed and not check.valid:
            raise InvalidTransition(
                f"sign: the main text carries a signature that does not verify, and every "
                f"recipient would refuse it: {check.reason_vi} ({check.detail})",
                subject=document_id,
            )

    async def _sign_uploaded(
        self, caller: Any, document_id: str, etag: str, signer: Signer, attachment_id: str
    ) -> Document:
        if self.verifier is None:
            raise InvalidTransition("sign: signature verification is not configured")
        row = await self.app.run(self.app.attachment, caller, document_id, attachment_id)
        if row.content_type != PDF:
            raise InvalidField("signed_attachment_id", "a digital signature is checked on a PDF")
        check = await self.app.run(self.verifier.verify, await self.store.read(row.sha256))
        if not check.valid:
            raise InvalidField("signed_attachment_id", check.reason_vi or check.detail)
        if self.verifier.owner_of(check.signer_serial) != caller.subject:
            raise InvalidField(
                "signed_attachment_id", "the file is signed with another official's certificate"
            )
        result: Document = await self.app.run(
            self.app.sign,
            caller,
            document_id,
            etag,
            signer,
            None,
            (row.id, check.signer_serial),
        )
        return result

    # --- exchange --------------------------------------------------------------------------

    async def send(
        self, caller: Any, document_id: str, etag: str, agency_codes: list[str]
    ) -> Document:
        """SendDocument: the current files travel inside the edXML package."""
        rows = await self.app.run(self.app.files_to_send, caller, document_id)
        files = [(r, await self.store.read(r.sha256)) for r in rows]
        result: Document = await self.app.run(
            self.app.send, caller, document_id, etag, agency_codes, files
        )
        return result

    async def receive(self, delivery: Delivery, uow: Any) -> None:
        """The exchange consumer: parse, check the main text's signature, keep the files,
        then register (or refuse with 02) in the consumer's unit of work."""
        message = await self.app.run(parse_delivery, delivery)
        arrival = Arrival(message)
        if isinstance(message, edxml.Package) and message.attachments:
            arrival = await self._prepare(message)
        await self.app.run(self.app.on_delivery, delivery, uow, arrival)

    async def _prepare(self, pkg: edxml.Package) -> Arrival:
        main = pkg.attachments[0]
        signed, serial, signer_agency = False, "", ""
        if main.content_type == PDF or main.data.startswith(b"%PDF-"):
            if self.verifier is None:
                return Arrival(pkg, refusal="Hệ thống nhận không kiểm tra được chữ ký số.")
            check = await self.app.run(self.verifier.verify, main.data)
            if check.signed and not check.valid:
                return Arrival(pkg, refusal=check.reason_vi)
            signed, serial = check.valid, check.signer_serial
            signer_agency = check.signer_agency_code if check.valid else ""
        kept: list[tuple[edxml.Attachment, StoredFile]] = []
        for i, file in enumerate(pkg.attachments):
            try:
                stored = await self.store.put_bytes(file.data, declared_type=file.content_type)
            except AttachmentError as e:
                return Arrival(
                    pkg,
                    refusal=f"Tệp đính kèm thứ {i + 1} ({file.attachment_name}) không hợp lệ: "
                    f"{e.reason}.",
                )
            kept.append((file, stored))
        # Files stored for a package that is then not registered (a duplicate) are shared by
        # content with the first delivery's rows, so nothing is orphaned by a redelivery.
        return Arrival(
            pkg,
            tuple(kept),
            signed=signed,
            signer_serial=serial,
            signer_agency_code=signer_agency,
        )


def _signed_name(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.signed.{ext}" if dot and stem else f"{name}.signed.pdf"
