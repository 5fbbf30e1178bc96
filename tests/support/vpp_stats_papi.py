#!/usr/bin/env python3
"""Dump a stats segment with vpp-papi's VPPStats (an independent reader).

argv[1]: the stats socket; argv[2]: output JSON file:
  {name: {"type": <directory type>, "value": <value as JSON>}} for every entry, where
  scalar -> int, simple -> [[int]], combined -> [[[packets, bytes]]],
  name vector -> [str] (vpp-papi drops NULL slots), symlink -> per-thread column
  ([int] or [[packets, bytes]]). Deleted (EMPTY) slots are skipped.
"""
import json
import sys

from vpp_papi.vpp_stats import VPPStats


def norm(v):
    if isinstance(v, tuple):  # StatsTuple (packets, bytes)
        return [int(v[0]), int(v[1])]
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def main():
    stats = VPPStats(socketname=sys.argv[1], timeout=2)
    stats.connect()
    out = {}
    for name in stats.ls([".*"]):
        entry = stats.directory[name]
        if entry.type == 5:  # EMPTY: a deleted slot, not an entry
            continue
        out[name] = {"type": entry.type, "value": norm(stats[name])}
    stats.disconnect()
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
