"""Kept so that ``import mockserver.embedded`` still works.

The code lives in :mod:`mockserver.testing.embedded`.
"""

from mockserver.testing.embedded import *  # noqa: F403
from mockserver.testing.embedded import __all__ as __all__
