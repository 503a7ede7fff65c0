//! Limits on the RPC server: how many connections it holds, how many of them one IP address may
//! hold, and how many calls a second one address may make, each method costing what it reads. One address
//! cannot take every connection slot, nor the RPC threads, from everyone else.
//!
//! An IPv6 address counts with its whole /64 (what one subscriber is usually given). Loopback is
//! exempt unless configured otherwise: `wetee dev`, its worker, the console and the tests all
//! call from 127.0.0.1, and an operator who puts a proxy in front of a public node limits there.
//!
//! Must not: decide what a call answers, or hold any lock across an await.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonrpsee::server::middleware::rpc::{Batch, BatchEntry, MethodResponse, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Id, Request};
use wetee_types::rpc::codes;

/// The server's connection cap and the per-address limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimits {
    /// Connections the server holds open at once, from all addresses.
    pub connections: u32,
    /// Connections one address may hold open at once.
    pub connections_per_ip: u32,
    /// The call cost one address may spend each second, sustained ([`cost_of`]).
    pub calls_per_second_per_ip: NonZeroU32,
    /// The cost one address may spend at once after a quiet spell.
    pub burst_per_ip: NonZeroU32,
    /// Whether loopback addresses go unlimited.
    pub exempt_loopback: bool,
}

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits {
            connections: super::MAX_CONNECTIONS,
            connections_per_ip: 32,
            calls_per_second_per_ip: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
            burst_per_ip: NonZeroU32::new(1_000).unwrap_or(NonZeroU32::MIN),
            exempt_loopback: true,
        }
    }
}

/// What a call costs against its address's rate: the calls that read blocks, history or
/// proofs, or search placements, cost ten plain reads.
pub fn cost_of(method: &str) -> u32 {
    match method {
        "state_getProof"
        | "chain_getBlock"
        | "chain_getFinality"
        | "events_history"
        | "apps_epochs"
        | "state_pendingPlacements"
        | "state_placementPreview"
        | "state_pendingReason" => 10,
        _ => 1,
    }
}

/// Connections accepted between two sweeps of the rate limiter's idle addresses.
const SWEEP_EVERY: u64 = 4_096;

/// The limits' bookkeeping, shared by every connection.
#[derive(Debug)]
pub struct AddressLimiter {
    limits: RpcLimits,
    open: Mutex<Open>,
    calls: DefaultKeyedRateLimiter<IpAddr>,
    accepted: AtomicU64,
}

impl AddressLimiter {
    /// Bookkeeping for `limits`.
    pub fn new(limits: RpcLimits) -> Arc<AddressLimiter> {
        let quota =
            Quota::per_second(limits.calls_per_second_per_ip).allow_burst(limits.burst_per_ip);
        Arc::new(AddressLimiter {
            limits,
            open: Mutex::new(Open::default()),
            calls: RateLimiter::keyed(quota),
            accepted: AtomicU64::new(0),
        })
    }

    /// Whether `ip` (as it connected: `::1` is loopback, its /64 is not) goes unlimited.
    fn exempt(&self, ip: IpAddr) -> bool {
        let loopback = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
            IpAddr::V4(v4) => v4.is_loopback(),
        };
        self.limits.exempt_loopback && loopback
    }

    /// A slot for a new connection from `ip`, held until the connection ends; `None` when the
    /// address already holds its share.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        if self.accepted.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Addresses whose budget has refilled weigh nothing: forget them.
            self.calls.retain_recent();
            self.calls.shrink_to_fit();
        }
        let exempt = self.exempt(ip);
        let ip = subscriber(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.limits.connections {
            return None;
        }
        let counted = if exempt {
            None
        } else {
            let held = open.by_address.get(&ip).copied().unwrap_or(0);
            if held >= self.limits.connections_per_ip {
                return None;
            }
            open.by_address.insert(ip, held + 1);
            Some(ip)
        };
        open.total += 1;
        Some(ConnectionSlot {
            limiter: Arc::clone(self),
            ip: counted,
        })
    }

    /// Spends `cost` of `ip`'s rate now, or says how long until it could be.
    pub fn spend(&self, ip: IpAddr, cost: u32) -> Result<(), Refused> {
        if self.exempt(ip) {
            return Ok(());
        }
        let ip = subscriber(ip);
        let Some(cost) = NonZeroU32::new(cost) else {
            return Ok(());
        };
        match self.calls.check_key_n(&ip, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Refused::Wait(
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            Err(_) => Err(Refused::TooCostly {
                cost: cost.get(),
                burst: self.limits.burst_per_ip.get(),
            }),
        }
    }

    /// Connections open from `ip` (its /64 for IPv6) that count against its share.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.by_address.get(&subscriber(ip)).copied().unwrap_or(0)
    }
}

