"""`python -m services.dossiers` / `lgsp run dossiers`: the service its plugin.py declares."""

import sys

from lgsp.app import main

if __name__ == "__main__":
    sys.exit(main(__package__ or "services.dossiers"))
