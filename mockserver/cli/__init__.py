"""``koala-mock``: one module per subcommand, shared argument helpers."""

from mockserver.cli.main import main

__all__ = ["main"]
