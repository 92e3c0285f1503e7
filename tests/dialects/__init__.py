"""Tests of the server dialects (keydb, dragonfly types; probe; durability) on real servers."""
