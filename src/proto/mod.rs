//! The answer engine: query bytes in, reply bytes out, no I/O.
//!
//! [`handle`] parses the query with `domain` (zero-copy, borrowing the
//! packet), looks the name up in the [`Snapshot`], and copies the
//! pre-rendered answer behind the client's own header and question. It
//! allocates nothing once `out` has its capacity. The rules it applies:
//!
//! - Header (RFC 1035 §4.1.1): ID echoed, QR set, OPCODE, RD and CD copied,
//!   AA on authoritative data, RA, Z and AD clear. A query with QR set, or
//!   shorter than a header, is dropped.
//! - QCLASS * is answered from the IN data without AA.
//! - QDCOUNT ≠ 1, an unparseable message, more than one OPT or a malformed
//!   OPT: FORMERR (RFC 1035 §4.1.1, RFC 6891 §6.1.1). OPCODE ≠ QUERY:
//!   NOTIMP. Class ≠ IN, a name in no zone, AXFR and IXFR: REFUSED (with
//!   EDNS, a name in no zone carries Extended DNS Error 20 "Not
//!   Authoritative", RFC 8914, as with NSD and Knot, and a transfer EDE 18
//!   "Prohibited", as with NSD).
//! - EDNS(0) (RFC 6891): an OPT in the reply iff the query had one, with
//!   our payload size; version ≠ 0 is BADVERS; options are not echoed,
//!   but client subnet, cookies and NSID get their answers (below); the
//!   DO bit is copied (RFC 3225 §3).
//! - Client subnet (RFC 7871), when enabled: sticky and topology pools use
//!   it as the client's network; the reply echoes it with the scope that
//!   decided the answer (0 when none did). A malformed one is FORMERR.
//! - NSID (RFC 5001): a query with the option gets our identifier, when
//!   one is configured, on every reply with an OPT.
//! - DNS Cookies (RFC 7873, RFC 9018): a client cookie gets a server
//!   cookie back; a valid server cookie marks the client as genuine (rate
//!   limiting exempts it); a malformed option is FORMERR.
//! - DNAME (RFC 6672): below the owner, the DNAME, a CNAME synthesised for
//!   the qname and, when the new name is served here, its answer, or the
//!   next DNAME and its CNAME (`dname.rs`); YXDOMAIN when a new name
//!   would exceed 255 bytes; TC when what follows does not fit.
//! - Pool names: A/AAAA picked per query by the pool's policy from its
//!   live members ([`lb::select`]); none to give is NODATA.
//! - Size (RFC 1035 §4.2.1, RFC 6891 §6.2.5, RFC 2181 §9): over UDP, at most
//!   512 bytes without EDNS, else the client's size clamped to
//!   512..=[`OUR_PAYLOAD_SIZE`]. Optional additional RRsets are dropped
//!   from the end until it fits; if what must be sent does not fit, TC is
//!   set and the reply keeps the whole answer RRsets that fit (a chain's
//!   CNAMEs and DNAMEs), as NSD and Knot do.
//!   Over TCP the whole answer is sent.

use std::net::SocketAddr;

use domain::base::name::{Label, ParsedName};
use domain::base::question::Question;
use domain::base::record::RecordHeader;
use domain::dep::octseq::Parser;

use std::net::IpAddr;

use crate::lb::{self, ClientNet, Picker, Selection};
use crate::name::MAX_NAME_LEN;
use crate::snapshot::{Answer, NONE, Snapshot};

/// The UDP payload size we advertise (the DNS flag day 2020 value).
pub const OUR_PAYLOAD_SIZE: u16 = 1232;
/// Classic DNS over UDP (RFC 1035 §4.2.1).
const MIN_PAYLOAD_SIZE: u16 = 512;
/// The largest message (two-octet length over TCP, RFC 1035 §4.2.2).
pub const MAX_MESSAGE: usize = 65535;

const QUERY: u8 = 0;
const OPT: u16 = 41;
const IN: u16 = 1;
/// The CHAOS class (RFC 1035 §3.2.4), for the server's identity.
const CH: u16 = 3;
const TXT: u16 = 16;
const ANY_CLASS: u16 = 255;
/// The Extended DNS Error option (RFC 8914 §2) and its "Not
/// Authoritative" code (§4.21), sent with REFUSED for names in no zone.
const EDE_OPTION: u16 = 15;
/// The EDNS Client Subnet option (RFC 7871 §6).
const ECS_OPTION: u16 = 8;
/// The DNS Cookie option (RFC 7873 §4).
const COOKIE_OPTION: u16 = 10;
/// The Name Server Identifier option (RFC 5001 §2.3).
const NSID_OPTION: u16 = 3;
const EDE_NOT_AUTHORITATIVE: u16 = 20;
/// "Prohibited" (RFC 8914 §4.19), sent with REFUSED for zone transfers,
/// as NSD does.
const EDE_PROHIBITED: u16 = 18;
const IXFR: u16 = 251;
const AXFR: u16 = 252;
/// The size of the OPT record we add.
const OPT_LEN: usize = 11;

mod dname;

/// Response codes (RFC 1035 §4.1.1, RFC 6891 §9).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const BADVERS: u16 = 16;
    pub const BADCOOKIE: u16 = 23;
}

/// How the query arrived: it decides the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Who asked, and how.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Reads the time, in seconds since 1970, for DNS Cookies: called
    /// only for a query that carries a cookie, so other queries pay no
    /// clock read.
    pub now: fn() -> u32,
}

/// What to do with a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send `out`. `rcode` is the extended RCODE (BADVERS is 16);
    /// `class` groups responses for rate limiting (0 unless RRL is on);
    /// `cookie` says the client showed a valid server cookie; `qtype` is
    /// the question's type, when the question could be read.
    Reply {
        rcode: u16,
        truncated: bool,
        class: u64,
        cookie: bool,
        qtype: Option<u16>,
    },
    /// Send nothing: not a query, or too short to answer.
    Drop,
}

impl Outcome {
    /// The question's type, when the query had a readable question.
    pub fn qtype(&self) -> Option<u16> {
        match *self {
            Outcome::Reply { qtype, .. } => qtype,
            Outcome::Drop => None,
        }
    }
}

