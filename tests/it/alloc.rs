//! The answer path allocates nothing (DESIGN.md: no allocation per query):
//! a counting global allocator, per thread, around `proto::handle`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use lbdns::lb::Picker;
use lbdns::proto::{self, Client, Transport};

use crate::support::{self, QueryBuilder};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// Test scaffolding: `GlobalAlloc` is an unsafe trait. This forwards to the
// system allocator and counts; it is not part of the crate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn answering_does_not_allocate() {
    let snap = support::test_snapshot();
    let mut queries = Vec::new();
    for (name, qtype) in [
        ("www.example.com.", "A"),
        ("WWW.example.com.", "AAAA"),
        ("alias.example.com.", "A"),
        ("foo.wild.example.com.", "TXT"),
        ("a.b.deleg.example.com.", "A"),
        ("nothere.example.com.", "A"),
        ("www.example.com.", "MX"),
        ("www.example.org.", "A"),
        ("big.example.com.", "TXT"),
        ("manymx.example.com.", "MX"),
        ("example.com.", "ANY"),
    ] {
        queries.push(QueryBuilder::new(name, qtype).build());
        queries.push(QueryBuilder::new(name, qtype).edns(1232).build());
    }
    let mut bad = QueryBuilder::new("www.example.com.", "A");
    bad.opcode = 4;
    queries.push(bad.build());
    queries.push(vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1]);

    let client = Client {
        addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        transport: Transport::Udp,
        now: || 1_800_000_000,
    };
    let mut rng = Picker::with_seed(5);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    let before = allocations();
    for round in 0..200 {
        for q in &queries {
            let client = Client {
                transport: if round % 2 == 0 { Transport::Udp } else { Transport::Tcp },
                ..client
            };
            proto::handle(q, &client, &snap, &mut rng, &mut out);
        }
    }
    assert_eq!(allocations() - before, 0, "proto::handle allocated");
    // The counter works: a Vec allocates.
    let v: Vec<u8> = Vec::with_capacity(10);
    assert!(allocations() > before, "{}", v.capacity());
}
