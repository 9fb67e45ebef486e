"""``python -m guichet_cli``: the ``guichet`` command."""

import sys

from guichet_cli.main import main

sys.exit(main())
