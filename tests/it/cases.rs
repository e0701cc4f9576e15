//! Data-driven query → reply cases against `proto::handle`, no sockets
//! (after Knot's `test_process_query.c`). The cases live in
//! `tests/data/cases.txt`; each names the RFC rule it checks.
//!
//! A case is a block:
//!
//! ```text
//! == title (RFC section)
//! query NAME TYPE [class C] [opcode N] [rd] [cd] [qr] [qdcount N]
//!                 [edns SIZE] [version V] [do] [option CODE:HEX] [opts N] [tcp]
//! raw HEX                       (instead of query: the exact bytes)
//! drop                          (no reply expected)
//! rcode NAME
//! flags qr aa ...
//! question NAME CLASS TYPE      (omit for none)
//! answer|authority|additional RECORD   (each section compared as a set)
//! edns SIZE VERSION [do] [options...] | edns none
//! size N
//! proto-only                    (skipped over sockets: needs the fixed clock)
//! ```
//!
//! Sections not mentioned must be empty; `edns` defaults to "none" unless
//! the query had EDNS, when it must be given.

use std::net::SocketAddr;

use lbdns::lb::Picker;
use lbdns::proto::{self, Client, Outcome, Transport};

use crate::support::{self, QueryBuilder};

#[derive(Default, Debug)]
struct Case {
    title: String,
    line: usize,
    query: Option<(QueryBuilder, Transport)>,
    raw: Option<Vec<u8>>,
    drop: bool,
    rcode: Option<String>,
    flags: Option<Vec<String>>,
    question: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    edns: Option<String>,
    size: Option<usize>,
    /// Depends on the fixed clock of the direct runs (DNS Cookies).
    proto_only: bool,
}

fn hex(text: &str) -> Vec<u8> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).expect("hex"))
        .collect()
}

fn parse_query(words: &[&str]) -> (QueryBuilder, Transport) {
    let mut q = QueryBuilder::new(words[0], words[1]);
    let mut transport = Transport::Udp;
    let mut i = 2;
    let next = |i: &mut usize| {
        *i += 1;
        words[*i]
    };
    while i < words.len() {
        match words[i] {
            "class" => q.qclass = support::class(next(&mut i)),
            "opcode" => q.opcode = next(&mut i).parse().unwrap(),
            "rd" => q.rd = true,
            "cd" => q.cd = true,
            "qr" => q.qr = true,
            "qdcount" => q.qdcount = Some(next(&mut i).parse().unwrap()),
            "edns" => q.edns = Some((next(&mut i).parse().unwrap(), 0, false, Vec::new())),
            "version" => q.edns.as_mut().expect("edns first").1 = next(&mut i).parse().unwrap(),
            "do" => q.edns.as_mut().expect("edns first").2 = true,
            "option" => {
                let (code, data) = next(&mut i).split_once(':').expect("CODE:HEX");
                q.edns
                    .as_mut()
                    .expect("edns first")
                    .3
                    .push((code.parse().unwrap(), hex(data)));
            }
            "opts" => q.opt_count = next(&mut i).parse().unwrap(),
            "tcp" => transport = Transport::Tcp,
            other => panic!("unknown query word {other}"),
        }
        i += 1;
    }
    (q, transport)
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(title) = line.strip_prefix("== ") {
            cases.push(Case {
                title: title.to_string(),
                line: n + 1,
                ..Case::default()
            });
            continue;
        }
        let case = cases.last_mut().expect("a case starts with ==");
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match key {
            "query" => case.query = Some(parse_query(&rest.split_whitespace().collect::<Vec<_>>())),
            "raw" => case.raw = Some(hex(rest)),
            "drop" => case.drop = true,
            "rcode" => case.rcode = Some(rest.to_string()),
            "flags" => case.flags = Some(rest.split_whitespace().map(String::from).collect()),
            "question" => case.question.push(rest.to_string()),
            "answer" => case.answer.push(rest.to_string()),
            "authority" => case.authority.push(rest.to_string()),
            "additional" => case.additional.push(rest.to_string()),
            "edns" => case.edns = Some(rest.to_string()),
            "size" => case.size = Some(rest.parse().unwrap()),
            "proto-only" => case.proto_only = true,
            other => panic!("cases.txt:{}: unknown key {other}", n + 1),
        }
    }
    cases
}

