//! Datagrams from anyone: garbage, strangers' initiations and replayed genuine traffic
//! change nothing and get no answer, and the daemon stays up and keeps its sessions.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cnspr_proto::identity::{DeviceId, StaticKeypair};
use cnspr_proto::invite::InviteToken;
use cnspr_proto::roster::mesh_secret::MESH_SECRET_KEY;
use cnspr_proto::roster::sealed_secret::SealedSecrets;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::stealth::{MeshSecret, OPEN_MESH};
use cnspr_proto::transport::{Endpoint, EndpointConfig};
use cnspr_proto::wire::PROTOCOL_VERSION;
use support::{stderr, wait_until, Device, Root};

fn udp_address(device: &Device) -> SocketAddr {
    let interfaces = device.json(&["interfaces"]);
    interfaces["listening"][0]
        .as_str()
        .expect("an address")
        .parse()
        .expect("valid")
}

fn rejected(device: &Device) -> u64 {
    device.json(&["status"])["datagrams"]["rejected"]
        .as_u64()
        .expect("a count")
}

#[test]
fn garbage_datagrams_change_nothing() {
    let root = Root::new();
    let devices = support::mesh(&root, &["desk", "laptop"]);
    let target = udp_address(&devices[0]);
    let attacker = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let before = rejected(&devices[0]);
    // Every packet type with random bodies, at every length up to past the maximum.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut sent = 0;
    for length in (0..1600).step_by(7) {
        let mut datagram: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        if datagram.len() >= 2 {
            datagram[0] = PROTOCOL_VERSION;
            datagram[1] = (length % 6) as u8;
        }
        attacker.send_to(&datagram, target).expect("send");
        sent += 1;
    }
    wait_until("desk counted the garbage as rejected", || {
        rejected(&devices[0]) >= before + sent / 2
    });
    assert_eq!(devices[0].state_of("laptop").as_deref(), Some("active"));
    let ping = devices[1].run(&["ping", "desk", "--count", "1"]);
    assert!(ping.status.success(), "{}", stderr(&ping));
}

/// A well-formed initiation to `responder` keyed with `secret`, from a key of `seed`.
fn initiation(responder: &DeviceId, target: SocketAddr, secret: MeshSecret, seed: u32) -> Vec<u8> {
    let mut secret_bytes = [7; 32];
    secret_bytes[..4].copy_from_slice(&seed.to_le_bytes());
    let mut stranger = Endpoint::new(
        StaticKeypair::from_secret_bytes(secret_bytes),
        secret_bytes,
        EndpointConfig::default(),
    );
    stranger.set_mesh_secrets(vec![secret], Vec::new());
    stranger.add_peer(*responder, Some(target));
    stranger.connect(Timestamp::from_micros(1), responder);
    stranger.poll_transmit().expect("an initiation").datagram
}

#[test]
fn ten_thousand_stranger_initiations_get_no_answer() {
    let root = Root::new();
    let devices = support::mesh(&root, &["desk", "laptop"]);
    let target = udp_address(&devices[0]);
    let desk: DeviceId = devices[0].id().parse().expect("an ID");
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let before = rejected(&devices[0]);
    // In rounds the socket buffers hold whole, each counted before the next: 10,000 valid
    // Noise initiations that know desk's ID but not the mesh's secret (keyed as a mesh
    // without one, or with a guess).
    let mut sent = 0;
    for round in 0..20u32 {
        for i in 0..500u32 {
            let n = round * 500 + i;
            let secret = if n % 2 == 0 { OPEN_MESH } else { [n as u8; 32] };
            stranger
                .send_to(&initiation(&desk, target, secret, n), target)
                .expect("send");
            sent += 1;
        }
        wait_until("desk counted the round", || {
            rejected(&devices[0]) >= before + sent
        });
    }
    stranger.set_nonblocking(true).expect("non-blocking");
    let mut buffer = [0u8; 2048];
    let answer = stranger.recv_from(&mut buffer);
    assert_eq!(
        answer.map(|(len, _)| len).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "no answer to any of them"
    );
    // Keyed with the mesh's secret (read from desk's store, opened with desk's key), the
    // same initiation is answered.
    let value = devices[0].run(&["kv", "get", "--raw", MESH_SECRET_KEY]);
    assert!(value.status.success(), "{}", stderr(&value));
    let key = cnspr_runtime::state::load_identity(&devices[0].home().join("data")).expect("desk's key");
    let secret = SealedSecrets::decode(&value.stdout)
        .expect("the stored secret")
        .open(key.noise(), &key.device_id())
        .expect("sealed for desk")
        .current;
    stranger.set_nonblocking(false).expect("blocking");
    stranger
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stranger
        .send_to(&initiation(&desk, target, secret, 1), target)
        .expect("send");
    let (len, from) = stranger.recv_from(&mut buffer).expect("an answer");
    assert_eq!(
        (from, buffer.get(1)),
        (target, Some(&2)),
        "a handshake response, {len} bytes"
    );
    assert_eq!(devices[0].state_of("laptop").as_deref(), Some("active"));
    let ping = devices[1].run(&["ping", "desk", "--count", "1"]);
    assert!(ping.status.success(), "{}", stderr(&ping));
}

