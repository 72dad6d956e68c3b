"""``koala-mock audit``: a resilience scorecard for any Koala client.

:mod:`~mockserver.audit.cases` lists what is run (every fault with the variants that matter, and
seeded rewritings of every cassette), :mod:`~mockserver.audit.clients` loads and drives the
client, :mod:`~mockserver.audit.classify` sorts each run into an outcome, :mod:`~.runner` runs
it all against the embedded mock server, :mod:`~.report` prints the scorecard. What a good client
does with each fault is data beside the fault catalogue, :mod:`mockserver.wire.expectations`.
"""
