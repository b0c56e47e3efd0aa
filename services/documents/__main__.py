"""`python -m services.documents` / `lgsp run documents`: the service its plugin.py declares."""

import sys

from lgsp.app import main

if __name__ == "__main__":
    sys.exit(main(__package__ or "services.documents"))
