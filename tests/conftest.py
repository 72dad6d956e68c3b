"""Shared test helpers. pytest puts this folder on ``sys.path`` (rootdir conftest, no
``__init__.py``), so test modules in the subfolders can ``from koala_servers import ...``."""
