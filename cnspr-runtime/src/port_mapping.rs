//! Port mapping on the home router: PCP (RFC 6887), falling back to NAT-PMP (RFC 6886),
//! through `crab_nat`. A device behind a router that offers it gets a public address and
//! port that reach it from anywhere, which goes into its address record and its invites:
//! how a laptop at a cafe reaches the desk at home with no third device.
//!
//! One task per daemon: it asks the default gateway for a mapping of the daemon's IPv4
//! port (the same port outside if the router agrees), renews it at half its lifetime,
//! asks again a minute after a failure (a router that answered nothing, a new network),
//! and deletes it when the daemon stops.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crab_nat::{InternetProtocol, PortMapping, PortMappingOptions, PortMappingType, TimeoutConfig};
use tokio::sync::Notify;

use crate::api::netcheck::{PortMappingState, PortMappingView};
use crate::driver::DriverHandle;

/// The lifetime asked for (the router may grant less).
const LIFETIME_SECS: u32 = 2 * 3600;
/// How long after a failure the gateway is asked again.
const RETRY: Duration = Duration::from_secs(60);
/// Each request's first wait for an answer, doubled on each of two retries: a router
/// without the protocol costs 1.75 s a try, not the RFCs' minute.
const TIMEOUTS: TimeoutConfig = TimeoutConfig {
    initial_timeout: Duration::from_millis(250),
    max_retries: 2,
    max_retry_timeout: Some(Duration::from_secs(1)),
};

/// What the gateway said last, shared with `netcheck`.
#[derive(Clone)]
pub struct PortMappingWatch(Arc<Mutex<PortMappingView>>);

