//! Operations: hot reload under load, a broken reload, metrics that match
//! the traffic, and `explain` agreeing with the server.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use lbdns::server::control::parse_metrics;

use crate::support::{self, QueryBuilder, Server, decode};

fn temp_dir() -> PathBuf {
    support::temp_config("").parent().unwrap().to_path_buf()
}

fn hup(server: &Server) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
}

/// The metrics address the server logged at start.
fn metrics_addr(server: &Server) -> SocketAddr {
    let line = server
        .startup
        .iter()
        .find(|l| l.contains("metrics and explain on http://"));
    if let Some(line) = line {
        let rest = line.split("http://").nth(1).unwrap();
        return rest.split('/').next().unwrap().parse().unwrap();
    }
    panic!("no metrics line in {:?}", server.startup)
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The server's log lines, collected until `pattern` shows up (10 s).
fn wait_log(server: &Server, pattern: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = server.log.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(pattern);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
    panic!("no log line with {pattern:?} in:\n{}", seen.join("\n"));
}

fn pool_config(dir: &Path, members: &[&str], extra_server: &str) -> String {
    let members: Vec<String> = members.iter().map(|m| format!("{{ address = \"{m}\" }}")).collect();
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{extra_server}\n[[zone]]\norigin = \"example.com.\"\nfile = \"{}\"\n\n[[pool]]\nname = \"r\"\nnames = [\"reload.example.com.\"]\nanswers = 2\nmembers = [{}]\n",
        dir.join("example.com.zone").display(),
        members.join(", ")
    )
}

#[test]
fn reload_under_load_loses_nothing() {
    let dir = temp_dir();
    let zones = support::data_dir().join("zones");
    std::fs::copy(zones.join("example.com.zone"), dir.join("example.com.zone")).unwrap();
    std::fs::copy(zones.join("included.inc"), dir.join("included.inc")).unwrap();
    let config = dir.join("lbdns.toml");
    let a = pool_config(&dir, &["192.0.2.101", "192.0.2.102"], "metrics = \"127.0.0.1:0\"");
    let b = pool_config(&dir, &["192.0.2.201", "192.0.2.202"], "metrics = \"127.0.0.1:0\"");
    std::fs::write(&config, &a).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let set_a: BTreeSet<String> = ["192.0.2.101", "192.0.2.102"].iter().map(|s| s.to_string()).collect();
    let set_b: BTreeSet<String> = ["192.0.2.201", "192.0.2.202"].iter().map(|s| s.to_string()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr;
    let client = {
        let stop = stop.clone();
        let (set_a, set_b) = (set_a.clone(), set_b.clone());
        thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let (mut answered, mut seen_a, mut seen_b) = (0u32, 0u32, 0u32);
            let mut id = 0u16;
            while !stop.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let mut q = QueryBuilder::new("reload.example.com.", "A");
                q.id = id;
                socket.send_to(&q.build(), addr).unwrap();
                let mut buf = [0u8; 512];
                let Ok((len, _)) = socket.recv_from(&mut buf) else {
                    return Err(format!("query {id} lost after {answered} answers"));
                };
                let reply = decode(&buf[..len]);
                assert_eq!(reply.id, id);
                let got: BTreeSet<String> = reply
                    .answer
                    .iter()
                    .map(|r| r.rsplit(' ').next().unwrap().to_string())
                    .collect();
                if got == set_a {
                    seen_a += 1;
                } else if got == set_b {
                    seen_b += 1;
                } else {
                    panic!("an answer from neither configuration: {:?}", reply.answer);
                }
                answered += 1;
            }
            Ok((answered, seen_a, seen_b))
        })
    };
    for i in 0..100 {
        // Replaced whole (write, then rename), as configuration tools do: a
        // reload still reading the file from the last signal must not see
        // it half written, which would rightly count as a failed reload.
        let next = dir.join("lbdns.toml.next");
        std::fs::write(&next, if i % 2 == 0 { &b } else { &a }).unwrap();
        std::fs::rename(&next, &config).unwrap();
        hup(&server);
        thread::sleep(Duration::from_millis(30));
    }
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let result = client.join().expect("client thread");
    let (answered, seen_a, seen_b) = match result {
        Ok(counts) => counts,
        Err(why) => {
            let stopped = server.stop();
            panic!("{why}; server log:\n{}", stopped.log.join("\n"));
        }
    };
    assert!(
        answered > 100 && seen_a > 0 && seen_b > 0,
        "{answered} answers: {seen_a} from A, {seen_b} from B"
    );
    let metrics = parse_metrics(&http_get(metrics_addr(&server), "/metrics").1);
    let ok = metrics["lbdns_reloads_total{result=\"success\"}"];
    assert!(ok >= 10.0, "reloads applied: {ok}");
    let failed = metrics["lbdns_reloads_total{result=\"failure\"}"];
    if failed != 0.0 {
        let stopped = server.stop();
        panic!("{failed} reloads failed; server log:\n{}", stopped.log.join("\n"));
    }
}

