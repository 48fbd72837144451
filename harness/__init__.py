"""What the tests and the benchmarks share: a real Mosquitto and config files written from dicts.

Outside tests/ so that bench/ can use it without pytest; never shipped (the package is daemon/moodcast).
"""
