//! "Why did this client get that address?": the answer lbdns gives for a
//! name, type and client, with the zone, the pool, its policy, each
//! member's state, what was chosen, the TTL and the ECS scope. Used by
//! `lbdns explain` (health at its initial state) and by `GET /explain` on
//! the metrics listener (live health).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use domain::base::iana::Rtype;
use domain::base::name::{Name, ParsedName};
use domain::base::{Message, ParsedRecord};
use domain::rdata::AllRecordData;
use serde::Serialize;

use crate::config::PolicyKind;
use crate::lb::{FamilyState, Picker};
use crate::name;
use crate::proto::{self, Client, Outcome, Transport};
use crate::snapshot::Snapshot;

/// What to explain.
#[derive(Clone, Debug)]
pub struct Question {
    pub name: String,
    pub qtype: String,
    pub client: IpAddr,
    /// An ECS subnet, as `ADDRESS/PREFIX`.
    pub ecs: Option<(IpAddr, u8)>,
}

/// One member of the pool that answered.
#[derive(Clone, Debug, Serialize)]
pub struct MemberExplanation {
    pub address: String,
    pub weight: u32,
    pub tier: u32,
    pub up: bool,
    /// Whether the policy could pick it now.
    pub candidate: bool,
    pub chosen: bool,
}

/// The pool that answered.
#[derive(Clone, Debug, Serialize)]
pub struct PoolExplanation {
    pub name: String,
    pub policy: String,
    pub answers: usize,
    pub ttl: u32,
    pub degraded: bool,
    /// The pool whose members were chosen (a topology target or the
    /// all-down fallback), when not this one.
    pub served_by: Option<String>,
    pub members: Vec<MemberExplanation>,
    pub why: String,
}

/// The explanation.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub query: String,
    pub zone: Option<String>,
    pub rcode: String,
    pub flags: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    pub ecs_scope: Option<u8>,
    pub pool: Option<PoolExplanation>,
}

fn policy_name(policy: PolicyKind) -> &'static str {
    match policy {
        PolicyKind::Random => "random",
        PolicyKind::RoundRobin => "round-robin",
        PolicyKind::Weighted => "weighted",
        PolicyKind::Sticky => "sticky",
        PolicyKind::Failover => "failover",
        PolicyKind::Topology => "topology",
    }
}

/// Parses `10.1.2.0/24` for `--ecs`.
pub fn parse_ecs(text: &str) -> Result<(IpAddr, u8), String> {
    crate::config::pool::parse_network(text)
}

