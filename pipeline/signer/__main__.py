"""``python -m pipeline.signer serve|revoke|add-user|show`` (see :mod:`pipeline.signer.admin`)."""

import sys

from .admin import main

if __name__ == "__main__":
    sys.exit(main())
