//! A paired peer sends arbitrary messaging packets (channel 4: chunks and
//! acknowledgements of its own framing) with waits between: the node never panics, always
//! says when to call it next, and still answers the peer.
#![no_main]

use cnspr_fuzz::paired::{self, Paired};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paired::run(data, |_: &mut Paired, bytes: &[u8]| {
        vec![[&[4u8][..], bytes].concat()]
    });
});
