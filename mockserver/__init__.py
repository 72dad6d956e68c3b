"""Mock koala.sh server (see the mock-server issue)."""
