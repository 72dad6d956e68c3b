"""Kept so that ``import mockserver.strategies`` still works.

The code lives in :mod:`mockserver.testing.strategies`.
"""

from mockserver.testing.strategies import *  # noqa: F403
from mockserver.testing.strategies import __all__ as __all__
