//! The fuzz corpus as ordinary tests: seeds and every minimised crasher
//! in tests/data/fuzz/TARGET/ go through the fuzz targets' code.

use crate::support::data_dir;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = data_dir().join("fuzz").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{} panics", path.display());
        count += 1;
    }
    assert!(count >= 5, "only {count} inputs for {target}");
}

#[test]
fn handle_corpus() {
    replay("handle", lbdns::fuzzing::handle);
}

#[test]
fn zone_corpus() {
    replay("zone", lbdns::fuzzing::zone);
}

#[test]
fn config_corpus() {
    replay("config", lbdns::fuzzing::config);
}