fn normalize(records: &[String]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    out.sort();
    out
}

/// Sends a query and returns the reply, or `None` when none came.
pub type Exchange<'a> = dyn FnMut(&[u8], Transport) -> Option<Vec<u8>> + 'a;

fn check(case: &Case, exchange: &mut Exchange<'_>) -> Result<(), String> {
    let (bytes, transport) = match (&case.raw, &case.query) {
        (Some(raw), _) => (raw.clone(), Transport::Udp),
        (None, Some((q, t))) => (q.build(), *t),
        (None, None) => return Err("no query".into()),
    };
    let reply = exchange(&bytes, transport);
    if case.drop {
        return match reply {
            None => Ok(()),
            Some(r) => Err(format!("expected drop, got a reply of {} bytes", r.len())),
        };
    }
    let Some(out) = reply else {
        return Err("dropped, expected a reply".into());
    };
    let reply = support::decode(&out);
    let mut problems = Vec::new();
    if reply.id != u16::from_be_bytes([bytes[0], bytes[1]]) {
        problems.push(format!("id {} not echoed", reply.id));
    }
    if reply.opcode != (bytes[2] >> 3) & 0x0F {
        problems.push("opcode not copied".to_string());
    }
    if let Some(rcode) = &case.rcode
        && &reply.rcode != rcode
    {
        problems.push(format!("rcode {} != {rcode}", reply.rcode));
    }
    if let Some(flags) = &case.flags {
        let got: Vec<String> = reply.flags.iter().map(|f| f.to_string()).collect();
        if &got != flags {
            problems.push(format!("flags {got:?} != {flags:?}"));
        }
    }
    if normalize(&reply.question) != normalize(&case.question) {
        problems.push(format!("question {:?} != {:?}", reply.question, case.question));
    }
    for (name, got, want) in [
        ("answer", &reply.answer, &case.answer),
        ("authority", &reply.authority, &case.authority),
        ("additional", &reply.additional, &case.additional),
    ] {
        if normalize(got) != normalize(want) {
            problems.push(format!(
                "{name}:\n    got  {:?}\n    want {:?}",
                normalize(got),
                normalize(want)
            ));
        }
    }
    let edns = match &reply.edns {
        None => "none".to_string(),
        Some((size, version, dnssec_ok, options)) => {
            let mut text = format!("{size} {version}");
            if *dnssec_ok {
                text.push_str(" do");
            }
            for o in options {
                text.push(' ');
                text.push_str(o);
            }
            text
        }
    };
    let want_edns = case.edns.clone().unwrap_or_else(|| "none".into());
    if edns != want_edns {
        problems.push(format!("edns {edns:?} != {want_edns:?}"));
    }
    if let Some(size) = case.size
        && reply.size != size
    {
        problems.push(format!("size {} != {size}", reply.size));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n  "))
    }
}

/// Runs every case of `cases.txt` through `exchange` (over a socket, the
/// `proto-only` ones are left out); returns the failures.
pub fn run_all(exchange: &mut Exchange<'_>, socket: bool) -> Vec<String> {
    let text = std::fs::read_to_string(support::data_dir().join("cases.txt")).expect("cases.txt");
    let cases = parse_cases(&text);
    assert!(cases.len() > 50, "only {} cases parsed", cases.len());
    let mut failures = Vec::new();
    for case in cases.iter().filter(|c| !(socket && c.proto_only)) {
        if let Err(why) = check(case, exchange) {
            failures.push(format!("cases.txt:{} {}:\n  {why}", case.line, case.title));
        }
    }
    failures
}

#[test]
fn cases_from_data_file() {
    let snap = support::test_snapshot();
    let mut rng = Picker::with_seed(7);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    let mut exchange = |query: &[u8], transport: Transport| {
        let client = Client {
            addr: SocketAddr::from(([127, 0, 0, 1], 5353)),
            transport,
            now: || 1_800_000_000,
        };
        match proto::handle(query, &client, &snap, &mut rng, &mut out) {
            Outcome::Drop => None,
            Outcome::Reply { .. } => Some(out.clone()),
        }
    };
    let failures = run_all(&mut exchange, false);
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
