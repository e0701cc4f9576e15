//! The `lbdns` command: parse the command line, load, then serve, check,
//! explain or signal a reload, and map failures to exit codes (1:
//! configuration or zone errors, 2: usage, 3: cannot start serving).

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lbdns::config::{Config, IoKind, Overrides};
use lbdns::server::Server;

// mimalloc: the allocator of choice for a long-running multi-threaded
// server (small, fast, returns memory); the answer path itself does not
// allocate, but loading and reloading large zones does, a lot.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "lbdns", version, about = "A load-balancing authoritative DNS server")]
struct Cli {
    /// Log filter: error, warn, info, debug, trace (or a RUST_LOG-style directive).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Log as text lines or as JSON objects.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the configured zones and pools.
    Serve(Common),
    /// Check the configuration and zones, print every problem, and exit.
    Check(CheckArgs),
    /// Show the answer for a name, type and client, and why.
    Explain(ExplainArgs),
    /// Ask a running server to reload (SIGHUP to the pid in its pid file).
    Reload {
        /// The server's pid file (`[server] pid_file` or `serve --pid-file`).
        #[arg(long, value_name = "FILE")]
        pid_file: PathBuf,
    },
}

#[derive(Args)]
struct Common {
    /// The configuration file (TOML).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to serve UDP and TCP on (repeatable; replaces the config's list).
    #[arg(long, value_name = "IP:PORT")]
    listen: Vec<SocketAddr>,
    /// UDP workers (0: one per CPU this process may use).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// UDP back end: auto, mmsg, uring or portable.
    #[arg(long, value_name = "BACKEND")]
    io: Option<IoKind>,
    /// A zone to serve (repeatable; replaces a configured zone of that origin).
    #[arg(long, value_name = "ORIGIN=FILE", value_parser = parse_zone)]
    zone: Vec<(String, PathBuf)>,
    /// Write the process id here (for `lbdns reload`).
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    common: Common,
    /// Also print every zone as loaded, as a zone file: each record with
    /// its absolute owner, TTL and type (what `$GENERATE`, `$INCLUDE`,
    /// `$TTL` and `@` made of the files).
    #[arg(long)]
    print: bool,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    common: Common,
    /// The name asked.
    name: String,
    /// The type asked.
    #[arg(default_value = "A")]
    qtype: String,
    /// The client's address.
    #[arg(long, default_value = "127.0.0.1")]
    client: IpAddr,
    /// An EDNS Client Subnet, e.g. 10.1.2.0/24.
    #[arg(long, value_name = "PREFIX")]
    ecs: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_zone(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((origin, file)) if !origin.is_empty() && !file.is_empty() => Ok((origin.to_string(), PathBuf::from(file))),
        _ => Err("expected ORIGIN=FILE, e.g. example.com.=zones/example.com.zone".into()),
    }
}

fn overrides(common: Common) -> Overrides {
    Overrides {
        config: common.config,
        listen: common.listen,
        workers: common.workers,
        io: common.io,
        pid_file: common.pid_file,
        zones: common.zone,
        zones_only: false,
    }
}

/// For `check` and `explain`, which bind nothing: `--zone` alone will do.
fn zones_only(common: Common) -> Overrides {
    Overrides {
        zones_only: true,
        ..overrides(common)
    }
}

