"""A batch handler: rows from many messages written to a database in one transaction (the bulk insert shape).

Run it with `mq-service run --handler handlers.bulk:router`, then publish JSON bodies such as
`{"sku": "A-1", "quantity": 3}` with the route `stock`. Messages of that route are gathered into batches of up
to 100 (waiting at most half a second for a batch to fill), and each batch is one `executemany` in one
transaction. A body that is not a stock row fails alone; the rest of its batch is written and deleted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence

from service import Message, Router, batch

router = Router()


class StockTable:
    """A SQLite table of stock movements (in memory unless given a path), safe to write from worker threads."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS stock (message_id TEXT PRIMARY KEY, sku TEXT, quantity INTEGER)")

    def insert(self, rows: list[tuple[str, str, int]]) -> None:
        """Write the rows in one transaction; a row already written (a redelivered message) is kept as it is."""
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO stock VALUES (?, ?, ?)", rows)

    def rows(self) -> list[tuple[str, str, int]]:
        """Every row, by message id."""
        with self._lock:
            return list(self._db.execute("SELECT message_id, sku, quantity FROM stock ORDER BY message_id"))


table = StockTable()


@router.route("stock")
@batch(max_messages=100, max_wait_s=0.5)
def stock(messages: Sequence[Message]) -> list[Message]:
    """One transaction for the whole batch (a plain function: it runs in a worker thread); returns the
    messages whose bodies are not stock rows, so only those are retried."""
    rows, failed = [], []
    for message in messages:
        row = _row(message)
        if row is None:
            failed.append(message)
        else:
            rows.append(row)
    table.insert(rows)
    return failed


def _row(message: Message) -> tuple[str, str, int] | None:
    try:
        data = json.loads(message.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    sku, quantity = data.get("sku"), data.get("quantity")
    if not isinstance(sku, str) or isinstance(quantity, bool) or not isinstance(quantity, int):
        return None
    return (message.message_id, sku, quantity)
