"""`python -m service run`: the same as the `mq-service` command."""

import sys

from service.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