/// The EDNS parameters of a query.
#[derive(Clone, Copy, Debug, Default)]
struct Edns<'s> {
    payload_size: u16,
    version: u8,
    dnssec_ok: bool,
    /// The client subnet, when the query carried one and ECS is on.
    ecs: Option<Ecs>,
    /// The DNS Cookie option (RFC 7873), when the query carried one.
    cookie: Option<Cookie>,
    /// Our name server identifier, when the query asked for it and one is
    /// configured (RFC 5001).
    nsid: Option<&'s [u8]>,
}

/// A DNS Cookie from a query: the client cookie and where the server
/// cookie, if sent, lies in the query (RFC 7873 §4). Integers rather than
/// byte arrays, and the server cookie left in the query, keep [`Edns`]
/// small and aligned, cheap to build and to hand on: byte arrays at odd
/// offsets made the compiler copy it through stack slots it had written at
/// other widths, which stalls the pipeline on every query.
#[derive(Clone, Copy, Debug)]
struct Cookie {
    /// The client cookie's 8 bytes, in native order.
    client: u64,
    /// The server cookie to send back, in native order (set once checked).
    fresh: u128,
    /// Where the server cookie starts in the query.
    server_at: u16,
    server_len: u8,
    /// Set once checked: the server cookie is ours and fresh.
    valid: bool,
}

impl Cookie {
    /// Parses the option's data, found at `at` in the query; `None` if its
    /// length is wrong (RFC 7873 §5.2.2: FORMERR).
    fn parse(data: &[u8], at: usize) -> Option<Cookie> {
        if data.len() != 8 && !(16..=40).contains(&data.len()) {
            return None;
        }
        let client: [u8; 8] = data[..8].try_into().ok()?;
        Some(Cookie {
            client: u64::from_ne_bytes(client),
            fresh: 0,
            server_at: u16::try_from(at + 8).ok()?,
            server_len: (data.len() - 8) as u8,
            valid: false,
        })
    }

    /// The server cookie as sent.
    fn server<'q>(&self, query: &'q [u8]) -> &'q [u8] {
        let at = usize::from(self.server_at);
        &query[at..at + usize::from(self.server_len)]
    }
}

/// The server cookie for `client_cookie` from `ip` at `time` (RFC 9018
/// §4: version 1, three reserved bytes, a timestamp, and SipHash-2-4 of
/// all that and the client's address under the secret).
fn server_cookie(secret: &[u8; 16], client_cookie: &[u8; 8], ip: IpAddr, time: u32) -> [u8; 16] {
    use std::hash::Hasher;
    let mut out = [0u8; 16];
    out[0] = 1;
    out[4..8].copy_from_slice(&time.to_be_bytes());
    let mut hasher = siphasher::sip::SipHasher24::new_with_key(secret);
    hasher.write(client_cookie);
    hasher.write(&out[..8]);
    match ip {
        IpAddr::V4(a) => hasher.write(&a.octets()),
        IpAddr::V6(a) => hasher.write(&a.octets()),
    }
    out[8..].copy_from_slice(&hasher.finish().to_le_bytes());
    out
}

/// Whether `server`, a server cookie sent with `client_cookie`, is one we
/// made for this client, made at most an hour ago and at most five minutes
/// ahead (RFC 9018 §4.3).
fn cookie_valid(secret: &[u8; 16], client_cookie: &[u8; 8], server: &[u8], ip: IpAddr, now: u32) -> bool {
    if server.len() != 16 || server[0] != 1 {
        return false;
    }
    let time = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    let age = now.wrapping_sub(time) as i32;
    if !(-300..=3600).contains(&age) {
        return false;
    }
    server_cookie(secret, client_cookie, ip, time)[..] == server[..]
}

/// An EDNS Client Subnet option from a query (RFC 7871 §6). The address
/// is held as an integer so that the struct stays aligned and cheap to copy.
#[derive(Clone, Copy, Debug)]
struct Ecs {
    /// The address's bytes as sent, big-endian (an IPv4 address in the
    /// top four), zero past the prefix: a query with other bits set there
    /// is refused.
    bits: u128,
    family: u16,
    source: u8,
}

impl Ecs {
    fn bytes_len(&self) -> usize {
        usize::from(self.source).div_ceil(8)
    }

    /// The address, zero past the prefix.
    fn addr(&self) -> IpAddr {
        let bytes = self.bits.to_be_bytes();
        if self.family == 1 {
            IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            IpAddr::from(bytes)
        }
    }

    /// Parses the option's data; `None` if malformed (RFC 7871 §7.1.1:
    /// FORMERR).
    fn parse(data: &[u8]) -> Option<Ecs> {
        let (head, addr) = (data.get(..4)?, &data[4..]);
        let family = u16::from_be_bytes([head[0], head[1]]);
        let (source, scope) = (head[2], head[3]);
        let width = match family {
            1 => 32,
            2 => 128,
            _ => return None,
        };
        if source > width || scope != 0 || addr.len() != usize::from(source).div_ceil(8) {
            return None;
        }
        // Bits beyond the source prefix must be zero.
        if source % 8 != 0 {
            let last = addr[addr.len() - 1];
            if last & (0xFF >> (source % 8)) != 0 {
                return None;
            }
        }
        let mut bytes = [0u8; 16];
        bytes[..addr.len()].copy_from_slice(addr);
        Some(Ecs {
            bits: u128::from_be_bytes(bytes),
            family,
            source,
        })
    }
}

/// The parsed parts of a query the reply needs.
#[derive(Default)]
struct Query<'s> {
    qtype: u16,
    qclass: u16,
    edns: Option<Edns<'s>>,
    /// The qname's wire length; its bytes follow the header.
    name_len: usize,
}

impl Query<'_> {
    /// The qname as sent (uncompressed wire format).
    fn name<'q>(&self, query: &'q [u8]) -> &'q [u8] {
        &query[12..12 + self.name_len]
    }
}

/// Whether `name` holds an ASCII capital letter, eight bytes at a time:
/// the scan runs on every query, and byte by byte it cost as much as the
/// hash of the name.
fn has_capital(name: &[u8]) -> bool {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // With each byte's top bit cleared, adding 0x3F sets it from 'A' up
    // and adding 0x25 from past 'Z' up, with no carry between bytes; bytes
    // that had the top bit set are no letters.
    let capitals = |w: u64| {
        let low = w & LOW7;
        (low + 0x3F3F_3F3F_3F3F_3F3F) & !(low + 0x2525_2525_2525_2525) & !w & HIGH
    };
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    if name.len() < 8 {
        return name.iter().any(u8::is_ascii_uppercase);
    }
    // Whole words, then the last eight bytes (which may overlap the last
    // word: looking at a byte twice does no harm).
    name.chunks_exact(8).any(|chunk| capitals(word(chunk)) != 0) || capitals(word(&name[name.len() - 8..])) != 0
}