/// The connections open.
#[derive(Debug, Default)]
struct Open {
    total: u32,
    by_address: BTreeMap<IpAddr, u32>,
}

/// Why calls were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over the rate: this long until they would pass.
    Wait(Duration),
    /// More at once than the burst allows, ever.
    TooCostly {
        /// What they cost.
        cost: u32,
        /// The most one address may spend at once.
        burst: u32,
    },
}

impl Refused {
    /// The JSON-RPC error a caller gets.
    pub fn error(&self) -> ErrorObjectOwned {
        let message = match self {
            Refused::Wait(wait) => format!(
                "too many calls from this address: retry in {} ms",
                wait.as_millis().max(1)
            ),
            Refused::TooCostly { cost, burst } => format!(
                "these calls cost {cost}, more than one address may spend at once ({burst}): \
                 send them in smaller batches"
            ),
        };
        let retry_ms = match self {
            Refused::Wait(wait) => Some(u64::try_from(wait.as_millis().max(1)).unwrap_or(u64::MAX)),
            Refused::TooCostly { .. } => None,
        };
        ErrorObjectOwned::owned(
            codes::RATE_LIMITED,
            message,
            retry_ms.map(|ms| serde_json::json!({ "retry_after_ms": ms })),
        )
    }
}

/// A connection's place in its address's share; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<AddressLimiter>,
    ip: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        let Some(ip) = self.ip else {
            return;
        };
        if let Some(held) = open.by_address.get_mut(&ip) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.by_address.remove(&ip);
            }
        }
    }
}

/// A connection's socket holding its slot: the slot is given back when the socket closes, also
/// after a WebSocket upgrade has taken the socket over from the HTTP connection. A socket that
/// reads nothing for [`IDLE_TIMEOUT`] fails its next read, so that an idle connection does not
/// keep its slot for ever (a WebSocket is pinged more often than that, and its pongs are reads).
#[derive(Debug)]
pub struct SlottedStream {
    stream: std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>>,
    _slot: ConnectionSlot,
}

/// How long a connection may read nothing before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

impl SlottedStream {
    /// `stream`, holding `slot`.
    pub fn new(stream: tokio::net::TcpStream, slot: ConnectionSlot) -> SlottedStream {
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_read_timeout(Some(IDLE_TIMEOUT));
        SlottedStream {
            stream: Box::pin(stream),
            _slot: slot,
        }
    }
}

impl tokio::io::AsyncRead for SlottedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.stream.as_mut().poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SlottedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.stream.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.stream.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.stream.as_mut().poll_shutdown(cx)
    }
}

