"""Talking to a real upstream: capturing answers, recording cassettes, the recording proxy and the
drift check (``koala-mock verify``)."""
