"""What a queue's URL says: its name, and whether it is a FIFO queue."""

from __future__ import annotations


def queue_name(queue_url: str) -> str:
    """The queue's name: the last part of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def is_fifo(queue: str) -> bool:
    """True for a FIFO queue's URL or name (it ends in .fifo)."""
    return queue.endswith(".fifo")
