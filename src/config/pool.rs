//! `[[pool]]` sections: names bound to backends, the policy that picks
//! among them, and their health check.
//!
//! ```toml
//! [[pool]]
//! name = "web"
//! names = ["www.example.com."]   # A from IPv4 members, AAAA from IPv6
//! policy = "weighted"            # random | round-robin | weighted | sticky | failover | topology
//! answers = 2                    # addresses per response (default 1, at most 16)
//! ttl = 30                       # default 30
//! ttl_when_degraded = 10         # optional: while any member is down
//! all_down = "all"               # all | none | <another pool's name>
//! sticky_prefix_v4 = 24          # sticky: client network sizes
//! sticky_prefix_v6 = 56
//! default = "eu"                 # topology: the pool for unmapped clients
//! members = [
//!   { address = "127.0.0.11", weight = 3 },
//!   { address = "127.0.0.12", tier = 2 },
//! ]
//! [pool.check]
//! kind = "tcp"                   # tcp | http | dns
//! port = 8080
//! interval = "1s"
//! timeout = "500ms"
//! rise = 2
//! fall = 2
//! initial = "up"                 # up | down
//! path = "/health"               # http
//! expect = [200]                 # http status codes
//! body = "ok"                    # http: a substring the body must hold
//! host = "www.example.com"       # http Host header
//! name = "health.example.com."   # dns: the name to query (A)
//! [[pool.map]]                   # topology
//! networks = ["10.0.0.0/8", "2001:db8::/32"]
//! pool = "eu"
//! ```

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::parse_duration;
use crate::diag::{Diagnostics, Loc};

/// Most addresses in one response.
pub const MAX_ANSWERS: usize = 16;

/// How a pool picks its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Random,
    RoundRobin,
    Weighted,
    Sticky,
    Failover,
    Topology,
}

/// What to answer when every member of a family is down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllDownConfig {
    /// Every member, as if all were up (fail open).
    All,
    /// No address: NODATA with the SOA.
    None,
    /// Another pool's answer.
    Pool(String),
}

/// A health check kind and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http {
        path: String,
        expect: Vec<u16>,
        body: Option<String>,
        host: Option<String>,
    },
    Dns {
        name: String,
    },
}

/// A pool's health check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub kind: CheckKind,
    pub port: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub initial_up: bool,
}

/// One backend.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    pub address: IpAddr,
    pub weight: u32,
    pub tier: u32,
}

/// A topology map entry: networks and the pool they go to.
#[derive(Clone, Debug)]
pub struct MapConfig {
    pub networks: Vec<(IpAddr, u8)>,
    pub pool: String,
}

/// A validated pool (references to other pools are checked later, when
/// all pools are known).
#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub name: String,
    pub names: Vec<String>,
    pub policy: PolicyKind,
    pub answers: usize,
    pub ttl: u32,
    pub ttl_when_degraded: Option<u32>,
    pub all_down: AllDownConfig,
    pub sticky_prefix_v4: u8,
    pub sticky_prefix_v6: u8,
    pub default: Option<String>,
    pub members: Vec<MemberConfig>,
    pub check: Option<CheckConfig>,
    pub map: Vec<MapConfig>,
    /// Where the pool is configured.
    pub loc: Option<Loc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    name: toml::Spanned<String>,
    #[serde(default)]
    names: Vec<toml::Spanned<String>>,
    policy: Option<toml::Spanned<String>>,
    answers: Option<toml::Spanned<usize>>,
    ttl: Option<u32>,
    ttl_when_degraded: Option<u32>,
    all_down: Option<toml::Spanned<String>>,
    sticky_prefix_v4: Option<toml::Spanned<u8>>,
    sticky_prefix_v6: Option<toml::Spanned<u8>>,
    default: Option<String>,
    #[serde(default)]
    members: Vec<toml::Spanned<RawMember>>,
    check: Option<toml::Spanned<RawCheck>>,
    #[serde(default)]
    map: Vec<toml::Spanned<RawMap>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    address: String,
    weight: Option<u32>,
    tier: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    kind: String,
    port: Option<u16>,
    interval: Option<String>,
    timeout: Option<String>,
    rise: Option<u32>,
    fall: Option<u32>,
    initial: Option<String>,
    path: Option<String>,
    expect: Option<Vec<u16>>,
    body: Option<String>,
    host: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    networks: Vec<String>,
    pool: String,
}

