"""``python -m mockserver``: the same as the ``koala-mock`` command."""

from __future__ import annotations

import sys

from mockserver.cli import main

if __name__ == "__main__":
    sys.exit(main())