/// `name` lower-cased (a wire name: its length bytes are below 64, never
/// 'A'..='Z', so lower-casing every byte changes letters only).
fn lowercase(name: &[u8]) -> [u8; MAX_NAME_LEN] {
    let mut key = [0; MAX_NAME_LEN];
    let key_part = &mut key[..name.len()];
    key_part.copy_from_slice(name);
    key_part.make_ascii_lowercase();
    key
}

/// Why a query could not be parsed past its header.
enum Malformed {
    /// Nothing usable: reply with the header only.
    Header,
    /// The question is usable and was echoed.
    AfterQuestion,
}

/// Turns the reply in `out` into a "slip" for rate limiting: header and
/// question only, TC set, so that a real client retries over TCP.
pub fn slip(out: &mut Vec<u8>) {
    let mut at = 12;
    while let Some(&len) = out.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    let question_end = (at + 4).min(out.len());
    let has_question = out.len() >= 12 && question_end > 12;
    out.truncate(question_end.max(12.min(out.len())));
    if out.len() >= 12 {
        out[2] |= 0x02;
        out[4..12].copy_from_slice(&[0, u8::from(has_question), 0, 0, 0, 0, 0, 0]);
    }
}

/// Answers one query. `out` receives the reply; give it a capacity of
/// [`MAX_MESSAGE`] to avoid allocation.
pub fn handle(query: &[u8], client: &Client, snap: &Snapshot, picker: &mut Picker, out: &mut Vec<u8>) -> Outcome {
    let mut info = Info::default();
    match answer_query(query, client, snap, picker, out, &mut info) {
        Outcome::Reply { rcode, truncated, .. } => Outcome::Reply {
            rcode,
            truncated,
            class: if snap.settings.rrl { info.class(rcode) } else { 0 },
            cookie: info.cookie_ok,
            qtype: info.qtype,
        },
        Outcome::Drop => Outcome::Drop,
    }
}

/// What rate limiting and cookies need to know of a query.
#[derive(Default)]
struct Info {
    /// The qname and qtype, hashed (RRL on only).
    question: u64,
    /// The answer template: one per zone for NXDOMAIN.
    answer: u64,
    cookie_ok: bool,
    /// The question's type, once it is read (for the metrics).
    qtype: Option<u16>,
}

impl Info {
    /// The response class for rate limiting: the answer, NXDOMAIN per
    /// zone, or the error.
    fn class(&self, rcode: u16) -> u64 {
        match rcode {
            rcode::NOERROR => self.question | 1 << 62,
            rcode::NXDOMAIN => self.answer | 2 << 62,
            other => u64::from(other) | 3 << 62,
        }
    }
}

/// Answers one query; see [`handle`].
fn answer_query(
    query: &[u8],
    client: &Client,
    snap: &Snapshot,
    picker: &mut Picker,
    out: &mut Vec<u8>,
    info: &mut Info,
) -> Outcome {
    out.clear();
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Outcome::Drop;
    }
    // Header: ID; QR, OPCODE, RD; CD. Counts are written at the end.
    // One 12-byte append rather than four: each append checks capacity.
    out.extend_from_slice(&[
        query[0],
        query[1],
        0x80 | (query[2] & 0x79),
        query[3] & 0x10,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    let opcode = (query[2] >> 3) & 0x0F;
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    let mut q = Query::default();
    // QTYPE and QCLASS come back as values, not through `q`: two 2-byte
    // stores read back as one 4-byte load stall the pipeline.
    match parse(query, out, snap.settings.ecs, snap.settings.nsid.as_deref(), &mut q) {
        Ok((qtype, qclass)) => {
            (q.qtype, q.qclass) = (qtype, qclass);
            info.qtype = Some(qtype);
        }
        Err(Malformed::Header) => return error(out, rcode::FORMERR, false, None),
        Err(Malformed::AfterQuestion) => {
            // One question was read and echoed into `out`, which ends
            // with its QTYPE and QCLASS.
            if qdcount == 1 {
                let at = out.len() - 4;
                info.qtype = Some(u16::from_be_bytes([out[at], out[at + 1]]));
            }
            return error(out, rcode::FORMERR, qdcount == 1, None);
        }
    }
    // The lookup key is the qname lower-cased: the query's own bytes when
    // they hold no capital letter, as most do, else a copy.
    let name = q.name(query);
    let lowered;
    let key = if has_capital(name) {
        lowered = lowercase(name);
        &lowered[..name.len()]
    } else {
        name
    };
    if let Some(cookie) = q.edns.as_mut().and_then(|e| e.cookie.as_mut()) {
        let ip = client.addr.ip();
        let now = (client.now)();
        let secret = &snap.settings.cookie_secret;
        let client_cookie = cookie.client.to_ne_bytes();
        cookie.valid = cookie_valid(secret, &client_cookie, cookie.server(query), ip, now);
        cookie.fresh = u128::from_ne_bytes(server_cookie(secret, &client_cookie, ip, now));
        info.cookie_ok = cookie.valid;
    }
    if snap.settings.rrl {
        let mut h = u64::from(q.qtype);
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        info.question = lb::mix64(h);
    }
    if qdcount != 1 {
        // An opcode we do not implement is NOTIMP whatever the question
        // count, as from NSD and Knot. RFC 7873 §5.4: a QUERY with no
        // question and a cookie asks for a server cookie: NOERROR with
        // one, or BADCOOKIE if the server cookie it sent is not ours or is
        // stale. Any other question count is FORMERR (RFC 9619). Each with
        // an OPT when the query had one (RFC 6891 §6.1.1).
        if opcode != QUERY {
            return error(out, rcode::NOTIMP, false, q.edns.as_ref());
        }
        if let Some(edns) = &q.edns
            && let Some(cookie) = edns.cookie
            && qdcount == 0
            && edns.version == 0
        {
            let rcode = if cookie.server_len > 0 && !cookie.valid {
                rcode::BADCOOKIE
            } else {
                rcode::NOERROR
            };
            return error(out, rcode, false, q.edns.as_ref());
        }
        return error(out, rcode::FORMERR, false, q.edns.as_ref());
    }
    if opcode != QUERY {
        return error(out, rcode::NOTIMP, true, q.edns.as_ref());
    }
    if let Some(edns) = &q.edns
        && edns.version != 0
    {
        return error(out, rcode::BADVERS, true, q.edns.as_ref());
    }
    // QCLASS * (RFC 1035 §3.2.5) matches our IN data; anything else is
    // not served here.
    if q.qclass != IN && q.qclass != ANY_CLASS {
        if q.qclass == CH {
            return chaos(out, snap, &q, key);
        }
        return error(out, rcode::REFUSED, true, q.edns.as_ref());
    }
    // No zone transfers: lbdns is not a primary for secondaries.
    if q.qtype == AXFR || q.qtype == IXFR {
        return error_with(out, rcode::REFUSED, true, q.edns.as_ref(), Some(EDE_PROHIBITED));
    }
    let Some(answer) = snap.resolve(key, q.qtype) else {
        return error_with(out, rcode::REFUSED, true, q.edns.as_ref(), Some(EDE_NOT_AUTHORITATIVE));
    };
    info.answer = u64::from(answer.body_at);
    let limit = match client.transport {
        Transport::Tcp => MAX_MESSAGE,
        Transport::Udp => match &q.edns {
            Some(e) => usize::from(e.payload_size.clamp(MIN_PAYLOAD_SIZE, OUR_PAYLOAD_SIZE)),
            None => usize::from(MIN_PAYLOAD_SIZE),
        },
    };
    if answer.pool != NONE {
        if answer.is_dname() {
            return dname::write_answer(out, snap, answer, &q, query, key, limit, picker, client);
        }
        return write_pool_answer(out, snap, answer, &q, limit, picker, client);
    }
    write_answer(out, snap, answer, &q, limit, picker, 0)
}

/// Parses the question (echoing it into `out`) and the rest of the
/// message, looking for the OPT record.
/// `nsid` is our identifier, sent if the query asks for it.
///
/// It fills `q` (empty on entry) where the caller keeps it: returning the
/// query by value cost a copy of it on every query, through stack slots
/// the compiler wrote and read at different widths.
fn parse<'s>(
    query: &[u8],
    out: &mut Vec<u8>,
    ecs: bool,
    nsid: Option<&'s [u8]>,
    q: &mut Query<'s>,
) -> Result<(u16, u16), Malformed> {
    let field = |at: usize| u16::from_be_bytes([query[at], query[at + 1]]);
    let mut parser = Parser::from_ref(query);
    let type_class = match field(4) {
        1 => {
            let type_class = parse_question(query, out, q)?;
            parser.advance(12 + q.name_len + 4).map_err(|_| Malformed::Header)?;
            type_class
        }
        // No question or several: none is echoed (the reply is FORMERR, or
        // a cookie alone); the rest is read for its OPT.
        count => {
            parser.advance(12).map_err(|_| Malformed::Header)?;
            for _ in 0..count {
                Question::<ParsedName<&[u8]>>::parse(&mut parser).map_err(|_| Malformed::Header)?;
            }
            (0, 0)
        }
    };
    parse_records(query, &mut parser, q, ecs, nsid)?;
    Ok(type_class)
}

