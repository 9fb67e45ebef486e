"""``python -m image.builder``: see ``image.builder.cli``."""

import sys

from image.builder.cli import main

sys.exit(main())
