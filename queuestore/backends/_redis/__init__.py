"""Plumbing shared by every Redis-protocol backend (lists, streams, and their
KeyDB / Dragonfly dialects): connections and pools, error translation, the
key layout, Lua script loading with NOSCRIPT recovery, and the server probe.

Nothing here knows about YAML; nothing above the backends knows about Redis.
"""
