//! Looking up static anchors (`cnspr_proto::anchor`): the system's resolver (getaddrinfo,
//! so `/etc/hosts` and whatever the machine uses for DNS), each name bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::anchor::Anchor;

/// How long one name's lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Addresses taken from one name.
const ADDRESSES_PER_NAME: usize = 4;

/// Every address `anchors` name now, in their order, each once; a name that does not
/// resolve in time is skipped (and logged).
pub async fn look_up(anchors: &[Anchor]) -> Vec<SocketAddr> {
    let mut found: Vec<SocketAddr> = Vec::new();
    for anchor in anchors {
        let lookup = tokio::net::lookup_host((anchor.host(), anchor.port()));
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(addresses)) => {
                for address in addresses.take(ADDRESSES_PER_NAME) {
                    if !found.contains(&address) {
                        found.push(address);
                    }
                }
            }
            Ok(Err(error)) => tracing::debug!(%anchor, %error, "anchor not found"),
            Err(_) => tracing::debug!(%anchor, "anchor lookup timed out"),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_and_local_names_are_found() {
        // Nothing that would ask a DNS server: tests send nowhere outside this machine.
        let anchors: Vec<Anchor> = ["192.0.2.7:3030", "localhost:3031", "192.0.2.7:3030"]
            .iter()
            .map(|text| text.parse().expect("an anchor"))
            .collect();
        let found = look_up(&anchors).await;
        assert_eq!(
            found.first(),
            Some(&"192.0.2.7:3030".parse().expect("an address"))
        );
        assert!(
            found.iter().any(|a| a.ip().is_loopback() && a.port() == 3031),
            "{found:?}"
        );
        assert_eq!(found.iter().filter(|a| a.port() == 3030).count(), 1, "{found:?}");
    }
}
