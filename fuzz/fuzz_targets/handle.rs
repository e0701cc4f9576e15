//! proto::handle on arbitrary bytes, over the test zones and pools; the
//! reply must be a well-formed message (checked by lbdns::fuzzing).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lbdns::fuzzing::handle(data);
});
