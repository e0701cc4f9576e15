//! The control plane, off the hot path: hot reload (SIGHUP), the metrics
//! and explain HTTP endpoint, and readiness notification to systemd.
//!
//! A reload re-reads the configuration and every zone and builds a new
//! snapshot on a blocking thread; only a snapshot that built without
//! errors is published, so a broken file leaves the old one serving.
//! Members that still exist keep their health; the health monitor is
//! replaced; settings that need new sockets are reported, not applied.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::stats::{QTYPES, RCODES};
use super::{SharedSnapshot, WorkerStats, tcp};
use crate::config::{Config, ServerConfig};
use crate::diag::Diagnostics;
use crate::explain;
use crate::health::Monitor;
use crate::snapshot::Snapshot;

/// Loads the configuration and builds a snapshot again (what `serve` did
/// at start, with the same command line).
pub type Reload = Arc<dyn Fn() -> Result<(Config, Snapshot), Diagnostics> + Send + Sync>;

/// What the control plane shares.
pub struct Control {
    pub swap: SharedSnapshot,
    pub reload: Reload,
    pub config: Mutex<Config>,
    pub monitor: Mutex<Arc<Monitor>>,
    pub workers: Vec<(usize, usize, Arc<WorkerStats>)>,
    pub tcp: Arc<tcp::State>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub last_reload: AtomicU64,
    pub generation: AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Settings a reload cannot apply to running sockets and threads.
fn restart_needed(old: &ServerConfig, new: &ServerConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let checks: [(&str, bool); 13] = [
        ("rrl", format!("{:?}", old.rrl) != format!("{:?}", new.rrl)),
        ("listen", old.listen != new.listen),
        ("workers", old.workers != new.workers),
        ("io", old.io != new.io),
        ("batch", old.batch != new.batch),
        ("recv_buffer", old.recv_buffer != new.recv_buffer),
        ("udp_dont_fragment", old.udp_dont_fragment != new.udp_dont_fragment),
        ("tcp_idle_timeout", old.tcp_idle_timeout != new.tcp_idle_timeout),
        (
            "tcp_max_connections",
            old.tcp_max_connections != new.tcp_max_connections,
        ),
        ("tcp_max_buffer", old.tcp_max_buffer != new.tcp_max_buffer),
        ("user", old.user != new.user),
        ("group", old.group != new.group),
        ("metrics", old.metrics != new.metrics),
    ];
    for (name, differs) in checks {
        if differs {
            changed.push(name);
        }
    }
    changed
}

impl Control {
    /// Reloads; logs what happened. Never stops the server.
    pub async fn reload(self: &Arc<Self>) {
        notify_systemd("RELOADING=1");
        let started = std::time::Instant::now();
        let reload = self.reload.clone();
        let result = tokio::task::spawn_blocking(move || reload()).await;
        match result {
            Ok(Ok((config, snap))) => {
                {
                    let old = self.config.lock().unwrap_or_else(|e| e.into_inner());
                    for setting in restart_needed(&old.server, &config.server) {
                        tracing::warn!(
                            setting,
                            "reload: {setting} changed; that takes effect only after a restart"
                        );
                    }
                }
                let pools = snap.pools_arc().clone();
                let old_monitor = self.monitor.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let monitor = Monitor::new(self.swap.clone(), pools, Some(&old_monitor));
                old_monitor.stop();
                let live = monitor.live();
                let records: usize = snap.zones().iter().map(|z| z.records).sum();
                let (zones, pool_count) = (snap.zones().len(), snap.pools().pools.len());
                self.swap.store(Arc::new(snap.with_live(live)));
                monitor.start(config.server.admin_state.clone());
                *self.monitor.lock().unwrap_or_else(|e| e.into_inner()) = monitor;
                let mut current = self.config.lock().unwrap_or_else(|e| e.into_inner());
                // Settings that need a restart stay as they run.
                let running = current.server.clone();
                *current = config;
                current.server = ServerConfig {
                    ecs: current.server.ecs,
                    cookie_secret: current.server.cookie_secret,
                    nsid: current.server.nsid.clone(),
                    identity: current.server.identity.clone(),
                    version: current.server.version.clone(),
                    admin_state: current.server.admin_state.clone(),
                    query_log: current.server.query_log,
                    pid_file: current.server.pid_file.clone(),
                    ..running
                };
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                self.last_reload.store(now_secs(), Ordering::Relaxed);
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(
                    zones,
                    records,
                    pools = pool_count,
                    generation,
                    ms = started.elapsed().as_millis() as u64,
                    "reload: new configuration serving"
                );
            }
            Ok(Err(diags)) => {
                for item in &diags.items {
                    tracing::error!("reload: {item}");
                }
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    errors = diags.error_count(),
                    "reload failed; the previous configuration keeps serving"
                );
            }
            Err(err) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%err, "reload failed; the previous configuration keeps serving");
            }
        }
        notify_systemd("READY=1");
    }

    /// The Prometheus text exposition of every counter and gauge.
    pub fn metrics(&self) -> String {
        let mut registry = Registry::default();
        let counter = |value: u64| {
            let c: Counter = Counter::default();
            c.inc_by(value);
            c
        };
        let queries = Family::<Vec<(String, String)>, Counter>::default();
        let (mut udp, tcp_queries) = (0, self.tcp.stats().1);
        let per_worker = Family::<Vec<(String, String)>, Counter>::default();
        let mut qtypes = vec![0u64; QTYPES.len()];
        let mut rcodes = vec![0u64; RCODES.len()];
        let (mut truncated, mut dropped, mut rrl_dropped, mut rrl_slipped) = (0, 0, 0, 0);
        for (index, cpu, s) in &self.workers {
            udp += s.queries();
            per_worker
                .get_or_create(&vec![
                    ("worker".into(), index.to_string()),
                    ("cpu".into(), cpu.to_string()),
                ])
                .inc_by(s.queries());
            for (total, v) in qtypes.iter_mut().zip(s.by_qtype()) {
                *total += v;
            }
            for (total, v) in rcodes.iter_mut().zip(s.by_rcode()) {
                *total += v;
            }
            truncated += s.truncated();
            dropped += s.dropped();
            let (d, sl) = s.rrl();
            rrl_dropped += d;
            rrl_slipped += sl;
        }
        queries
            .get_or_create(&vec![("transport".into(), "udp".into())])
            .inc_by(udp);
        queries
            .get_or_create(&vec![("transport".into(), "tcp".into())])
            .inc_by(tcp_queries);
        registry.register("lbdns_queries", "DNS queries received", queries);
        registry.register("lbdns_worker_queries", "UDP queries received per worker", per_worker);
        let by_type = Family::<Vec<(String, String)>, Counter>::default();
        for ((_, name), v) in QTYPES.iter().zip(&qtypes) {
            by_type
                .get_or_create(&vec![("qtype".into(), (*name).into())])
                .inc_by(*v);
        }
        registry.register(
            "lbdns_queries_by_type",
            "UDP queries per QTYPE (those with one readable question)",
            by_type,
        );
        let by_rcode = Family::<Vec<(String, String)>, Counter>::default();
        for ((_, name), v) in RCODES.iter().zip(&rcodes) {
            by_rcode
                .get_or_create(&vec![("rcode".into(), (*name).into())])
                .inc_by(*v);
        }
        registry.register(
            "lbdns_responses",
            "UDP responses per RCODE (REFUSED included)",
            by_rcode,
        );
        registry.register("lbdns_truncated", "UDP responses sent with TC", counter(truncated));
        registry.register(
            "lbdns_dropped",
            "UDP datagrams not answered (malformed or oversized)",
            counter(dropped),
        );
        registry.register(
            "lbdns_rrl_dropped",
            "responses dropped by rate limiting",
            counter(rrl_dropped),
        );
        registry.register(
            "lbdns_rrl_slipped",
            "responses sent truncated by rate limiting",
            counter(rrl_slipped),
        );
        let (accepted, _, evicted) = self.tcp.stats();
        registry.register("lbdns_tcp_connections", "TCP connections accepted", counter(accepted));
        registry.register(
            "lbdns_tcp_evicted",
            "idle TCP connections closed for new ones",
            counter(evicted),
        );

        // Pools and members.
        let snap = self.swap.load_full();
        let monitor = self.monitor.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let report = monitor.report();
        let labels = |pool: &str, member: &IpAddr| {
            vec![
                ("pool".to_string(), pool.to_string()),
                ("member".to_string(), member.to_string()),
            ]
        };
        let up = Family::<Vec<(String, String)>, Gauge>::default();
        let passed = Family::<Vec<(String, String)>, Gauge>::default();
        let failed = Family::<Vec<(String, String)>, Gauge>::default();
        let latency = Family::<Vec<(String, String)>, Gauge>::default();
        let selected = Family::<Vec<(String, String)>, Counter>::default();
        let same_pools = Arc::ptr_eq(snap.pools_arc(), monitor.pools());
        for (p, pool) in snap.pools().pools.iter().enumerate() {
            for (m, member) in pool.members.iter().enumerate() {
                let l = labels(&pool.name, &member.addr);
                up.get_or_create(&l).set(i64::from(snap.live().pools[p].up[m]));
                selected.get_or_create(&l).inc_by(snap.pools().selected(p, m));
                if same_pools && pool.check.is_some() {
                    let (tracker, _) = report[p][m];
                    passed.get_or_create(&l).set(i64::from(tracker.successes));
                    failed.get_or_create(&l).set(i64::from(tracker.failures));
                    latency.get_or_create(&l).set(tracker.last_latency_ms as i64);
                }
            }
        }
        registry.register("lbdns_member_up", "1 while a pool member may be handed out", up);
        registry.register("lbdns_member_checks_passed", "consecutive passed health checks", passed);
        registry.register("lbdns_member_checks_failed", "consecutive failed health checks", failed);
        registry.register(
            "lbdns_member_check_latency_ms",
            "duration of the last health check, ms",
            latency,
        );
        registry.register(
            "lbdns_member_selected",
            "times a member was handed out (since the last reload)",
            selected,
        );

        let reloads = Family::<Vec<(String, String)>, Counter>::default();
        reloads
            .get_or_create(&vec![("result".into(), "success".into())])
            .inc_by(self.reloads_ok.load(Ordering::Relaxed));
        reloads
            .get_or_create(&vec![("result".into(), "failure".into())])
            .inc_by(self.reloads_failed.load(Ordering::Relaxed));
        registry.register("lbdns_reloads", "configuration reloads", reloads);
        let gauge = |v: u64| {
            let g: Gauge = Gauge::default();
            g.set(v as i64);
            g
        };
        registry.register(
            "lbdns_last_reload_success_timestamp_seconds",
            "when the last reload succeeded (or the server started)",
            gauge(self.last_reload.load(Ordering::Relaxed)),
        );
        registry.register(
            "lbdns_snapshot_generation",
            "configurations served since start (1 at start)",
            gauge(self.generation.load(Ordering::Relaxed)),
        );
        registry.register("lbdns_zones", "zones loaded", gauge(snap.zones().len() as u64));
        registry.register(
            "lbdns_records",
            "records loaded",
            gauge(snap.zones().iter().map(|z| z.records as u64).sum()),
        );
        let info = Family::<Vec<(String, String)>, Gauge>::default();
        info.get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1);
        registry.register("lbdns_build_info", "the running version", info);
        let mut text = String::new();
        if encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }

    /// Serves one HTTP request: `/metrics` or `/explain`.
    pub async fn http(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let respond = |status: StatusCode, kind: &str, body: String| {
            Response::builder()
                .status(status)
                .header("content-type", kind)
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
        };
        if req.method() != hyper::Method::GET {
            return Ok(respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            ));
        }
        match req.uri().path() {
            "/metrics" => Ok(respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics(),
            )),
            "/explain" => {
                let params = parse_query(req.uri().query().unwrap_or(""));
                match explain_request(&params).and_then(|q| explain::explain(&self.swap.load_full(), &q)) {
                    Ok(e) => Ok(respond(
                        StatusCode::OK,
                        "application/json",
                        serde_json::to_string_pretty(&e).unwrap_or_default() + "\n",
                    )),
                    Err(msg) => Ok(respond(
                        StatusCode::BAD_REQUEST,
                        "application/json",
                        serde_json::json!({ "error": msg }).to_string() + "\n",
                    )),
                }
            }
            _ => Ok(respond(
                StatusCode::NOT_FOUND,
                "text/plain",
                "try /metrics or /explain\n".into(),
            )),
        }
    }
}

