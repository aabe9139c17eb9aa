"""Aurora MySQL (2.x = 5.7, 3.x = 8.0 compatible) writes MySQL's slow-log format behind its own banner
(``/rdsdbbin/oscar/bin/mysqld``), re-inserted on every log flush/rotation. Hand-written in that format."""
from __future__ import annotations

import io

from rds_slowlog.parsers.mysql import MySQLSlowLogParser

AURORA = b"""/rdsdbbin/oscar/bin/mysqld, Version: 8.0.32 (Source distribution). started with:
Tcp port: 3306  Unix socket: /tmp/mysql.sock
Time                 Id Command    Argument
# Time: 2026-11-27T14:00:01.123456Z
# User@Host: admin[admin] @  [10.0.1.25]  Id:    12
# Query_time: 2.500100  Lock_time: 0.000120 Rows_sent: 10  Rows_examined: 500000
use shop;
SET timestamp=1795788001;
SELECT * FROM orders WHERE status = 'open' ORDER BY created_at DESC LIMIT 10;
/rdsdbbin/oscar/bin/mysqld, Version: 8.0.32 (Source distribution). started with:
Tcp port: 3306  Unix socket: /tmp/mysql.sock
Time                 Id Command    Argument
# Time: 2026-11-27T14:00:02.000001Z
# User@Host: app[app] @ ip-10-0-1-30.ec2.internal [10.0.1.30]  Id:    13
# Query_time: 0.000310  Lock_time: 0.000000 Rows_sent: 0  Rows_examined: 0
SET timestamp=1795788002;
# administrator command: Ping;
# Time: 2026-11-27T14:00:03.5Z
# User@Host: app[app] @  [10.0.1.30]  Id:    13
# Query_time: 1.000000  Lock_time: 0.000002 Rows_sent: 1  Rows_examined: 1
SET timestamp=1795788003;
UPDATE orders
   SET status = 'paid'
 WHERE id = 42;
"""


def test_aurora_banners_are_noise_and_entries_are_complete() -> None:
    p = MySQLSlowLogParser("slowquery/mysql-slowquery.log")
    entries = list(p.parse(io.BytesIO(AURORA)))
    assert [e.query for e in entries] == [
        "SELECT * FROM orders WHERE status = 'open' ORDER BY created_at DESC LIMIT 10",
        "administrator command: Ping",
        "UPDATE orders\n   SET status = 'paid'\n WHERE id = 42",
    ]
    assert p.stats.noise_lines == 6 and p.stats.quarantined_lines == 0
    first, ping, update = entries
    assert (first.user, first.ip, first.thread_id, first.db, first.duration) == ("admin", "10.0.1.25", 12, "shop", 2.5001)
    assert first.end_time == 1795788001.123456 and first.start_time == 1795788001
    assert (ping.host, ping.ip, ping.thread_id) == ("ip-10-0-1-30.ec2.internal", "10.0.1.30", 13)
    assert update.attrs["Rows_examined"] == 1 and update.end_time == 1795788003.5
    assert sum(e.length for e in entries) + sum(len(line) for line in AURORA.splitlines(True)[:3] * 2) == len(AURORA)
