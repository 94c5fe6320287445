"""Benchmarks with their comparison peers (``python -m bench.<name>``); not run by the tests."""
