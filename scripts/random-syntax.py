#!/usr/bin/env python3
"""random-syntax.py: a random example.com. zone file written in the many
forms of RFC 1035 master-file syntax that BIND reads, for
scripts/compare-zones.sh --random.

Usage: scripts/random-syntax.py SEED > example.com.zone

The same SEED gives the same file. Records are written with relative
and absolute owners, `@` and blank owners (the previous one), TTL and
class in either order or left out, TTLs with units, `CLASS1`, type and
name letters in mixed case, escaped labels (`\\065`, `a\\.b`, `\\(x\\)`),
`$ORIGIN` and `$TTL` changes, data split over lines with parentheses,
comments, quoted and unquoted strings with escapes, RFC 3597 data, and
some 25 types (SVCB and HTTPS parameters, APL, LOC, CAA, NAPTR, ...).

What servers are free to read their own way is left out, so that lbdns
and BIND must agree record for record: TTLs that differ within an RRset
(one record per RRset here), one owner in several letter cases (which one
a server keeps is its own), and records without a TTL before `$TTL`.
Addresses are documentation ranges; nothing is sent anywhere.
"""
import random
import sys

if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit("usage: scripts/random-syntax.py SEED")
seed = int(sys.argv[1])
rng = random.Random(seed)
out = []


def case(s):
    """Some letters of s in upper case."""
    return "".join(c.upper() if rng.random() < 0.3 else c for c in s)


def ttl():
    """A TTL: seconds, or with units."""
    r = rng.random()
    if r < 0.4:
        return str(rng.choice([0, 1, 60, 300, 3600, 86400, 2147483647]))
    if r < 0.7:
        return rng.choice(["1h", "1H30M", "2d", "1w", "90s", "1h1m1s", "0s", "3W"])
    return str(rng.randint(0, 1000000))


def label():
    r = rng.random()
    if r < 0.75:
        return rng.choice(["a", "b", "www", "mail", "x-y", "_sip", "_tcp", "*", "0", "xn--bcher-kva"])
    if r < 0.85:
        return rng.choice(["\\065b", "a\\.b", "a\\@b", "\\(x\\)", "s\\032p", "q\\\"t", "\\;c"])
    return "l" * rng.randint(1, 63)


origin = "example.com."


def rel_name():
    n = ".".join(label() for _ in range(rng.randint(1, 3)))
    n = n.replace("*.", "w.")  # a wildcard only leftmost
    if n.endswith("*") and "." in n:
        n = n[:-1] + "w"
    return n


def name_ref(zone_origin):
    """A name in record data: @, relative, absolute, or out of the zone."""
    r = rng.random()
    if r < 0.15:
        return "@"
    if r < 0.5:
        return case(rel_name())
    if r < 0.8:
        return case(rel_name() + "." + zone_origin)
    return case(rng.choice(["example.net.", "ns.example.org.", "."]))


def txt():
    parts = []
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.3:
            parts.append(rng.choice(["word", "v=spf1", "a;b", "k=v"]))
        elif r < 0.6:
            parts.append('"' + rng.choice(["two words", "semi;colon", "paren (x)", "tab\there", 'q\\"uote',
                                           "back\\\\slash", "\\065\\066", "", "utf é"]) + '"')
        else:
            parts.append('"' + "z" * rng.randint(0, 255) + '"')
    return " ".join(parts)


