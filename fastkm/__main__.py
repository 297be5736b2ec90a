"""``python -m fastkm``: the ``fastkm`` command."""

import sys

from .cli import main

sys.exit(main())
