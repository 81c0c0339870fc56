//! Port mapping on the home router: PCP (RFC 6887), falling back to NAT-PMP (RFC 6886),
//! through `crab_nat`. A device behind a router that offers it gets a public address and
//! port that reach it from anywhere, which goes into its address record and its invites:
//! how a laptop at a cafe reaches the desk at home with no third device.
//!
//! One task per daemon: it asks the default gateway for a mapping of the daemon's IPv4
//! port (the same port outside if the router agrees), renews it at half its lifetime
//! (publishing the address anew if the router's answer moved it), asks again a minute after
//! a failure, drops it at once when the kernel announces a change that put the device on
//! another network (another gateway, or another address towards it; without netlink, at
//! the next renewal), and deletes it when the daemon stops.
//!
//! What the router says is believed only so far: the address must be public (a LAN host
//! answering as the gateway cannot make this device publish a private address), and the
//! lifetime at least [`MIN_LIFETIME_SECS`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use crab_nat::{InternetProtocol, PortMapping, PortMappingOptions, PortMappingType, TimeoutConfig};
use tokio::sync::{watch, Notify};

use cnspr_proto::ip_network::is_public;

use crate::api::netcheck::{PortMappingState, PortMappingView};
use crate::driver::DriverHandle;
use crate::network_watch::{NetworkWatch, SETTLE};

/// The lifetime asked for (the router may grant less; more is scheduled as this).
const LIFETIME_SECS: u32 = 2 * 3600;
/// A shorter grant is taken as a refusal (renewing it would be a request a few seconds).
const MIN_LIFETIME_SECS: u32 = 60;
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
pub struct PortMappingWatch(watch::Receiver<PortMappingView>);

impl PortMappingWatch {
    /// The latest view.
    pub fn get(&self) -> PortMappingView {
        self.0.borrow().clone()
    }
}

