//! Entry points shared by the fuzz targets (`fuzz/`) and the regression
//! tests that replay their corpus (`tests/it/fuzz.rs`). Each panics on a
//! bug, never on bad input.

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use domain::base::ToName;
use domain::base::name::{ParsedName, ToLabelIter};
use domain::rdata::AllRecordData;

use crate::config::{Config, Overrides};
use crate::diag::Diagnostics;
use crate::lb::Picker;
use crate::proto::{self, Client, Outcome, Transport};
use crate::snapshot::Snapshot;

fn test_snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(&Overrides {
            config: Some(root.join("tests/data/zones/lbdns.toml")),
            ..Overrides::default()
        })
        .expect("test config");
        let (snap, diags) = crate::load_snapshot(&config);
        snap.unwrap_or_else(|| panic!("{diags}"))
    })
}

/// The client a fuzz input asks from, derived from its bytes (FNV-1a) so
/// that the query itself stays as the fuzzer wrote it: IPv4 or IPv6, in
/// or out of the test topology map's networks (10/8, 2001:db8:aa::/48),
/// spread over many client networks for the sticky policy.
fn client_of(data: &[u8]) -> SocketAddr {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let [a, b, c, d, e, f, ..] = hash.to_be_bytes();
    match a % 4 {
        0 => SocketAddr::from(([10, b, c, d], 5353)),
        1 => SocketAddr::from(([198, 51, c, d], 5353)),
        2 => SocketAddr::from((
            [0x2001, 0xdb8, 0xaa, u16::from_be_bytes([b, c]), 0, 0, 0, u16::from(d)],
            5353,
        )),
        _ => SocketAddr::from((
            [
                0x2001,
                0xdb8,
                u16::from_be_bytes([b, c]),
                u16::from_be_bytes([d, e]),
                u16::from(f),
                0,
                0,
                1,
            ],
            5353,
        )),
    }
}

/// Every CNAME that a DNAME in the answer synthesised, down the chain
/// from the qname, points at its owner with the DNAME's owner replaced by
/// the DNAME's target; and no DNAME or CNAME is there twice.
fn check_dname(msg: &domain::base::Message<[u8]>) {
    let (Ok(question), Ok(answer)) = (msg.sole_question(), msg.answer()) else {
        return;
    };
    let mut current = question.qname().to_name::<Vec<u8>>();
    type Name = domain::base::Name<Vec<u8>>;
    // Each DNAME written: its owner and target.
    let mut dnames: Vec<(Name, Name)> = Vec::new();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for record in answer.limit_to::<AllRecordData<_, ParsedName<_>>>().flatten() {
        let owner = record.owner().to_name::<Vec<u8>>();
        if matches!(record.data(), AllRecordData::Dname(_) | AllRecordData::Cname(_)) {
            let mut text = format!("{owner} {} {}", record.rtype(), record.data()).into_bytes();
            text.make_ascii_lowercase();
            assert!(
                !seen.contains(&text),
                "written twice: {}",
                String::from_utf8_lossy(&text)
            );
            seen.push(text);
        }
        match record.data() {
            AllRecordData::Dname(d) => dnames.push((owner, d.dname().to_name::<Vec<u8>>())),
            AllRecordData::Cname(c) if owner.name_eq(&current) => {
                let target = c.cname().to_name::<Vec<u8>>();
                // The DNAME this CNAME came from, if any: the last one
                // written whose owner is above the current name.
                if let Some((o, t)) = dnames
                    .iter()
                    .rev()
                    .find(|(o, _)| current.ends_with(o) && !current.name_eq(o))
                {
                    let q = current.as_slice();
                    let prefix = q.len() - o.as_slice().len();
                    let want = [&q[..prefix], t.as_slice()].concat();
                    assert!(
                        target.as_slice().eq_ignore_ascii_case(&want),
                        "the synthesised CNAME points at the redirected name"
                    );
                }
                current = target;
            }
            _ => {}
        }
    }
}

/// One query: any bytes in; a reply, if any, must be a sound message with
/// the query's ID, at most the UDP limit over UDP.
pub fn handle(data: &[u8]) {
    let snap = test_snapshot();
    let mut picker = Picker::with_seed(1);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    let addr = client_of(data);
    // TCP first: the UDP reply is held to it, by counts only, since a
    // pool's picks may differ from one query to the next.
    let mut whole: Option<Sections> = None;
    for transport in [Transport::Tcp, Transport::Udp] {
        let client = Client {
            addr,
            transport,
            now: || 1_800_000_000,
        };
        match proto::handle(data, &client, snap, &mut picker, &mut out) {
            Outcome::Drop => assert!(data.len() < 12 || data[2] & 0x80 != 0),
            Outcome::Reply { .. } => {
                let limit = match transport {
                    Transport::Udp => usize::from(proto::OUR_PAYLOAD_SIZE),
                    Transport::Tcp => proto::MAX_MESSAGE,
                };
                let sections = Sections::of(check_reply(data, &out, limit));
                match &whole {
                    None => whole = Some(sections),
                    Some(tcp) => tcp.check_udp(&sections, false),
                }
            }
        }
    }
}