fn query_bytes(q: &Question) -> Result<Vec<u8>, String> {
    let qname = Name::<Vec<u8>>::from_str(&q.name).map_err(|e| format!("bad name {:?}: {e}", q.name))?;
    let qtype = crate::zone::extra::rtype_of(&q.qtype)
        .map(Rtype::from_int)
        .ok_or_else(|| format!("unknown type {:?}", q.qtype))?;
    let mut out = vec![0x4c, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    out.extend_from_slice(qname.as_slice());
    out.extend_from_slice(&qtype.to_int().to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    let mut options = Vec::new();
    if let Some((addr, prefix)) = q.ecs {
        let (family, bytes): (u16, Vec<u8>) = match addr {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let len = usize::from(prefix).div_ceil(8);
        options.extend_from_slice(&8u16.to_be_bytes());
        options.extend_from_slice(&((4 + len) as u16).to_be_bytes());
        options.extend_from_slice(&family.to_be_bytes());
        options.extend_from_slice(&[prefix, 0]);
        options.extend_from_slice(&bytes[..len]);
    }
    out.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    out.extend_from_slice(&(options.len() as u16).to_be_bytes());
    out.extend_from_slice(&options);
    Ok(out)
}

fn record_text(record: ParsedRecord<'_, [u8]>) -> Option<String> {
    let rec = record.to_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>().ok()??;
    let raw = record
        .to_record::<domain::base::rdata::UnknownRecordData<&[u8]>>()
        .ok()
        .flatten();
    // The types whose names are never compressed (RFC 3597 §4) read from
    // their own bytes, with the fixes of `rdata_text`; the others from
    // the message, whose compression pointers only it can follow.
    let rtype = record.rtype().to_int();
    let own = raw.and_then(|raw| match rtype {
        45 | 64 | 65 => rdata_text(rtype, raw.data().data()),
        _ => extra_text(rtype, raw.data().data()),
    });
    let data = own.unwrap_or_else(|| zonefile_text(rec.data()));
    Some(
        format!(
            "{}. {} {} {} {data}",
            rec.owner(),
            rec.ttl().as_secs(),
            rec.class(),
            rec.rtype(),
        )
        .replacen("..", ".", 1),
    )
}

/// The data of a type the zone loader reads itself (`zone::extra`) in
/// that type's text, instead of RFC 3597 hex: a look-alike (SPF like
/// TXT, KX like MX, ...) as the type it looks like, the others (LOC, URI,
/// ...) by their own printers.
fn extra_text(rtype: u16, bytes: &[u8]) -> Option<String> {
    use crate::zone::extra::{Form, KINDS};
    let kind = KINDS.iter().find(|k| k.rtype == rtype)?;
    let like = match kind.form {
        Form::Own(_, show) => return show(bytes),
        Form::Like(like, _) => like,
    };
    let mut parser = domain::dep::octseq::Parser::from_ref(bytes);
    let rtype = Rtype::from_str(like).ok()?;
    let data =
        <AllRecordData<&[u8], ParsedName<&[u8]>> as domain::base::rdata::ParseRecordData<'_, [u8]>>::parse_rdata(
            rtype,
            &mut parser,
        )
        .ok()??;
    Some(data.to_string())
}

/// A record's data in zone-file text, from its uncompressed wire form:
/// a type the zone loader reads itself in that type's text, the others
/// as `domain` writes them. `None` when the data does not parse as its
/// type.
pub fn rdata_text(rtype: u16, rdata: &[u8]) -> Option<String> {
    if let Some(text) = extra_text(rtype, rdata) {
        return Some(text);
    }
    if rtype == 45 && rdata.get(1) == Some(&0) {
        // IPSECKEY without a gateway: domain leaves out the `.` that its
        // scanner (and RFC 4025 §3.3) wants there.
        let key = domain::utils::base64::encode_string(rdata.get(3..)?);
        return Some(format!("{} 0 {} . {key}", rdata[0], rdata[2]));
    }
    let mut parser = domain::dep::octseq::Parser::from_ref(rdata);
    let data =
        <AllRecordData<&[u8], ParsedName<&[u8]>> as domain::base::rdata::ParseRecordData<'_, [u8]>>::parse_rdata(
            Rtype::from_int(rtype),
            &mut parser,
        )
        .ok()??;
    let mut text = zonefile_text(&data);
    if matches!(rtype, 64 | 65) {
        // domain writes the key `no-default-alpn` (RFC 9460 §7.1.1) as
        // `nodefaultalpn`, which no scanner reads back.
        text = text
            .split(' ')
            .map(|word| {
                if word == "nodefaultalpn" {
                    "no-default-alpn"
                } else {
                    word
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    (parser.remaining() == 0).then_some(text)
}

/// Record data as `domain` writes it into a zone file (its `Display`
/// leaves the dot off some names, such as an SRV target).
fn zonefile_text(data: &AllRecordData<&[u8], ParsedName<&[u8]>>) -> String {
    use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
    data.display_zonefile(DisplayKind::Simple).to_string()
}

/// A type's name as a zone file writes it (`TYPE65280` for one with no
/// name).
pub fn type_text(rtype: u16) -> String {
    match crate::zone::extra::KINDS.iter().find(|k| k.rtype == rtype) {
        Some(kind) => kind.name.to_string(),
        None => Rtype::from_int(rtype).to_string(),
    }
}

/// Writes a zone's records as a zone file (`lbdns check --print`): each
/// record on its own line with its absolute owner, TTL, class and type,
/// so that the text loads back to the same zone. Records are grouped by
/// name and RRset, in the order the files first had them.
pub fn write_zone(zone: &crate::zone::Zone, out: &mut impl std::io::Write) -> std::io::Result<()> {
    for node in zone.nodes() {
        let owner = name::to_text(node.owner());
        for set in node.rrsets() {
            let rtype = type_text(set.rtype);
            for rdata in set.rdatas().iter() {
                match rdata_text(set.rtype, rdata) {
                    Some(data) => writeln!(out, "{owner} {} IN {rtype} {data}", set.ttl)?,
                    None => {
                        // RFC 3597 form, which loads whatever the data.
                        let hex: String = rdata.iter().map(|b| format!("{b:02x}")).collect();
                        writeln!(
                            out,
                            "{owner} {} IN TYPE{} \\# {} {hex}",
                            set.ttl,
                            set.rtype,
                            rdata.len()
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Explains the answer to `q` from `snap`.
pub fn explain(snap: &Snapshot, q: &Question) -> Result<Explanation, String> {
    let query = query_bytes(q)?;
    let client = Client {
        addr: SocketAddr::new(q.client, 53535),
        transport: Transport::Udp,
        now: || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32)
        },
    };
    let mut picker = Picker::from_entropy();
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    if proto::handle(&query, &client, snap, &mut picker, &mut out) == Outcome::Drop {
        return Err("the query was dropped".into());
    }
    let msg = Message::from_slice(&out).map_err(|_| "unreadable reply")?;
    let header = msg.header();
    let mut flags = Vec::new();
    for (set, flag) in [(header.aa(), "aa"), (header.tc(), "tc")] {
        if set {
            flags.push(flag.to_string());
        }
    }
    let mut sections: [Vec<String>; 3] = Default::default();
    let mut ecs_scope = None;
    let mut section = msg.answer().map_err(|_| "unreadable reply")?;
    for (i, out) in sections.iter_mut().enumerate() {
        for record in &mut section {
            let Ok(record) = record else { break };
            if record.rtype() == Rtype::OPT {
                let data = record
                    .to_record::<domain::base::rdata::UnknownRecordData<&[u8]>>()
                    .ok()
                    .flatten();
                if let Some(data) = data {
                    let bytes = data.data().data();
                    if bytes.len() >= 8 && bytes[..2] == [0, 8] {
                        ecs_scope = Some(bytes[7]);
                    }
                }
                continue;
            }
            out.extend(record_text(record));
        }
        if i < 2 {
            match section.next_section() {
                Ok(Some(next)) => section = next,
                _ => break,
            }
        }
    }
    let [answer, authority, additional] = sections;
    let key = name::to_key(
        Name::<Vec<u8>>::from_str(&q.name)
            .map_err(|e| e.to_string())?
            .as_slice(),
    );
    let zone = snap
        .zones()
        .iter()
        .filter(|z| name::is_within(&key, &z.origin))
        .max_by_key(|z| z.origin.len())
        .map(|z| name::to_text(&z.origin));
    // The pool: of the name itself, or of the end of a CNAME chain.
    let last_owner = answer.iter().rev().find_map(|r| {
        let mut words = r.split_whitespace();
        let owner = words.next()?;
        (r.contains(" IN A ") || r.contains(" IN AAAA ")).then(|| owner.to_ascii_lowercase())
    });
    let wanted = last_owner.unwrap_or_else(|| name::to_text(&key));
    let pools = snap.pools();
    let pool_index = pools.pools.iter().position(|p| {
        p.names.iter().any(|n| {
            n.trim_end_matches('.')
                .eq_ignore_ascii_case(wanted.trim_end_matches('.'))
        })
    });
    let chosen: Vec<String> = answer
        .iter()
        .filter(|r| r.contains(" IN A ") || r.contains(" IN AAAA "))
        .filter_map(|r| r.split_whitespace().last().map(str::to_string))
        .collect();
    let v6 = q.qtype.eq_ignore_ascii_case("AAAA");
    let pool = pool_index.map(|p| {
        let pool = &pools.pools[p];
        let live = &snap.live().pools[p];
        // The pool that served: topology target or fallback, followed as
        // `lb::select` follows them (a fallback may be a topology pool,
        // which chooses again; a loop of them ends in NODATA).
        let network = q.ecs.map_or(q.client, |(a, _)| a);
        let state = |s: usize| snap.live().pools[s].families[usize::from(v6)].state;
        let mut served = p;
        let mut why = String::new();
        let mut mapped = Vec::new();
        let mut nodata = false;
        loop {
            if let Some(topology) = &pools.pools[served].topology {
                mapped.push(served);
                match topology.lpm.lookup(network) {
                    Ok(m) => {
                        served = m.value as usize;
                        let _ = write!(
                            why,
                            "topology: {network} is in a /{} of the map, which sends it to pool {} (ECS scope {}); ",
                            m.len, pools.pools[served].name, m.scope
                        );
                    }
                    Err(scope) => match topology.default {
                        Some(d) => {
                            served = d as usize;
                            let _ = write!(why, "topology: {network} matches no network; the default pool {} answers (ECS scope {scope}); ", pools.pools[served].name);
                        }
                        None => {
                            let _ = write!(why, "topology: {network} matches no network and there is no default: NODATA");
                            nodata = true;
                            break;
                        }
                    },
                }
            }
            if let FamilyState::Fallback(f) = state(served) {
                let _ = write!(why, "every member of {} is down; all_down sends it to pool {}; ", pools.pools[served].name, pools.pools[f as usize].name);
                served = f as usize;
                if state(served) == FamilyState::Topology {
                    if !mapped.contains(&served) {
                        continue;
                    }
                    let _ = write!(why, "whose map sent it here already: a loop, NODATA");
                    nodata = true;
                }
            }
            break;
        }
        let serving = &pools.pools[served];
        let family = &snap.live().pools[served].families[usize::from(v6)];
        let up_count = snap.live().pools[served].up.iter().filter(|&&u| u).count();
        let _ = match (serving.policy, family.state) {
            _ if nodata => Ok(()),
            (_, FamilyState::Empty) => write!(why, "no member of the family to give: NODATA"),
            (_, FamilyState::Fallback(_)) => write!(why, "every member of {} is down too: NODATA", serving.name),
            (_, FamilyState::Topology) => write!(why, "{} is a topology pool, which a map may not name: NODATA", serving.name),
            (PolicyKind::Random, _) => write!(why, "{} chosen uniformly among {} candidates", serving.answers, family.candidates.len()),
            (PolicyKind::RoundRobin, _) => write!(why, "the next {} in rotation among {} candidates (per worker)", serving.answers, family.candidates.len()),
            (PolicyKind::Weighted, _) => write!(why, "{} chosen by weight among {} candidates", serving.answers, family.candidates.len()),
            (PolicyKind::Sticky, _) => {
                let (len, net) = match network {
                    IpAddr::V4(_) => (serving.sticky_prefix_v4.min(q.ecs.map_or(32, |e| e.1)), network),
                    IpAddr::V6(_) => (serving.sticky_prefix_v6.min(q.ecs.map_or(128, |e| e.1)), network),
                };
                write!(why, "rendezvous hashing of the client network {net}/{len} over {} candidates: the same network keeps its member while it is up", family.candidates.len())
            }
            (PolicyKind::Failover, _) => write!(why, "the lowest tier with a member up ({} candidates)", family.candidates.len()),
            (PolicyKind::Topology, _) => Ok(()),
        };
        if up_count < serving.members.len() {
            let _ = write!(why, "; {} of {} members up", up_count, serving.members.len());
        }
        let members = serving
            .members
            .iter()
            .enumerate()
            .map(|(m, member)| MemberExplanation {
                address: member.addr.to_string(),
                weight: member.weight,
                tier: member.tier,
                up: snap.live().pools[served].up[m],
                candidate: member.addr.is_ipv6() == v6 && family.candidates.contains(&(m as u16)),
                chosen: chosen.contains(&member.addr.to_string()),
            })
            .collect();
        PoolExplanation {
            name: pool.name.clone(),
            policy: policy_name(pool.policy).into(),
            answers: serving.answers,
            ttl: match (snap.live().pools[served].degraded, serving.ttl_when_degraded) {
                (true, Some(ttl)) => ttl,
                _ => serving.ttl,
            },
            degraded: live.degraded || snap.live().pools[served].degraded,
            served_by: (served != p).then(|| serving.name.clone()),
            members,
            why,
        }
    });
    let mut query_text = format!("{} {} from {}", q.name, q.qtype.to_ascii_uppercase(), q.client);
    if let Some((addr, prefix)) = q.ecs {
        let _ = write!(query_text, " (ECS {addr}/{prefix})");
    }
    Ok(Explanation {
        query: query_text,
        zone,
        rcode: msg.opt_rcode().to_string(),
        flags,
        answer,
        authority,
        additional,
        ecs_scope,
        pool,
    })
}

impl Explanation {
    /// The explanation as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "query:  {}", self.query);
        let _ = writeln!(out, "zone:   {}", self.zone.as_deref().unwrap_or("(none: REFUSED)"));
        let _ = writeln!(out, "answer: {} {}", self.rcode, self.flags.join(" "));
        for (title, records) in [
            ("", &self.answer),
            ("authority: ", &self.authority),
            ("additional: ", &self.additional),
        ] {
            for r in records {
                let _ = writeln!(out, "  {title}{r}");
            }
        }
        if let Some(scope) = self.ecs_scope {
            let _ = writeln!(out, "ECS scope: {scope}");
        }
        if let Some(pool) = &self.pool {
            let _ = writeln!(
                out,
                "pool:   {} ({}, answers {}, TTL {}{})",
                pool.name,
                pool.policy,
                pool.answers,
                pool.ttl,
                if pool.degraded { ", degraded" } else { "" }
            );
            if let Some(by) = &pool.served_by {
                let _ = writeln!(out, "served by pool {by}");
            }
            for m in &pool.members {
                let _ = writeln!(
                    out,
                    "  {:<40} weight {:<4} tier {:<3} {:<5}{}{}",
                    m.address,
                    m.weight,
                    m.tier,
                    if m.up { "up" } else { "down" },
                    if m.candidate { " candidate" } else { "" },
                    if m.chosen { " CHOSEN" } else { "" }
                );
            }
            let _ = writeln!(out, "why:    {}", pool.why);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::diag::Diagnostics;
    use crate::zone::{self, Limits, Zone};

    /// A record as (owner, type, TTL, data).
    type Record = (Vec<u8>, u16, u32, Vec<u8>);

    /// Each record, sorted.
    fn records(zone: &Zone) -> Vec<Record> {
        let mut all = Vec::new();
        for node in zone.nodes() {
            for set in node.rrsets() {
                all.extend(
                    set.rdatas()
                        .iter()
                        .map(|d| (node.owner().to_vec(), set.rtype, set.ttl, d.to_vec())),
                );
            }
        }
        all.sort();
        all
    }

    #[test]
    fn a_printed_zone_loads_back_to_the_same_records() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let origin = Name::from_str("example.com.").unwrap();
        // The compare zone has every type the loader reads itself, escapes,
        // wildcards and an include; then `$GENERATE`, and the zones
        // compare-zones.sh checks against BIND.
        for file in [
            "zones/example.com.zone",
            "generate/generate.zone",
            "bind/types.zone",
            "bind/bind-style.zone",
        ] {
            let mut first = Diagnostics::default();
            let zone = zone::load(&origin, &data.join(file), &Limits::default(), &mut first).unwrap();
            let mut text = Vec::new();
            write_zone(&zone, &mut text).unwrap();
            let printed = String::from_utf8(text.clone()).unwrap();
            // Only types with no text form take RFC 3597 form.
            for line in printed.lines().filter(|l| l.contains("\\#")) {
                assert!(line.contains(" IN TYPE"), "{file}: {line}");
            }
            let mut diags = Diagnostics::default();
            let again = zone::load_bytes(
                &origin,
                Path::new("printed.zone"),
                &text,
                &Limits::default(),
                &mut diags,
            );
            // The same warnings as the file (the zone's own, as DNAME
            // loops), and nothing else.
            let messages = |d: &Diagnostics| d.items.iter().map(|i| i.message.clone()).collect::<Vec<_>>();
            assert_eq!(messages(&diags), messages(&first), "{file}: {diags}\n{printed}");
            let (before, after) = (records(&zone), records(&again.unwrap()));
            assert_eq!(before.len(), zone.record_count, "{file}");
            let only = |a: &[Record], b: &[Record]| a.iter().filter(|r| !b.contains(r)).cloned().collect::<Vec<_>>();
            assert_eq!(only(&before, &after), [], "{file}: lost in print");
            assert_eq!(only(&after, &before), [], "{file}: gained in print");
        }
    }

    #[test]
    fn data_that_does_not_read_as_its_type_is_printed_in_rfc3597_form() {
        assert_eq!(rdata_text(1, &[192, 0, 2, 1]).as_deref(), Some("192.0.2.1"));
        assert_eq!(rdata_text(1, &[192, 0, 2]), None);
        assert_eq!(rdata_text(65280, &[0xab]).as_deref(), Some("\\# 1 ab"));
        assert_eq!(type_text(65280), "TYPE65280");
        assert_eq!(type_text(23), "NSAP-PTR");
    }

    /// A pool that is down falls back to a topology pool, which chooses
    /// again; where its map sends the client back, NODATA. `explain` must
    /// tell the same story as the answer.
    #[test]
    fn a_fallback_through_a_topology_pool_is_explained_as_served() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/zones");
        let text = r#"
[[zone]]
origin = "example.com."
file = "example.com.zone"

[[pool]]
name = "geo"
policy = "topology"
[[pool.map]]
networks = ["10.0.0.0/8"]
pool = "eu"
[[pool.map]]
networks = ["10.1.0.0/16"]
pool = "us"

[[pool]]
name = "eu"
names = ["eu.example.com."]
all_down = "geo"
members = [{ address = "192.0.2.1" }]
[pool.check]
kind = "tcp"
port = 9
initial = "down"

[[pool]]
name = "us"
members = [{ address = "192.0.2.2" }]
"#;
        let config = crate::config::Config::from_text(&dir.join("explain-fallback.toml"), text).expect("config");
        let (snap, diags) = crate::load_snapshot(&config);
        let snap = snap.unwrap_or_else(|| panic!("{diags}"));
        let ask = |client: &str| {
            let q = Question {
                name: "eu.example.com.".into(),
                qtype: "A".into(),
                client: client.parse().unwrap(),
                ecs: None,
            };
            let e = explain(&snap, &q).expect("explained");
            (e.answer.clone(), e.pool.expect("a pool name"))
        };
        let (answer, pool) = ask("10.1.2.3");
        assert_eq!(answer.len(), 1, "{answer:?}");
        assert!(answer[0].ends_with(" 192.0.2.2"), "{answer:?}");
        assert_eq!(pool.served_by.as_deref(), Some("us"));
        assert!(
            pool.why.starts_with(
                "every member of eu is down; all_down sends it to pool geo; \
                 topology: 10.1.2.3 is in a /16 of the map, which sends it to pool us"
            ),
            "{}",
            pool.why
        );
        let (answer, pool) = ask("10.2.0.1");
        assert!(answer.is_empty(), "{answer:?}");
        assert!(
            pool.why.ends_with("whose map sent it here already: a loop, NODATA"),
            "{}",
            pool.why
        );
        assert_eq!(pool.why.matches("topology:").count(), 1, "{}", pool.why);
    }
}