/// Reads the one question (the query is at least a header long), and
/// echoes it into `out`; returns QTYPE and QCLASS, and sets the name's
/// length in `q`.
///
/// The name is read with `domain`'s label splitter, which checks each
/// label's type and length as `ParsedName` does, over the query's bytes:
/// going through `ParsedName` and its `Parser` cost three times the
/// instructions for a common name (callgrind), a fifth of a query's work.
/// A question name cannot be compressed (nothing but the header precedes
/// it), so a pointer is malformed, as is a name over 255 bytes.
fn parse_question(query: &[u8], out: &mut Vec<u8>, q: &mut Query<'_>) -> Result<(u16, u16), Malformed> {
    let mut rest = &query[12..];
    let mut name_len = 0;
    loop {
        let (label, tail) = Label::split_from(rest).map_err(|_| Malformed::Header)?;
        name_len += 1 + label.len();
        if name_len > MAX_NAME_LEN {
            return Err(Malformed::Header);
        }
        rest = tail;
        if label.is_root() {
            break;
        }
    }
    let [t0, t1, c0, c1, ..] = *rest else {
        return Err(Malformed::Header);
    };
    // Echo the question with the client's letter case, in one copy.
    out.extend_from_slice(&query[12..12 + name_len + 4]);
    q.name_len = name_len;
    Ok((u16::from_be_bytes([t0, t1]), u16::from_be_bytes([c0, c1])))
}

/// Reads the answer, authority and additional sections: the OPT record,
/// and the options lbdns answers.
fn parse_records<'s>(
    query: &[u8],
    parser: &mut Parser<'_, [u8]>,
    q: &mut Query<'s>,
    ecs: bool,
    nsid: Option<&'s [u8]>,
) -> Result<(), Malformed> {
    let field = |at: usize| u16::from_be_bytes([query[at], query[at + 1]]);
    let count = |at: usize| usize::from(field(at));
    for _ in 0..count(6) + count(8) {
        RecordHeader::<ParsedName<&[u8]>>::parse_ref(parser)
            .ok()
            .and_then(|h| parser.advance(usize::from(h.rdlen())).ok())
            .ok_or(Malformed::AfterQuestion)?;
    }
    for _ in 0..count(10) {
        let header = RecordHeader::<ParsedName<&[u8]>>::parse_ref(parser).map_err(|_| Malformed::AfterQuestion)?;
        let rdlen = usize::from(header.rdlen());
        let rdata = parser.peek(rdlen).map_err(|_| Malformed::AfterQuestion)?;
        if header.rtype().to_int() == OPT {
            // RFC 6891 §6.1.1: one OPT, owned by the root, well-formed.
            if q.edns.is_some() || !header.owner().is_root() || !options_well_formed(rdata) {
                return Err(Malformed::AfterQuestion);
            }
            let ttl = header.ttl().as_secs();
            let mut edns = Edns {
                payload_size: header.class().to_int(),
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl & 0x8000 != 0,
                ..Edns::default()
            };
            // The options we answer, in one pass (the first of each code
            // counts); most queries carry none.
            let mut options = rdata;
            while let [a, b, c, d, rest @ ..] = options {
                let len = usize::from(u16::from_be_bytes([*c, *d]));
                let Some(data) = rest.get(..len) else { break };
                match u16::from_be_bytes([*a, *b]) {
                    ECS_OPTION if ecs && edns.ecs.is_none() => {
                        edns.ecs = Some(Ecs::parse(data).ok_or(Malformed::AfterQuestion)?);
                    }
                    COOKIE_OPTION if edns.cookie.is_none() => {
                        let at = data.as_ptr() as usize - query.as_ptr() as usize;
                        edns.cookie = Some(Cookie::parse(data, at).ok_or(Malformed::AfterQuestion)?);
                    }
                    NSID_OPTION => edns.nsid = nsid,
                    _ => {}
                }
                options = &rest[len..];
            }
            q.edns = Some(edns);
        }
        parser.advance(rdlen).map_err(|_| Malformed::AfterQuestion)?;
    }
    Ok(())
}

