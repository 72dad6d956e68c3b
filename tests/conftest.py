"""Shared test helpers. pytest puts this folder on ``sys.path`` (rootdir conftest, no
``__init__.py``), so test modules in the subfolders can ``from koala_servers import ...``."""

from hypothesis import HealthCheck, settings

# CI machines and developers' laptops are shared and slow at times: a test's speed is never what
# it checks here, so no per-example deadline and no "input generation is slow" failure.
settings.register_profile(
    "koala", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("koala")