/// Parses `10.0.0.0/8` (host bits must be zero) or a bare address.
pub fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("bad network {text:?}: expected ADDRESS/LENGTH"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&l| l <= max)
            .ok_or(format!("bad prefix length in {text:?}"))?,
        None => max,
    };
    let host_bits = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a) & !u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)),
        IpAddr::V6(a) => u128::from(a) & !u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0),
    };
    if host_bits != 0 {
        return Err(format!("network {text:?} has bits set beyond its prefix length"));
    }
    Ok((addr, len))
}

impl RawPool {
    /// Validates one pool; problems go to `diags` with `at`'s locations.
    pub(super) fn validate(self, at: &dyn Fn(usize) -> Option<Loc>, diags: &mut Diagnostics) -> Option<PoolConfig> {
        let errors = diags.error_count();
        let loc = at(self.name.span().start);
        let name = self.name.into_inner();
        let policy = match self.policy.as_ref().map(|p| (p.get_ref().as_str(), p.span().start)) {
            None => PolicyKind::Random,
            Some(("random", _)) => PolicyKind::Random,
            Some(("round-robin", _)) => PolicyKind::RoundRobin,
            Some(("weighted", _)) => PolicyKind::Weighted,
            Some(("sticky", _)) => PolicyKind::Sticky,
            Some(("failover", _)) => PolicyKind::Failover,
            Some(("topology", _)) => PolicyKind::Topology,
            Some((other, span)) => {
                diags.error(
                    at(span),
                    format!(
                        "unknown policy {other:?}: expected random, round-robin, weighted, sticky, failover or topology"
                    ),
                );
                PolicyKind::Random
            }
        };
        let answers = match &self.answers {
            Some(a) if (1..=MAX_ANSWERS).contains(a.get_ref()) => *a.get_ref(),
            Some(a) => {
                diags.error(
                    at(a.span().start),
                    format!("answers must be between 1 and {MAX_ANSWERS}"),
                );
                1
            }
            None => 1,
        };
        let all_down = match self.all_down.as_ref().map(|a| a.get_ref().as_str()) {
            None | Some("all") => AllDownConfig::All,
            Some("none") => AllDownConfig::None,
            Some(other) => AllDownConfig::Pool(other.to_string()),
        };
        let prefix = |value: &Option<toml::Spanned<u8>>, max: u8, default: u8, diags: &mut Diagnostics| match value {
            Some(v) if *v.get_ref() <= max => *v.get_ref(),
            Some(v) => {
                diags.error(at(v.span().start), format!("a prefix length must be at most {max}"));
                default
            }
            None => default,
        };
        let sticky_prefix_v4 = prefix(&self.sticky_prefix_v4, 32, 24, diags);
        let sticky_prefix_v6 = prefix(&self.sticky_prefix_v6, 128, 56, diags);
        let mut members = Vec::new();
        for m in &self.members {
            let raw = m.get_ref();
            match raw.address.parse::<IpAddr>() {
                Ok(address) => {
                    if members.iter().any(|x: &MemberConfig| x.address == address) {
                        diags.error(at(m.span().start), format!("member {address} is listed twice"));
                    }
                    members.push(MemberConfig {
                        address,
                        weight: raw.weight.unwrap_or(1),
                        tier: raw.tier.unwrap_or(1),
                    })
                }
                Err(_) => diags.error(at(m.span().start), format!("bad member address {:?}", raw.address)),
            }
        }
        if self.members.is_empty() && policy != PolicyKind::Topology {
            diags.error(loc.clone(), format!("pool {name} has no members"));
        }
        if self.names.is_empty() {
            diags.warning(loc.clone(), format!("pool {name} answers for no names (names = [...])"));
        }
        let check = self.check.and_then(|c| {
            let span = c.span().start;
            validate_check(c.into_inner(), &|_| at(span), diags)
        });
        let mut map = Vec::new();
        for entry in self.map {
            let span = entry.span().start;
            let raw = entry.into_inner();
            let mut networks = Vec::new();
            for n in &raw.networks {
                match parse_network(n) {
                    Ok(net) => networks.push(net),
                    Err(msg) => diags.error(at(span), msg),
                }
            }
            map.push(MapConfig {
                networks,
                pool: raw.pool,
            });
        }
        if policy == PolicyKind::Topology && map.is_empty() {
            diags.error(loc.clone(), format!("topology pool {name} has no [[pool.map]] entries"));
        }
        if policy != PolicyKind::Topology && (!map.is_empty() || self.default.is_some()) {
            diags.error(
                loc.clone(),
                format!("pool {name}: map and default are for policy = \"topology\""),
            );
        }
        let names = self.names.into_iter().map(|n| n.into_inner()).collect();
        (diags.error_count() == errors).then_some(PoolConfig {
            name,
            names,
            policy,
            answers,
            ttl: self.ttl.unwrap_or(30),
            ttl_when_degraded: self.ttl_when_degraded,
            all_down,
            sticky_prefix_v4,
            sticky_prefix_v6,
            default: self.default,
            members,
            check,
            map,
            loc,
        })
    }
}

