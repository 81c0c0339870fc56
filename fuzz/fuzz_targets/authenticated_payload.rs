//! A paired peer sends arbitrary decrypted payloads (any channel byte first) with waits
//! between: the node never panics, always says when to call it next, and still answers
//! the peer.
#![no_main]

use cnspr_fuzz::paired::{self, Paired};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paired::run(data, |_: &mut Paired, bytes: &[u8]| vec![bytes.to_vec()]);
});
