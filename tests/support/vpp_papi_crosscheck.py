#!/usr/bin/env python3
"""Cross-check maglev's VPP codec against vpp-papi (an independent implementation).

Input (argv[1]): {"api": <vpp-papi .api.json emitted by maglev>, "samples": [
  {"name": msg, "hex": bytes maglev encoded, "value": the same message as a dict}]}
Output (argv[2]): per sample, what vpp-papi unpacked from maglev's bytes (normalised to
JSON) and the bytes vpp-papi packs from the dict. The Rust test compares both ways.
"""
import enum
import ipaddress
import json
import sys

from vpp_papi.vpp_papi import VPPApiJSONFiles

IP_TYPES = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)


def norm(v):
    if hasattr(v, "_asdict"):
        return {k: norm(x) for k, x in v._asdict().items()}
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, bool):
        return v
    if isinstance(v, enum.Enum):
        return int(v.value)
    if isinstance(v, IP_TYPES):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    messages, _ = VPPApiJSONFiles.process_json_str(json.dumps(data["api"]))
    out = []
    for s in data["samples"]:
        entry = {"name": s["name"]}
        try:
            msg = messages[s["name"]]
            raw = bytes.fromhex(s["hex"])
            value, size = msg.unpack(raw)
            # namedtuple renames `_vl_msg_id` to `_0`; map fields by declaration order.
            entry["unpacked"] = {k: norm(x) for k, x in zip(msg.fields, value)}
            entry["size"] = size
            entry["packed"] = msg.pack(s["value"]).hex()
        except Exception as e:  # reported per message, the Rust side fails the test
            entry["error"] = "%s: %s" % (type(e).__name__, e)
        out.append(entry)
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
