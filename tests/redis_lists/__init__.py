"""Tests of the redis-lists backend on real servers (standalone and a 3-primary cluster)."""