/// Relays laptop ⇄ desk, keeping a copy of everything laptop sends.
struct Relay {
    facing_laptop: UdpSocket,
    facing_desk: Arc<UdpSocket>,
    recorded: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(desk: SocketAddr) -> Self {
        let facing_laptop = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let facing_desk = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind"));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let laptop_address: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        for socket in [&facing_laptop, &*facing_desk] {
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
        }
        {
            let (inbound, outbound) = (facing_laptop.try_clone().expect("clone"), facing_desk.clone());
            let (recorded, stop, laptop_address) = (recorded.clone(), stop.clone(), laptop_address.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = inbound.recv_from(&mut buffer) {
                        *laptop_address.lock().expect("lock") = Some(from);
                        recorded.lock().expect("lock").push(buffer[..len].to_vec());
                        let _ = outbound.send_to(&buffer[..len], desk);
                    }
                }
            });
        }
        {
            let (inbound, outbound) = (facing_desk.clone(), facing_laptop.try_clone().expect("clone"));
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, _)) = inbound.recv_from(&mut buffer) {
                        if let Some(laptop) = *laptop_address.lock().expect("lock") {
                            let _ = outbound.send_to(&buffer[..len], laptop);
                        }
                    }
                }
            });
        }
        Self {
            facing_laptop,
            facing_desk,
            recorded,
            stop,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn replayed_traffic_changes_nothing() {
    let root = Root::new();
    let desk = Device::started(&root, "desk");
    let laptop = Device::started(&root, "laptop");
    let relay = Relay::start(udp_address(&desk));
    // Laptop reaches desk only through the relay: the token's address is the relay's.
    let token = desk.json(&["invite"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut routed = InviteToken::decode(&token).expect("valid");
    routed.addresses = vec![relay.facing_laptop.local_addr().expect("bound")];
    let joined = laptop.run(&["join", &routed.encode()]);
    assert!(joined.status.success(), "{}", stderr(&joined));
    let devices = [desk, laptop];
    support::wait_all_active(&devices);
    let ping = devices[1].run(&["ping", "desk", "--count", "2"]);
    assert!(ping.status.success(), "{}", stderr(&ping));

    let recorded = relay.recorded.lock().expect("lock").clone();
    assert!(recorded.len() > 5, "the relay saw the traffic");
    let before = rejected(&devices[0]);
    let desk_address = udp_address(&devices[0]);
    for datagram in &recorded {
        relay.facing_desk.send_to(datagram, desk_address).expect("replay");
    }
    // Every replayed data packet (type 5) is refused; a replayed handshake start is
    // answered (it carries a genuine mac1), and a repeated finish only earns a
    // rate-limited confirmation, so neither counts here.
    let replayed_data = recorded.iter().filter(|d| d.get(1) == Some(&5)).count() as u64;
    assert!(replayed_data > 3);
    wait_until("desk rejected the replayed packets", || {
        rejected(&devices[0]) >= before + replayed_data
    });
    assert_eq!(devices[0].state_of("laptop").as_deref(), Some("active"));
    assert_eq!(devices[0].members().len(), 2);
    let ping = devices[1].run(&["ping", "desk", "--count", "1"]);
    assert!(ping.status.success(), "{}", stderr(&ping));
}

#[test]
fn a_device_of_another_protocol_version_is_named_in_members() {
    let root = Root::new();
    let mut devices = support::mesh(&root, &["desk", "laptop"]);
    let laptop_address = udp_address(&devices[1]);
    // The laptop goes, and an older build comes up at its address: all desk can tell is
    // the version byte of what arrives from there.
    devices[1].signal("KILL");
    devices[1].wait_exit();
    let older = UdpSocket::bind(laptop_address).expect("the laptop's port");
    let desk = udp_address(&devices[0]);
    wait_until("desk names the laptop's version", || {
        older.send_to(&[1, 1, 0, 0, 0, 0], desk).expect("send");
        devices[0].members()[1]["protocol_version"] == 1
    });
    let shown = devices[0].run(&["members"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("speaks protocol 1: upgrade"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    assert_eq!(devices[0].json(&["status"])["protocol_version"], PROTOCOL_VERSION);
    // The laptop is upgraded again: once its session works, it is no longer named.
    drop(older);
    devices[1].start();
    wait_until("desk no longer names a version", || {
        devices[0].members()[1]["protocol_version"].is_null()
    });
}