/// Whether OPT RDATA is a sequence of complete {code, length, data}
/// options (RFC 6891 §6.1.2).
fn options_well_formed(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        if rdata.len() < 4 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([rdata[2], rdata[3]]));
        match rdata.get(4 + len..) {
            Some(rest) => rdata = rest,
            None => return false,
        }
    }
    true
}

/// The size of the OPT record we add for `edns`.
fn opt_len(edns: Option<&Edns>) -> usize {
    match edns {
        None => 0,
        Some(e) => {
            OPT_LEN
                + e.ecs.map_or(0, |ecs| 8 + ecs.bytes_len())
                + e.cookie.map_or(0, |_| 4 + 8 + 16)
                + e.nsid.map_or(0, |id| 4 + id.len())
        }
    }
}

/// Finishes an error reply: header, the question if it was echoed, OPT.
fn error(out: &mut Vec<u8>, rcode: u16, with_question: bool, edns: Option<&Edns>) -> Outcome {
    error_with(out, rcode, with_question, edns, None)
}

/// As [`error`], with an Extended DNS Error code.
fn error_with(out: &mut Vec<u8>, rcode: u16, with_question: bool, edns: Option<&Edns>, ede: Option<u16>) -> Outcome {
    if !with_question {
        out.truncate(12);
    }
    set_counts(out, [u16::from(with_question), 0, 0, 0]);
    finish_with(out, rcode, false, false, edns, 0, ede);
    Outcome::Reply {
        rcode,
        truncated: false,
        class: 0,
        cookie: false,
        qtype: None,
    }
}

/// Class CH: the server's identity and version as TXT, when configured
/// (RFC 4892), without AA, as NSD and Knot answer them; REFUSED for
/// anything else, other types at those names included (as both do).
fn chaos(out: &mut Vec<u8>, snap: &Snapshot, q: &Query, key: &[u8]) -> Outcome {
    let text = match key {
        b"\x02id\x06server\x00" | b"\x08hostname\x04bind\x00" => snap.settings.identity.as_deref(),
        b"\x07version\x06server\x00" | b"\x07version\x04bind\x00" => snap.settings.version.as_deref(),
        _ => None,
    };
    let Some(text) = text.filter(|_| q.qtype == TXT) else {
        return error(out, rcode::REFUSED, true, q.edns.as_ref());
    };
    out.extend_from_slice(&[0xC0, 12]);
    out.extend_from_slice(&TXT.to_be_bytes());
    out.extend_from_slice(&CH.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(1 + text.len() as u16).to_be_bytes());
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
    reply(out, [1, 0, 0], rcode::NOERROR, false, false, q.edns.as_ref(), 0)
}

/// Copies a pre-rendered answer behind the header and question, fitting it
/// into `limit` bytes.
#[allow(clippy::too_many_arguments)]
fn write_answer(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    answer: &Answer,
    q: &Query,
    limit: usize,
    picker: &mut Picker,
    scope: u8,
) -> Outcome {
    let head = out.len();
    let (take, counts, truncated) = fit(snap, answer, limit.saturating_sub(head + opt_len(q.edns.as_ref())));
    copy_body(out, snap, answer, q.name_len, take);
    shuffle_answer(out, head, answer, take, picker);
    // Data given for QCLASS * is not claimed complete (NSD does the same).
    let authoritative = answer.authoritative && q.qclass == IN;
    reply(
        out,
        counts,
        u16::from(answer.rcode),
        authoritative,
        truncated,
        q.edns.as_ref(),
        scope,
    )
}

/// Finishes a reply whose records are written: the section counts (the
/// question aside), the flags and RCODE, the OPT record.
#[inline(always)]
fn reply(
    out: &mut Vec<u8>,
    [an, ns, ar]: [u16; 3],
    rcode: u16,
    authoritative: bool,
    truncated: bool,
    edns: Option<&Edns>,
    scope: u8,
) -> Outcome {
    set_counts(out, [1, an, ns, ar]);
    finish(out, rcode, authoritative, truncated, edns, scope);
    Outcome::Reply {
        rcode,
        truncated,
        class: 0,
        cookie: false,
        qtype: None,
    }
}

/// How much of an answer's body fits in `room` bytes: the length to copy,
/// the section counts, and whether the reply must be truncated.
// Inlined: the call's register saves and restores cost more than the
// work on the common path (callgrind).
#[inline(always)]
fn fit(snap: &Snapshot, answer: &Answer, room: usize) -> (usize, [u16; 3], bool) {
    let [an, ns, ar] = answer.counts;
    if usize::from(answer.body_len) <= room {
        return (usize::from(answer.body_len), [an, ns, ar], false);
    }
    // Drop optional additional RRsets from the end until it fits; if even
    // the required part does not, set TC and send the whole answer RRsets
    // that fit, in order: the CNAMEs of a chain whose end is too big, as
    // NSD and Knot do; none when the first is too big (RFC 2181 §9, RFC
    // 9471).
    match snap
        .cuts(answer)
        .iter()
        .rev()
        .find(|&&(len, _)| usize::from(len) <= room)
    {
        Some(&(len, additional)) => (usize::from(len), [an, ns, additional], false),
        None => {
            let (take, rrsets) = whole_rrsets(snap.body(answer), an, room);
            (take, [rrsets, 0, 0], true)
        }
    }
}

