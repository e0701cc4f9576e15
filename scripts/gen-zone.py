#!/usr/bin/env python3
"""Generate a large test zone for load-time and memory measurements.

Usage: scripts/gen-zone.py [--records N] [--origin ORIGIN] > zone

The mix per 10 records: 6 single A, 1 name with two A (2 records), 1 AAAA,
1 CNAME; one name in 100 has an MX and a TXT instead. Addresses are from
the documentation ranges (RFC 5737, RFC 3849): data only, never contacted.
"""
import argparse
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--origin", default="big.test.")
    args = parser.parse_args()
    out = sys.stdout
    write = out.write
    origin = args.origin if args.origin.endswith(".") else args.origin + "."
    write(f"$ORIGIN {origin}\n$TTL 3600\n")
    write("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n")
    write("@ IN NS ns1\n@ IN NS ns2\nns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n")
    n = 5
    i = 0
    while n < args.records:
        slot = i % 10
        a = f"{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        if i % 100 == 99:
            write(f"h{i} IN MX 10 h{i - 1}\nh{i} IN TXT \"record {i}\"\n")
            n += 2
        elif slot < 6:
            write(f"h{i} IN A 10.{a}\n")
            n += 1
        elif slot == 6:
            write(f"h{i} 60 IN A 10.{a}\nh{i} 60 IN A 172.16.{i & 255}.{(i >> 8) & 255}\n")
            n += 2
        elif slot == 7:
            write(f"h{i} IN AAAA 2001:db8::{i & 0xffff:x}:{(i >> 16) & 0xffff:x}\n")
            n += 1
        else:
            write(f"h{i} IN CNAME h{i - 1}\n")
            n += 1
        i += 1


if __name__ == "__main__":
    main()
