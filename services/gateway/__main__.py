"""`python -m services.gateway` / `lgsp run gateway`: the LGSP gateway — pass-through to the
platform's services under access rights and limits, the signed message log, and the
MemberService, AccessService, MessageLogService, SchemaRegistryService and EventService."""

from __future__ import annotations

import os
import sys

from lgsp.app import run_service
from lgsp.config import load_settings
from services.gateway.app import build_spec


def main() -> int:
    settings = load_settings(os.environ.get("LGSP_CONFIG"))
    return run_service(build_spec(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
