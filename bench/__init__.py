"""Benchmarks for riaktq-py (issue 7). Each module runs with ``python -m bench.<name>``."""
