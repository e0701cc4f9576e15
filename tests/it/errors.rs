//! Broken zones and configurations: `lbdns check` (the same code `serve`
//! runs) reports each problem with its file and line, and exits non-zero.

use std::process::Command;

use crate::support::data_dir;

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .arg("check")
        .args(args)
        .current_dir(data_dir())
        .env("NO_COLOR", "1")
        .output()
        .expect("lbdns runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_config_checks_clean() {
    let (code, stdout, stderr) = check(&["--config", "zones/lbdns.toml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok: 3 zone(s)"), "{stdout}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn every_zone_problem_is_reported_with_its_line() {
    let (code, _, stderr) = check(&["--config", "broken/zones.toml"]);
    assert_eq!(code, 1, "{stderr}");
    for expected in [
        "broken/syntax.zone:5: error: expected IPv4 address",
        "broken/semantic.zone:2: error: 2 SOA records at the apex; exactly one is allowed",
        "broken/semantic.zone: error: no NS records at the apex example.org.",
        "broken/semantic.zone:6: error: CNAME at www.example.org. beside other data (A)",
        "broken/semantic.zone:7: error: owner other.example.net. is outside the zone example.org.",
        "broken/semantic.zone:8: error: SOA record for sub.example.org. outside the apex",
        "broken/semantic.zone:9: warning: delegation deleg.example.org. has name server ns.deleg.example.org. below the cut without glue",
        "broken/semantic.zone:10: error: dn.example.org. has 2 DNAME records; only one is allowed (RFC 6672 §2.4)",
        "broken/semantic.zone:12: error: x.dn.example.org. is below the DNAME at dn.example.org.; a DNAME owner can have no names below it (RFC 6672 §2.4)",
        "broken/semantic.zone:13: warning: DNAME at the wildcard *.w.example.org. is served as data only",
        "broken/include-missing.zone:5: error: cannot read included file",
        "broken/loop.inc:2: error: $INCLUDE nested deeper than limits.include_depth (8)",
        "broken/no-such-file.zone: error: cannot read zone file",
        // Types whose text `extra` reads, and one nothing here reads.
        "broken/types.zone:5: error: LOC: latitude out of range",
        "broken/types.zone:6: error: URI: 3 fields expected, found 2",
        "broken/types.zone:7: error: X25 takes 1 character-string(s), found 2",
        "broken/types.zone:8: error: EUI48: bad address \"00-00-5e-00-53\" (want 6 hex pairs joined by '-')",
        "broken/types.zone:9: error: no text form is known here for this record type: write its data in RFC 3597 form",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("nothing loaded"), "{stderr}");
}

#[test]
fn unknown_config_key_is_located() {
    let (code, _, stderr) = check(&["--config", "broken/unknown-key.toml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("broken/unknown-key.toml:3: error: unknown field `lisen`"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "only the real problem is reported:\n{stderr}"
    );
}

#[test]
fn missing_config_field_is_located() {
    let (code, _, stderr) = check(&["--config", "broken/bad-values.toml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("broken/bad-values.toml:8: error: missing field `origin`"),
        "{stderr}"
    );
}

#[test]
fn bad_command_line_zone_is_rejected() {
    let (code, _, stderr) = check(&["--listen", "127.0.0.1:5353", "--zone", "bad..name.=x.zone"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--zone bad..name.: bad zone origin"), "{stderr}");
    let (code, _, stderr) = check(&["--listen", "127.0.0.1:5353", "--zone", "no-equals-sign"]);
    assert_eq!(code, 2, "usage error: {stderr}");
    assert!(stderr.contains("expected ORIGIN=FILE"), "{stderr}");
}

#[test]
fn zones_from_the_command_line_need_no_config_file() {
    let (code, stdout, stderr) = check(&[
        "--listen",
        "127.0.0.1:5353",
        "--zone",
        "example.com.=zones/example.com.zone",
        "--zone",
        "sub.example.com=zones/sub.example.com.zone",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok: 2 zone(s)"), "{stdout}");
}

#[test]
fn pool_problems_are_located() {
    let (code, _, stderr) = check(&["--config", "broken/pools.toml"]);
    assert_eq!(code, 1, "{stderr}");
    for expected in [
        "broken/pools.toml:37: error: unknown policy \"fastest\"",
        "broken/pools.toml:38: error: answers must be between 1 and 16",
        "broken/pools.toml:39: error: bad member address \"192.0.2.300\"",
        "broken/pools.toml:29: error: pool dangling: all_down names no pool \"missing\"",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // Fixing those shows the zone-dependent ones.
    let fixed = std::fs::read_to_string(crate::support::data_dir().join("broken/pools.toml"))
        .unwrap()
        .replace("all_down = \"missing\"", "all_down = \"none\"")
        .replace("policy = \"fastest\"", "policy = \"random\"")
        .replace("answers = 99", "answers = 2")
        .replace("192.0.2.300", "192.0.2.30")
        .replace(
            "../zones/",
            &format!("{}/", crate::support::data_dir().join("zones").display()),
        );
    let path = crate::support::temp_config("").with_file_name("pools.toml");
    std::fs::write(&path, fixed).unwrap();
    let (code, _, stderr) = check(&["--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    for expected in [
        "zones/example.com.zone:18: error: www.example.com. A records and pool conflict both answer for this name",
        "pools.toml:14: error: pool nowhere: www.example.org. is in no zone served here",
        "pools.toml:19: error: pool below-cut: x.deleg.example.com. is at or below a zone cut",
        "pools.toml:24: error: pool below-dname: x.dname.example.com. is below the DNAME at dname.example.com., which redirects it",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn ecs_can_be_turned_off() {
    use crate::support::{QueryBuilder, Server, decode, temp_config};
    let config = temp_config("ecs = false");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut q = QueryBuilder::new("www.example.com.", "AAAA").edns(1232);
    q.edns.as_mut().unwrap().3.push((8, vec![0, 1, 24, 0, 10, 1, 2]));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&q.build(), server.addr).unwrap();
    let mut buf = [0u8; 1024];
    let (len, _) = socket.recv_from(&mut buf).unwrap();
    let reply = decode(&buf[..len]);
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(reply.edns.expect("OPT").3, Vec::<String>::new(), "not echoed when off");
}

#[test]
fn limits_are_named_when_exceeded() {
    let zones = crate::support::data_dir().join("zones");
    let config = crate::support::temp_config("");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[limits]\nzone_records = 10\ninclude_depth = 0\npool_members = 1\n\n[[pool]]\nname = \"big\"\nnames = [\"big.example.com.\"]\nmembers = [{ address = \"192.0.2.1\" }, { address = \"192.0.2.2\" }]\n");
    std::fs::write(&config, text).unwrap();
    let (code, _, stderr) = check(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("pool big has 2 members, over limits.pool_members (1)"),
        "{stderr}"
    );
    // Without the pool, the zone limits show.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, &text[..text.find("[[pool]]").unwrap()]).unwrap();
    let (code, _, stderr) = check(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("more records than limits.zone_records (10); loading stopped"),
        "{stderr}"
    );
    let _ = zones;
    let big = crate::support::temp_config("").with_file_name("size.toml");
    std::fs::write(
        &big,
        format!(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[limits]\nzone_file_size = 100\n[[zone]]\norigin = \"sub.example.com.\"\nfile = \"{}\"\n",
            crate::support::data_dir().join("zones/sub.example.com.zone").display()
        ),
    )
    .unwrap();
    let (code, _, stderr) = check(&["--config", big.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("over limits.zone_file_size (100)"), "{stderr}");
}

#[test]
fn check_print_writes_the_zones_as_loaded() {
    // Zones alone will do: check binds nothing, so needs no --listen.
    let (code, stdout, stderr) = check(&["--zone", "example.com.=generate/generate.zone", "--print"]);
    assert_eq!(code, 0, "{stderr}");
    // The summary goes to stderr, so that stdout is a zone file.
    assert!(stderr.contains("ok: 1 zone(s), 30 record(s)"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "; zone example.com. from generate/generate.zone");
    assert_eq!(lines.len(), 31, "{stdout}");
    for record in [
        "host-3.example.com. 300 IN A 10.0.0.3",
        "mx2.example.com. 60 IN MX 10 mail2.example.com.",
        "srv3.example.com. 300 IN SRV 0 5 5003 target5003.example.com.",
        "\\$d5.example.com. 300 IN CNAME example.com.",
        "nib4.0.0.example.com. 3600 IN AAAA 2001:db8::4",
        "na.f.example.com. 300 IN TXT \"v250\" \"$\" \"$\" \"x\"",
    ] {
        assert!(lines.contains(&record), "no {record:?} in:\n{stdout}");
    }
    // Without --print, the summary alone, on stdout.
    let (code, stdout, _) = check(&["--zone", "example.com.=generate/generate.zone"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, "ok: 1 zone(s), 30 record(s), 35 name(s), 0 pool(s)\n");
}
