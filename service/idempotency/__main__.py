"""`python -m service.idempotency create-table TABLE`: create the DynamoDB table the DynamoDBStore uses."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from service.idempotency.stores.dynamodb import create_table


def main(argv: Sequence[str] | None = None) -> int:
    """Create the table (partition key `key`, on-demand, TTL on `expires_at`); credentials from the environment."""
    parser = argparse.ArgumentParser(prog="python -m service.idempotency", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-table", help="create the DynamoDB idempotency table")
    create.add_argument("table", help="the table's name")
    args = parser.parse_args(argv)
    asyncio.run(create_table(args.table))
    print(f"created the idempotency table {args.table}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