def rdata(t, zo):
    if t == "A":
        return f"192.0.2.{rng.randint(0, 255)}"
    if t == "AAAA":
        return rng.choice(["2001:db8::1", "2001:DB8:0:0:0:0:0:2", "::ffff:192.0.2.3", "2001:db8::a:b:c:d"])
    if t in ("NS", "PTR"):
        return name_ref(zo)
    if t == "MX":
        return f"{rng.randint(0, 65535)} {name_ref(zo)}"
    if t == "TXT" or t == "SPF":
        return txt()
    if t == "SRV":
        return f"{rng.randint(0, 10)} {rng.randint(0, 10)} {rng.randint(0, 65535)} {name_ref(zo)}"
    if t == "CAA":
        return rng.choice(['0 issue "ca.example.net"', '128 iodef "mailto:a@example.net"',
                           '0 issuewild ";"', '0 tbs "x"'])
    if t == "SSHFP":
        fp = rng.randint(1, 2)
        return f"{rng.randint(1, 4)} {fp} " + "".join(rng.choice("0123456789abcdef") for _ in range(40 if fp == 1 else 64))
    if t == "TLSA":
        return f"3 1 1 {'ab' * rng.randint(1, 32)}"
    if t == "DS":
        return f"{rng.randint(0, 65535)} 13 2 " + "".join(rng.choice("0123456789ABCDEF") for _ in range(64))
    if t == "HINFO":
        return rng.choice(['"cpu" "os"', 'INTEL-386 Linux', '"" ""'])
    if t == "NAPTR":
        return f'{rng.randint(0, 100)} {rng.randint(0, 100)} "s" "SIP+D2U" "" {name_ref(zo)}'
    if t == "LOC":
        return rng.choice(["52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
                           "0 N 0 E 0", "42 21 43.952 N 71 5 6.344 W -24m 1m 200m 10m"])
    if t == "RP":
        return f"{name_ref(zo)} {name_ref(zo)}"
    if t == "TYPE65280":
        n = rng.randint(0, 6)
        return f"\\# {n} " + "".join(rng.choice("0123456789abcdef") for _ in range(2 * n))
    if t == "SVCB" or t == "HTTPS":
        return rng.choice(['1 . alpn=h2,h3 port=443', '0 example.net.', '1 svc ipv4hint=192.0.2.1,192.0.2.2',
                           '2 . alpn="h2" ech=AEX+DQA=', '1 . mandatory=alpn alpn=h3 ipv6hint=2001:db8::1'])
    if t == "APL":
        return rng.choice(["1:192.0.2.0/24 !1:192.0.2.128/25", "2:2001:db8::/32", ""])
    if t == "CERT":
        return "1 0 0 AAECAw=="
    if t == "URI":
        return '10 1 "https://example.net/"'
    if t == "EUI48":
        return "00-00-5e-00-53-2a"
    if t == "AFSDB":
        return f"1 {name_ref(zo)}"
    raise ValueError(t)


types = ["A", "A", "A", "AAAA", "NS", "MX", "TXT", "SRV", "CAA", "SSHFP", "TLSA", "DS", "HINFO", "NAPTR",
         "LOC", "RP", "TYPE65280", "SVCB", "HTTPS", "APL", "CERT", "URI", "EUI48", "AFSDB", "SPF", "PTR"]

out.append(f"$TTL {ttl()}")
out.append(f"@ IN SOA ns1 host ( {rng.randint(1, 99)} ; serial\n  7200 ; refresh\n  3600 1209600 300 )")
out.append("@ NS ns1")
out.append("ns1 A 192.0.2.53")
zo = origin
cases = {}
sets = {(origin, "NS"), ("ns1." + origin, "A")}
last_owner = None
for _ in range(rng.randint(20, 60)):
    r = rng.random()
    if r < 0.06:
        # a new $ORIGIN below the zone, or back to it
        zo = rng.choice([origin, f"sub{rng.randint(0, 3)}.{origin}", f"d.sub.{origin}"])
        out.append(f"$ORIGIN {zo}")
        last_owner = None
        continue
    if r < 0.1:
        out.append(f"$TTL {ttl()}")
        continue
    t = rng.choice(types)
    # owner: relative, absolute, @ or blank (the previous owner)
    orr = rng.random()
    if last_owner is not None and orr < 0.15:
        owner, shown = last_owner, ""
    elif orr < 0.25:
        owner, shown = zo, "@"
    else:
        rel = rel_name()
        owner = rel + "." + zo
        # One letter case per owner: which one a server keeps is its own.
        if owner.lower() not in cases:
            cases[owner.lower()] = case(rel)
        rel = cases[owner.lower()]
        shown = rel if rng.random() < 0.7 else rel + "." + zo
    key = owner.lower()
    if t in ("NS", "DS") and (key == origin or key.startswith("*")):
        continue
    # One record per RRset: TTLs that differ within one are a known
    # difference (lbdns serves the lowest, BIND the first or last).
    if (key, t) in sets:
        continue
    sets.add((key, t))
    last_owner = owner
    fields = []
    order = rng.random()
    tt = ttl() if rng.random() < 0.4 else None
    cl = rng.choice(["IN", "in", "CLASS1"]) if rng.random() < 0.5 else None
    if order < 0.5:
        fields += [x for x in (tt, cl) if x]
    else:
        fields += [x for x in (cl, tt) if x]
    fields.append(case(t) if not t.startswith("TYPE") else t)
    data = rdata(t, zo)
    # Split over lines, unless that would put the ")" inside a quoted
    # string or after a ";" (a comment).
    if rng.random() < 0.15 and " " in data and "\"" not in data and ";" not in data:
        a, b = data.split(" ", 1)
        data = f"( {a}\n\t{b} ) ; split"
    line = (shown if shown else "") + "\t" + " ".join(fields) + " " + data
    if rng.random() < 0.2:
        line += " ; comment"
    out.append(line)
print("\n".join(out))
