"""Benchmarks of rush: per-task overhead against the bare Redis limit, fetch cost,
scaling with local workers, and the tools users would pick instead.

Run ``python -m bench --help``. Results of one full run are in ``bench/RESULTS.md``.
"""
