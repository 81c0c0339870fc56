//! The configuration file (`config.toml`, optional): every key has a default, unknown keys
//! are an error (a typo should not be silently ignored), and `cnspr config` prints the
//! effective result.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The default UDP port.
pub const DEFAULT_PORT: u16 = 3030;
/// The longest time between beacons that may be configured (a day).
pub const MAX_BEACON_INTERVAL_SECS: u64 = 86_400;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This device's name (default: the host name).
    pub name: Option<String>,
    /// UDP addresses to listen on (default: port 3030 on every IPv4 and IPv6 address).
    pub listen: Vec<SocketAddr>,
    /// `responsive` (mains power) or `frugal` (battery): how often peers are probed.
    pub profile: String,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a `tracing` directive);
    /// `RUST_LOG` overrides it.
    pub log: String,
    /// Static anchors: names (or fixed public addresses) this device is reached at from
    /// anywhere, `home.example.org:3030` behind dynamic DNS and a port forward. Its
    /// address record and its invites carry them; the others look them up whenever they
    /// cannot reach it (`docs/reachability.md`). At most four.
    pub anchors: Vec<cnspr_proto::anchor::Anchor>,
    /// Seconds between keepalives on a session through a NAT, at first (15 to 120): it
    /// comes down by itself to what the NAT shows (`docs/reachability.md`, "NAT
    /// keepalive").
    pub nat_keepalive_secs: u64,
    /// Ask the home router for a port mapping (PCP, NAT-PMP) of the IPv4 port, so that
    /// devices elsewhere reach this one with no third device (`docs/reachability.md`,
    /// "Port mapping").
    pub port_mapping: bool,
    /// Limits.
    pub limits: Limits,
    /// LAN discovery: beacons announcing this device to the others of its mesh.
    pub discovery: Discovery,
    /// Relaying for devices of the mesh that reach each other only through this one.
    pub relay: Relay,
}

/// Relaying (`docs/reachability.md`, "Relaying through your own devices").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Relay {
    /// Carry other devices' datagrams at all (sealed end to end: only lengths are seen).
    pub enabled: bool,
    /// Pairs of devices carried at once (1 to 1024).
    pub max_pairs: usize,
    /// KiB carried per second, all pairs together (at least 1).
    pub max_kib_per_sec: u64,
}

/// The most pairs a device may be set to relay for at once.
pub const MAX_RELAY_PAIRS: usize = 1024;

impl Default for Relay {
    fn default() -> Self {
        let core = cnspr_proto::node::RelayConfig::default();
        Self {
            enabled: core.enabled,
            max_pairs: core.max_pairs,
            max_kib_per_sec: core.max_bytes_per_sec >> 10,
        }
    }
}

impl Relay {
    /// The core's form.
    pub fn to_core(&self) -> cnspr_proto::node::RelayConfig {
        cnspr_proto::node::RelayConfig {
            enabled: self.enabled,
            max_pairs: self.max_pairs,
            max_bytes_per_sec: self.max_kib_per_sec.saturating_mul(1024),
        }
    }
}

/// LAN discovery (`docs/reachability.md`, "LAN beacons").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discovery {
    /// `announce` (send beacons and answer the mesh's), `listen` (answer only: for a
    /// network you do not trust to see that a device is there) or `off`.
    pub mode: DiscoveryMode,
    /// Seconds between beacons (besides one at start and one after every network change).
    pub interval_secs: u64,
    /// The mode on particular interfaces, by name (`wlan0 = "listen"`); others take `mode`.
    pub interfaces: std::collections::BTreeMap<String, DiscoveryMode>,
    /// The mode on particular networks, by their default gateway's hardware address
    /// (`"aa:bb:cc:00:11:22" = "listen"`, as `cnspr interfaces` shows it): on an interface
    /// whose gateway is one of them, this mode rather than the interface's.
    pub networks: std::collections::BTreeMap<String, DiscoveryMode>,
}

/// Whether beacons are sent and answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMode {
    /// Send beacons and answer the mesh's.
    #[default]
    Announce,
    /// Answer the mesh's beacons, send none.
    Listen,
    /// Neither.
    Off,
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            mode: DiscoveryMode::Announce,
            interval_secs: 30,
            interfaces: std::collections::BTreeMap::new(),
            networks: std::collections::BTreeMap::new(),
        }
    }
}

