//! Zone loading and compiling on arbitrary zone-file text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lbdns::fuzzing::zone(data);
});
