//! Writes the seed corpora (`fuzz/seeds/<target>/`) from real traffic: a node paired with
//! the harness's peer stores, publishes, sends and asks, and what it sends the peer,
//! decrypted, is cut into the inputs of each target. Run `fuzz/write-seeds` after a
//! format changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cnspr_fuzz::paired::Paired;
use cnspr_fuzz::steps;
use cnspr_proto::identity::DeviceKey;
use cnspr_proto::invite::InviteToken;
use cnspr_proto::messaging::{Packet, Tag, Unit};
use cnspr_proto::payload::Payload;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::{Endpoint, EndpointConfig};
use cnspr_runtime::api;

/// Inputs by target, each kept once.
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, BTreeSet<Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, input: Vec<u8>) {
        self.0.entry(target).or_default().insert(input);
    }

    /// Files every target's inputs as `seed-NNN` (replacing what was there).
    fn write(&self, root: &Path) -> std::io::Result<()> {
        for (target, inputs) in &self.0 {
            let dir = root.join(target);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            for (index, input) in inputs.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{index:03}")), input)?;
            }
            println!("{target}: {} seeds", inputs.len());
        }
        Ok(())
    }

    /// Files a payload the node sent under every target that reads such a thing.
    fn add_payload(&mut self, payload: &[u8]) {
        self.add("payload_decode", payload.to_vec());
        self.add("authenticated_payload", steps::send(payload));
        match Payload::decode(payload) {
            Ok(Payload::Membership(_)) => {
                self.add("envelope_decode", payload[1..].to_vec());
                self.add("authenticated_membership", steps::send(&payload[1..]));
            }
            Ok(Payload::Messaging(packet)) => self.add_packet(&packet),
            _ => {}
        }
    }

    fn add_packet(&mut self, packet: &[u8]) {
        self.add("messaging_decode", packet.to_vec());
        self.add("authenticated_messaging", steps::send(packet));
        // Units of one chunk are whole in the chunk; longer ones would make large seeds.
        let Ok(Packet::Chunk {
            index: 0,
            count: 1,
            data,
            ..
        }) = Packet::decode(packet)
        else {
            return;
        };
        self.add("messaging_decode", data.clone());
        self.add("authenticated_units", steps::send(&data));
        if let Ok(Unit::Store(message)) = Unit::decode(&data) {
            self.add("store_decode", message.clone());
            self.add("authenticated_store", steps::send(&message));
        }
    }
}

fn tag(text: &str) -> Tag {
    Tag::new(text).expect("a valid tag")
}

/// What a node sends a peer while it stores, publishes, sends, asks and lets time pass.
fn traffic() -> Vec<Vec<u8>> {
    let mut paired = Paired::new();
    let mut sent = paired.take_received();
    let peer = paired.peer_id();
    let now = paired.now();
    let node = paired.node();
    node.kv_write(now, "notes/today", Some(b"milk".to_vec()))
        .expect("a put");
    node.kv_write(now, "notes/old", Some(b"x".to_vec()))
        .expect("a put");
    node.kv_write(now, "notes/old", None).expect("a delete");
    node.publish_event(now, tag("deploy"), b"v2".to_vec())
        .expect("an event");
    node.send_message(now, peer, tag("notify"), b"hello".to_vec())
        .expect("a message");
    node.query(now, Some(vec![peer]), tag("uptime"), Vec::new())
        .expect("a query");
    sent.extend(paired.take_received());
    for _ in 0..20 {
        paired.advance(Duration::from_secs(3));
        sent.extend(paired.take_received());
    }
    sent
}

/// The datagrams of a handshake and of one data packet, as two endpoints send them.
fn datagrams() -> Vec<Vec<u8>> {
    // From the peer (key 2) to the node (key 1), as `node_datagrams` has them.
    let keys = [2u8, 1].map(|seed| DeviceKey::from_seed([seed; 32]));
    let ids = [keys[0].device_id(), keys[1].device_id()];
    let address = "192.0.2.2:3030".parse().expect("valid address");
    let [a, b] = keys.map(|key| Endpoint::new(key.noise().clone(), [3; 32], EndpointConfig::default()));
    let (mut a, mut b) = (a, b);
    let now = Timestamp::from_micros(1_000_000);
    a.add_peer(ids[1], Some(address));
    b.add_peer(ids[0], Some(address));
    a.connect(now, &ids[1]);
    let mut sent = Vec::new();
    let init = a.poll_transmit().expect("an initiation").datagram;
    let _ = b.handle_datagram(now, address, &init);
    let response = b.poll_transmit().expect("a response").datagram;
    let _ = a.handle_datagram(now, address, &response);
    let echo = Payload::Echo(1).encode().expect("an echo encodes");
    a.send(now, &ids[1], &echo).expect("a session");
    sent.extend([init, response]);
    sent.extend(std::iter::from_fn(|| a.poll_transmit().map(|t| t.datagram)));
    sent
}

/// An invite token as `cnspr invite` prints it.
fn invite() -> Vec<u8> {
    let token = InviteToken {
        inviter: DeviceKey::from_seed([1; 32]).device_id(),
        addresses: vec![
            "192.0.2.1:3030".parse().expect("valid"),
            "[2001:db8::1]:3030".parse().expect("valid"),
        ],
        anchors: vec!["home.example.org:3030".parse().expect("valid")],
        token_id: [4; 16],
        secret: [5; 32],
        expires_unix_secs: 1_800_000_000,
    };
    token.encode().into_bytes()
}

/// A request line for every method, and some lines of the framing's other shapes.
fn control_lines() -> Vec<Vec<u8>> {
    let mut lines: Vec<String> = api::catalogue()
        .iter()
        .map(|info| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{}","params":{{}}}}"#,
                info.name
            )
        })
        .collect();
    lines.extend(
        [
            r#"{"jsonrpc":"2.0","id":"a","method":"kv.put","params":{"key":"k","value":"v"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"kv.put","params":{"key":"k","value_b64":"AAE="}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"send","params":{"peer":"desk","tag":"t","message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"ping","params":["desk"]}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"event","params":{"tag":"t","message_b64":"/w=="}}"#,
            r#"{"jsonrpc":"2.0","method":"status"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"id"},{"jsonrpc":"2.0","method":"kv.get","params":["k"]}]"#,
        ]
        .map(str::to_owned),
    );
    lines.into_iter().map(String::into_bytes).collect()
}

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fuzz/seeds"));
    let mut seeds = Seeds::default();
    let sent = traffic();
    for payload in &sent {
        seeds.add_payload(payload);
    }
    // The same traffic with time passing between, for the timers' paths.
    let mixed: Vec<u8> = sent
        .iter()
        .take(12)
        .flat_map(|payload| [steps::send(payload), steps::wait(1500)].concat())
        .collect();
    seeds.add("authenticated_payload", mixed);
    let datagrams = datagrams();
    for datagram in &datagrams {
        seeds.add("packet_decode", datagram.clone());
        seeds.add("node_datagrams", datagram.clone());
    }
    seeds.add("node_datagrams", datagrams.join(&0xff));
    seeds.add("invite_decode", invite());
    for line in control_lines() {
        seeds.add("control_json", line);
    }
    seeds.write(&root)
}
