//! The `lbdns` command: parse the command line, load, serve or check, and
//! map failures to exit codes (1: configuration or zone errors, 2: usage,
//! 3: cannot start serving).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the configured zones.
    Serve(Common),
    /// Check the configuration and zones, print every problem, and exit.
    Check(Common),
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
}

fn parse_zone(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((origin, file)) if !origin.is_empty() && !file.is_empty() => Ok((origin.to_string(), PathBuf::from(file))),
        _ => Err("expected ORIGIN=FILE, e.g. example.com.=zones/example.com.zone".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let (serve, common) = match cli.command {
        Command::Serve(c) => (true, c),
        Command::Check(c) => (false, c),
    };
    let overrides = Overrides {
        config: common.config,
        listen: common.listen,
        workers: common.workers,
        io: common.io,
        zones: common.zone,
    };
    let config = match Config::load(&overrides) {
        Ok(config) => config,
        Err(diags) => {
            eprint!("{diags}");
            return ExitCode::from(1);
        }
    };
    let started = std::time::Instant::now();
    let (snap, diags) = lbdns::load_snapshot(&config);
    eprint!("{diags}");
    let Some(snap) = snap else {
        eprintln!("lbdns: {} error(s); nothing loaded", diags.error_count());
        return ExitCode::from(1);
    };
    let records: usize = snap.zones().iter().map(|z| z.records).sum();
    if !serve {
        println!(
            "ok: {} zone(s), {} record(s), {} name(s)",
            snap.zones().len(),
            records,
            snap.node_count()
        );
        return ExitCode::SUCCESS;
    }
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
    for zone in snap.zones() {
        tracing::info!(zone = %lbdns::name::to_text(&zone.origin), records = zone.records, "zone loaded");
    }
    tracing::info!(
        zones = snap.zones().len(),
        records,
        names = snap.node_count(),
        load_ms = started.elapsed().as_millis() as u64,
        "snapshot ready"
    );
    tracing::info!(workers = server.worker_count(), io = %server.io(), "udp workers");
    for addr in server.local_addrs() {
        tracing::info!(%addr, "serving udp+tcp on {addr}");
    }
    let snap = Arc::new(arc_swap::ArcSwap::from_pointee(snap));
    match server.run(snap) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lbdns: {err}");
            ExitCode::from(3)
        }
    }
}
