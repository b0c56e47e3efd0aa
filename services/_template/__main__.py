"""`python -m services._template` / `lgsp run template`: the service its plugin.py declares."""

import sys

from lgsp.app import main

if __name__ == "__main__":
    sys.exit(main(__package__ or "services._template"))
