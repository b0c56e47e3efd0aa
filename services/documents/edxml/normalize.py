"""Bring the forms real senders write to the one form the schema describes, before validating.

What widely used SDKs write and read (see docs/documents-exchange.md for the sources):
- a bare ``edXMLEnvelope`` root (files then travel as MIME parts): wrapped in ``edXML``;
- ``Manifest`` for ``edXMLManifest`` (both are read by the SDKs): renamed;
- children in another order than the schema's sequence, e.g. Reference as ContentId,
  ContentType, Description, AttachmentName, or DocumentId right after To, or Bussiness before
  TraceHeader: put in the schema's order. The SDK readers look children up by name, so order
  carries no meaning; names, namespaces, counts and values are still checked by the schema;
- ``cid:`` or ``<…>`` around an Attachment's ContentId: removed;
- a Reference that names its file by ``xlink:href="cid:…"`` only: given that ContentId.
Anything else (another namespace, unknown elements, a missing field, bad values) is left as it
is, for the schema to refuse with the field's path.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from lxml import etree

from .errors import EdxmlError
from .model import EDXML_NS, XLINK_NS
from .xmltree import q, schema_document

EDOC_NS = "http://www.e-doc.vn/Schema/"  # the e-doc schema before QCVN 102:2016
_XS = "{http://www.w3.org/2001/XMLSchema}"
_ROOT = "#edXML"
_XLINK_HREF = f"{{{XLINK_NS}}}href"  # the root element's anonymous type

# type name → (child name → position in the sequence, child name → its type name)
_Models = dict[str, tuple[dict[str, int], dict[str, str]]]


@functools.cache
def _models() -> _Models:
    """Each complex type's child order, read from schema/edxml.xsd (one source of truth)."""
    doc = schema_document()

    def read(complex_type: Any) -> tuple[dict[str, int], dict[str, str]]:
        order: dict[str, int] = {}
        types: dict[str, str] = {}
        for element in complex_type.iter(f"{_XS}element"):
            name = element.get("name")
            if name is None or name in order:
                continue
            order[name] = len(order)
            if element.get("type"):
                types[name] = element.get("type").split(":")[-1]
        return order, types

    models = {ct.get("name"): read(ct) for ct in doc.findall(f"{_XS}complexType")}
    root = doc.find(f"{_XS}element[@name='edXML']/{_XS}complexType")
    models[_ROOT] = read(root)
    return models


def normalize(root: Any) -> Any:
    """The package in the schema's form; EdxmlError when the root is not edXML at all."""
    name = etree.QName(root)
    if name.localname not in ("edXML", "edXMLEnvelope"):
        raise EdxmlError(
            "edXML",
            f"the root element must be edXML (or a bare edXMLEnvelope) in namespace {EDXML_NS}",
        )
    if name.namespace != EDXML_NS:
        if name.namespace == EDOC_NS:
            reason = f"{EDOC_NS} is the older e-doc namespace; QCVN 102:2016 uses {EDXML_NS}"
        else:
            found = name.namespace or "no namespace"
            reason = f"the root element must be in namespace {EDXML_NS} (found {found})"
        raise EdxmlError("edXML", reason)
    if name.localname == "edXMLEnvelope":
        wrapper = etree.Element(q("edXML"), nsmap={None: EDXML_NS})
        wrapper.append(root)
        root = wrapper
    for body in root.iterfind(f"{q('edXMLEnvelope')}/{q('edXMLBody')}"):
        for manifest in body.iterfind(q("Manifest")):
            manifest.tag = q("edXMLManifest")
        for ref in body.iterfind(f"{q('edXMLManifest')}/{q('Reference')}"):
            href = ref.get(_XLINK_HREF)
            if href and ref.find(q("ContentId")) is None:
                etree.SubElement(ref, q("ContentId")).text = href
    _reorder(root, _ROOT, _models())
    for content_id in root.iterfind(f"{q('AttachmentEncoded')}/{q('Attachment')}/{q('ContentId')}"):
        content_id.text = bare_content_id(content_id.text or "")
    return root


def bare_content_id(value: str) -> str:
    """'cid:<a.pdf>', 'cid:a.pdf', '<a.pdf>' → 'a.pdf'."""
    value = value.strip()
    if value[:4].lower() == "cid:":
        value = value[4:]
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


def _reorder(element: Any, type_name: str, models: _Models) -> None:
    model = models.get(type_name)
    if model is None:
        return
    order, types = model
    children = [c for c in element if isinstance(c.tag, str)]
    unknown = len(order)
    names = [_own_name(c) for c in children]
    keys = [order.get(n, unknown) if n else unknown for n in names]
    if any(a > b for a, b in itertools.pairwise(keys)):
        for _, _, child in sorted(zip(keys, range(len(children)), children, strict=True)):
            element.append(child)  # appending moves it: children end up in sequence order
    for child, child_name in zip(children, names, strict=True):
        child_type = types.get(child_name) if child_name else None
        if child_type is not None:
            _reorder(child, child_type, models)


def _own_name(element: Any) -> str:
    """The local name of an element in the edXML namespace; "" for any other element."""
    name = etree.QName(element)
    return name.localname if name.namespace == EDXML_NS else ""
