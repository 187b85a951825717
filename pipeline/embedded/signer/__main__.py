"""``python -m pipeline.embedded.signer serve|revoke|add-user|show`` (see :mod:`pipeline.embedded.signer.admin`)."""

import sys

from pipeline.embedded.signer.admin import main

if __name__ == "__main__":
    sys.exit(main())