/// The port-mapping task of a daemon (none when it asks nothing).
pub struct PortMapper {
    watch: PortMappingWatch,
    stop: Arc<Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PortMapper {
    /// Starts mapping `port` on the default gateway, telling `driver` the public address;
    /// `enabled` false only records that it is off, and port 0 (no IPv4 socket but on
    /// loopback) asks nothing.
    pub fn spawn(port: u16, enabled: bool, driver: DriverHandle) -> Self {
        let (view, port) = match (enabled, NonZeroU16::new(port)) {
            (false, _) => (PortMappingView::new(PortMappingState::Off), None),
            (true, None) => {
                let why = "no IPv4 socket off loopback".into();
                (PortMappingView::unavailable(None, why), None)
            }
            (true, Some(port)) => (PortMappingView::new(PortMappingState::Trying), Some(port)),
        };
        let (sender, receiver) = watch::channel(view);
        let stop = Arc::new(Notify::new());
        let task = port.map(|port| tokio::spawn(keep_mapped(port, driver, sender, stop.clone())));
        Self {
            watch: PortMappingWatch(receiver),
            stop,
            task,
        }
    }

    /// What the gateway said last, as it changes.
    pub fn watch(&self) -> PortMappingWatch {
        self.watch.clone()
    }

    /// Deletes the mapping (a few seconds at most for the router; a request under way is
    /// finished first, so that what it made is deleted too) and ends the task.
    pub async fn stop(self) {
        let Some(mut task) = self.task else {
            return;
        };
        self.stop.notify_one();
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Where this device stands towards its router: the default gateway and this device's
/// address towards it. Another either way is another network.
async fn network() -> Option<(Ipv4Addr, IpAddr)> {
    let route = std::fs::read_to_string("/proc/net/route").ok()?;
    let (_, gateway) = crate::gateways::default_routes(&route).into_iter().next()?;
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .ok()?;
    socket.connect((gateway, crab_nat::GATEWAY_PORT)).await.ok()?;
    Some((gateway, socket.local_addr().ok()?.ip()))
}

async fn keep_mapped(
    port: NonZeroU16,
    driver: DriverHandle,
    view: watch::Sender<PortMappingView>,
    stop: Arc<Notify>,
) {
    // The kernel's announcements tell a held mapping the device may be on another network.
    let mut watch = NetworkWatch::open();
    loop {
        let here = network().await;
        let gateway = here.map(|(gateway, _)| gateway);
        let attempt = match here {
            Some((gateway, client)) => map(gateway, client, port).await,
            None => Err("no default gateway".to_owned()),
        };
        let (mut mapping, mut external) = match attempt {
            Ok(mapped) => mapped,
            Err(why) => {
                tracing::debug!(?gateway, %why, "no port mapping");
                view.send_replace(PortMappingView::unavailable(gateway, why));
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
        let publish = |external, lifetime| {
            view.send_replace(PortMappingView::mapped(gateway, protocol, external, lifetime));
            driver.set_port_mapping(Some(external))
        };
        let _ = publish(external, mapping.lifetime()).await;
        'held: loop {
            let lifetime = mapping.lifetime().min(LIFETIME_SECS);
            let renew_at = tokio::time::Instant::now() + Duration::from_secs(u64::from(lifetime / 2));
            while tokio::time::Instant::now() < renew_at {
                tokio::select! {
                    () = stop.notified() => {
                        if let Err((error, _)) = mapping.try_drop().await {
                            tracing::debug!(%error, "port mapping not deleted");
                        }
                        return;
                    }
                    () = tokio::time::sleep_until(renew_at) => break,
                    () = watch.announced() => tokio::time::sleep(SETTLE).await,
                }
                if network().await != here {
                    tracing::info!("on another network: the port mapping is dropped");
                    break 'held;
                }
            }
            let renewed = match mapping.renew().await {
                Ok(()) => address_of(&mapping, gateway).await,
                Err(error) => Err(error.to_string()),
            };
            match renewed {
                Ok(now) if now != external => {
                    tracing::info!(%now, "the port mapping moved");
                    external = now;
                    let _ = publish(external, mapping.lifetime()).await;
                }
                Ok(_) => {}
                Err(why) => {
                    tracing::info!(%why, "port mapping not renewed: asking again");
                    break 'held;
                }
            }
        }
        view.send_replace(PortMappingView::new(PortMappingState::Trying));
        let _ = driver.set_port_mapping(None).await;
    }
}

/// A mapping of `port` on `gateway` for `client` (this device's address towards it), and
/// the public address it gives; why not otherwise.
async fn map(
    gateway: Ipv4Addr,
    client: IpAddr,
    port: NonZeroU16,
) -> Result<(PortMapping, SocketAddr), String> {
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
    match address_of(&mapping, Some(gateway)).await {
        Ok(external) => Ok((mapping, external)),
        Err(why) => {
            let _ = mapping.try_drop().await;
            Err(why)
        }
    }
}

/// The public address `mapping` gives, checked: a public unicast address, a lifetime
/// worth renewing.
async fn address_of(mapping: &PortMapping, gateway: Option<Ipv4Addr>) -> Result<SocketAddr, String> {
    if mapping.lifetime() < MIN_LIFETIME_SECS {
        return Err(format!("the router granted {} s only", mapping.lifetime()));
    }
    let ip = match (mapping.mapping_type(), gateway) {
        (PortMappingType::Pcp { external_ip, .. }, _) => external_ip,
        (PortMappingType::NatPmp, Some(gateway)) => IpAddr::V4(
            crab_nat::natpmp::external_address(gateway.into(), Some(TIMEOUTS))
                .await
                .map_err(|e| format!("NAT-PMP external address: {e}"))?,
        ),
        (PortMappingType::NatPmp, None) => return Err("no gateway".into()),
    };
    if !is_public(ip) {
        return Err(format!("the router's address {ip} is not a public one"));
    }
    Ok(SocketAddr::new(ip, mapping.external_port().get()))
}
