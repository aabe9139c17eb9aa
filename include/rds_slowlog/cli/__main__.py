"""``python -m rds_slowlog.cli``: the ``rds-slowlog`` console script."""
import sys

from rds_slowlog.cli import main

sys.exit(main())
