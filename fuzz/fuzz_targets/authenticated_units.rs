//! A paired peer delivers arbitrary messaging units (direct messages, events, summaries,
//! queries, answers, store messages: any bytes, correctly chunked) with waits between:
//! the node never panics, always says when to call it next, and still answers the peer.
#![no_main]

use cnspr_fuzz::paired::{self, Paired};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paired::run(data, Paired::unit_payloads);
});
