//! Configuration: the TOML file and the command line, merged into one
//! validated [`Config`] before any thread starts.
//!
//! ```toml
//! [server]
//! listen = ["127.0.0.1:5353"]          # UDP and TCP on each
//! workers = 0                          # UDP workers; 0 = one per CPU we may run on
//! io = "auto"                          # auto | mmsg | uring | portable
//! batch = 32                           # datagrams per recvmmsg/sendmmsg
//! recv_buffer = 4194304                # SO_RCVBUF of each UDP socket, bytes
//! udp_dont_fragment = false            # DF on UDP replies (RFC 9715)
//! tcp_idle_timeout = "10s"             # RFC 7766 §6.2.3
//! tcp_max_connections = 1024           # the oldest idle one is closed beyond
//! tcp_max_buffer = 131072              # unsent reply bytes per connection
//! user = "lbdns"                       # drop privileges after binding
//! group = "lbdns"
//!
//! [[zone]]
//! origin = "example.com."
//! file = "zones/example.com.zone"      # relative to this file
//! ```
//!
//! Unknown keys, bad values and duplicate zones are errors reported with
//! `file:line`. Command-line `--listen` replaces the file's listen list;
//! `--zone ORIGIN=FILE` adds a zone or replaces the file's zone of that
//! origin.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::name::Name;
use serde::Deserialize;

use crate::diag::{Diagnostics, Loc};
use crate::name;

pub mod pool;

pub use pool::{AllDownConfig, CheckConfig, CheckKind, MemberConfig, PolicyKind, PoolConfig};

/// The largest configuration file read (a guard against reading a wrong,
/// huge file).
pub const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;

/// A zone to serve.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    pub origin: Name<Bytes>,
    pub file: PathBuf,
    /// Where the zone was configured (a config file line), if in a file.
    pub loc: Option<Loc>,
}

/// Which UDP I/O back end the workers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    /// The fastest available here: see `io::choose`.
    Auto,
    /// `recvmmsg`/`sendmmsg` batches.
    Mmsg,
    /// io_uring with multishot receive.
    Uring,
    /// `std` `recv_from`/`send_to`.
    Portable,
}

impl FromStr for IoKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(IoKind::Auto),
            "mmsg" => Ok(IoKind::Mmsg),
            "uring" => Ok(IoKind::Uring),
            "portable" => Ok(IoKind::Portable),
            _ => Err(format!(
                "unknown io back end {text:?}: expected auto, mmsg, uring or portable"
            )),
        }
    }
}

impl std::fmt::Display for IoKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoKind::Auto => "auto",
            IoKind::Mmsg => "mmsg",
            IoKind::Uring => "uring",
            IoKind::Portable => "portable",
        })
    }
}

/// How the server runs: sockets, workers, TCP limits, privileges.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to serve UDP and TCP on.
    pub listen: Vec<SocketAddr>,
    /// UDP workers; 0 means one per CPU in the affinity mask.
    pub workers: usize,
    pub io: IoKind,
    /// Datagrams per batch for the batching back ends.
    pub batch: usize,
    /// SO_RCVBUF for each UDP socket.
    pub recv_buffer: usize,
    /// Send UDP replies with DF set (`IP_PMTUDISC_PROBE`) rather than
    /// letting routers fragment them (`IP_PMTUDISC_OMIT`).
    pub udp_dont_fragment: bool,
    pub tcp_idle_timeout: Duration,
    pub tcp_max_connections: usize,
    pub tcp_max_buffer: usize,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Use and answer EDNS Client Subnet (RFC 7871).
    pub ecs: bool,
    /// The operator's override file: lines `ADDRESS up|down`.
    pub admin_state: Option<PathBuf>,
    /// Where to serve `/metrics` and `/explain` (HTTP); off when unset.
    pub metrics: Option<SocketAddr>,
    /// Where to write the process id (for `lbdns reload`).
    pub pid_file: Option<PathBuf>,
    /// Log one query in this many (0: none).
    pub query_log: u64,
    /// Response rate limiting (`[server.rrl]`); off when absent.
    pub rrl: Option<crate::rrl::RrlConfig>,
    /// The DNS Cookie secret (RFC 9018), 16 bytes as 32 hex digits; random
    /// per process when unset.
    pub cookie_secret: Option<[u8; 16]>,
    /// The name server identifier sent to clients that ask (RFC 5001).
    pub nsid: Option<Vec<u8>>,
    /// The answers to `id.server.`/`hostname.bind.` and
    /// `version.server.`/`version.bind.` in class CH (RFC 4892).
    pub identity: Option<String>,
    pub version: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            workers: 0,
            io: IoKind::Auto,
            batch: 32,
            recv_buffer: 4 << 20,
            udp_dont_fragment: false,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: 1024,
            tcp_max_buffer: 128 << 10,
            user: None,
            group: None,
            ecs: true,
            admin_state: None,
            metrics: None,
            pid_file: None,
            query_log: 0,
            rrl: None,
            cookie_secret: None,
            nsid: None,
            identity: None,
            version: None,
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub zones: Vec<ZoneConfig>,
    pub pools: Vec<PoolConfig>,
    pub limits: Limits,
}

