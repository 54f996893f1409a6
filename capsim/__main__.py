"""``python -m capsim``: the same as the ``capsim`` command."""

import sys

from capsim.cli import main

sys.exit(main())
