"""The conformance suite: one body of tests that every backend, on every topology, must pass.

Each test takes the ``backend`` fixture (a fresh, open backend on a unique queue)
or ``make_backend`` (more backends on the same store: a second consumer, a stale
holder, another queue). The targets they run against are listed in
``targets.py``; a Redis backend joins by adding its ``Target`` there. Tests skip
only on a capability the backend declares false, and say which.
"""