/// `[limits]`: bounds on what the configuration and zones may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub zone: crate::zone::Limits,
    /// Names per pool.
    pub pool_names: usize,
    /// Members per pool.
    pub pool_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            zone: crate::zone::Limits::default(),
            pool_names: 10_000,
            pool_members: 1_000,
        }
    }
}

/// What the command line adds to or overrides in the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub workers: Option<usize>,
    pub io: Option<IoKind>,
    pub pid_file: Option<PathBuf>,
    /// `(origin, file)` pairs as given.
    pub zones: Vec<(String, PathBuf)>,
    /// Whether zones alone will do, with no configuration file and no
    /// address to listen on: for `check` and `explain`, which bind nothing.
    pub zones_only: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    zone: Vec<RawZone>,
    #[serde(default)]
    pool: Vec<pool::RawPool>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    zone_file_size: Option<u64>,
    zone_records: Option<usize>,
    include_depth: Option<usize>,
    pool_names: Option<usize>,
    pool_members: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    listen: Vec<toml::Spanned<String>>,
    workers: Option<toml::Spanned<usize>>,
    io: Option<toml::Spanned<String>>,
    batch: Option<toml::Spanned<usize>>,
    recv_buffer: Option<toml::Spanned<usize>>,
    udp_dont_fragment: Option<bool>,
    tcp_idle_timeout: Option<toml::Spanned<String>>,
    tcp_max_connections: Option<toml::Spanned<usize>>,
    tcp_max_buffer: Option<toml::Spanned<usize>>,
    user: Option<String>,
    group: Option<String>,
    ecs: Option<bool>,
    admin_state: Option<PathBuf>,
    metrics: Option<toml::Spanned<String>>,
    pid_file: Option<PathBuf>,
    query_log: Option<u64>,
    rrl: Option<toml::Spanned<RawRrl>>,
    cookie_secret: Option<toml::Spanned<String>>,
    nsid: Option<toml::Spanned<String>>,
    identity: Option<toml::Spanned<String>>,
    version: Option<toml::Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRrl {
    rate: Option<u32>,
    slip: Option<u32>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    #[serde(default)]
    exempt: Vec<String>,
    table_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    origin: toml::Spanned<String>,
    file: toml::Spanned<PathBuf>,
}

impl Config {
    /// Builds the configuration from the file (if any) and the command
    /// line, or returns every problem found.
    pub fn load(overrides: &Overrides) -> Result<Config, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut config = Config {
            server: ServerConfig::default(),
            zones: Vec::new(),
            pools: Vec::new(),
            limits: Limits::default(),
        };
        if let Some(path) = &overrides.config {
            read_file(path, &mut config, &mut diags);
        }
        if !overrides.listen.is_empty() {
            config.server.listen = overrides.listen.clone();
        }
        if let Some(workers) = overrides.workers {
            config.server.workers = workers;
        }
        if let Some(io) = overrides.io {
            config.server.io = io;
        }
        if let Some(pid_file) = &overrides.pid_file {
            config.server.pid_file = Some(pid_file.clone());
        }
        for (origin, file) in &overrides.zones {
            match parse_origin(origin) {
                Ok(origin) => {
                    config.zones.retain(|z| z.origin != origin);
                    config.zones.push(ZoneConfig {
                        origin,
                        file: file.clone(),
                        loc: None,
                    });
                }
                Err(msg) => diags.error(None, format!("--zone {origin}: {msg}")),
            }
        }
        if diags.has_errors() {
            return Err(diags); // what follows would only repeat the file's errors
        }
        if config.server.listen.is_empty() && !(overrides.zones_only && overrides.config.is_none()) {
            diags.error(
                None,
                "no listen address: set [server] listen in the config or pass --listen",
            );
        }
        if config.zones.is_empty() {
            diags.error(None, "no zones: add [[zone]] to the config or pass --zone ORIGIN=FILE");
        }
        if diags.has_errors() { Err(diags) } else { Ok(config) }
    }
}