impl Discovery {
    /// The mode on interface `name`.
    pub fn mode_on(&self, name: &str) -> DiscoveryMode {
        self.interfaces.get(name).copied().unwrap_or(self.mode)
    }

    /// The settings as they apply on the networks this device is on now: an interface
    /// whose default gateway (`gateways`: interface name to hardware address) has a mode
    /// of its own in `networks` takes that one.
    pub fn on_networks(&self, gateways: &std::collections::BTreeMap<String, String>) -> Self {
        let mut effective = self.clone();
        for (interface, gateway) in gateways {
            let network = self
                .networks
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(gateway));
            if let Some((_, mode)) = network {
                effective.interfaces.insert(interface.clone(), *mode);
            }
        }
        effective
    }

    /// Whether beacons are answered on some interface (the ones set `off` are left out
    /// by their networks).
    pub fn heard_anywhere(&self) -> bool {
        self.mode != DiscoveryMode::Off || self.interfaces.values().any(|mode| *mode != DiscoveryMode::Off)
    }
}

/// Bounds on what the daemon accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message, event or query payload.
    pub payload_bytes_max: usize,
    /// Largest query answer per peer.
    pub query_answer_bytes_max: usize,
    /// Longest control-socket request line.
    pub request_line_bytes_max: usize,
    /// Seconds a control-socket client may stay connected without sending a request
    /// (subscriptions excepted): then it is disconnected and its slot freed.
    pub control_idle_secs: u64,
    /// Longest store key.
    pub key_bytes_max: usize,
    /// Largest store value.
    pub value_bytes_max: usize,
    /// Handlers running at once.
    pub handlers_max: usize,
    /// Messages and events from one device waiting for their handler runs; beyond it the
    /// device's further ones stay with their senders until there is room.
    pub handler_queue_per_origin: usize,
    /// Messages and events waiting for their handler runs, from all devices.
    pub handler_queue_max: usize,
    /// Handler timeout.
    pub handler_timeout_secs: u64,
    /// How long undelivered messages are kept.
    pub message_ttl_secs: u64,
    /// Default lifetime of an invite.
    pub invite_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
                SocketAddr::from(([0u16; 8], DEFAULT_PORT)),
            ],
            profile: "responsive".into(),
            log: "info".into(),
            limits: Limits::default(),
            discovery: Discovery::default(),
            relay: Relay::default(),
            anchors: Vec::new(),
            nat_keepalive_secs: 25,
            port_mapping: true,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            payload_bytes_max: 1 << 20,
            query_answer_bytes_max: 64 << 10,
            request_line_bytes_max: 4 << 20,
            control_idle_secs: 300,
            key_bytes_max: 1 << 10,
            value_bytes_max: 1 << 20,
            handlers_max: 8,
            handler_queue_per_origin: 256,
            handler_queue_max: 4096,
            handler_timeout_secs: 30,
            message_ttl_secs: 7 * 24 * 3600,
            invite_ttl_secs: 600,
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration in {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with its place.
        message: String,
    },
}

