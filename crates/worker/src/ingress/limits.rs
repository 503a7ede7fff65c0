//! What one client, and all of them together, may hold of the ingress: connections, time and
//! bytes. Set in `worker.toml` under `[ingress.limits]`; the defaults suit a worker serving a
//! few hundred apps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

/// The ingress's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressLimits {
    /// Open connections in all; past it, new ones wait in the kernel's queue.
    pub max_connections: usize,
    /// Open connections from one IP address; past it, new ones are closed at once.
    pub max_connections_per_ip: usize,
    /// A request's head must arrive within this; an idle kept-alive connection is closed after
    /// it (slowloris: one header line every few seconds).
    pub header_timeout_ms: u64,
    /// The longest pause while a request body arrives (408).
    pub body_timeout_ms: u64,
    /// The app must start answering within this (504).
    pub response_timeout_ms: u64,
    /// The longest a client may leave an answer unread (a write that makes no progress): the
    /// connection is closed then, so a client that stops reading holds nothing for long.
    pub write_timeout_ms: u64,
    /// The largest request body (413).
    pub max_body_bytes: usize,
    /// The largest request head (431).
    pub max_header_bytes: usize,
}

impl Default for IngressLimits {
    fn default() -> Self {
        IngressLimits {
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            response_timeout_ms: 60_000,
            write_timeout_ms: 30_000,
            max_body_bytes: 16 << 20,
            max_header_bytes: 32 << 10,
        }
    }
}

impl IngressLimits {
    /// [`IngressLimits::header_timeout_ms`].
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// [`IngressLimits::body_timeout_ms`].
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// [`IngressLimits::write_timeout_ms`].
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// [`IngressLimits::response_timeout_ms`].
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }
}

/// Connections open per client address.
#[derive(Debug)]
pub struct ClientSlots {
    max_per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; its slot frees when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    ip: IpAddr,
}

impl ClientSlots {
    /// At most `max_per_ip` connections per address.
    pub fn new(max_per_ip: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            max_per_ip,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `ip`, unless it has all its slots already. An IPv6
    /// client is counted by its /64, which one subscriber usually holds whole.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let ip = client_of(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            ip,
        })
    }

    /// Connections open from `ip` (its /64, for IPv6).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let ip = client_of(ip);
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or_default()
    }
}

/// Who a connection is from, for counting: an IPv4 address (also when mapped into IPv6), or an
/// IPv6 /64.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Addresses come and go: keep only those with connections.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_no_more_and_gets_it_back() {
        let slots = ClientSlots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.enter(a).unwrap();
        let _second = slots.enter(a).unwrap();
        assert!(slots.enter(a).is_none());
        assert!(slots.enter(b).is_some(), "another client is not affected");
        drop(first);
        let _third = slots.enter(a).expect("a closed connection frees its slot");
        assert_eq!(slots.open_from(a), 2);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() {
        let slots = ClientSlots::new(1);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = slots.enter(one).unwrap();
        assert!(slots.enter(same_64).is_none());
        assert!(slots.enter(other_64).is_some());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _v4 = slots.enter(v4).unwrap();
        assert!(slots.enter(mapped).is_none());
    }

    #[test]
    fn limits_read_from_worker_toml_keep_defaults_for_what_is_left_out() {
        let limits: IngressLimits = toml::from_str("header_timeout_ms = 500").unwrap();
        assert_eq!(limits.header_timeout(), Duration::from_millis(500));
        assert_eq!(
            limits.max_body_bytes,
            IngressLimits::default().max_body_bytes
        );
        assert!(toml::from_str::<IngressLimits>("header_timeout = 5").is_err());
    }
}
