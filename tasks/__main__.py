"""``python -m tasks``: see :mod:`tasks.cli`."""

import sys

from tasks.cli import main

sys.exit(main())