/// Loads the configuration and the snapshot; prints every problem.
fn load(overrides: &Overrides) -> Result<(Config, lbdns::snapshot::Snapshot), lbdns::diag::Diagnostics> {
    let config = Config::load(overrides)?;
    let (snap, diags) = lbdns::load_snapshot(&config);
    match snap {
        Some(snap) => {
            for warning in &diags.items {
                tracing::warn!("{warning}");
            }
            Ok((config, snap))
        }
        None => Err(diags),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    lbdns::zone::quiet_scanner_panics();
    match cli.command {
        Command::Serve(common) => serve(overrides(common)),
        Command::Check(args) => check(zones_only(args.common), args.print),
        Command::Explain(args) => explain(args),
        Command::Reload { pid_file } => reload(&pid_file),
    }
}

fn check(overrides: Overrides, print: bool) -> ExitCode {
    let config = match Config::load(&overrides) {
        Ok(config) => config,
        Err(diags) => {
            eprint!("{diags}");
            return ExitCode::from(1);
        }
    };
    let (snap, diags) = lbdns::load_snapshot(&config);
    eprint!("{diags}");
    let Some(snap) = snap else {
        eprintln!("lbdns: {} error(s); nothing loaded", diags.error_count());
        return ExitCode::from(1);
    };
    let records: usize = snap.zones().iter().map(|z| z.records).sum();
    let summary = format!(
        "ok: {} zone(s), {} record(s), {} name(s), {} pool(s)",
        snap.zones().len(),
        records,
        snap.node_count(),
        snap.pools().pools.len()
    );
    if !print {
        println!("{summary}");
        return ExitCode::SUCCESS;
    }
    // The snapshot keeps answers, not records: read the zones again.
    drop(snap);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for zc in &config.zones {
        let mut diags = lbdns::diag::Diagnostics::default();
        let Some(zone) = lbdns::read::zone(zc, &config.limits.zone, &mut diags) else {
            eprint!("{diags}");
            return ExitCode::from(1);
        };
        let origin = lbdns::name::to_text(zc.origin.as_slice());
        let written = writeln!(out, "; zone {origin} from {}", zc.file.display())
            .and_then(|()| lbdns::explain::write_zone(&zone, &mut out))
            .and_then(|()| out.flush());
        if let Err(err) = written {
            eprintln!("lbdns: cannot print the zones: {err}");
            return ExitCode::from(1);
        }
    }
    eprintln!("{summary}");
    ExitCode::SUCCESS
}

fn explain(args: ExplainArgs) -> ExitCode {
    let ecs = match args.ecs.as_deref().map(lbdns::explain::parse_ecs).transpose() {
        Ok(ecs) => ecs,
        Err(msg) => {
            eprintln!("lbdns: --ecs: {msg}");
            return ExitCode::from(2);
        }
    };
    let (_, snap) = match load(&zones_only(args.common)) {
        Ok(loaded) => loaded,
        Err(diags) => {
            eprint!("{diags}");
            return ExitCode::from(1);
        }
    };
    let question = lbdns::explain::Question {
        name: args.name,
        qtype: args.qtype,
        client: args.client,
        ecs,
    };
    match lbdns::explain::explain(&snap, &question) {
        Ok(e) if args.json => {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(e) => {
            print!("{}", e.to_text());
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("lbdns: {msg}");
            ExitCode::from(2)
        }
    }
}

fn reload(pid_file: &std::path::Path) -> ExitCode {
    let pid = match std::fs::read_to_string(pid_file).map(|t| t.trim().parse::<i32>()) {
        Ok(Ok(pid)) => pid,
        Ok(Err(_)) => {
            eprintln!("lbdns: {}: not a process id", pid_file.display());
            return ExitCode::from(1);
        }
        Err(err) => {
            eprintln!("lbdns: cannot read {}: {err}", pid_file.display());
            return ExitCode::from(1);
        }
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP) {
        Ok(()) => {
            println!("sent SIGHUP to lbdns (pid {pid}); its log says how the reload went");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("lbdns: cannot signal pid {pid}: {err}");
            ExitCode::from(1)
        }
    }
}

fn serve(overrides: Overrides) -> ExitCode {
    let started = std::time::Instant::now();
    let (config, snap) = match load(&overrides) {
        Ok(loaded) => loaded,
        Err(diags) => {
            eprint!("{diags}");
            eprintln!("lbdns: {} error(s); nothing loaded", diags.error_count());
            return ExitCode::from(1);
        }
    };
    let server = match Server::bind(&config.server) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("lbdns: {err}");
            return ExitCode::from(3);
        }
    };
    if let Err(err) = server.drop_privileges() {
        eprintln!("lbdns: {err}");
        return ExitCode::from(3);
    }
    let records: usize = snap.zones().iter().map(|z| z.records).sum();
    for zone in snap.zones() {
        tracing::info!(zone = %lbdns::name::to_text(&zone.origin), records = zone.records, "zone loaded");
    }
    for pool in &snap.pools().pools {
        tracing::info!(
            pool = %pool.name,
            names = pool.names.len(),
            members = pool.members.len(),
            checked = pool.check.is_some(),
            "pool loaded"
        );
    }
    tracing::info!(
        zones = snap.zones().len(),
        records,
        pools = snap.pools().pools.len(),
        names = snap.node_count(),
        load_ms = started.elapsed().as_millis() as u64,
        "snapshot ready"
    );
    tracing::info!(workers = server.worker_count(), io = %server.io(), "udp workers");
    let pid_file = config.server.pid_file.clone();
    if let Some(path) = &pid_file
        && let Err(err) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        eprintln!("lbdns: cannot write the pid file {}: {err}", path.display());
        return ExitCode::from(3);
    }
    let reload_overrides = overrides.clone();
    let reload: lbdns::server::control::Reload = Arc::new(move || load(&reload_overrides));
    let snap = Arc::new(arc_swap::ArcSwap::from_pointee(snap));
    let result = server.run(snap, config, reload);
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lbdns: {err}");
            ExitCode::from(3)
        }
    }
}
