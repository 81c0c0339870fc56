//! Any text pasted into `cnspr join`: parsing never panics, and a token that parses
//! encodes to text that parses the same.
#![no_main]

use cnspr_proto::invite::InviteToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(token) = InviteToken::decode(text) {
        assert_eq!(InviteToken::decode(&token.encode()).as_ref(), Ok(&token));
    }
});
