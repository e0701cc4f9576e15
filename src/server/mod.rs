//! The multi-core engine: one pinned UDP worker per CPU, each with its own
//! `SO_REUSEPORT` socket per listen address; TCP on a small runtime of its
//! own; signals and privileges.
//!
//! Model: Knot's `udp_master` and gdnsd's one thread per `SO_REUSEPORT`
//! socket. A worker owns its sockets, buffers, random generator and
//! counters, and reads the snapshot through an `arc-swap` cache, so the
//! UDP path takes no lock, writes nothing shared and allocates nothing.

mod clock;
pub mod control;
mod stats;
mod tcp;

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache};
use socket2::{Domain, Protocol, Socket, Type};

pub use stats::WorkerStats;

use crate::config::{IoKind, ServerConfig};
use crate::io as udp_io;
use crate::lb::Picker;
use crate::proto::{self, Client, Outcome, Transport};
use crate::snapshot::Snapshot;

/// The snapshot every worker answers from; reload swaps it.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// A failure to start serving.
#[derive(Debug)]
pub struct StartError {
    pub what: String,
    pub source: io::Error,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.source.kind() {
            io::ErrorKind::AddrInUse => " (another process is using this port)",
            io::ErrorKind::PermissionDenied => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
            io::ErrorKind::AddrNotAvailable => " (no interface has this address)",
            _ => "",
        };
        write!(f, "{}: {}{hint}", self.what, self.source)
    }
}

impl std::error::Error for StartError {}

/// The CPUs this process may run on (`sched_getaffinity`: honours
/// `taskset` and cgroup cpusets).
pub fn allowed_cpus() -> Vec<usize> {
    let cpus: Vec<usize> = match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    };
    if cpus.is_empty() {
        (0..thread::available_parallelism().map_or(1, |n| n.get())).collect()
    } else {
        cpus
    }
}

/// How many UDP workers `config` asks for.
pub fn worker_count(config: &ServerConfig) -> usize {
    if config.workers == 0 {
        allowed_cpus().len()
    } else {
        config.workers
    }
}

/// Bound sockets, ready to serve.
pub struct Server {
    config: ServerConfig,
    io: IoKind,
    /// Per worker: its CPU and one UDP socket per listen address.
    workers: Vec<(usize, Vec<UdpSocket>)>,
    tcp: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    metrics: Option<TcpListener>,
    metrics_addr_bound: Option<SocketAddr>,
}

impl Server {
    /// Binds every socket: per worker a UDP socket on each listen address
    /// (`SO_REUSEPORT`), and one TCP listener per address. Port 0 picks a
    /// free port, the same for all.
    pub fn bind(config: &ServerConfig) -> Result<Server, StartError> {
        let cpus = allowed_cpus();
        let count = if config.workers == 0 {
            cpus.len()
        } else {
            config.workers
        };
        let (io, fallback) = udp_io::choose(config.io);
        if let Some(why) = fallback {
            tracing::warn!("{why}");
        }
        let mut workers: Vec<(usize, Vec<UdpSocket>)> =
            (0..count).map(|w| (cpus[w % cpus.len()], Vec::new())).collect();
        let mut tcp = Vec::new();
        let mut addrs = Vec::new();
        for &requested in &config.listen {
            let (addr, listener) = bind_tcp_and_port(requested)?;
            for (_, sockets) in workers.iter_mut() {
                sockets.push(bind_udp(addr, config.recv_buffer, config.udp_dont_fragment)?);
            }
            tcp.push(listener);
            addrs.push(addr);
        }
        let metrics = match config.metrics {
            Some(addr) => {
                let err = |source| StartError {
                    what: format!("cannot serve metrics on {addr}"),
                    source,
                };
                let listener = TcpListener::bind(addr).map_err(err)?;
                listener.set_nonblocking(true).map_err(err)?;
                Some(listener)
            }
            None => None,
        };
        let metrics_addr_bound = metrics.as_ref().and_then(|l| l.local_addr().ok());
        Ok(Server {
            config: config.clone(),
            io,
            workers,
            tcp,
            addrs,
            metrics,
            metrics_addr_bound,
        })
    }

