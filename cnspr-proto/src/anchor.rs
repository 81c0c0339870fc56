//! Static anchors: names a device can be reached at from anywhere, `home.example.org:3030`
//! (dynamic DNS in front of a port forward) or a fixed public address (`203.0.113.7:3030`).
//! A device lists its own in its configuration; they travel in its address record
//! (`roster/address_record.rs`) and in the invites it makes (`invite.rs`), and every other
//! device looks them up again whenever it cannot reach the device (`node/anchors.rs`):
//! a name that follows a changing address finds the device where no record could.
//!
//! Only the text is checked here (the core does no IO): a host name of letters, digits,
//! hyphens and dots, or an IP address, and a port.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most anchors a device lists.
pub const MAX_ANCHORS: usize = 4;
/// Longest host name (DNS's limit).
pub const MAX_HOST_BYTES: usize = 253;
/// Longest label of a host name.
const MAX_LABEL_BYTES: usize = 63;
/// Longest anchor as text (`host:port`): one length byte carries it in an invite.
pub const MAX_ANCHOR_BYTES: usize = 255;

/// A host name or IP address, with a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Anchor {
    host: String,
    port: u16,
}

/// Why an anchor's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// No `:port` at the end.
    #[error("an anchor is HOST:PORT (home.example.org:3030), and {0:?} has no port")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("the port of anchor {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// Longer than [`MAX_ANCHOR_BYTES`] as text.
    #[error("anchor {0:?} is longer than {MAX_ANCHOR_BYTES} bytes")]
    TooLong(String),
    /// Neither an IP address nor a host name.
    #[error("{0:?} is not a host name (letters, digits, hyphens and dots, at most {MAX_HOST_BYTES} bytes) or an IP address")]
    BadHost(String),
}

impl Anchor {
    /// The host name or IP address (an IPv6 one without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Whether `host` is a DNS host name: labels of letters, digits and inner hyphens.
fn is_host_name(host: &str) -> bool {
    host.len() <= MAX_HOST_BYTES
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_BYTES
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl FromStr for Anchor {
    type Err = AnchorError;

    fn from_str(text: &str) -> Result<Self, AnchorError> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| AnchorError::NoPort(text.to_owned()))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| AnchorError::BadPort(text.to_owned()))?;
        let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let host = match bracketed {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6.to_owned(),
            Some(_) => return Err(AnchorError::BadHost(host.to_owned())),
            None if host.parse::<std::net::Ipv4Addr>().is_ok() => host.to_owned(),
            None if is_host_name(host) => host.to_ascii_lowercase(),
            None => return Err(AnchorError::BadHost(host.to_owned())),
        };
        let anchor = Self { host, port };
        if anchor.to_string().len() > MAX_ANCHOR_BYTES {
            return Err(AnchorError::TooLong(text.to_owned()));
        }
        Ok(anchor)
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => write!(f, "[{}]:{}", self.host, self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl Serialize for Anchor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Anchor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Bounded before parsing: a peer's record may say anything.
        let text = String::deserialize(deserializer)?;
        if text.len() > MAX_ANCHOR_BYTES {
            return Err(serde::de::Error::custom("anchor too long"));
        }
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_addresses_parse_and_print_back() {
        for (text, shown) in [
            ("Home.Example.org:3030", "home.example.org:3030"),
            ("203.0.113.7:3030", "203.0.113.7:3030"),
            ("[2001:db8::7]:3031", "[2001:db8::7]:3031"),
            ("nas:1", "nas:1"),
        ] {
            let anchor: Anchor = text.parse().expect(text);
            assert_eq!(anchor.to_string(), shown);
            assert_eq!(shown.parse::<Anchor>(), Ok(anchor));
        }
    }

    #[test]
    fn what_is_not_a_host_and_port_is_refused() {
        for text in [
            "home.example.org",
            "home.example.org:0",
            "home.example.org:70000",
            "-home.example.org:3030",
            "home..example.org:3030",
            "home example.org:3030",
            "[not-v6]:3030",
            "2001:db8::7:3030x",
            ":3030",
        ] {
            assert!(text.parse::<Anchor>().is_err(), "{text} accepted");
        }
        let long = format!("{}.org:1", "a".repeat(MAX_HOST_BYTES));
        assert!(long.parse::<Anchor>().is_err());
        // The longest host name with a five-digit port is too long for an invite.
        let labels = vec!["a".repeat(63); 4].join(".");
        let longest = format!("{}:65535", &labels[..MAX_HOST_BYTES]);
        assert_eq!(
            longest.parse::<Anchor>(),
            Err(AnchorError::TooLong(longest.clone()))
        );
        let fits = format!("{}:1", &labels[..MAX_ANCHOR_BYTES - 2]);
        assert_eq!(fits.parse::<Anchor>().map(|a| a.to_string()), Ok(fits));
    }
}
