//! Seal+open throughput of 1200-byte transport packets against raw ChaCha20-Poly1305
//! encrypt+decrypt of the same bytes, measured in one run so the ratio is fair.
//!
//! Run: `cargo bench -p cnspr-proto --bench transport`. Prints both rates and the ratio
//! (goal: at least 0.85).

// A benchmark has to read the clock; the core itself never does.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use cnspr_proto::identity::PublicKey;
use cnspr_proto::noise::TransportSecrets;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::TransportKeys;
use cnspr_proto::wire::{self, Packet};

const PAYLOAD_BYTES: usize = 1200;
const PACKETS: u64 = 100_000;
const ROUNDS: usize = 7;

fn raw_round(payload: &[u8]) -> f64 {
    let sender = ChaCha20Poly1305::new(&[1u8; 32].into());
    let receiver = ChaCha20Poly1305::new(&[1u8; 32].into());
    let mut buffer = Vec::with_capacity(PAYLOAD_BYTES + 16);
    let start = Instant::now();
    for counter in 0..PACKETS {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_le_bytes());
        let nonce = Nonce::from(nonce);
        buffer.clear();
        buffer.extend_from_slice(payload);
        let tag = sender
            .encrypt_in_place_detached(&nonce, &[], &mut buffer)
            .expect("encrypts");
        buffer.extend_from_slice(&tag);
        let (body, tag) = buffer.split_at_mut(PAYLOAD_BYTES);
        receiver
            .decrypt_in_place_detached(&nonce, &[], body, (&*tag).into())
            .expect("decrypts");
        black_box(&buffer);
    }
    start.elapsed().as_secs_f64()
}

fn cnspr_round(payload: &[u8]) -> f64 {
    let secrets = |send: u8, receive: u8| TransportSecrets {
        send_key: [send; 32],
        receive_key: [receive; 32],
        handshake_hash: [0; 32],
        remote_static: PublicKey([0; 32]),
    };
    let mut sender = TransportKeys::new(&secrets(1, 2), 10, 20, Timestamp::ZERO);
    let mut receiver = TransportKeys::new(&secrets(2, 1), 20, 10, Timestamp::ZERO);
    let mut datagram = Vec::with_capacity(wire::MAX_DATAGRAM_BYTES);
    let mut body = Vec::with_capacity(wire::MAX_DATAGRAM_BYTES);
    let start = Instant::now();
    for _ in 0..PACKETS {
        datagram.clear();
        sender.seal(payload, &mut datagram, u64::MAX).expect("seals");
        let Ok(Packet::Data {
            counter, ciphertext, ..
        }) = wire::decode(&datagram)
        else {
            panic!("a sealed packet decodes as data");
        };
        body.clear();
        body.extend_from_slice(ciphertext);
        let len = receiver.open(counter, &mut body).expect("opens");
        black_box(&body[..len]);
    }
    start.elapsed().as_secs_f64()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let payload = vec![0xa5u8; PAYLOAD_BYTES];
    // Warm up both paths, then interleave rounds so drift hits both alike.
    raw_round(&payload);
    cnspr_round(&payload);
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        raw.push(raw_round(&payload));
        ours.push(cnspr_round(&payload));
    }
    let rate = |seconds: f64| PACKETS as f64 * PAYLOAD_BYTES as f64 / seconds / 1e6;
    let (raw_mb_s, ours_mb_s) = (rate(median(raw)), rate(median(ours)));
    println!("payload {PAYLOAD_BYTES} B, {PACKETS} packets x {ROUNDS} rounds, median round");
    println!("raw chacha20poly1305 encrypt+decrypt: {raw_mb_s:8.1} MB/s");
    println!("cnspr transport seal+decode+open:     {ours_mb_s:8.1} MB/s");
    println!("ratio (cnspr / raw): {:.3}", ours_mb_s / raw_mb_s);
}
