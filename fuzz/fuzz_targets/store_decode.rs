//! Any bytes as a store message from a peer, or as a stored record: decoding never
//! panics, and a message that decodes re-encodes to bytes that decode the same.
#![no_main]

use cnspr_proto::durable::Record;
use cnspr_proto::store::sync::StoreMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(message) = StoreMessage::decode(bytes) {
        assert_eq!(StoreMessage::decode(&message.encode()).as_ref(), Ok(&message));
    }
    let _ = Record::decode(bytes);
});
