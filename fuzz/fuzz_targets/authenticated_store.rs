//! A paired peer delivers arbitrary store messages (pushes, catch-up summaries and parts,
//! roster entries: any bytes, as a correctly chunked store unit) with waits between: the
//! node never panics, always says when to call it next, and still answers the peer.
#![no_main]

use cnspr_fuzz::paired::{self, Paired};
use cnspr_proto::messaging::Unit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paired::run(data, |paired: &mut Paired, bytes: &[u8]| {
        let unit = Unit::Store(bytes.to_vec())
            .encode()
            .expect("a store unit encodes");
        paired.unit_payloads(&unit)
    });
});
