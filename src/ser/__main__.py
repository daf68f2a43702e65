"""``python -m ser``: the command line, as ``ser``."""

import sys

from ser.interfaces.cli import main

sys.exit(main())