/// What every reply must be: the query's ID, at most `limit` bytes, every
/// record and its data parseable, synthesised CNAMEs right, and the
/// question the query's, byte for byte.
fn check_reply<'o>(query: &[u8], out: &'o [u8], limit: usize) -> &'o domain::base::Message<[u8]> {
    assert_eq!(out[..2], query[..2], "ID echoed");
    assert!(out.len() <= limit, "{} bytes, over the limit of {limit}", out.len());
    let msg = domain::base::Message::from_slice(out).expect("a header");
    for section in [msg.answer(), msg.authority(), msg.additional()] {
        for record in section.expect("sections parse") {
            // The RDATA too: names in it, and where their
            // compression pointers lead.
            record
                .expect("records parse")
                .to_any_record::<AllRecordData<_, ParsedName<_>>>()
                .expect("record data parses");
        }
    }
    check_dname(msg);
    for question in msg.question() {
        let question = question.expect("the question parses");
        // A question is only ever the query's, echoed byte for
        // byte (uncompressed, letter case kept).
        let len = usize::from(question.qname().compose_len()) + 4;
        assert!(!question.qname().is_compressed(), "question name compressed");
        assert_eq!(out.get(12..12 + len), query.get(12..12 + len), "question echoed");
    }
    msg
}

/// Under the fuzzer, a panic aborts the process. Panics of `domain`'s
/// zone-file scanner are known (upstream) and caught by the loader, which
/// reports an error: let those unwind to it, and abort on anything else.
fn let_scanner_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info
                .location()
                .is_some_and(|l| l.file().contains("zonefile/inplace.rs"))
            {
                previous(info);
            }
        }));
    });
}

/// Types asked of each name of a fuzzed zone: A, AAAA, MX, NS, DS, CNAME,
/// DNAME, ANY, TXT and SRV.
const ZONE_QTYPES: [u16; 10] = [1, 28, 15, 2, 43, 5, 39, 255, 16, 33];
/// How many names of each fuzzed zone are asked about.
const ZONE_NAMES: usize = 24;