    /// The addresses bound (ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The metrics address bound, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr_bound
    }

    /// The UDP back end in use.
    pub fn io(&self) -> IoKind {
        self.io
    }

    /// How many UDP workers will run.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Switches to the configured user and group (after binding, so that
    /// port 53 can be bound as root).
    pub fn drop_privileges(&self) -> Result<(), StartError> {
        drop_privileges(self.config.user.as_deref(), self.config.group.as_deref())
    }

    /// Serves until SIGTERM or SIGINT, then stops receiving, answers what
    /// it holds, and returns.
    pub fn run(
        self,
        snap: SharedSnapshot,
        config: crate::config::Config,
        reload: control::Reload,
    ) -> Result<(), StartError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let mut stats = Vec::new();
        for (index, (cpu, sockets)) in self.workers.into_iter().enumerate() {
            let worker_stats = Arc::new(WorkerStats::default());
            stats.push((index, cpu, worker_stats.clone()));
            let (stop, snap, io, batch) = (stop.clone(), snap.clone(), self.io, self.config.batch);
            let query_log = self.config.query_log;
            let rrl = self.config.rrl.clone();
            let handle = thread::Builder::new()
                .name(format!("udp-{index}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                        tracing::warn!(worker = index, cpu, "could not pin the worker to its CPU");
                    }
                    let settings = WorkerSettings { batch, query_log, rrl };
                    run_worker(io, &sockets, &settings, &stop, &snap, &worker_stats, index);
                })
                .map_err(|e| StartError {
                    what: "cannot start a worker thread".into(),
                    source: e,
                })?;
            handles.push(handle);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tcp")
            .on_thread_start(udp_io::sys::lower_thread_priority)
            .enable_all()
            .build()
            .map_err(|e| StartError {
                what: "cannot start the TCP runtime".into(),
                source: e,
            })?;
        // Health checks run on the same low-priority runtime as TCP.
        let monitor = {
            let _enter = runtime.enter();
            let pools = snap.load().pools_arc().clone();
            let monitor = crate::health::Monitor::new(snap.clone(), pools, None);
            monitor.start(self.config.admin_state.clone());
            monitor
        };
        let limits = tcp::Limits {
            idle_timeout: self.config.tcp_idle_timeout,
            max_connections: self.config.tcp_max_connections,
            max_buffer: self.config.tcp_max_buffer,
        };
        let tcp_state = Arc::new(tcp::State::new(limits, snap.clone(), stats.len()));
        for listener in self.tcp {
            let state = tcp_state.clone();
            runtime.spawn(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => tcp::accept_loop(listener, state).await,
                    Err(err) => tracing::error!(%err, "cannot serve tcp"),
                }
            });
        }
        let control = Arc::new(control::Control {
            swap: snap.clone(),
            reload,
            config: std::sync::Mutex::new(config),
            monitor: std::sync::Mutex::new(monitor),
            workers: stats.clone(),
            tcp: tcp_state.clone(),
            reloads_ok: Default::default(),
            reloads_failed: Default::default(),
            last_reload: std::sync::atomic::AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
            generation: std::sync::atomic::AtomicU64::new(1),
        });
        if let Some(listener) = self.metrics {
            let control = control.clone();
            runtime.spawn(async move { serve_http(listener, control).await });
        }
        // Signal handlers go in before the server says it serves, so that
        // a signal sent right after never finds the default action.
        let mut signals = {
            let _enter = runtime.enter();
            Signals::new()
        };
        if let Some(addr) = self.metrics_addr_bound {
            tracing::info!(%addr, "metrics and explain on http://{addr}/metrics");
        }
        for addr in &self.addrs {
            tracing::info!(%addr, "serving udp+tcp on {addr}");
        }
        control::notify_systemd("READY=1\nSTATUS=serving");
        let signal = runtime.block_on(async {
            loop {
                match signals.next().await {
                    "SIGHUP" => {
                        tracing::info!("SIGHUP: reloading");
                        control.reload().await;
                    }
                    other => break other,
                }
            }
        });
        control::notify_systemd("STOPPING=1");
        let stopping = Instant::now();
        tracing::info!(signal, "stopping");
        stop.store(true, Ordering::Relaxed);
        for handle in handles {
            let _ = handle.join();
        }
        runtime.shutdown_timeout(Duration::from_millis(300));
        for (index, cpu, s) in stats {
            tracing::info!(
                worker = index,
                cpu,
                queries = s.queries(),
                replies = s.replies(),
                dropped = s.dropped(),
                truncated = s.truncated(),
                "worker {index} stopped"
            );
        }
        let tcp = tcp_state.stats();
        tracing::info!(
            connections = tcp.0,
            queries = tcp.1,
            evicted = tcp.2,
            stop_ms = stopping.elapsed().as_millis() as u64,
            "stopped"
        );
        Ok(())
    }
}

