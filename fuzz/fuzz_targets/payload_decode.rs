//! Any decrypted payload on any channel (membership, roster, echo): parsing never panics,
//! and whatever parses encodes to something that parses the same.
#![no_main]

use cnspr_proto::payload::Payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(payload) = Payload::decode(bytes) {
        let encoded = payload.encode().expect("a parsed payload encodes");
        assert_eq!(Payload::decode(&encoded).as_ref(), Ok(&payload));
    }
});