#[test]
fn broken_reload_keeps_the_old_configuration() {
    let dir = temp_dir();
    let zone = dir.join("z.zone");
    std::fs::write(
        &zone,
        "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nold A 192.0.2.2\n",
    )
    .unwrap();
    let server = Server::start(&["--zone", &format!("reload.test.={}", zone.display())]);
    let ask = |name: &str| decode(&udp(&server, &QueryBuilder::new(name, "A").build()));
    assert_eq!(ask("old.reload.test.").rcode, "NOERROR");
    std::fs::write(
        &zone,
        "$TTL 60\n@ SOA ns hm 2 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nnew A 192.0.2.3\nbad A 999.1.1.1\n",
    )
    .unwrap();
    hup(&server);
    let log = wait_log(&server, "reload failed; the previous configuration keeps serving").join("\n");
    assert!(log.contains("z.zone:6: error: expected IPv4 address"), "{log}");
    assert_eq!(
        ask("old.reload.test.").answer,
        ["old.reload.test. 60 IN A 192.0.2.2"],
        "old data still served"
    );
    assert_eq!(ask("new.reload.test.").rcode, "NXDOMAIN");
    std::fs::write(
        &zone,
        "$TTL 60\n@ SOA ns hm 3 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nnew A 192.0.2.3\n",
    )
    .unwrap();
    hup(&server);
    wait_log(&server, "reload: new configuration serving");
    assert_eq!(ask("new.reload.test.").answer, ["new.reload.test. 60 IN A 192.0.2.3"]);
    assert_eq!(ask("old.reload.test.").rcode, "NXDOMAIN");
}

#[test]
fn nsid_is_sent_when_asked_and_changes_at_a_reload() {
    let config = support::temp_config("nsid = \"first\"\n");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut query = QueryBuilder::new("www.example.com.", "A").edns(1232);
    let plain = query.build();
    query.edns.as_mut().unwrap().3.push((3, Vec::new()));
    let asking = query.build();
    let options = |bytes: &[u8]| decode(bytes).edns.expect("an OPT").3;
    assert_eq!(options(&udp(&server, &asking)), ["3:6669727374"], "\"first\"");
    assert!(options(&udp(&server, &plain)).is_empty(), "not asked, not sent");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("nsid = \"first\"", "nsid = \"0x0102\"")).unwrap();
    hup(&server);
    wait_log(&server, "reload: new configuration serving");
    assert_eq!(options(&udp(&server, &asking)), ["3:0102"]);
}