/// The address a limit is kept for: an IPv4 address (also when mapped into IPv6), or an IPv6
/// address's /64.
fn subscriber(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The RPC service of one connection, refusing calls over its address's rate.
#[derive(Debug, Clone)]
pub struct RateLimited<S> {
    service: S,
    ip: IpAddr,
    limiter: Arc<AddressLimiter>,
}

impl<S> RateLimited<S> {
    /// `service`, for calls from `ip`.
    pub fn new(service: S, ip: IpAddr, limiter: Arc<AddressLimiter>) -> RateLimited<S> {
        RateLimited {
            service,
            ip,
            limiter,
        }
    }
}

impl<S: super::InnerService> RpcServiceT for RateLimited<S> {
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let verdict = self.limiter.spend(self.ip, cost_of(request.method_name()));
        let service = self.service.clone();
        async move {
            match verdict {
                Ok(()) => service.call(request).await,
                Err(refused) => MethodResponse::error(request.id, refused.error()),
            }
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let cost = batch
            .iter()
            .map(|entry| match entry {
                Ok(BatchEntry::Call(request)) => cost_of(request.method_name()),
                Ok(BatchEntry::Notification(notification)) => cost_of(notification.method_name()),
                Err(_) => 1,
            })
            .fold(0u32, u32::saturating_add);
        let verdict = self.limiter.spend(self.ip, cost);
        let service = self.service.clone();
        async move {
            match verdict {
                Ok(()) => service.batch(batch).await,
                Err(refused) => MethodResponse::error(Id::Null, refused.error()),
            }
        }
    }

    fn notification<'a>(
        &self,
        notification: jsonrpsee::server::middleware::rpc::Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let verdict = self
            .limiter
            .spend(self.ip, cost_of(notification.method_name()));
        let service = self.service.clone();
        async move {
            match verdict {
                Ok(()) => service.notification(notification).await,
                Err(_) => MethodResponse::notification(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn strict(connections: u32, per_second: u32, burst: u32) -> Arc<AddressLimiter> {
        AddressLimiter::new(RpcLimits {
            connections: 4,
            connections_per_ip: connections,
            calls_per_second_per_ip: NonZeroU32::new(per_second).unwrap(),
            burst_per_ip: NonZeroU32::new(burst).unwrap(),
            exempt_loopback: false,
        })
    }

    #[test]
    fn an_address_holds_its_share_of_connections_and_gets_each_back() {
        let limiter = strict(2, 10, 10);
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let first = limiter.connect(ip).expect("first");
        let _second = limiter.connect(ip).expect("second");
        assert!(limiter.connect(ip).is_none());
        // Another address is not held back.
        assert!(
            limiter
                .connect(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 8)))
                .is_some()
        );
        drop(first);
        assert_eq!(limiter.open_from(ip), 1);
        assert!(limiter.connect(ip).is_some());
    }

    #[test]
    fn an_ipv6_subscriber_counts_with_its_whole_slash_64() {
        let limiter = strict(1, 10, 10);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = limiter.connect(one).expect("first");
        assert!(limiter.connect(same_64).is_none());
        assert!(limiter.connect(other_64).is_some());
        // An IPv4 address mapped into IPv6 is that IPv4 address.
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        let _v4 = limiter.connect(v4).expect("v4");
        assert!(limiter.connect(mapped).is_none());
    }

    #[test]
    fn calls_over_the_rate_are_refused_with_when_to_retry() {
        let limiter = strict(4, 1, 20);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(limiter.spend(ip, cost_of("state_getProof")), Ok(()));
        assert_eq!(limiter.spend(ip, 10), Ok(()));
        let Err(Refused::Wait(wait)) = limiter.spend(ip, 1) else {
            panic!("the burst is spent");
        };
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        let error = Refused::Wait(wait).error();
        assert_eq!(error.code(), codes::RATE_LIMITED);
        assert!(error.message().contains("retry in"), "{}", error.message());
        // More at once than the burst can never pass: it says so rather than "wait".
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(
            limiter.spend(other, 21),
            Err(Refused::TooCostly {
                cost: 21,
                burst: 20
            })
        );
    }

    #[test]
    fn loopback_is_exempt_unless_configured_otherwise() {
        let exempt = AddressLimiter::new(RpcLimits {
            connections: 3,
            connections_per_ip: 1,
            calls_per_second_per_ip: NonZeroU32::MIN,
            burst_per_ip: NonZeroU32::MIN,
            exempt_loopback: true,
        });
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let _a = exempt.connect(local).expect("a");
        let _b = exempt.connect(local).expect("b");
        for _ in 0..100 {
            assert_eq!(exempt.spend(local, 10), Ok(()));
        }
        // The server's own cap holds for everyone.
        let _c = exempt.connect(local).expect("c");
        assert!(exempt.connect(local).is_none());
        let local6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        for _ in 0..100 {
            assert_eq!(exempt.spend(local6, 10), Ok(()));
        }
        let strict = strict(1, 1, 1);
        let _held = strict.connect(local).expect("held");
        assert!(strict.connect(local).is_none());
        // An address refused a connection leaves nothing behind once it holds none.
        let none = AddressLimiter::new(RpcLimits {
            connections_per_ip: 0,
            ..RpcLimits::default()
        });
        let stranger = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        assert!(none.connect(stranger).is_none());
        assert_eq!(none.open_from(stranger), 0);
        assert!(none.open.lock().unwrap().by_address.is_empty());
    }
}
