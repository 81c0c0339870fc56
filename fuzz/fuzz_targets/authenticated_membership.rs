//! A paired peer sends arbitrary failure-detection messages (channel 0) with waits
//! between: the node never panics, always says when to call it next, and still answers
//! the peer.
#![no_main]

use cnspr_fuzz::paired::{self, Paired};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paired::run(data, |_: &mut Paired, bytes: &[u8]| {
        vec![[&[0u8][..], bytes].concat()]
    });
});
