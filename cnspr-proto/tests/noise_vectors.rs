//! Our Noise implementation against the Cacophony vectors for the two patterns we use.

use cnspr_proto::crypto::aead::CipherKey;
use cnspr_proto::identity::StaticKeypair;
use cnspr_proto::noise::{Handshake, Pattern, Role};
use serde_json::Value;

fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string field")).expect("valid hex in vector file")
}

fn key(value: &Value) -> [u8; 32] {
    bytes(value).try_into().expect("32-byte key in vector file")
}

fn run_vector(vector: &Value) {
    let name = vector["protocol_name"].as_str().expect("protocol name");
    let pattern = match name {
        "Noise_XX_25519_ChaChaPoly_BLAKE2s" => Pattern::XX,
        "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s" => Pattern::XXpsk3,
        other => panic!("unexpected vector {other}"),
    };
    assert_eq!(pattern.protocol_name(), name);
    let psk = |field: &str| vector.get(field).map(|psks| key(&psks[0]));
    let mut initiator = Handshake::new(
        pattern,
        Role::Initiator,
        &bytes(&vector["init_prologue"]),
        StaticKeypair::from_secret_bytes(key(&vector["init_static"])),
        key(&vector["init_ephemeral"]),
        psk("init_psks"),
    );
    let mut responder = Handshake::new(
        pattern,
        Role::Responder,
        &bytes(&vector["resp_prologue"]),
        StaticKeypair::from_secret_bytes(key(&vector["resp_static"])),
        key(&vector["resp_ephemeral"]),
        psk("resp_psks"),
    );
    let messages = vector["messages"].as_array().expect("messages");
    let mut handshake_messages = 0;
    for (i, message) in messages.iter().take(3).enumerate() {
        let (writer, reader) = if i % 2 == 0 {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        let payload = bytes(&message["payload"]);
        let mut sent = Vec::new();
        writer
            .write_message(&payload, &mut sent)
            .expect("write handshake message");
        assert_eq!(
            hex::encode(&sent),
            hex::encode(bytes(&message["ciphertext"])),
            "{name} message {i}"
        );
        assert_eq!(
            reader.read_message(&sent).expect("read handshake message"),
            payload
        );
        handshake_messages += 1;
    }
    assert_eq!(handshake_messages, 3);
    assert_eq!(
        initiator.handshake_hash().to_vec(),
        bytes(&vector["handshake_hash"])
    );
    let initiator = initiator.into_transport().expect("initiator finished");
    let responder = responder.into_transport().expect("responder finished");
    assert_eq!(initiator.handshake_hash, responder.handshake_hash);

    let initiator_send = CipherKey::new(&initiator.send_key);
    let responder_send = CipherKey::new(&responder.send_key);
    let mut counters = [0u64; 2];
    for (i, message) in messages.iter().enumerate().skip(3) {
        let direction = i % 2;
        let (sender, receiver) = if direction == 0 {
            (&initiator_send, CipherKey::new(&responder.receive_key))
        } else {
            (&responder_send, CipherKey::new(&initiator.receive_key))
        };
        let payload = bytes(&message["payload"]);
        let mut sealed = Vec::new();
        sender.seal(counters[direction], &[], &payload, &mut sealed);
        assert_eq!(
            hex::encode(&sealed),
            hex::encode(bytes(&message["ciphertext"])),
            "{name} transport {i}"
        );
        assert_eq!(
            receiver.open(counters[direction], &[], &sealed).expect("opens"),
            payload
        );
        counters[direction] += 1;
    }
}

#[test]
fn every_cacophony_vector_of_our_patterns_passes() {
    let file: Value =
        serde_json::from_str(include_str!("vectors/cacophony-xx-blake2s.json")).expect("vector file is JSON");
    let vectors = file["vectors"].as_array().expect("vector list");
    let names: Vec<&str> = vectors
        .iter()
        .filter_map(|v| v["protocol_name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s"
        ]
    );
    for vector in vectors {
        run_vector(vector);
    }
}