impl Config {
    /// Reads `path`; a missing file means every default.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let config: Config = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if cnspr_proto::node::NodeConfig::profile(&self.profile).is_none() {
            return Err(format!(
                "profile must be \"responsive\" or \"frugal\", not {:?}",
                self.profile
            ));
        }
        if let Some(name) = &self.name {
            if !cnspr_proto::roster::is_valid_name(name) {
                return Err(
                    "name must be 1-64 bytes without control characters or '#', and not a device ID".into(),
                );
            }
        }
        if self.listen.is_empty() {
            return Err("listen must name at least one address".into());
        }
        let keepalive =
            cnspr_proto::node::MIN_KEEPALIVE.as_secs()..=cnspr_proto::node::MAX_KEEPALIVE.as_secs();
        if !keepalive.contains(&self.nat_keepalive_secs) {
            return Err(format!(
                "nat_keepalive_secs must be from {} to {}",
                keepalive.start(),
                keepalive.end()
            ));
        }
        if let Some(bad) = self
            .discovery
            .networks
            .keys()
            .find(|key| !crate::gateways::is_hardware_address(key))
        {
            return Err(format!(
                "discovery.networks is keyed by a gateway's hardware address (aa:bb:cc:00:11:22, as `cnspr interfaces` shows it), not {bad:?}"
            ));
        }
        if self.anchors.len() > cnspr_proto::anchor::MAX_ANCHORS {
            return Err(format!(
                "anchors may name at most {} host names",
                cnspr_proto::anchor::MAX_ANCHORS
            ));
        }
        if !(1..=MAX_RELAY_PAIRS).contains(&self.relay.max_pairs) || self.relay.max_kib_per_sec == 0 {
            return Err(format!(
                "relay.max_pairs must be 1 to {MAX_RELAY_PAIRS} and relay.max_kib_per_sec at least 1"
            ));
        }
        if !(1..=MAX_BEACON_INTERVAL_SECS).contains(&self.discovery.interval_secs) {
            return Err(format!(
                "discovery.interval_secs must be 1 to {MAX_BEACON_INTERVAL_SECS}"
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, with the name filled in.
    pub fn to_toml(&self) -> String {
        let mut effective = self.clone();
        effective.name = Some(self.device_name());
        toml::to_string(&effective).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }

    /// The configured name, or the host name.
    pub fn device_name(&self) -> String {
        self.name.clone().unwrap_or_else(host_name)
    }
}

/// The machine's host name, or `device` if it has none usable.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| cnspr_proto::roster::is_valid_name(name))
        .unwrap_or_else(|| "device".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_typos_are_refused() {
        let printed = Config::default().to_toml();
        let parsed: Config = toml::from_str(&printed).expect("the printed configuration parses");
        assert_eq!(parsed.listen, Config::default().listen);
        let typo = toml::from_str::<Config>("profle = \"frugal\"");
        assert!(typo.is_err());
        let partial: Config =
            toml::from_str("profile = \"frugal\"\n[limits]\nhandlers_max = 2").expect("valid");
        assert_eq!(partial.limits.handlers_max, 2);
        assert_eq!(partial.limits.handler_timeout_secs, 30);
    }

    #[test]
    fn anchors_are_host_names_with_ports() {
        let config: Config =
            toml::from_str("anchors = [\"Home.Example.org:3030\", \"[2001:db8::7]:3031\"]").expect("valid");
        let shown: Vec<String> = config.anchors.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["home.example.org:3030", "[2001:db8::7]:3031"]);
        let printed = config.to_toml();
        assert_eq!(
            toml::from_str::<Config>(&printed).expect("parses").anchors,
            config.anchors
        );
        let error = toml::from_str::<Config>("anchors = [\"home.example.org\"]").expect_err("no port");
        assert!(error.to_string().contains("HOST:PORT"), "{error}");
    }

    #[test]
    fn a_networks_mode_overrides_its_interfaces() {
        let typo: Config =
            toml::from_str("[discovery.networks]\n\"aa:bb:cc:00:11\" = \"listen\"\n").expect("parses");
        assert!(typo.validate().is_err(), "not a hardware address");
        let config: Config = toml::from_str(
            "[discovery.interfaces]\nwlan0 = \"off\"\n[discovery.networks]\n\"AA:bb:cc:00:11:22\" = \"listen\"\n",
        )
        .expect("valid");
        assert_eq!(config.validate(), Ok(()));
        let gateways = [("wlan0".to_owned(), "AA:BB:CC:00:11:22".to_owned())]
            .into_iter()
            .collect();
        let there = config.discovery.on_networks(&gateways);
        assert_eq!(there.mode_on("wlan0"), DiscoveryMode::Listen);
        assert_eq!(there.mode_on("eth0"), DiscoveryMode::Announce);
        let elsewhere = config.discovery.on_networks(&Default::default());
        assert_eq!(elsewhere.mode_on("wlan0"), DiscoveryMode::Off);
    }

    #[test]
    fn an_unknown_profile_is_refused() {
        let dir = std::env::temp_dir().join(format!("cnspr-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.toml");
        std::fs::write(&path, "profile = \"turbo\"").expect("write");
        let error = Config::load(&path).expect_err("turbo is not a profile");
        assert!(error.to_string().contains("responsive"), "{error}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