fn udp(server: &Server, query: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket.send_to(query, server.addr).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn metrics_match_the_traffic_and_health() {
    let closed = TcpStream::connect("127.0.0.1:1").is_err();
    assert!(closed, "nothing listens on 127.0.0.1:1");
    let config = support::temp_config(
        "metrics = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"m\"\nnames = [\"m.example.com.\"]\nmembers = [{ address = \"127.0.0.61\" }, { address = \"127.0.0.62\" }]\n[pool.check]\nkind = \"tcp\"\nport = 1\ninterval = \"100ms\"\nfall = 1\n",
    );
    // [server] settings are above the zones; the pool went there too: move it.
    let text = std::fs::read_to_string(&config).unwrap();
    let (server_part, rest) = text.split_once("\n[[zone]]").unwrap();
    let (server_only, pool) = server_part.split_once("\n\n[[pool]]").unwrap();
    std::fs::write(&config, format!("{server_only}\n[[zone]]{rest}\n[[pool]]{pool}\n")).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--workers", "2"]);
    let metrics_at = metrics_addr(&server);
    for _ in 0..7 {
        udp(&server, &QueryBuilder::new("www.example.com.", "A").build());
    }
    for _ in 0..3 {
        udp(&server, &QueryBuilder::new("www.example.com.", "AAAA").build());
    }
    for _ in 0..2 {
        udp(&server, &QueryBuilder::new("nothere.example.org.", "MX").build());
    }
    // FORMERR three times: a readable question with an additional record
    // missing (counted as TXT); a question cut short, and no question with
    // an additional record missing (no type to count).
    let mut missing_record = QueryBuilder::new("www.example.com.", "TXT").build();
    missing_record[11] = 1;
    let mut cut_short = missing_record[..14].to_vec();
    cut_short[11] = 0;
    let mut no_question = missing_record[..12].to_vec();
    no_question[5] = 0;
    for broken in [missing_record, cut_short, no_question] {
        assert_eq!(udp(&server, &broken)[3] & 0x0F, 1, "FORMERR");
    }
    // Wait until the checks have taken both members down.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (status, body) = http_get(metrics_at, "/metrics");
        assert_eq!(status, 200);
        let m = parse_metrics(&body);
        if m.get("lbdns_member_up{pool=\"m\",member=\"127.0.0.61\"}") == Some(&0.0)
            && m.get("lbdns_member_up{pool=\"m\",member=\"127.0.0.62\"}") == Some(&0.0)
        {
            // Prometheus text: every sample is NAME{LABELS} VALUE, and the
            // exposition ends with # EOF.
            for line in body.lines().filter(|l| !l.starts_with('#')) {
                let (key, value) = line.rsplit_once(' ').expect("sample line");
                assert!(value.parse::<f64>().is_ok(), "{line}");
                assert!(key.starts_with("lbdns_"), "{line}");
            }
            assert!(body.trim_end().ends_with("# EOF"), "{body}");
            break m;
        }
        assert!(Instant::now() < deadline, "members never went down:\n{body}");
        thread::sleep(Duration::from_millis(100));
    };
    // all_down = "all": both still handed out, and counted.
    for _ in 0..4 {
        let reply = decode(&udp(&server, &QueryBuilder::new("m.example.com.", "A").build()));
        assert_eq!(reply.answer.len(), 1);
    }
    let after = parse_metrics(&http_get(metrics_at, "/metrics").1);
    assert_eq!(metrics["lbdns_queries_by_type_total{qtype=\"A\"}"], 7.0);
    assert_eq!(metrics["lbdns_queries_by_type_total{qtype=\"AAAA\"}"], 3.0);
    assert_eq!(metrics["lbdns_queries_by_type_total{qtype=\"MX\"}"], 2.0);
    assert_eq!(metrics["lbdns_queries_by_type_total{qtype=\"TXT\"}"], 1.0);
    assert_eq!(metrics["lbdns_queries_by_type_total{qtype=\"other\"}"], 0.0);
    assert_eq!(metrics["lbdns_queries_total{transport=\"udp\"}"], 15.0);
    assert_eq!(metrics["lbdns_responses_total{rcode=\"FORMERR\"}"], 3.0);
    assert_eq!(metrics["lbdns_responses_total{rcode=\"NOERROR\"}"], 10.0);
    assert_eq!(metrics["lbdns_responses_total{rcode=\"REFUSED\"}"], 2.0);
    let selected = after["lbdns_member_selected_total{pool=\"m\",member=\"127.0.0.61\"}"]
        + after["lbdns_member_selected_total{pool=\"m\",member=\"127.0.0.62\"}"];
    assert_eq!(selected, 4.0);
    assert!(metrics["lbdns_member_checks_failed{pool=\"m\",member=\"127.0.0.61\"}"] >= 1.0);
    assert_eq!(metrics["lbdns_zones"], 2.0);
    assert_eq!(metrics["lbdns_snapshot_generation"], 1.0);
    let workers: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("lbdns_worker_queries_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(workers, 15.0, "per-worker counters add up");
}

fn explain_cli(config: &Path, name: &str, client: &str, ecs: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbdns"));
    cmd.args([
        "explain",
        "--config",
        config.to_str().unwrap(),
        name,
        "A",
        "--client",
        client,
        "--json",
    ]);
    if let Some(ecs) = ecs {
        cmd.args(["--ecs", ecs]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn chosen(e: &serde_json::Value) -> BTreeSet<String> {
    e["pool"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["chosen"].as_bool().unwrap())
        .map(|m| m["address"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn explain_matches_the_server() {
    let pools = r#"
[[pool]]
name = "s"
names = ["sticky.example.com."]
policy = "sticky"
members = [{ address = "192.0.2.71" }, { address = "192.0.2.72" }, { address = "192.0.2.73" }]

[[pool]]
name = "f"
names = ["fo.example.com."]
policy = "failover"
members = [{ address = "192.0.2.81", tier = 2 }, { address = "192.0.2.82" }]

[[pool]]
name = "w"
names = ["w.example.com."]
policy = "weighted"
members = [{ address = "192.0.2.91", weight = 5 }, { address = "192.0.2.92", weight = 0 }]

[[pool]]
name = "geo"
names = ["geo.example.com."]
policy = "topology"
default = "w"
[[pool.map]]
networks = ["10.0.0.0/8"]
pool = "f"
"#;
    let config = support::temp_config("metrics = \"127.0.0.1:0\"");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(pools);
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let ask = |name: &str, ecs: Option<[u8; 3]>| -> BTreeSet<String> {
        let mut q = QueryBuilder::new(name, "A").edns(1232);
        if let Some(net) = ecs {
            q.edns
                .as_mut()
                .unwrap()
                .3
                .push((8, vec![0, 1, 24, 0, net[0], net[1], net[2]]));
        }
        decode(&udp(&server, &q.build()))
            .answer
            .iter()
            .map(|r| r.rsplit(' ').next().unwrap().to_string())
            .collect()
    };
    for net in 0..20u8 {
        let ecs = format!("10.7.{net}.0/24");
        let e = explain_cli(&config, "sticky.example.com.", "127.0.0.1", Some(&ecs));
        assert_eq!(
            chosen(&e),
            ask("sticky.example.com.", Some([10, 7, net])),
            "sticky for {ecs}"
        );
        assert_eq!(e["ecs_scope"], 24);
    }
    let e = explain_cli(&config, "fo.example.com.", "127.0.0.1", None);
    assert_eq!(chosen(&e), ask("fo.example.com.", None));
    assert!(e["pool"]["why"].as_str().unwrap().contains("lowest tier"));
    // Weighted: the server's pick is among explain's candidates; weight 0 is not one.
    let e = explain_cli(&config, "w.example.com.", "127.0.0.1", None);
    let candidates: BTreeSet<String> = e["pool"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["candidate"].as_bool().unwrap())
        .map(|m| m["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(candidates, ["192.0.2.91".to_string()].into());
    assert!(ask("w.example.com.", None).is_subset(&candidates));
    // Topology with and without ECS, from the CLI and live over HTTP.
    let e = explain_cli(&config, "geo.example.com.", "127.0.0.1", Some("10.1.2.0/24"));
    assert_eq!(chosen(&e), ask("geo.example.com.", Some([10, 1, 2])));
    assert_eq!(e["pool"]["served_by"], "f");
    assert_eq!(e["ecs_scope"], 8);
    let (status, body) = http_get(
        metrics_addr(&server),
        "/explain?name=geo.example.com.&type=A&client=192.0.2.200",
    );
    assert_eq!(status, 200, "{body}");
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(live["pool"]["served_by"], "w");
    assert_eq!(chosen(&live), ["192.0.2.91".to_string()].into());
    let (status, _) = http_get(metrics_addr(&server), "/explain?type=A");
    assert_eq!(status, 400, "name= is required");
}

#[test]
fn systemd_readiness_and_reload_command() {
    let dir = temp_dir();
    let notify = dir.join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let pid_file = dir.join("lbdns.pid");
    let zone = support::data_dir().join("zones/sub.example.com.zone");
    let server = Server::start_with_env(
        &[
            "--zone",
            &format!("sub.example.com.={}", zone.display()),
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &[("NOTIFY_SOCKET", notify.to_str().unwrap())],
    );
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = listener.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1\nSTATUS=serving");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        server.pid().to_string()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["reload", "--pid-file", pid_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    wait_log(&server, "reload: new configuration serving");
    let stopped = server.stop();
    assert_eq!(stopped.code, Some(0));
    assert_eq!(next(), "STOPPING=1");
    assert!(!pid_file.exists(), "the pid file is removed at exit");
}

#[test]
fn the_production_example_checks() {
    let dir = temp_dir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::copy(
        root.join("examples/zones/example.com.zone"),
        dir.join("zones/example.com.zone"),
    )
    .unwrap();
    std::fs::copy(root.join("dist/lbdns.toml"), dir.join("lbdns.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["check", "--config", dir.join("lbdns.toml").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 pool(s)"));
    let unit = std::fs::read_to_string(root.join("dist/lbdns.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in dist/lbdns.service");
    }
}

#[test]
fn reload_keeps_member_health() {
    let port = TcpStream::connect("127.0.0.1:1").map(|_| 0).unwrap_or(1);
    assert_eq!(port, 1, "nothing listens on port 1");
    let live = std::net::TcpListener::bind("127.0.0.81:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    drop(live);
    // .81 answers on the check port, .82 does not. Checks are slow (10 s)
    // so that after the reload only the carried state can keep .82 out.
    let backend = std::net::TcpListener::bind(("127.0.0.81", live_port)).unwrap();
    let config = support::temp_config("");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[pool]]\nname = \"k\"\nnames = [\"keep.example.com.\"]\nanswers = 2\nall_down = \"none\"\nmembers = [{{ address = \"127.0.0.81\" }}, {{ address = \"127.0.0.82\" }}]\n[pool.check]\nkind = \"tcp\"\nport = {live_port}\ninterval = \"10s\"\ntimeout = \"300ms\"\nfall = 1\nrise = 1\n"
    ));
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let ask = || -> BTreeSet<String> {
        decode(&udp(&server, &QueryBuilder::new("keep.example.com.", "A").build()))
            .answer
            .iter()
            .map(|r| r.rsplit(' ').next().unwrap().to_string())
            .collect()
    };
    wait_log(&server, "health: k 127.0.0.82 is down");
    assert_eq!(ask(), ["127.0.0.81".to_string()].into());
    hup(&server);
    wait_log(&server, "reload: new configuration serving");
    for _ in 0..20 {
        assert_eq!(ask(), ["127.0.0.81".to_string()].into(), "no flap back to initial = up");
    }
    drop(backend);
}

#[test]
fn json_logs_and_query_sampling() {
    let config = support::temp_config("query_log = 2");
    let server = Server::start(&["--config", config.to_str().unwrap(), "--log-format", "json"]);
    for _ in 0..4 {
        udp(&server, &QueryBuilder::new("www.example.com.", "A").build());
    }
    let lines = wait_log(&server, "\"message\":\"query\"");
    for line in server.startup.iter().chain(&lines) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    let query: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(query["fields"]["question"], "www.example.com A");
    assert_eq!(query["fields"]["rcode"], "0");
}

#[test]
fn explain_shows_the_types_the_loader_reads_itself_in_their_own_text() {
    // KX and SPF are read as MX and TXT, LOC and URI converted by
    // src/zone/extra.rs; explain prints each as text, not RFC 3597 hex.
    for (name, qtype, want) in [
        (
            "kx.example.com.",
            "KX",
            "kx.example.com. 3600 IN KX 10 mail.example.com.",
        ),
        (
            "spf.example.com.",
            "SPF",
            "IN SPF \"v=spf1\" \" include:_spf.example.net\" \"~all\"",
        ),
        (
            "loc.example.com.",
            "LOC",
            "IN LOC 52 22 23.000 N 4 53 32.000 E -2m 0m 10000m 10m",
        ),
        (
            "uri.example.com.",
            "URI",
            "IN URI 10 1 \"ftp://ftp1.example.com/public\"",
        ),
        // A type domain has no mnemonic for is still asked for by name.
        ("nothere.example.com.", "NSAP-PTR", "NXDOMAIN"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
            .args(["explain", "--config"])
            .arg(crate::support::data_dir().join("zones/lbdns.toml"))
            .args([name, qtype])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(want), "{want:?} not in:\n{stdout}");
    }
}
