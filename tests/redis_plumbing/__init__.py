"""Tests of the shared Redis plumbing (queuestore.backends._redis) on real servers."""
