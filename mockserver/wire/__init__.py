"""What goes over the wire, with no I/O: the event-stream encoder, response plans, seeded fuzzing,
synthetic answers, the request contract and the named faults.

Nothing here imports aiohttp's server or client, the server, the upstream client or the CLI
(import-linter holds that rule in CI).
"""