/// Zone files: any bytes in; errors are fine, panics are not. The text is
/// `example.com.`, and what follows a line `%%` is its hosted child
/// `sub.example.com.`, so that chains, referrals and DS can cross between
/// the two. What loads is compiled, and its names (and a name below each)
/// are asked for several types, with and without EDNS, over UDP and TCP:
/// each reply must pass the checks of [`handle`], fit 512 bytes when the
/// query had no EDNS, and be a whole answer: REFUSED never (every name is
/// in a zone), and, unless truncated, a negative answer or referral with
/// its SOA or NS. The UDP reply must agree with the TCP one
/// (`Sections::check_udp`), and over TCP the reply with EDNS with the
/// one without.
pub fn zone(data: &[u8]) {
    let_scanner_panics_unwind();
    let (parent, child) = match data.windows(4).position(|w| w == b"\n%%\n") {
        Some(at) => (&data[..at + 1], Some(&data[at + 4..])),
        None => (data, None),
    };
    let mut diags = Diagnostics::default();
    let limits = crate::zone::Limits {
        zone_file_size: 1 << 20,
        zone_records: 10_000,
        include_depth: 0,
    };
    let mut zones = Vec::new();
    for (text, origin) in [(Some(parent), "example.com."), (child, "sub.example.com.")] {
        let origin = domain::base::name::Name::from_str(origin).expect("literal");
        if let Some(zone) =
            text.and_then(|text| crate::zone::load_bytes(&origin, Path::new("fuzz.zone"), text, &limits, &mut diags))
        {
            zones.push(zone);
        }
    }
    if zones.is_empty() {
        return;
    }
    let pools = crate::lb::Pools::build(&[], &mut diags);
    let index = crate::snapshot::build(&zones, &pools, &mut diags);
    let snap = Snapshot::new(index, pools, crate::lb::Live::default(), Default::default());
    let mut names: Vec<Vec<u8>> = Vec::new();
    for zone in &zones {
        for node in zone.nodes().take(ZONE_NAMES) {
            names.push(node.owner().to_vec());
            if node.owner().len() + 2 <= 255 {
                names.push([b"\x01x", node.owner()].concat());
            }
        }
    }
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    let mut query = Vec::with_capacity(300);
    let mut picker = Picker::with_seed(1);
    for name in &names {
        for qtype in ZONE_QTYPES {
            // The TCP reply without EDNS, for the one with it to match.
            let mut plain: Option<Sections> = None;
            for edns in [false, true] {
                query.clear();
                query.extend_from_slice(&[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
                query.extend_from_slice(name);
                query.extend_from_slice(&qtype.to_be_bytes());
                query.extend_from_slice(&[0, 1]);
                if edns {
                    // OPT: 1232 bytes, DO set.
                    query.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
                }
                // TCP first: its reply is whole, and the UDP one is held
                // to it.
                let mut whole = None;
                for transport in [Transport::Tcp, Transport::Udp] {
                    let client = Client {
                        addr: SocketAddr::from(([127, 0, 0, 1], 5353)),
                        transport,
                        now: || 0,
                    };
                    let outcome = proto::handle(&query, &client, &snap, &mut picker, &mut out);
                    assert!(matches!(outcome, Outcome::Reply { .. }), "a query gets a reply");
                    let limit = match (transport, edns) {
                        (Transport::Tcp, _) => proto::MAX_MESSAGE,
                        (Transport::Udp, false) => 512,
                        (Transport::Udp, true) => 1232,
                    };
                    let msg = check_reply(&query, &out, limit);
                    check_whole_answer(msg);
                    let sections = Sections::of(msg);
                    match &whole {
                        None => {
                            // EDNS (and DO) change what fits, not what the
                            // answer is.
                            match &plain {
                                None => plain = Some(sections.clone()),
                                Some(plain) => assert_eq!(&sections, plain, "TCP with EDNS and without"),
                            }
                            whole = Some(sections);
                        }
                        Some(tcp) => tcp.check_udp(&sections, true),
                    }
                }
            }
        }
    }
}

/// A reply's rcode, AA and TC, and each section's records as text,
/// sorted (A and AAAA RRsets are shuffled), the OPT record left out.
#[derive(Debug, Clone, PartialEq)]
struct Sections {
    rcode: domain::base::iana::Rcode,
    aa: bool,
    tc: bool,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

impl Sections {
    fn of(msg: &domain::base::Message<[u8]>) -> Sections {
        let text = |section: domain::base::message::RecordSection<'_, [u8]>| {
            let mut records: Vec<String> = section
                .flatten()
                .filter(|r| r.rtype() != domain::base::iana::Rtype::OPT)
                .filter_map(|r| {
                    let record = r.to_any_record::<AllRecordData<_, ParsedName<_>>>().ok()?;
                    Some(record.to_string())
                })
                .collect();
            records.sort();
            records
        };
        let header = msg.header();
        Sections {
            rcode: header.rcode(),
            aa: header.aa(),
            tc: header.tc(),
            answer: msg.answer().map(text).unwrap_or_default(),
            authority: msg.authority().map(text).unwrap_or_default(),
            additional: msg.additional().map(text).unwrap_or_default(),
        }
    }

    /// The UDP reply to the query `self` (over TCP) answered: the same
    /// AA and RCODE (or NOERROR where a truncated chain was cut short);
    /// untruncated, the same answer and authority, and
    /// additional records from the TCP reply's only (some dropped to
    /// fit); truncated, answer records from the TCP reply's only. With
    /// `exact` false, only how many records (a pool may pick others).
    fn check_udp(&self, udp: &Sections, exact: bool) {
        assert!(!self.tc, "TC over TCP: {self:?}");
        // A truncated reply that holds the whole answer section knows how
        // the chain ended; one cut short in a chain (before a DNAME that
        // did not fit) does not, and says NOERROR, as Knot does.
        let cut_short = udp.tc && udp.answer.len() < self.answer.len();
        assert!(
            udp.aa == self.aa
                && (udp.rcode == self.rcode || cut_short && udp.rcode == domain::base::iana::Rcode::NOERROR),
            "UDP {udp:?}\nTCP {self:?}"
        );
        let within = |part: &[String], whole: &[String]| {
            let mut rest = whole.to_vec();
            part.iter().all(|r| match rest.iter().position(|w| w == r) {
                Some(at) => {
                    rest.swap_remove(at);
                    true
                }
                None => false,
            })
        };
        if !exact {
            let fits = if udp.tc {
                udp.answer.len() <= self.answer.len()
            } else {
                (udp.answer.len(), udp.authority.len()) == (self.answer.len(), self.authority.len())
                    && udp.additional.len() <= self.additional.len()
            };
            assert!(fits, "UDP {udp:?}\nTCP {self:?}");
        } else if udp.tc {
            assert!(within(&udp.answer, &self.answer), "UDP {udp:?}\nTCP {self:?}");
        } else {
            assert_eq!(
                (&udp.answer, &udp.authority),
                (&self.answer, &self.authority),
                "UDP {udp:?}\nTCP {self:?}"
            );
            assert!(within(&udp.additional, &self.additional), "UDP {udp:?}\nTCP {self:?}");
        }
    }
}

/// A reply to a query for a name in a zone served here: never REFUSED,
/// and a negative answer or a referral says so in its authority section
/// (RFC 2308 §2, RFC 1034 §4.3.2), unless it was truncated.
fn check_whole_answer(msg: &domain::base::Message<[u8]>) {
    let header = msg.header();
    let rcode = header.rcode();
    assert_ne!(
        rcode,
        domain::base::iana::Rcode::REFUSED,
        "REFUSED for a name in a zone"
    );
    if header.tc() {
        return;
    }
    let counts = msg.header_counts();
    if counts.ancount() == 0 {
        assert!(counts.nscount() > 0, "{rcode} with nothing in answer or authority");
    }
}

/// A configuration file: any text in; errors are fine, panics are not.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_text(Path::new("fuzz.toml"), text);
    }
}
