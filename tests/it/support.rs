//! Shared helpers: building queries, reading replies, loading the test
//! zones, and running the real `lbdns` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use domain::base::iana::{Class, Rtype};
use domain::base::name::{Name, ParsedName};
use domain::base::{Message, ParsedRecord};
use domain::rdata::AllRecordData;
use lbdns::config::{Config, Overrides};
use lbdns::snapshot::Snapshot;

/// The folder with the test zones.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The snapshot of the standard test zones (example.com. and its hosted
/// child sub.example.com.).
pub fn test_snapshot() -> Snapshot {
    let config = Config::load(&Overrides {
        config: Some(data_dir().join("zones/lbdns.toml")),
        ..Overrides::default()
    })
    .expect("test config loads");
    let (snap, diags) = lbdns::load_snapshot(&config);
    snap.unwrap_or_else(|| panic!("test zones load:\n{diags}"))
}

/// EDNS in a query: payload size, version, DO, options (code, data).
pub type EdnsParams = (u16, u8, bool, Vec<(u16, Vec<u8>)>);

/// A query under construction.
#[derive(Clone, Debug)]
pub struct QueryBuilder {
    pub id: u16,
    pub qname: String,
    pub qtype: u16,
    pub qclass: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    pub qr: bool,
    pub qdcount: Option<u16>,
    /// EDNS: payload size, version, DO, options (code, data).
    pub edns: Option<EdnsParams>,
    pub opt_count: usize,
}

impl QueryBuilder {
    pub fn new(qname: &str, qtype: &str) -> Self {
        QueryBuilder {
            id: 0x1234,
            qname: qname.to_string(),
            qtype: rtype(qtype),
            qclass: 1,
            opcode: 0,
            rd: false,
            cd: false,
            qr: false,
            qdcount: None,
            edns: None,
            opt_count: 1,
        }
    }

    pub fn edns(mut self, size: u16) -> Self {
        self.edns = Some((size, 0, false, Vec::new()));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.id.to_be_bytes());
        let mut flags1 = (self.opcode & 0x0F) << 3;
        if self.qr {
            flags1 |= 0x80;
        }
        if self.rd {
            flags1 |= 0x01;
        }
        out.push(flags1);
        out.push(if self.cd { 0x10 } else { 0 });
        let arcount = if self.edns.is_some() { self.opt_count as u16 } else { 0 };
        out.extend_from_slice(&self.qdcount.unwrap_or(1).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&arcount.to_be_bytes());
        let name = Name::<Vec<u8>>::from_str(&self.qname).expect("test qname parses");
        // `qdcount 0` sends no question at all.
        for _ in 0..self.qdcount.unwrap_or(1) {
            out.extend_from_slice(name.as_slice());
            out.extend_from_slice(&self.qtype.to_be_bytes());
            out.extend_from_slice(&self.qclass.to_be_bytes());
        }
        if let Some((size, version, dnssec_ok, options)) = &self.edns {
            for _ in 0..self.opt_count {
                let mut rdata = Vec::new();
                for (code, data) in options {
                    rdata.extend_from_slice(&code.to_be_bytes());
                    rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    rdata.extend_from_slice(data);
                }
                out.extend_from_slice(&[0, 0, 41]);
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&[0, *version, if *dnssec_ok { 0x80 } else { 0 }, 0]);
                out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                out.extend_from_slice(&rdata);
            }
        }
        out
    }
}

/// A record type by mnemonic (or TYPEnnn).
pub fn rtype(text: &str) -> u16 {
    Rtype::from_str(text)
        .unwrap_or_else(|_| panic!("unknown type {text}"))
        .to_int()
}

/// A class by mnemonic.
pub fn class(text: &str) -> u16 {
    match text {
        "ANY" => 255,
        _ => Class::from_str(text)
            .unwrap_or_else(|_| panic!("unknown class {text}"))
            .to_int(),
    }
}

/// A reply, decoded into comparable text.
#[derive(Clone, Debug)]
pub struct Reply {
    pub id: u16,
    pub opcode: u8,
    /// The extended RCODE, by name (NOERROR, BADVERS, ...).
    pub rcode: String,
    /// Set flags, in the order qr aa tc rd ra z ad cd.
    pub flags: Vec<&'static str>,
    pub question: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    /// EDNS: (payload size, version, DO, options as "code:hex").
    pub edns: Option<(u16, u8, bool, Vec<String>)>,
    pub size: usize,
}

fn record_text(record: ParsedRecord<'_, [u8]>) -> String {
    let rec = record
        .to_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
        .expect("record data parses")
        .expect("known record data");
    format!(
        "{}. {} {} {} {}",
        rec.owner(),
        rec.ttl().as_secs(),
        rec.class(),
        rec.rtype(),
        rec.data()
    )
    .replacen("..", ".", 1)
}