fn validate_check(raw: RawCheck, at: &dyn Fn(usize) -> Option<Loc>, diags: &mut Diagnostics) -> Option<CheckConfig> {
    let errors = diags.error_count();
    let duration = |text: &Option<String>, default: Duration, key: &str, diags: &mut Diagnostics| match text {
        Some(t) => match parse_duration(t) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                diags.error(at(0), format!("check {key} must be above zero"));
                default
            }
            Err(msg) => {
                diags.error(at(0), format!("check {key}: {msg}"));
                default
            }
        },
        None => default,
    };
    let interval = duration(&raw.interval, Duration::from_secs(1), "interval", diags);
    let timeout = duration(&raw.timeout, Duration::from_millis(500), "timeout", diags);
    let kind = match raw.kind.as_str() {
        "tcp" => CheckKind::Tcp,
        "http" => CheckKind::Http {
            path: raw.path.clone().unwrap_or_else(|| "/".into()),
            expect: raw.expect.clone().unwrap_or_else(|| vec![200]),
            body: raw.body.clone(),
            host: raw.host.clone(),
        },
        "dns" => match &raw.name {
            Some(name) => CheckKind::Dns { name: name.clone() },
            None => {
                diags.error(at(0), "a dns check needs name = \"...\" (the name to query)");
                CheckKind::Tcp
            }
        },
        other => {
            diags.error(
                at(0),
                format!("unknown check kind {other:?}: expected tcp, http or dns"),
            );
            CheckKind::Tcp
        }
    };
    let port = raw.port.unwrap_or(match kind {
        CheckKind::Http { .. } => 80,
        CheckKind::Dns { .. } => 53,
        CheckKind::Tcp => 0,
    });
    if port == 0 {
        diags.error(at(0), "a tcp check needs port = N");
    }
    let initial_up = match raw.initial.as_deref() {
        None | Some("up") => true,
        Some("down") => false,
        Some(other) => {
            diags.error(at(0), format!("initial must be \"up\" or \"down\", not {other:?}"));
            true
        }
    };
    let (rise, fall) = (raw.rise.unwrap_or(2), raw.fall.unwrap_or(2));
    if rise == 0 || fall == 0 {
        diags.error(at(0), "rise and fall must be at least 1");
    }
    (diags.error_count() == errors).then_some(CheckConfig {
        kind,
        port,
        interval,
        timeout,
        rise,
        fall,
        initial_up,
    })
}

/// Checks what pools say of each other: `all_down`, `map` and `default`
/// must name other pools; map targets must not be topology pools.
pub fn check_references(pools: &[PoolConfig], diags: &mut Diagnostics) {
    for pool in pools {
        let mut refer = |name: &str, what: &str, no_topology: bool| match pools.iter().find(|p| p.name == name) {
            None => diags.error(
                pool.loc.clone(),
                format!("pool {}: {what} names no pool {name:?}", pool.name),
            ),
            Some(p) if p.name == pool.name => diags.error(
                pool.loc.clone(),
                format!("pool {}: {what} names the pool itself", pool.name),
            ),
            Some(p) if no_topology && p.policy == PolicyKind::Topology => diags.error(
                pool.loc.clone(),
                format!("pool {}: {what} {name} is itself a topology pool", pool.name),
            ),
            Some(_) => {}
        };
        if let AllDownConfig::Pool(name) = &pool.all_down {
            refer(name, "all_down", false);
        }
        for entry in &pool.map {
            refer(&entry.pool, "map pool", true);
        }
        if let Some(name) = &pool.default {
            refer(name, "default", true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(parse_network("10.0.0.0/8"), Ok(("10.0.0.0".parse().unwrap(), 8)));
        assert_eq!(parse_network("2001:db8::/32"), Ok(("2001:db8::".parse().unwrap(), 32)));
        assert_eq!(parse_network("192.0.2.1"), Ok(("192.0.2.1".parse().unwrap(), 32)));
        assert!(parse_network("10.1.0.0/8").is_err());
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("2001:db8::1/64").is_err());
        assert!(parse_network("nonsense/8").is_err());
    }
}
