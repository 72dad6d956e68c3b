"""For testing code that talks Koala: the embedded server, the pytest plugin, hypothesis strategies.

>>> from mockserver.testing import KoalaMock
"""

from mockserver.testing.embedded import KoalaMock, MockAdminError, ServerAddress

__all__ = ["KoalaMock", "MockAdminError", "ServerAddress"]
