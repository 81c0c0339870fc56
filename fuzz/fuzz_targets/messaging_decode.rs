//! Any messaging packet (channel 4) and any reassembled unit: parsing never panics, and
//! whatever parses encodes to something that parses the same.
#![no_main]

use cnspr_proto::messaging::{Packet, Unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(packet) = Packet::decode(bytes) {
        assert_eq!(Packet::decode(&packet.encode()).as_ref(), Ok(&packet));
    }
    if let Ok(unit) = Unit::decode(bytes) {
        let encoded = unit.encode().expect("a parsed unit encodes");
        assert_eq!(Unit::decode(&encoded).as_ref(), Ok(&unit));
    }
});
