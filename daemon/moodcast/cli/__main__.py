"""`python -m moodcast.cli`: the same command line as the `moodcast` script."""

import sys

from moodcast.cli import main

sys.exit(main())