impl PortMappingWatch {
    /// The latest view.
    pub fn get(&self) -> PortMappingView {
        match self.0.lock() {
            Ok(view) => view.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, new: PortMappingView) {
        match self.0.lock() {
            Ok(mut view) => *view = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// The port-mapping task of a daemon.
pub struct PortMapper {
    watch: PortMappingWatch,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl PortMapper {
    /// Starts mapping `port` on the default gateway, telling `driver` the public address;
    /// `enabled` false only records that it is off, and port 0 (no IPv4 socket but on
    /// loopback) asks nothing.
    pub fn spawn(port: u16, enabled: bool, driver: DriverHandle) -> Self {
        let view = match (enabled, port) {
            (false, _) => PortMappingView::new(PortMappingState::Off),
            (true, 0) => PortMappingView::unavailable(None, "no IPv4 socket off loopback".into()),
            (true, _) => PortMappingView::new(PortMappingState::Trying),
        };
        let watch = PortMappingWatch(Arc::new(Mutex::new(view)));
        let stop = Arc::new(Notify::new());
        let task = match NonZeroU16::new(port).filter(|_| enabled) {
            Some(port) => tokio::spawn(keep_mapped(port, driver, watch.clone(), stop.clone())),
            None => tokio::spawn(async {}),
        };
        Self { watch, stop, task }
    }

    /// What the gateway said last, as it changes.
    pub fn watch(&self) -> PortMappingWatch {
        self.watch.clone()
    }

    /// Deletes the mapping (waiting a few seconds at most for the router) and ends.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

async fn keep_mapped(port: NonZeroU16, driver: DriverHandle, view: PortMappingWatch, stop: Arc<Notify>) {
    loop {
        let gateway = default_gateway();
        let attempt = match gateway {
            Some(gateway) => map(gateway, port).await,
            None => Err("no default gateway".to_owned()),
        };
        let (mut mapping, external) = match attempt {
            Ok(mapped) => mapped,
            Err(why) => {
                tracing::debug!(?gateway, %why, "no port mapping");
                view.set(PortMappingView::unavailable(gateway, why));
                let _ = driver.set_port_mapping(None).await;
                tokio::select! {
                    () = stop.notified() => return,
                    () = tokio::time::sleep(RETRY) => continue,
                }
            }
        };
        let protocol = match mapping.mapping_type() {
            PortMappingType::Pcp { .. } => "pcp",
            PortMappingType::NatPmp => "nat-pmp",
        };
        tracing::info!(%external, protocol, lifetime = mapping.lifetime(), "port mapped on the home router");
        view.set(PortMappingView::mapped(
            gateway,
            protocol,
            external,
            mapping.lifetime(),
        ));
        let _ = driver.set_port_mapping(Some(external)).await;
        loop {
            let renew_in = Duration::from_secs(u64::from(mapping.lifetime() / 2).max(1));
            tokio::select! {
                () = stop.notified() => {
                    if let Err((error, _)) = mapping.try_drop().await {
                        tracing::debug!(%error, "port mapping not deleted");
                    }
                    return;
                }
                () = tokio::time::sleep(renew_in) => {}
            }
            if let Err(error) = mapping.renew().await {
                tracing::info!(%error, "port mapping not renewed: asking again");
                break;
            }
        }
    }
}

/// A mapping of `port` on `gateway`, and the public address it gives; why not otherwise.
async fn map(gateway: Ipv4Addr, port: NonZeroU16) -> Result<(PortMapping, SocketAddr), String> {
    let client = client_address(gateway).await.map_err(|e| e.to_string())?;
    let options = PortMappingOptions {
        external_port: Some(port),
        lifetime_seconds: Some(LIFETIME_SECS),
        timeout_config: Some(TIMEOUTS),
    };
    let udp = InternetProtocol::Udp;
    // PCP first; NAT-PMP when PCP failed in any way (crab_nat falls back only on a
    // version answer, and many routers answer PCP with nothing).
    let mapping = match PortMapping::new(gateway.into(), client, udp, port, options).await {
        Ok(mapping) => mapping,
        Err(pcp) => crab_nat::natpmp::port_mapping(gateway.into(), udp, port, options)
            .await
            .map_err(|natpmp| format!("PCP: {pcp}; NAT-PMP: {natpmp}"))?,
    };
    let ip = match mapping.mapping_type() {
        PortMappingType::Pcp { external_ip, .. } => external_ip,
        PortMappingType::NatPmp => IpAddr::V4(
            crab_nat::natpmp::external_address(gateway.into(), Some(TIMEOUTS))
                .await
                .map_err(|e| format!("NAT-PMP external address: {e}"))?,
        ),
    };
    let external = SocketAddr::new(ip, mapping.external_port().get());
    Ok((mapping, external))
}

/// This device's address towards `gateway` (the one the router sees).
async fn client_address(gateway: Ipv4Addr) -> std::io::Result<IpAddr> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.connect((gateway, crab_nat::GATEWAY_PORT)).await?;
    Ok(socket.local_addr()?.ip())
}

/// The IPv4 default route's gateway, from `/proc/net/route` (this network namespace's).
fn default_gateway() -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_default_gateway(&table)
}

/// The gateway of the first default route (destination 0, the gateway flag) in the text
/// of `/proc/net/route`, whose addresses are the kernel's bytes read as a number in the
/// host's byte order, in hexadecimal.
fn parse_default_gateway(table: &str) -> Option<Ipv4Addr> {
    const RTF_GATEWAY: u32 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, gateway, flags) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if *destination != "00000000" || flags & RTF_GATEWAY == 0 {
            return None;
        }
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_ne_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_routes_gateway_is_read_from_the_route_table() {
        // A host's table: a LAN route, then the default route through 192.0.2.1.
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n";
        let expected = if cfg!(target_endian = "little") {
            Some(Ipv4Addr::new(192, 0, 2, 1))
        } else {
            Some(Ipv4Addr::new(1, 2, 0, 192))
        };
        assert_eq!(parse_default_gateway(table), expected);
        assert_eq!(parse_default_gateway("Iface\tDestination\tGateway\n"), None);
    }
}