/// Decodes a reply; panics (failing the test) on anything malformed,
/// including bad compression pointers.
pub fn decode(bytes: &[u8]) -> Reply {
    let msg = Message::from_slice(bytes).expect("reply has a header");
    let h = msg.header();
    let mut flags = Vec::new();
    for (set, name) in [
        (h.qr(), "qr"),
        (h.aa(), "aa"),
        (h.tc(), "tc"),
        (h.rd(), "rd"),
        (h.ra(), "ra"),
        (h.z(), "z"),
        (h.ad(), "ad"),
        (h.cd(), "cd"),
    ] {
        if set {
            flags.push(name);
        }
    }
    let question = msg
        .question()
        .map(|q| {
            let q = q.expect("question parses");
            format!("{}. {} {}", q.qname(), q.qclass(), q.qtype()).replacen("..", ".", 1)
        })
        .collect();
    let mut sections = [Vec::new(), Vec::new(), Vec::new()];
    let mut edns = None;
    let mut section = msg.answer().expect("answer section parses");
    for (i, out) in sections.iter_mut().enumerate() {
        for record in &mut section {
            let record = record.expect("record parses");
            if record.rtype() == Rtype::OPT {
                let rdata = record
                    .to_record::<domain::base::rdata::UnknownRecordData<&[u8]>>()
                    .expect("OPT parses")
                    .expect("is OPT");
                let mut options = Vec::new();
                let mut rest: &[u8] = rdata.data().data();
                while rest.len() >= 4 {
                    let code = u16::from_be_bytes([rest[0], rest[1]]);
                    let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                    let data = &rest[4..(4 + len).min(rest.len())];
                    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                    options.push(format!("{code}:{hex}"));
                    rest = &rest[(4 + len).min(rest.len())..];
                }
                let ttl = record.ttl().as_secs();
                edns = Some((record.class().to_int(), (ttl >> 16) as u8, ttl & 0x8000 != 0, options));
                continue;
            }
            out.push(record_text(record));
        }
        if i < 2 {
            section = section
                .next_section()
                .expect("next section parses")
                .expect("section exists");
        }
    }
    let [answer, authority, additional] = sections;
    let rcode = msg.opt_rcode();
    Reply {
        id: h.id(),
        opcode: h.opcode().to_int(),
        rcode: rcode.to_string(),
        flags,
        question,
        answer,
        authority,
        additional,
        edns,
        size: bytes.len(),
    }
}

/// A running `lbdns serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// The first address it serves on.
    pub addr: SocketAddr,
    /// The server's log lines after the listen line.
    pub log: mpsc::Receiver<String>,
    /// Log lines read while starting.
    pub startup: Vec<String>,
}

/// How a server ended.
pub struct Stopped {
    pub code: Option<i32>,
    pub log: Vec<String>,
    pub elapsed: Duration,
}

/// Writes a config file serving the test zones with `server_lines` added
/// to `[server]`; returns its path (removed with the temp dir at exit).
pub fn temp_config(server_lines: &str) -> PathBuf {
    let zones = data_dir().join("zones");
    let dir = std::env::temp_dir().join(format!("lbdns-it-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lbdns.toml");
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{server_lines}\n[[zone]]\norigin = \"example.com.\"\nfile = \"{}\"\n[[zone]]\norigin = \"sub.example.com.\"\nfile = \"{}\"\n",
        zones.join("example.com.zone").display(),
        zones.join("sub.example.com.zone").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl Server {
    /// Starts the real binary with `args` (plus `--listen 127.0.0.1:0`
    /// unless they listen somewhere), and waits for it to report the
    /// address it bound.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// As [`Server::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbdns"));
        cmd.arg("serve").args(args);
        if !args.contains(&"--listen") && !args.contains(&"--config") && !args.contains(&"-c") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(["--log-level", "info"])
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lbdns starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut startup = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // Text or JSON logs: the address runs until a character
                    // no address has.
                    let found = line.split("serving udp+tcp on ").nth(1).map(|rest| {
                        let end = rest
                            .find(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c)))
                            .unwrap_or(rest.len());
                        rest[..end].parse::<SocketAddr>().expect("socket address")
                    });
                    startup.push(line);
                    if let Some(addr) = found {
                        return Server {
                            child,
                            addr,
                            log: rx,
                            startup,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "lbdns did not report its listen address in time:\n{}",
                        startup.join("\n")
                    );
                }
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (at most 10 s) for the process to exit.
    pub fn stop(mut self) -> Stopped {
        let started = std::time::Instant::now();
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal lbdns");
        let mut code = None;
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.try_wait().expect("wait") {
                code = status.code();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = started.elapsed();
        let mut log = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
        Stopped { code, log, elapsed }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
