//! Any datagram: decoding never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|datagram: &[u8]| {
    if let Ok(packet) = cnspr_proto::wire::decode(datagram) {
        let mut encoded = Vec::new();
        packet.encode(&mut encoded);
        assert_eq!(encoded, datagram);
    }
});
