//! The configuration parser on arbitrary TOML text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lbdns::fuzzing::config(data);
});
