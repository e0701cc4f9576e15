#!/usr/bin/env python3
"""random-zone.py: a small random example.com. zone for differential tests.

Usage: scripts/random-zone.py SEED > example.com.zone
       scripts/random-zone.py --sub SEED > sub.example.com.zone

The same SEED gives the same zone. Owners are one to three labels drawn
from a few (a wildcard only as the leftmost), so that names nest, meet
and shadow one another: A, AAAA, MX, TXT (some long enough to need
truncation over UDP), SRV, a few PTR, CAA, HINFO and NAPTR, CNAME
chains, DNAMEs (into the zone, below themselves, or out of it),
delegations with and without glue, and wildcards. Some RRsets have
their own TTL, the SOA's TTL and MINIMUM vary (the negative TTL is the
smaller), some names hold a big A RRset (9 to 46 records: too big for
512 bytes from about 30), some delegations have a DS (the parent's to
the child too), and now and then a wildcard owns NS records. A CNAME or DNAME owner gets nothing else, and nothing
is put below a DNAME (RFC 6672 §2.4), so lbdns, NSD and Knot all load
it. It ends with `$INCLUDE included.inc`, as the compare zone does.

With --sub, it writes a random sub.example.com. zone instead, to be
served beside it as a hosted child: its names point into the parent and
out of both. The parent sometimes delegates sub (with or without glue),
sometimes not, and sometimes holds other records at sub itself (a CNAME
there leads DS, the parent's to answer, away).

scripts/compare-peers.sh --random-zone SEED serves both from all three
servers. Addresses are documentation ranges: nothing is sent to them.
"""
import random
import sys


def zone(seed, sub=False):
    # The child's names come from another stream than the parent's, so
    # that the same seed does not make the two zones alike.
    rng = random.Random(seed * 2 + 1 if sub else seed)
    # TTLs, RRset sizes and DS come from a stream of their own, so that a
    # seed keeps the names and types it had before they were added.
    more = random.Random(seed * 7 + (5 if sub else 3))
    ttls = {}

    def ttl(owner, kind):
        # One TTL per RRset: a TTL that differs within an RRset is a known
        # difference between servers, not what this looks for.
        key = (owner.lower(), kind)
        if key not in ttls:
            ttls[key] = more.choice(["", "", "", "60 ", "3600 ", "86400 "])
        return ttls[key]
    labels = ["a", "b", "c", "d", "www", "mail", "*", "x", "y", "z"]
    if not sub:
        labels.append("sub")

    def name():
        parts = [rng.choice(labels) for _ in range(rng.randint(1, 3))]
        parts = [p for i, p in enumerate(parts) if p != "*" or i == 0]
        target = ".".join(parts)
        # Names across the zone cut: from the child up into the parent,
        # from the parent into the child.
        if sub and rng.random() < 0.25:
            return f"{target}.example.com."
        if not sub and rng.random() < 0.1:
            return f"{target}.sub"
        return target

    lines = [
        "$TTL 300",
        # The negative TTL is the smaller of the SOA's TTL and MINIMUM.
        f"@ {more.choice(['', '60 ', '3600 '])}IN SOA ns1 hostmaster 1 7200 3600 1209600 "
        f"{more.choice([300, 30, 86400])}",
        "@ IN NS ns1",
        f"ns1 IN A 192.0.2.{210 if sub else 53}",
    ]
    kinds = {}
    if not sub:
        roll = rng.random()
        if roll < 0.4:
            # Delegated to the hosted child, with glue or without.
            kinds["sub"] = "NS"
            lines.append("sub IN NS ns1.sub")
            if roll < 0.25:
                lines.append("ns1.sub IN A 192.0.2.210")
            if more.random() < 0.5:
                lines.append(f"sub IN DS 2371 13 2 {more.getrandbits(256):064x}")
    extra = ["PTR", "CAA", "HINFO", "NAPTR"]
    for i in range(rng.randint(25, 60)):
        owner = name()
        # The parent's names below the child's apex would be hidden by the
        # child, and NSD, which keeps both zones in one tree, lets them
        # show through in the child's answers: none but glue.
        if owner.endswith(".") or (not sub and owner.endswith(".sub")):
            continue
        if rng.random() < 0.05:
            kind = rng.choice(extra)
            data = {
                "PTR": f"{name()}",
                "CAA": '0 issue "ca.example.net"',
                "HINFO": '"cpu" "os"',
                "NAPTR": f'10 20 "s" "SIP+D2U" "" _sip._udp.{name()}',
            }[kind]
            if kinds.get(owner) in ("CNAME", "DNAME", "NS"):
                continue
            kinds.setdefault(owner, kind)
            lines.append(f"{owner} IN {kind} {data}")
            continue
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
            # No DNAME in the parent at or below the child's apex: the
            # child's names would be below it (NSD refuses that).
            if owner in kinds or owner.startswith("*") or (not sub and (owner == "sub" or owner.endswith(".sub"))):
                continue
            kind = "DNAME"
            target = name()
            if not target.endswith("."):
                target += ".sub.example.com." if sub else ".example.com."
            data = target if rng.random() < 0.7 else "example.net."
        else:
            if owner in kinds:
                continue
            kind = "NS"
            if owner.startswith("*"):
                # Now and then NS at a wildcard, which lbdns answers as NSD
                # does (data for the names it stands in for), from its own
                # stream, so that the other seeds' zones stay as they were.
                # Its server is out of the zones and it has no DS: ANY there
                # would differ from NSD's by the server's address or by the
                # RRset picked (tests/data/wildns has those cases).
                if more.random() >= 0.3:
                    continue
                data = "ns.example.net."
            elif rng.random() < 0.5:
                data = f"ns.{owner}"
                lines.append(f"ns.{owner} IN A 192.0.2.{rng.randint(1, 250)}")
            else:
                data = "ns.example.net."
        kinds.setdefault(owner, kind)
        lines.append(f"{owner} {ttl(owner, kind)}IN {kind} {data}")
        if kind == "A" and more.random() < 0.08:
            # A big RRset: too big for 512 bytes from about 30 records on,
            # in an answer, as glue or as an MX target's addresses.
            for n in range(more.randint(8, 45)):
                lines.append(f"{owner} {ttl(owner, kind)}IN A 198.51.100.{n + 1}")
        if kind == "NS" and not owner.startswith("*") and more.random() < 0.4:
            # A DS beside the delegation, for the parent to answer.
            lines.append(f"{owner} {ttl(owner, 'DS')}IN DS {more.randint(1, 65535)} 13 2 {more.getrandbits(256):064x}")
    # Nothing below a DNAME owner.
    dnames = [o for o, k in kinds.items() if k == "DNAME"]
    lines = [l for l in lines if not any(l.split()[0].endswith("." + d) for d in dnames)]
    lines.append("$INCLUDE included.inc")
    return "\n".join(lines) + "\n"



if __name__ == "__main__":
    args = sys.argv[1:]
    sub = args[:1] == ["--sub"]
    if sub:
        args = args[1:]
    if len(args) != 1 or not args[0].isdigit():
        sys.exit("usage: scripts/random-zone.py [--sub] SEED")
    sys.stdout.write(zone(int(args[0]), sub))