/// Parses a zone origin; a missing final dot is added.
pub fn parse_origin(text: &str) -> Result<Name<Bytes>, String> {
    if text.is_empty() {
        return Err("empty zone origin".into());
    }
    let absolute = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    Name::<Bytes>::from_str(&absolute).map_err(|err| format!("bad zone origin {text:?}: {err}"))
}

/// Parses a duration: a number and a unit, `ms`, `s`, `m` or `h`
/// ("500ms", "10s").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected a number and a unit, e.g. \"500ms\" or \"10s\""))?;
    let millis = match unit.trim() {
        "ms" => number,
        "s" => number.saturating_mul(1000),
        "m" => number.saturating_mul(60_000),
        "h" => number.saturating_mul(3_600_000),
        _ => return Err(format!("bad duration {text:?}: the unit must be ms, s, m or h")),
    };
    Ok(Duration::from_millis(millis))
}

/// The 1-based line of byte offset `at` in `src`.
fn line_of(src: &str, at: usize) -> usize {
    1 + src.as_bytes()[..at.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn read_file(path: &Path, config: &mut Config, diags: &mut Diagnostics) {
    let file: Arc<Path> = Arc::from(path);
    let whole = Some(Loc {
        file: file.clone(),
        line: 0,
    });
    let too_big = std::fs::metadata(path)
        .map(|m| m.len() > MAX_CONFIG_SIZE)
        .unwrap_or(false);
    if too_big {
        diags.error(
            whole,
            format!("config file larger than the limit of {MAX_CONFIG_SIZE} bytes (MAX_CONFIG_SIZE)"),
        );
        return;
    }
    let src = match std::fs::read_to_string(path) {
        Ok(src) => src,
        Err(err) => {
            diags.error(whole, format!("cannot read config file: {err}"));
            return;
        }
    };
    parse_text(path, &src, config, diags);
}

impl Config {
    /// Parses configuration text as if read from `path` (for tests and
    /// fuzzing); zone files are not read.
    pub fn from_text(path: &Path, text: &str) -> Result<Config, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut config = Config {
            server: ServerConfig::default(),
            zones: Vec::new(),
            pools: Vec::new(),
            limits: Limits::default(),
        };
        parse_text(path, text, &mut config, &mut diags);
        if diags.has_errors() { Err(diags) } else { Ok(config) }
    }
}

fn parse_text(path: &Path, src: &str, config: &mut Config, diags: &mut Diagnostics) {
    let file: Arc<Path> = Arc::from(path);
    let whole = Some(Loc {
        file: file.clone(),
        line: 0,
    });
    let at = |offset: usize| {
        Some(Loc {
            file: file.clone(),
            line: line_of(src, offset),
        })
    };
    let raw: RawConfig = match toml::from_str(src) {
        Ok(raw) => raw,
        Err(err) => {
            let loc = match err.span() {
                Some(span) => at(span.start),
                None => whole,
            };
            diags.error(loc, err.message().to_string());
            return;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let server = &mut config.server;
    let mut number = |value: &Option<toml::Spanned<usize>>, min: usize, max: usize, key: &str| -> Option<usize> {
        let value = value.as_ref()?;
        if (min..=max).contains(value.get_ref()) {
            Some(*value.get_ref())
        } else {
            diags.error(at(value.span().start), format!("{key} must be between {min} and {max}"));
            None
        }
    };
    if let Some(n) = number(&raw.server.workers, 0, 4096, "workers") {
        server.workers = n;
    }
    if let Some(n) = number(&raw.server.batch, 1, 1024, "batch") {
        server.batch = n;
    }
    if let Some(n) = number(&raw.server.recv_buffer, 4096, 1 << 30, "recv_buffer") {
        server.recv_buffer = n;
    }
    if let Some(on) = raw.server.udp_dont_fragment {
        server.udp_dont_fragment = on;
    }
    if let Some(n) = number(&raw.server.tcp_max_connections, 1, 1 << 20, "tcp_max_connections") {
        server.tcp_max_connections = n;
    }
    if let Some(n) = number(&raw.server.tcp_max_buffer, 1024, 1 << 30, "tcp_max_buffer") {
        server.tcp_max_buffer = n;
    }
    if let Some(io) = &raw.server.io {
        match io.get_ref().parse() {
            Ok(io) => server.io = io,
            Err(msg) => diags.error(at(io.span().start), msg),
        }
    }
    if let Some(timeout) = &raw.server.tcp_idle_timeout {
        match parse_duration(timeout.get_ref()) {
            Ok(d) if !d.is_zero() => server.tcp_idle_timeout = d,
            Ok(_) => diags.error(at(timeout.span().start), "tcp_idle_timeout must be above zero"),
            Err(msg) => diags.error(at(timeout.span().start), msg),
        }
    }
    server.user = raw.server.user.clone();
    server.group = raw.server.group.clone();
    server.ecs = raw.server.ecs.unwrap_or(true);
    server.admin_state = raw.server.admin_state.as_ref().map(|p| base.join(p));
    server.pid_file = raw.server.pid_file.as_ref().map(|p| base.join(p));
    server.query_log = raw.server.query_log.unwrap_or(0);
    if let Some(rrl) = &raw.server.rrl {
        let loc = at(rrl.span().start);
        let r = rrl.get_ref();
        let mut config = crate::rrl::RrlConfig::default();
        config.rate = r.rate.unwrap_or(config.rate);
        config.slip = r.slip.unwrap_or(config.slip);
        config.ipv4_prefix = r.ipv4_prefix.unwrap_or(config.ipv4_prefix);
        config.ipv6_prefix = r.ipv6_prefix.unwrap_or(config.ipv6_prefix);
        config.table_size = r.table_size.unwrap_or(config.table_size);
        if config.rate == 0 || config.ipv4_prefix > 32 || config.ipv6_prefix > 128 {
            diags.error(
                loc.clone(),
                "[server.rrl]: rate must be above 0, prefixes at most 32 and 128",
            );
        }
        if !(16..=1 << 24).contains(&config.table_size) {
            diags.error(loc.clone(), "[server.rrl]: table_size must be between 16 and 16777216");
        }
        for net in &r.exempt {
            match pool::parse_network(net) {
                Ok(n) => config.exempt.push(n),
                Err(msg) => diags.error(loc.clone(), format!("[server.rrl] exempt: {msg}")),
            }
        }
        server.rrl = Some(config);
    }
    if let Some(secret) = &raw.server.cookie_secret {
        let text = secret.get_ref();
        let bytes: Option<Vec<u8>> = (text.len() == 32)
            .then(|| {
                (0..16)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        match bytes {
            Some(b) => server.cookie_secret = b.try_into().ok(),
            None => diags.error(
                at(secret.span().start),
                "cookie_secret must be 32 hex digits (16 bytes)",
            ),
        }
    }
    if let Some(nsid) = &raw.server.nsid {
        match parse_nsid(nsid.get_ref()) {
            Ok(bytes) => server.nsid = Some(bytes),
            Err(msg) => diags.error(at(nsid.span().start), msg),
        }
    }
    for (key, raw_value, value) in [
        ("identity", &raw.server.identity, &mut server.identity),
        ("version", &raw.server.version, &mut server.version),
    ] {
        if let Some(text) = raw_value {
            // One TXT character-string (RFC 1035 §3.3.14).
            match text.get_ref().len() {
                1..=255 => *value = Some(text.get_ref().clone()),
                _ => diags.error(at(text.span().start), format!("{key} must be 1 to 255 bytes")),
            }
        }
    }
    if let Some(metrics) = &raw.server.metrics {
        match metrics.get_ref().parse::<SocketAddr>() {
            Ok(addr) => server.metrics = Some(addr),
            Err(_) => diags.error(
                at(metrics.span().start),
                format!("bad metrics address {:?}: expected IP:PORT", metrics.get_ref()),
            ),
        }
    }
    for listen in &raw.server.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => config.server.listen.push(addr),
            Err(_) => diags.error(
                at(listen.span().start),
                format!(
                    "bad listen address {:?}: expected IP:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\"",
                    listen.get_ref()
                ),
            ),
        }
    }
    if let Some(l) = &raw.limits {
        let z = &mut config.limits.zone;
        z.zone_file_size = l.zone_file_size.unwrap_or(z.zone_file_size);
        z.zone_records = l.zone_records.unwrap_or(z.zone_records);
        z.include_depth = l.include_depth.unwrap_or(z.include_depth);
        config.limits.pool_names = l.pool_names.unwrap_or(config.limits.pool_names);
        config.limits.pool_members = l.pool_members.unwrap_or(config.limits.pool_members);
    }
    let limits = config.limits;
    for pool in raw.pool {
        if let Some(pool) = pool.validate(&at, diags) {
            let counts = [
                ("names", pool.names.len(), limits.pool_names, "pool_names"),
                ("members", pool.members.len(), limits.pool_members, "pool_members"),
            ];
            if let Some((what, n, max, key)) = counts.into_iter().find(|&(_, n, max, _)| n > max) {
                diags.error(
                    pool.loc.clone(),
                    format!("pool {} has {n} {what}, over limits.{key} ({max})", pool.name),
                );
                continue;
            }
            if config.pools.iter().any(|p| p.name == pool.name) {
                diags.error(pool.loc.clone(), format!("pool {} is configured twice", pool.name));
                continue;
            }
            config.pools.push(pool);
        }
    }
    pool::check_references(&config.pools, diags);
    for zone in raw.zone {
        let loc = at(zone.origin.span().start);
        let origin = match parse_origin(zone.origin.get_ref()) {
            Ok(origin) => origin,
            Err(msg) => {
                diags.error(loc, msg);
                continue;
            }
        };
        if let Some(first) = config.zones.iter().find(|z| z.origin == origin) {
            let first_line = first.loc.as_ref().map_or(0, |l| l.line);
            diags.error(
                loc,
                format!(
                    "zone {} is configured twice (first at line {first_line})",
                    name::to_text(origin.as_slice())
                ),
            );
            continue;
        }
        config.zones.push(ZoneConfig {
            origin,
            file: base.join(zone.file.get_ref()),
            loc,
        });
    }
}

/// The longest name server identifier accepted, in bytes: it rides in
/// every reply to a client that asks, so it is kept short.
pub const MAX_NSID: usize = 128;

/// A name server identifier (RFC 5001) as configured: text, sent as its
/// bytes, or `0x` and hex digits, as in Knot DNS.
fn parse_nsid(text: &str) -> Result<Vec<u8>, String> {
    let bytes = match text.strip_prefix("0x") {
        Some(hex) if hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect(),
        Some(_) => return Err("nsid: after 0x, an even number of hex digits".into()),
        None => text.as_bytes().to_vec(),
    };
    if bytes.is_empty() || bytes.len() > MAX_NSID {
        return Err(format!("nsid must be 1 to {MAX_NSID} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, Diagnostics> {
        let dir = std::env::temp_dir().join(format!("lbdns-config-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lbdns.toml");
        std::fs::write(&path, text).unwrap();
        let result = Config::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        });
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn reads_listen_and_zones_relative_to_the_file() {
        let config = load_text(
            "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\norigin = \"example.com\"\nfile = \"z/example.zone\"\n",
        )
        .unwrap();
        assert_eq!(config.server.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(config.server.io, IoKind::Auto);
        assert_eq!(config.server.tcp_idle_timeout, Duration::from_secs(10));
        assert_eq!(config.zones[0].origin.to_string(), "example.com");
        assert!(config.zones[0].file.ends_with("z/example.zone"));
        assert!(config.zones[0].file.is_absolute() || config.zones[0].file.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn unknown_keys_have_a_line() {
        let err = load_text("[server]\nlisten = [\"127.0.0.1:53\"]\nlisen = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lbdns.toml:3: error: unknown field `lisen`"), "{text}");
    }

    #[test]
    fn bad_values_and_duplicates_have_lines() {
        let err = load_text(
            "[server]\nlisten = [\"localhost\"]\n[[zone]]\norigin = \"a.\"\nfile = \"a\"\n[[zone]]\norigin = \"A.\"\nfile = \"b\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("lbdns.toml:2: error: bad listen address \"localhost\""),
            "{text}"
        );
        assert!(
            text.contains("lbdns.toml:7: error: zone A. is configured twice (first at line 4)"),
            "{text}"
        );
    }

    #[test]
    fn command_line_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("lbdns-config-o-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\norigin = \"a.\"\nfile = \"a\"\n",
        )
        .unwrap();
        let config = Config::load(&Overrides {
            config: Some(path),
            listen: vec!["127.0.0.2:5300".parse().unwrap()],
            workers: Some(3),
            io: Some(IoKind::Portable),
            pid_file: None,
            zones: vec![("a.".into(), "other".into()), ("b.".into(), "b".into())],
            zones_only: false,
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(config.server.listen, vec!["127.0.0.2:5300".parse().unwrap()]);
        assert_eq!((config.server.workers, config.server.io), (3, IoKind::Portable));
        assert_eq!(config.zones.len(), 2);
        assert_eq!(config.zones[0].file, PathBuf::from("other"));
    }

    #[test]
    fn server_settings_are_read_and_checked() {
        let config = load_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nworkers = 2\nio = \"mmsg\"\nbatch = 64\ntcp_idle_timeout = \"1500ms\"\ntcp_max_connections = 10\nuser = \"nobody\"\n[[zone]]\norigin = \"a.\"\nfile = \"a\"\n",
        )
        .unwrap();
        let s = &config.server;
        assert_eq!(
            (s.workers, s.io, s.batch, s.tcp_max_connections),
            (2, IoKind::Mmsg, 64, 10)
        );
        assert_eq!(s.tcp_idle_timeout, Duration::from_millis(1500));
        assert_eq!(s.user.as_deref(), Some("nobody"));
        let err = load_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nio = \"epoll\"\nbatch = 0\ntcp_idle_timeout = \"10 parsecs\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("lbdns.toml:3: error: unknown io back end \"epoll\""),
            "{err}"
        );
        assert!(
            err.contains("lbdns.toml:4: error: batch must be between 1 and 1024"),
            "{err}"
        );
        assert!(
            err.contains("lbdns.toml:5: error: bad duration \"10 parsecs\""),
            "{err}"
        );
    }

    #[test]
    fn nsid_is_text_or_hex() {
        assert_eq!(parse_nsid("edge-1"), Ok(b"edge-1".to_vec()));
        assert_eq!(parse_nsid("0x0aff"), Ok(vec![0x0a, 0xff]));
        assert!(parse_nsid("0xabc").is_err(), "odd digits");
        assert!(parse_nsid("0xzz").is_err(), "not hex");
        assert!(parse_nsid("").is_err());
        assert!(parse_nsid(&"n".repeat(MAX_NSID + 1)).is_err());
        assert_eq!(parse_nsid(&"n".repeat(MAX_NSID)).map(|b| b.len()), Ok(MAX_NSID));
        let err = load_text("[server]\nlisten = [\"127.0.0.1:53\"]\nnsid = \"0x1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lbdns.toml:3: error: nsid: after 0x, an even number of hex digits"),
            "{err}"
        );
    }

    #[test]
    fn identity_and_version_are_one_txt_string() {
        let config = load_text(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nidentity = \"edge-1\"\nversion = \"lbdns\"\n[[zone]]\norigin = \"a.\"\nfile = \"a\"\n",
        )
        .unwrap();
        assert_eq!(config.server.identity.as_deref(), Some("edge-1"));
        assert_eq!(config.server.version.as_deref(), Some("lbdns"));
        let long = "v".repeat(256);
        let err = load_text(&format!(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nversion = \"{long}\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("lbdns.toml:3: error: version must be 1 to 255 bytes"),
            "{err}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn zones_alone_do_for_check_and_explain() {
        let zones = vec![("a.".to_string(), PathBuf::from("a.zone"))];
        let config = Config::load(&Overrides {
            zones: zones.clone(),
            zones_only: true,
            ..Overrides::default()
        })
        .unwrap();
        assert!(config.server.listen.is_empty());
        let err = Config::load(&Overrides {
            zones,
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no listen address"), "{err}");
        // Nor without zones.
        let err = Config::load(&Overrides {
            zones_only: true,
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no zones"), "{err}");
    }

    #[test]
    fn nothing_to_serve_is_an_error() {
        let err = Config::load(&Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("no listen address"));
    }
}