/// `a=1&b=2` with percent-decoding.
fn parse_query(query: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn explain_request(params: &BTreeMap<String, String>) -> Result<explain::Question, String> {
    let name = params.get("name").ok_or("name= is required")?.clone();
    let qtype = params.get("type").cloned().unwrap_or_else(|| "A".into());
    let client = params
        .get("client")
        .ok_or("client= is required")?
        .parse::<IpAddr>()
        .map_err(|_| "client= must be an IP address")?;
    let ecs = match params.get("ecs") {
        Some(text) => Some(explain::parse_ecs(text)?),
        None => None,
    };
    Ok(explain::Question {
        name,
        qtype,
        client,
        ecs,
    })
}

/// Sends a state line to systemd when run as a `Type=notify` service
/// (the sd_notify protocol: a datagram to `$NOTIFY_SOCKET`).
pub fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    if let Err(err) = result {
        tracing::warn!(%err, "cannot notify systemd");
    }
}

/// The sample lines of a Prometheus text exposition: `name{labels}` →
/// value (for tests and tools).
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        if let Some((key, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse()
        {
            out.insert(key.to_string(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_settings_changed_by_a_reload_wait_for_a_restart() {
        let old = ServerConfig::default();
        assert!(restart_needed(&old, &old.clone()).is_empty());
        let new = ServerConfig {
            udp_dont_fragment: true,
            recv_buffer: 1 << 20,
            nsid: Some(b"edge-2".to_vec()),
            ..ServerConfig::default()
        };
        // The NSID is answered from the new snapshot; the socket options
        // stay as bound.
        assert_eq!(restart_needed(&old, &new), ["recv_buffer", "udp_dont_fragment"]);
    }
}
