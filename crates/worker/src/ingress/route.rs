//! Which of an app's ready containers takes a request (round robin). Which app a request is
//! for is [`wetee_types::app_address::app_of_request`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use wetee_types::AppId;

/// Where each app's traffic goes.
#[derive(Debug, Default)]
pub struct Routes {
    table: RwLock<BTreeMap<AppId, Vec<SocketAddr>>>,
    next: AtomicUsize,
}

impl Routes {
    /// Replaces the whole table.
    pub fn replace(&self, table: BTreeMap<AppId, Vec<SocketAddr>>) {
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = table;
    }

    /// The current table.
    pub fn snapshot(&self) -> BTreeMap<AppId, Vec<SocketAddr>> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The next backend of `app`.
    pub fn pick(&self, app: AppId) -> Option<SocketAddr> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let targets = table.get(&app).filter(|t| !t.is_empty())?;
        let index = self.next.fetch_add(1, Ordering::Relaxed) % targets.len();
        targets.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_spread_over_the_ready_replicas() {
        let routes = Routes::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        routes.replace(BTreeMap::from([(AppId(1), vec![a, b])]));
        let picks: Vec<_> = (0..4).filter_map(|_| routes.pick(AppId(1))).collect();
        assert_eq!(picks.iter().filter(|p| **p == a).count(), 2);
        assert_eq!(routes.pick(AppId(2)), None);
    }
}
