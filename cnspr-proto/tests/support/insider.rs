//! A stolen device: the key of a device of the roster in hostile hands, holding real
//! sessions with the others (it has the mesh secret too) and sending whatever a test makes
//! it send. It answers nothing on its own.

use std::net::SocketAddr;

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::messaging::{Packet, Unit};
use cnspr_proto::payload::Payload;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::{Endpoint, EndpointConfig};

use super::{address, Mesh};

/// The thief's side: the stolen key in a bare endpoint.
pub struct Insider {
    pub key: DeviceKey,
    pub endpoint: Endpoint,
    next_transfer: u64,
}

impl Insider {
    /// Sends `unit` to `to` whole, under a new transfer (after a handshake, if none is up).
    pub fn send_unit(&mut self, now: Timestamp, to: DeviceId, unit: &Unit) {
        let bytes = unit.encode().expect("a unit encodes");
        self.next_transfer += 1;
        for chunk in Packet::chunks_of(self.next_transfer, &bytes) {
            let payload = Payload::Messaging(chunk.encode())
                .encode()
                .expect("a messaging payload encodes");
            self.endpoint
                .send(now, &to, &payload)
                .expect("the insider knows every device of the roster");
        }
    }
}

impl Mesh {
    /// Device `n` stolen: its node stops, and its key takes its place at its address in
    /// an endpoint that knows every device of its roster and the mesh's secret.
    pub fn steal(&mut self, n: u8) {
        let node = self.node(n);
        let peers: Vec<(DeviceId, Option<SocketAddr>)> =
            node.members().map(|member| (member.id, member.address)).collect();
        let secrets: Vec<_> = self.secrets_of(n).into_iter().map(|s| s.current).collect();
        let key = DeviceKey::from_seed(self.devices[&address(n)].keys);
        self.crash(n);
        let mut endpoint = Endpoint::new(key.noise().clone(), [n ^ 0x5a; 32], EndpointConfig::default());
        endpoint.set_mesh_secrets(secrets.clone(), secrets);
        for (id, address) in peers {
            endpoint.add_peer(id, address);
        }
        self.insiders.insert(
            address(n),
            Insider {
                key,
                endpoint,
                next_transfer: 1 << 40,
            },
        );
    }

    /// The thief of device `n`.
    pub fn insider(&mut self, n: u8) -> &mut Insider {
        self.insiders.get_mut(&address(n)).expect("device was stolen")
    }
}
