#!/usr/bin/env python3
"""random-zone.py: a small random example.com. zone for differential tests.

Usage: scripts/random-zone.py SEED > example.com.zone

The same SEED gives the same zone. Owners are one to three labels drawn
from a few (a wildcard only as the leftmost), so that names nest, meet
and shadow one another: A, AAAA, MX, TXT (some long enough to need
truncation over UDP), SRV, CNAME chains, DNAMEs (into the zone, below
themselves, or out of it), delegations with and without glue, and
wildcards. A CNAME or DNAME owner gets nothing else, and nothing is put
below a DNAME (RFC 6672 §2.4), so lbdns, NSD and Knot all load it. It ends
with `$INCLUDE included.inc`, as the compare zone does.

scripts/compare-peers.sh --random-zone SEED serves it from all three
servers. Addresses are documentation ranges: nothing is sent to them.
"""
import random
import sys


def zone(seed):
    rng = random.Random(seed)
    labels = ["a", "b", "c", "d", "www", "mail", "*", "x", "y", "z"]

    def name():
        parts = [rng.choice(labels) for _ in range(rng.randint(1, 3))]
        parts = [p for i, p in enumerate(parts) if p != "*" or i == 0]
        return ".".join(parts)

    lines = [
        "$TTL 300",
        "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300",
        "@ IN NS ns1",
        "ns1 IN A 192.0.2.53",
    ]
    kinds = {}
    for i in range(rng.randint(25, 60)):
        owner = name()
        roll = rng.random()
        if kinds.get(owner) in ("CNAME", "DNAME", "NS"):
            continue
        if roll < 0.35:
            kind, data = "A", f"192.0.2.{rng.randint(1, 250)}"
        elif roll < 0.45:
            kind, data = "AAAA", f"2001:db8::{rng.randint(1, 999):x}"
        elif roll < 0.55:
            kind, data = "MX", f"10 {name()}"
        elif roll < 0.60:
            kind, data = "TXT", f'"t{i}"'
        elif roll < 0.63:
            kind, data = "TXT", '"' + "x" * rng.randint(100, 250) + '"'
        elif roll < 0.66:
            kind, data = "SRV", f"0 5 5060 {name()}"
        elif roll < 0.78:
            if owner in kinds:
                continue
            kind, data = "CNAME", name()
        elif roll < 0.86:
            if owner in kinds or owner.startswith("*"):
                continue
            kind = "DNAME"
            data = f"{name()}.example.com." if rng.random() < 0.7 else "example.net."
        else:
            if owner in kinds or owner.startswith("*"):
                continue
            kind = "NS"
            if rng.random() < 0.5:
                data = f"ns.{owner}"
                lines.append(f"ns.{owner} IN A 192.0.2.{rng.randint(1, 250)}")
            else:
                data = "ns.example.net."
        kinds.setdefault(owner, kind)
        lines.append(f"{owner} IN {kind} {data}")
    # Nothing below a DNAME owner.
    dnames = [o for o, k in kinds.items() if k == "DNAME"]
    lines = [l for l in lines if not any(l.split()[0].endswith("." + d) for d in dnames)]
    lines.append("$INCLUDE included.inc")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: scripts/random-zone.py SEED")
    sys.stdout.write(zone(int(sys.argv[1])))
