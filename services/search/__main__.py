"""`python -m services.search` / `lgsp run search`: the gRPC SearchService and the indexer
that keeps the index current from lgsp.documents.v1 (see docs/search.md, "Service")."""

from __future__ import annotations

import os
import sys

from lgsp.app import run_service
from lgsp.config import load_settings
from services.search.bootstrap import build_spec


def main() -> int:
    settings = load_settings(os.environ.get("LGSP_CONFIG"))
    return run_service(build_spec(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