/// Binds the TCP listener for `addr` (resolving port 0).
fn bind_tcp_and_port(requested: SocketAddr) -> Result<(SocketAddr, TcpListener), StartError> {
    let err = |source| StartError {
        what: format!("cannot listen on tcp {requested}"),
        source,
    };
    // With port 0, retry until a port is free for UDP as well.
    for _ in 0..32 {
        let socket = new_socket(requested, Type::STREAM).map_err(err)?;
        socket.set_reuse_address(true).map_err(err)?;
        socket.bind(&requested.into()).map_err(err)?;
        socket.listen(1024).map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().map_err(err)?;
        if requested.port() != 0 || UdpSocket::bind(addr).is_ok() {
            return Ok((addr, listener));
        }
    }
    Err(err(io::Error::from(io::ErrorKind::AddrInUse)))
}

fn new_socket(addr: SocketAddr, kind: Type) -> io::Result<Socket> {
    let protocol = if kind == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// A worker's UDP socket: `SO_REUSEPORT`, a large receive buffer,
/// non-blocking, path-MTU from ICMP ignored (DF set only with
/// `dont_fragment`), pktinfo when bound to a wildcard address.
fn bind_udp(addr: SocketAddr, recv_buffer: usize, dont_fragment: bool) -> Result<UdpSocket, StartError> {
    let err = |source| StartError {
        what: format!("cannot listen on udp {addr}"),
        source,
    };
    let socket = new_socket(addr, Type::DGRAM).map_err(err)?;
    socket.set_reuse_port(true).map_err(err)?;
    if socket.set_recv_buffer_size(recv_buffer).is_err() {
        tracing::debug!(recv_buffer, "SO_RCVBUF refused; keeping the default");
    }
    socket.bind(&addr.into()).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    let udp: UdpSocket = socket.into();
    use std::os::fd::AsRawFd;
    if let Err(why) = udp_io::sys::ignore_path_mtu(udp.as_raw_fd(), addr.is_ipv6(), dont_fragment) {
        tracing::debug!(%why, dont_fragment, "path-MTU setting refused; keeping the kernel's");
    }
    if addr.ip().is_unspecified() {
        udp_io::sys::enable_pktinfo(udp.as_raw_fd(), addr.is_ipv6()).map_err(err)?;
    }
    Ok(udp)
}

/// What a worker needs from the configuration.
struct WorkerSettings {
    batch: usize,
    query_log: u64,
    rrl: Option<crate::rrl::RrlConfig>,
}

/// One worker's loop: answer every datagram from the current snapshot.
fn run_worker(
    io: IoKind,
    sockets: &[UdpSocket],
    settings: &WorkerSettings,
    stop: &AtomicBool,
    snap: &SharedSnapshot,
    stats: &WorkerStats,
    index: usize,
) {
    let mut cache = Cache::new(&**snap);
    let mut rng = Picker::for_row(index);
    let query_log = settings.query_log;
    let mut until_log = query_log;
    let mut limiter = settings.rrl.as_ref().map(crate::rrl::Limiter::new);
    let result = udp_io::serve(io, sockets, settings.batch, stop, |query, meta, reply| {
        if meta.truncated {
            stats.count_query(None);
            stats.count_dropped();
            return false;
        }
        let client = Client {
            addr: meta.peer,
            transport: Transport::Udp,
            now: clock::now_secs,
        };
        let outcome = proto::handle(query, &client, cache.load(), &mut rng, reply);
        stats.count_query(outcome.qtype());
        if query_log > 0 {
            until_log -= 1;
            if until_log == 0 {
                until_log = query_log;
                log_query(query, &client, outcome);
            }
        }
        match outcome {
            Outcome::Reply {
                rcode,
                truncated,
                class,
                cookie,
                ..
            } => {
                // Rate limiting (UDP only); a valid server cookie proves
                // the source is not spoofed.
                if let Some(limiter) = limiter.as_mut().filter(|_| !cookie) {
                    match limiter.check(clock::now_ms(), meta.peer.ip(), class) {
                        crate::rrl::Verdict::Send => {}
                        crate::rrl::Verdict::Slip => {
                            proto::slip(reply);
                            stats.count_rrl(true);
                            return true;
                        }
                        crate::rrl::Verdict::Drop => {
                            stats.count_rrl(false);
                            return false;
                        }
                    }
                }
                stats.count_reply(rcode, truncated);
                true
            }
            Outcome::Drop => {
                stats.count_dropped();
                false
            }
        }
    });
    if let Err(err) = result {
        tracing::error!(%err, "udp worker failed");
    }
}

/// Logs one sampled query (`[server] query_log`).
fn log_query(query: &[u8], client: &Client, outcome: Outcome) {
    let question = domain::base::Message::from_slice(query)
        .ok()
        .and_then(|m| m.first_question())
        .map(|q| format!("{} {}", q.qname(), q.qtype()));
    let rcode = match outcome {
        Outcome::Reply { rcode, .. } => rcode.to_string(),
        Outcome::Drop => "dropped".into(),
    };
    tracing::info!(
        client = %client.addr,
        question = question.as_deref().unwrap_or("(unreadable)"),
        rcode = %rcode,
        "query"
    );
}

/// SIGTERM, SIGINT and SIGHUP, caught.
struct Signals {
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    /// Installs the handlers (inside a tokio runtime).
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Some([term, int, hup]),
            _ => {
                tracing::error!("cannot install signal handlers; stop with SIGKILL");
                None
            }
        };
        Signals { streams }
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        let Some([term, int, hup]) = &mut self.streams else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        }
    }
}

