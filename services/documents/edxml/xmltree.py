"""Hardened XML loading, the project's edXML schema, and field paths for errors.

Parsing is hardened for input from other systems: no DOCTYPE at all (so no entities: XXE and
billion laughs never reach the parser's entity code), UTF-8 only, no network, no DTD loading,
libxml2's huge-tree protections on. Errors name the field as a path below edXMLHeader or
edXMLBody (``MessageHeader/To[2]/OrganId``), which is what a status 02 can quote back.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import Any

from lxml import etree

from .errors import EdxmlError
from .model import EDXML_NS

_local = threading.local()  # lxml schema objects and parsers are not shared across threads


def q(name: str) -> str:
    """The qualified name of an edXML element."""
    return f"{{{EDXML_NS}}}{name}"


def parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def schema_document() -> Any:
    source = getattr(_local, "schema_source", None)
    if source is None:
        data = resources.files(__package__).joinpath("schema/edxml.xsd").read_bytes()
        source = _local.schema_source = etree.fromstring(data, parser())
    return source


def schema() -> etree.XMLSchema:
    compiled = getattr(_local, "schema", None)
    if compiled is None:
        compiled = _local.schema = etree.XMLSchema(schema_document())
    return compiled


_ENCODING_DECL = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def load(data: bytes, where: str = "document") -> Any:
    """The root element of XML bytes, refusing DOCTYPEs, other encodings and malformed XML."""
    if not data.strip():
        raise EdxmlError(where, "is empty")
    # UTF-8 only: a NUL byte means UTF-16/32, whose DOCTYPE the byte scan below could not see.
    if b"\x00" in data:
        raise EdxmlError(where, "must be UTF-8 XML (found a NUL byte)")
    declared = _ENCODING_DECL.match(data.lstrip(b"\xef\xbb\xbf"))
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise EdxmlError(where, "must be encoded in UTF-8")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise EdxmlError(where, "DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as exc:
        raise EdxmlError(where, f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # e.g. unknown encodings in odd declarations
        raise EdxmlError(where, f"not readable XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # belt and braces
        raise EdxmlError(where, "DOCTYPE and entity declarations are not allowed")
    return root


def validate(root: Any) -> None:
    compiled = schema()
    if compiled.validate(root):
        return
    error = compiled.error_log.last_error
    for entry in compiled.error_log:  # the first error is the cause; later ones follow from it
        error = entry
        break
    raise EdxmlError(_error_field(root, error), _strip_ns(error.message))


_EXPECTED = re.compile(r"Expected is (?:one of )?\( \{[^}]*\}(\w+)")


def _error_field(root: Any, error: Any) -> str:
    element = _walk(root, error.path or "")
    if element is None:
        return "document"
    where = path(element)
    expected = _EXPECTED.search(error.message)
    if expected and "Missing child element" in error.message:
        return f"{where}/{expected.group(1)}"
    if expected and "This element is not expected" in error.message:
        parent = element.getparent()
        if parent is not None and parent.findall(element.tag)[0] is not element:
            return where  # a repeated element (Subject[2]), not a missing one before it
        base = path(parent) if parent is not None else ""
        return f"{base}/{expected.group(1)}" if base else expected.group(1)
    return where


_STEP = re.compile(r"^(?:[^:\[]*:)?([^\[]+)(?:\[(\d+)\])?$")


def _walk(root: Any, error_path: str) -> Any | None:
    """The element libxml2's error path (/*/edXML:edXMLEnvelope/*[2]…) points at.

    Its prefixes are the document's own, so the path is followed by local names, not XPath.
    """
    steps = [s for s in error_path.split("/") if s]
    if not steps:
        return None
    element = root
    for step in steps[1:]:
        m = _STEP.match(step)
        if m is None:
            return None
        name, index = m.group(1), int(m.group(2) or 1)
        children = [
            c
            for c in element
            if isinstance(c.tag, str) and (name == "*" or etree.QName(c).localname == name)
        ]
        if len(children) < index:
            return None
        element = children[index - 1]
    return element


def path(element: Any) -> str:
    """MessageHeader/To[2]/OrganId: the element's place below edXMLHeader or edXMLBody."""
    parts: list[str] = []
    while element is not None:
        name = etree.QName(element).localname
        if name in ("edXMLHeader", "edXMLBody", "edXML"):
            break
        parent = element.getparent()
        if parent is not None and len(parent.findall(element.tag)) > 1:
            same = [c for c in parent if c.tag == element.tag]
            name = f"{name}[{same.index(element) + 1}]"
        parts.append(name)
        element = parent
    return "/".join(reversed(parts)) or "edXML"


def _strip_ns(message: str) -> str:
    return _NAMESPACE_IN_BRACES.sub("", message)  # not the {'01', '02'} of an enumeration


_NAMESPACE_IN_BRACES = re.compile(r"\{(?:https?|urn):[^}]*\}")