/// The leading answer records of `body` (`an` of them) that make whole
/// RRsets within `room` bytes: their length and count.
fn whole_rrsets(body: &[u8], an: u16, room: usize) -> (usize, u16) {
    let mut best = (0, 0);
    let mut at = 0;
    // The owner bytes (as written, a pointer or labels) and type of the
    // RRset being walked.
    let mut current: Option<(&[u8], &[u8])> = None;
    for count in 0..an {
        let Some(owner_end) = name_end(body, at) else { break };
        let Some(fixed) = body.get(owner_end..owner_end + 10) else {
            break;
        };
        let key = (&body[at..owner_end], &fixed[..2]);
        if current.is_some_and(|c| c != key) {
            if at > room {
                return best;
            }
            best = (at, count);
        }
        current = Some(key);
        at = owner_end + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    }
    if at <= room && at <= body.len() {
        best = (at, an);
    }
    best
}

/// Where the name that starts at `at` in `bytes` ends (after its root
/// label or its compression pointer).
fn name_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *bytes.get(at)? {
            0 => return Some(at + 1),
            len @ 1..=63 => at += 1 + usize::from(len),
            0xC0.. => return Some(at + 2),
            _ => return None,
        }
    }
}

/// Shuffles the answer's A/AAAA RRset, copied to `head` (the first `take`
/// bytes of its body), into a random order.
// Inlined, as `fit` is.
#[inline(always)]
fn shuffle_answer(out: &mut [u8], head: usize, answer: &Answer, take: usize, picker: &mut Picker) {
    let count = usize::from(answer.shuffle_count);
    if count > 1 {
        let (at, size) = (usize::from(answer.shuffle_at), usize::from(answer.shuffle_size));
        if at + count * size <= take {
            shuffle(
                &mut out[head + at..head + at + count * size],
                count,
                size,
                &mut picker.rng,
            );
        }
    }
}

/// How many bytes a qname of `name_len` is longer than the template
/// assumed: every moving compression pointer moves by that much (see
/// render.rs).
fn qname_delta(name_len: usize, answer: &Answer) -> u16 {
    (name_len as u16).wrapping_sub(u16::from(answer.base_qlen))
}

/// Appends the first `take` bytes of an answer's body, moving its
/// compression pointers for a qname of `name_len` bytes.
// Inlined, as `fit` is.
#[inline(always)]
fn copy_body(out: &mut Vec<u8>, snap: &Snapshot, answer: &Answer, name_len: usize, take: usize) {
    let head = out.len();
    out.extend_from_slice(&snap.body(answer)[..take]);
    let delta = qname_delta(name_len, answer);
    if delta != 0 {
        let written = &mut out[head..];
        for &at in snap.fixups(answer) {
            let at = usize::from(at);
            if at + 2 <= take {
                let pointer = u16::from_be_bytes([written[at], written[at + 1]]).wrapping_add(delta);
                written[at..at + 2].copy_from_slice(&pointer.to_be_bytes());
            }
        }
    }
}

/// Answers from a pool: the template's static part (a CNAME chain, or
/// nothing), then the members the policy picks for this client.
fn write_pool_answer(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    answer: &Answer,
    q: &Query,
    limit: usize,
    picker: &mut Picker,
    client: &Client,
) -> Outcome {
    let mut sel = Selection::default();
    select_members(snap, answer, q, picker, client, &mut sel);
    if sel.count == 0 {
        return write_answer(out, snap, snap.answer(answer.empty), q, limit, picker, sel.scope);
    }
    snap.pools()
        .count_selected(picker.row, sel.pool, &sel.members[..sel.count]);
    let head = out.len();
    let body_len = usize::from(answer.body_len);
    let fits = head + body_len + members_len(snap, &sel) + opt_len(q.edns.as_ref()) <= limit;
    let (an, truncated) = if fits {
        copy_body(out, snap, answer, q.name_len, body_len);
        append_members(out, snap, &sel, pool_owner(answer, q.name_len));
        (answer.counts[0] + sel.count as u16, false)
    } else {
        (0, true)
    };
    reply(
        out,
        [an, 0, 0],
        0,
        q.qclass == IN,
        truncated,
        q.edns.as_ref(),
        sel.scope,
    )
}

/// The members a pool answer's policy picks for this client (its client
/// subnet, if it sent one). The caller counts them once handed out.
#[inline(always)]
fn select_members(
    snap: &Snapshot,
    answer: &Answer,
    q: &Query,
    picker: &mut Picker,
    client: &Client,
    sel: &mut Selection,
) {
    let net = match q.edns.as_ref().and_then(|e| e.ecs) {
        Some(ecs) => ClientNet {
            addr: ecs.addr(),
            ecs_prefix: Some(ecs.source),
        },
        None => ClientNet {
            addr: client.addr.ip(),
            ecs_prefix: None,
        },
    };
    lb::select(
        snap.pools(),
        snap.live(),
        answer.pool as usize,
        answer.pool_v6(),
        &net,
        picker,
        sel,
    );
}

/// The bytes the chosen members take as records.
fn members_len(snap: &Snapshot, sel: &Selection) -> usize {
    let pool = &snap.pools().pools[sel.pool as usize];
    sel.count * (2 + pool.members[usize::from(sel.members[0])].rendered.len())
}

/// Where a pool answer's member records point for their owner, for a
/// qname of `name_len` bytes.
fn pool_owner(answer: &Answer, name_len: usize) -> u16 {
    if answer.pool_owner_moves() {
        answer.pool_owner.wrapping_add(qname_delta(name_len, answer))
    } else {
        answer.pool_owner
    }
}

/// Appends one record per chosen member, its owner a pointer to `owner`.
fn append_members(out: &mut Vec<u8>, snap: &Snapshot, sel: &Selection, owner: u16) {
    let pool = &snap.pools().pools[sel.pool as usize];
    let pointer = (0xC000 | owner).to_be_bytes();
    let ttl = sel.ttl.to_be_bytes();
    for &m in &sel.members[..sel.count] {
        let rendered = &pool.members[usize::from(m)].rendered;
        out.extend_from_slice(&pointer);
        let at = out.len();
        out.extend_from_slice(rendered);
        out[at + 4..at + 8].copy_from_slice(&ttl);
    }
}