/// Serves `/metrics` and `/explain` over HTTP/1.1 (hyper).
async fn serve_http(listener: TcpListener, control: Arc<control::Control>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(err) => {
            tracing::error!(%err, "cannot serve metrics");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let control = control.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| control.clone().http(req));
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<(), StartError> {
    use nix::unistd::{Group, User, setgid, setgroups, setuid};
    let fail = |what: String, source: io::Error| StartError { what, source };
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    let user = match user {
        Some(name) => Some(
            User::from_name(name)
                .map_err(|e| fail(format!("cannot look up user {name}"), errno(e)))?
                .ok_or_else(|| fail(format!("no user {name}"), io::ErrorKind::NotFound.into()))?,
        ),
        None => None,
    };
    let gid = match group {
        Some(name) => Some(
            Group::from_name(name)
                .map_err(|e| fail(format!("cannot look up group {name}"), errno(e)))?
                .ok_or_else(|| fail(format!("no group {name}"), io::ErrorKind::NotFound.into()))?
                .gid,
        ),
        None => user.as_ref().map(|u| u.gid),
    };
    if let Some(gid) = gid {
        setgroups(&[gid]).map_err(|e| fail("cannot drop supplementary groups".into(), errno(e)))?;
        setgid(gid).map_err(|e| fail(format!("cannot switch to group {gid}"), errno(e)))?;
    }
    if let Some(user) = user {
        setuid(user.uid).map_err(|e| fail(format!("cannot switch to user {}", user.name), errno(e)))?;
        tracing::info!(user = %user.name, "privileges dropped");
    }
    Ok(())
}
