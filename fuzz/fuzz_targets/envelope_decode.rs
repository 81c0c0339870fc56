//! Any decrypted payload: parsing a membership message never panics, and whatever parses
//! encodes again.
#![no_main]

use cnspr_proto::membership::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    if let Ok(envelope) = Envelope::decode(payload) {
        let encoded = envelope.encode().expect("a parsed envelope encodes");
        assert_eq!(Envelope::decode(&encoded).as_ref(), Ok(&envelope));
    }
});
