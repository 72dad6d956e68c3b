"""Kept so that ``mockserver.pytest_plugin`` still names the plugin: the code lives in
:mod:`mockserver.testing.pytest_plugin`, which the ``pytest11`` entry point registers. Do not list
both in ``pytest_plugins``."""

from mockserver.testing.pytest_plugin import *  # noqa: F403
from mockserver.testing.pytest_plugin import __all__ as __all__
