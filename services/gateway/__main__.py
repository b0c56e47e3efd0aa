"""`python -m services.gateway` / `lgsp run gateway`: the LGSP gateway (plugin.py)."""

import sys

from lgsp.app import main

if __name__ == "__main__":
    sys.exit(main(__package__ or "services.gateway"))
