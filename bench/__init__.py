"""Benchmarks of the consumer pipeline and the publisher against fauxqs: `python -m bench.run --help`."""
