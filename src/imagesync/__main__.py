"""`python -m imagesync` runs the command line."""

from __future__ import annotations

import sys

from imagesync.cli import main

sys.exit(main())
