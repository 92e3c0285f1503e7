"""The backend contract, one concept per module; ``queuestore.abc`` is its public face.

``lifecycle`` (open, close, the maintenance loop), ``jobs`` (what a worker and a
producer call), ``inspection`` (depth, peek, iterate, capabilities, stats,
health), ``operator`` (redrive, purge, delete) compose ``backend.QueueBackend``;
``migration`` is the migration SPI, ``factory`` makes backends from a config.
"""
