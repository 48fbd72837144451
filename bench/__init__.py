"""`python -m bench`: speed, reaction time, footprint and in-the-loop accuracy of the real pipeline.

A benchmark, not a test: it prints a table, writes out/bench/bench.json and out/bench/bench.png,
and compares the numbers with the budgets of issue #7. Nothing in it is hard-coded: every number
is measured in the run that prints it.
"""
