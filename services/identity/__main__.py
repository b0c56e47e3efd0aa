"""`python -m services.identity` / `lgsp run identity`: gRPC IdentityService + AdminService and
the OpenID Connect provider (HTTP) in one process."""

from __future__ import annotations

import os
import sys

from lgsp.app import run_service
from lgsp.config import load_settings
from services.identity.bootstrap import build_spec


def main() -> int:
    settings = load_settings(os.environ.get("LGSP_CONFIG"))
    return run_service(build_spec(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
