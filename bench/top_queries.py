#!/usr/bin/env python3
"""Print the top query classes by total duration straight from the index (what a Kibana table would show).

    bench/top_queries.py ES_URL [--index-prefix rds-slowlog] [--limit 10]
"""
from __future__ import annotations

import argparse
import sys

from rds_slowlog.search import build_client
from rds_slowlog.target import detect_target_type


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--index-prefix", default="rds-slowlog")
    ap.add_argument("--limit", type=int, default=10)
    args = ap.parse_args()
    client = build_client(detect_target_type(args.url, username=None, password=None, api_key=None), args.url)
    client.indices.refresh(index=f"{args.index_prefix}-*")
    resp = client.search(index=f"{args.index_prefix}-*", size=0, aggs={
        "classes": {"terms": {"field": "slowlog.query_id", "size": args.limit, "order": {"time": "desc"}},
                    "aggs": {"time": {"sum": {"field": "event.duration"}},
                             "type": {"terms": {"field": "slowlog.statement_type", "size": 1}},
                             "fp": {"terms": {"field": "slowlog.fingerprint", "size": 1}}}}})
    total = resp["hits"]["total"]["value"]
    print(f"# {total} documents in {args.index_prefix}-*; top {args.limit} classes by total duration")
    print(f"# {'Query ID':<34} {'total s':>10} {'calls':>7}  fingerprint")
    for b in resp["aggregations"]["classes"]["buckets"]:
        fp = b["fp"]["buckets"][0]["key"] if b["fp"]["buckets"] else ""
        print(f"  0x{b['key']:<32} {b['time']['value'] / 1e9:>10.4f} {b['doc_count']:>7}  {fp[:70]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
