"""Harnesses shared by the tests: SQS helpers, the service in-process and as a process."""
