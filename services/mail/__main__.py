"""`python -m services.mail` / `lgsp run mail`: the service its plugin.py declares."""

import sys

from lgsp.app import main

if __name__ == "__main__":
    sys.exit(main(__package__ or "services.mail"))
