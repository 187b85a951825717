"""``python -m pipeline.cli``: the ``sohoa`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
