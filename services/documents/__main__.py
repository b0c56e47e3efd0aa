"""`python -m services.documents` / `lgsp run documents`: the gRPC DocumentService, its
migrations, the edXML exchange consumer and the token checks configured in [identity]."""

from __future__ import annotations

import os
import sys

from lgsp.app import run_service
from lgsp.config import load_settings
from services.documents.bootstrap import build_spec


def main() -> int:
    settings = load_settings(os.environ.get("LGSP_CONFIG"))
    return run_service(build_spec(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
