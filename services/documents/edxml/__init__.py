"""edXML (QCVN 102:2016): document packages and status messages between agencies.

    from services.documents.edxml import build_package, parse, Package, EdxmlError

`parse(bytes)` gives a Package or a Status from plain XML or a MIME multipart package, in the
forms real senders write (normalize.py), validated against schema/edxml.xsd and hardened
against hostile input; `build_package` / `build_status` write the one strict form, which
passes the same schema. Anything wrong raises EdxmlError(field, reason).
"""

from .codec import build, build_package, build_status, parse, parse_package, parse_status
from .errors import EdxmlError
from .limits import DEFAULT_LIMITS, Limits
from .model import (
    EDXML_NS,
    ICT,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    Package,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    StatusCode,
    TraceHeader,
)

__all__ = [
    "DEFAULT_LIMITS",
    "EDXML_NS",
    "ICT",
    "Attachment",
    "Business",
    "BusinessDocType",
    "Code",
    "DocumentType",
    "EdxmlError",
    "Limits",
    "MessageHeader",
    "Organization",
    "OtherInfo",
    "Package",
    "Priority",
    "PromulgationInfo",
    "ResponseFor",
    "SignerInfo",
    "StaffInfo",
    "Status",
    "StatusCode",
    "TraceHeader",
    "build",
    "build_package",
    "build_status",
    "parse",
    "parse_package",
    "parse_status",
]
