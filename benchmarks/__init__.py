"""Benchmarks of the proof pipeline, measured side by side so ratios survive a noisy machine.

``python -m benchmarks`` runs them all and prints Markdown tables; each module also runs
alone (``python -m benchmarks.pushdown``). Nothing here is imported by ``reliability``.
"""