/// Puts `count` records of `size` bytes into a random order
/// (Fisher–Yates), drawing the swaps in batches ([`lb::Draws`]).
fn shuffle(records: &mut [u8], count: usize, size: usize, rng: &mut lb::Rng) {
    // A and AAAA records behind a compression pointer have fixed sizes,
    // which swap as vector copies.
    match size {
        16 => shuffle_with(records, count, rng, swap_sized::<16>),
        28 => shuffle_with(records, count, rng, swap_sized::<28>),
        _ => shuffle_with(records, count, rng, |records, i, j| {
            let (low, high) = records.split_at_mut(i * size);
            low[j * size..(j + 1) * size].swap_with_slice(&mut high[..size]);
        }),
    }
}

/// Fisher–Yates over `count` records, `swap(records, i, j)` (`j` < `i`)
/// exchanging two of them.
#[inline(always)]
fn shuffle_with(records: &mut [u8], count: usize, rng: &mut lb::Rng, swap: impl Fn(&mut [u8], usize, usize)) {
    let mut draws = lb::Draws::new(rng);
    for i in (1..count).rev() {
        let j = draws.below(i + 1, rng);
        if j != i {
            swap(records, i, j);
        }
    }
}

/// Swaps records `i` and `j` (`j` < `i`) of `N` bytes each.
#[inline(always)]
fn swap_sized<const N: usize>(records: &mut [u8], i: usize, j: usize) {
    let (low, high) = records.split_at_mut(i * N);
    let (a, b) = (&mut low[j * N..][..N], &mut high[..N]);
    let saved: [u8; N] = (*a).try_into().expect("N bytes");
    a.copy_from_slice(b);
    b.copy_from_slice(&saved);
}

fn set_counts(out: &mut [u8], [qd, an, ns, ar]: [u16; 4]) {
    // One 8-byte store, in wire order.
    let counts = u64::from(qd) << 48 | u64::from(an) << 32 | u64::from(ns) << 16 | u64::from(ar);
    out[4..12].copy_from_slice(&counts.to_be_bytes());
}

/// Sets AA, TC and the RCODE, and appends the OPT record if the query had
/// one (the upper bits of an extended RCODE go there, RFC 6891 §6.1.3),
/// echoing its client subnet with our scope (RFC 7871 §7.2.1).
#[inline(always)]
fn finish(out: &mut Vec<u8>, rcode: u16, authoritative: bool, truncated: bool, edns: Option<&Edns>, scope: u8) {
    finish_with(out, rcode, authoritative, truncated, edns, scope, None);
}

/// As [`finish`], with an Extended DNS Error option (RFC 8914) in the OPT.
#[inline(always)]
fn finish_with(
    out: &mut Vec<u8>,
    rcode: u16,
    authoritative: bool,
    truncated: bool,
    edns: Option<&Edns>,
    scope: u8,
    ede: Option<u16>,
) {
    if authoritative {
        out[2] |= 0x04;
    }
    if truncated {
        out[2] |= 0x02;
    }
    out[3] |= (rcode & 0x0F) as u8;
    if let Some(edns) = edns {
        append_opt(out, rcode, edns, scope, ede);
    }
}

/// Appends the OPT record for `edns` and counts it in ARCOUNT: our payload
/// size, the upper bits of `rcode`, DO echoed, and the options answered.
fn append_opt(out: &mut Vec<u8>, rcode: u16, edns: &Edns, scope: u8, ede: Option<u16>) {
    let arcount = u16::from_be_bytes([out[10], out[11]]) + 1;
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    let size = OUR_PAYLOAD_SIZE.to_be_bytes();
    let flags = if edns.dnssec_ok { 0x80 } else { 0 };
    out.extend_from_slice(&[0, 0, 41, size[0], size[1], (rcode >> 4) as u8, 0, flags, 0]);
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if let Some(ecs) = edns.ecs {
        let len = ecs.bytes_len();
        out.extend_from_slice(&ECS_OPTION.to_be_bytes());
        out.extend_from_slice(&((4 + len) as u16).to_be_bytes());
        out.extend_from_slice(&ecs.family.to_be_bytes());
        out.extend_from_slice(&[ecs.source, scope]);
        out.extend_from_slice(&ecs.bits.to_be_bytes()[..len]);
    }
    if let Some(cookie) = edns.cookie {
        // RFC 7873 §5.2: the client cookie and a fresh server cookie.
        out.extend_from_slice(&COOKIE_OPTION.to_be_bytes());
        out.extend_from_slice(&24u16.to_be_bytes());
        out.extend_from_slice(&cookie.client.to_ne_bytes());
        out.extend_from_slice(&cookie.fresh.to_ne_bytes());
    }
    if let Some(id) = edns.nsid {
        out.extend_from_slice(&NSID_OPTION.to_be_bytes());
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
    }
    if let Some(code) = ede {
        out.extend_from_slice(&EDE_OPTION.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
    }
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The question reader accepts exactly the questions that `domain`'s
    /// `Question<ParsedName>` reads with an uncompressed name, the way the
    /// answer path read them before, and finds the same name length, type
    /// and class: on random names built near every limit (label types,
    /// 63-byte labels, the 255-byte name, input cut short).
    #[test]
    fn question_reader_agrees_with_parsed_name() {
        let mut rng = lb::Rng::with_seed(3);
        let mut accepted = 0;
        for _ in 0..100_000 {
            let mut query = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            let labels = rng.below(9);
            for _ in 0..labels {
                let len = match rng.below(4) {
                    0 => 63,
                    1 => 62,
                    _ => rng.below(64) as u8,
                };
                query.push(len);
                query.extend((0..len).map(|_| b'a'));
            }
            query.push(0);
            query.extend_from_slice(&[0, 1, 0, 1]);
            // Now and then a bad byte in place of a label's length (or
            // anywhere), and now and then the input cut short.
            if rng.below(3) == 0 {
                let at = 12 + rng.below((query.len() - 12) as u32) as usize;
                query[at] = [0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF, 0, 64][rng.below(8) as usize];
            }
            if rng.below(4) == 0 {
                query.truncate(12 + rng.below((query.len() - 12) as u32) as usize);
            }
            let mut out = vec![0; 12];
            let mut q = Query::default();
            let ours = parse_question(&query, &mut out, &mut q)
                .ok()
                .map(|(t, c)| (q.name_len, t, c));
            let mut parser = Parser::from_ref(&query[..]);
            parser.advance(12).expect("a header");
            let theirs = Question::<ParsedName<&[u8]>>::parse(&mut parser)
                .ok()
                .and_then(|question| {
                    let name_len = parser.pos() - 4 - 12;
                    let qname = question.qname();
                    (!qname.is_compressed()
                        && usize::from(domain::base::name::ToLabelIter::compose_len(qname)) == name_len)
                        .then(|| (name_len, question.qtype().to_int(), question.qclass().to_int()))
                });
            assert_eq!(ours, theirs, "{query:02x?}");
            if let Some((name_len, ..)) = ours {
                accepted += 1;
                assert_eq!(out[12..], query[12..12 + name_len + 4], "the question is echoed");
            }
        }
        // Both kinds of outcome were exercised.
        assert!((10_000..90_000).contains(&accepted), "{accepted} accepted");
    }

    /// The shuffle keeps every record whole and reaches every order, for
    /// the A and AAAA sizes it swaps as fixed copies and for any other.
    #[test]
    fn shuffle_permutes_whole_records() {
        let mut rng = lb::Rng::with_seed(11);
        for size in [16, 28, 5] {
            // Three records, each `size` copies of its number.
            let records: Vec<u8> = (1..=3u8).flat_map(|r| std::iter::repeat_n(r, size)).collect();
            let mut orders = std::collections::HashSet::new();
            for _ in 0..600 {
                let mut shuffled = records.clone();
                shuffle(&mut shuffled, 3, size, &mut rng);
                let order: Vec<u8> = shuffled.chunks(size).map(|r| r[0]).collect();
                for (record, &number) in shuffled.chunks(size).zip(&order) {
                    assert!(record.iter().all(|&b| b == number), "size {size}: {shuffled:?}");
                }
                let mut sorted = order.clone();
                sorted.sort();
                assert_eq!(sorted, [1, 2, 3], "size {size}");
                orders.insert(order);
            }
            assert_eq!(orders.len(), 6, "size {size}: every order of 3");
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn server_cookie_matches_rfc_9018_appendix_a() {
        // A.1: learning a new server cookie.
        let secret: [u8; 16] = hex("e5e973e5a6b2a43f48e7dc849e37bfcf").try_into().unwrap();
        let client: [u8; 8] = hex("2464c4abcf10c957").try_into().unwrap();
        let cookie = server_cookie(&secret, &client, "198.51.100.100".parse().unwrap(), 1559731985);
        assert_eq!(cookie.to_vec(), hex("010000005cf79f111f8130c3eee29480"));
    }

    #[test]
    fn has_capital_agrees_with_the_byte_test() {
        // Every byte value, at every position of names from 1 to 20 bytes
        // (whole words, a remainder, both), among bytes that are no
        // capitals themselves but sit next to them in the table.
        for len in 1..=20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut name = vec![b'a'; len];
                    name[(at + 1) % len] = b'@';
                    if len > 2 {
                        name[(at + 2) % len] = b'[';
                        name[(at + len - 1) % len] = 0xC1;
                    }
                    name[at] = b;
                    assert_eq!(has_capital(&name), name.iter().any(u8::is_ascii_uppercase), "{name:?}");
                }
            }
        }
        assert!(!has_capital(b""));
        assert!(!has_capital(b"\x03www\x07example\x03com"));
        assert!(has_capital(b"\x03www\x07exaMple\x03com"));
    }

    #[test]
    fn cookie_freshness_window() {
        let secret = [7u8; 16];
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let fresh = server_cookie(&secret, &[1; 8], ip, 1_000_000);
        let mut data = vec![1u8; 8];
        data.extend_from_slice(&fresh);
        let cookie = Cookie::parse(&data, 0).unwrap();
        let (client, server) = (cookie.client.to_ne_bytes(), cookie.server(&data));
        assert_eq!(client, [1; 8]);
        assert_eq!(server, &fresh[..]);
        assert!(cookie_valid(&secret, &client, server, ip, 1_000_000));
        assert!(cookie_valid(&secret, &client, server, ip, 1_000_000 + 3600));
        assert!(
            !cookie_valid(&secret, &client, server, ip, 1_000_000 + 3601),
            "older than an hour"
        );
        assert!(cookie_valid(&secret, &client, server, ip, 1_000_000 - 300));
        assert!(
            !cookie_valid(&secret, &client, server, ip, 1_000_000 - 301),
            "too far in the future"
        );
        assert!(
            !cookie_valid(&secret, &client, server, "192.0.2.2".parse().unwrap(), 1_000_000),
            "another client"
        );
        assert!(
            !cookie_valid(&[8; 16], &client, server, ip, 1_000_000),
            "another secret"
        );
    }
}

/// The answer path in stages, for the criterion benchmarks only
/// (`benches/stages.rs`); not an interface.
#[doc(hidden)]
pub mod stages {
    use super::*;

    /// A parsed query and its lookup key.
    pub struct Parsed<'q>(Query<'q>, usize, std::borrow::Cow<'q, [u8]>);

    /// Parses `query`, writing the reply's header and question to `out`;
    /// the key is made as `handle` makes it.
    pub fn parse<'q>(query: &'q [u8], out: &mut Vec<u8>) -> Option<Parsed<'q>> {
        out.clear();
        out.extend_from_slice(&query[..12.min(query.len())]);
        let mut q = Query::default();
        (q.qtype, q.qclass) = super::parse(query, out, true, None, &mut q).ok()?;
        let head = out.len();
        let name = q.name(query);
        let key = if has_capital(name) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name)
        };
        Some(Parsed(q, head, key))
    }

    /// Looks the parsed question up.
    pub fn lookup<'a>(snap: &'a Snapshot, parsed: &Parsed<'_>) -> Option<&'a Answer> {
        snap.resolve(&parsed.2, parsed.0.qtype)
    }

    /// Writes the answer behind the header and question already in `out`.
    pub fn render(
        out: &mut Vec<u8>,
        snap: &Snapshot,
        answer: &Answer,
        parsed: &Parsed<'_>,
        picker: &mut Picker,
    ) -> Outcome {
        out.truncate(parsed.1);
        let client = Client {
            addr: SocketAddr::from(([127, 0, 0, 1], 5353)),
            transport: Transport::Udp,
            now: || 0,
        };
        // (A DNAME answer needs the query; rendered here without its CNAME.)
        if answer.pool != NONE && !answer.is_dname() {
            write_pool_answer(out, snap, answer, &parsed.0, 1232, picker, &client)
        } else {
            write_answer(out, snap, answer, &parsed.0, 1232, picker, 0)
        }
    }
}
