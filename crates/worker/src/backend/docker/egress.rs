//! Egress denied per network, for workloads whose manifest says `network.egress = "none"`.
//!
//! Their network is an ordinary (isolated) bridge, so that the ingress still reaches their
//! ports; what they may not do is open a connection. Two rules per subnet, in a chain
//! of the worker's own (`WETEE-EGRESS`) that the `mangle` table's `PREROUTING` jumps to first,
//! drop every new connection a container of the network starts:
//!
//! - to the network's gateway (the worker's machine, where the engine's DNS and the operator's
//!   services listen), and
//! - to anything outside the network's subnet (the internet, other networks).
//!
//! Answers to connections the worker opened (the ingress, health probes) are not new and flow.
//! The rules are tagged with the network's name, added again whenever the network is used (a
//! reboot empties the kernel's tables but not the engine's networks), removed with the network,
//! and swept at start for networks that no longer exist. `PREROUTING` in `mangle` is used
//! because neither Podman's CNI plugins nor Docker write there, so no rule of theirs can come
//! first and accept the traffic.
//!
//! A rule that cannot be added fails the container's start: a workload that asked for no egress
//! never runs with it. The worker must be root on the machine whose kernel routes the engine's
//! bridges (a rootful engine); a rootless engine's networks live in a namespace of their own,
//! and a worker there cannot deny egress.

use std::net::IpAddr;

use tokio::process::Command;
use tokio::sync::Mutex;

use crate::backend::BackendError;

/// The worker's chain in the `mangle` table.
const CHAIN: &str = "WETEE-EGRESS";

/// A network's address range and gateway, as the engine reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// `10.89.3.0/24`.
    pub cidr: String,
    /// `10.89.3.1`.
    pub gateway: IpAddr,
}

impl Subnet {
    fn is_ipv6(&self) -> bool {
        self.gateway.is_ipv6()
    }
}

/// Adds and removes the rules; one change at a time, since each is several commands.
#[derive(Debug, Default)]
pub struct EgressFirewall {
    changing: Mutex<()>,
}

impl EgressFirewall {
    /// Denies new connections from `network`'s containers to anything but each other.
    pub async fn deny(&self, network: &str, subnets: &[Subnet]) -> Result<(), BackendError> {
        if subnets.is_empty() {
            return Err(refused(
                network,
                "the engine reports no subnet for it".into(),
            ));
        }
        let _changing = self.changing.lock().await;
        for subnet in subnets {
            let tool = Tool::for_subnet(subnet);
            ensure_chain(tool).await.map_err(|e| refused(network, e))?;
            for rule in rules(network, subnet) {
                let args = |action: &'static str| {
                    let mut args = vec!["-t", "mangle", action, CHAIN];
                    args.extend(rule.iter().map(String::as_str));
                    args
                };
                if run(tool, &args("-C")).await.is_ok() {
                    continue;
                }
                run(tool, &args("-A"))
                    .await
                    .map_err(|e| refused(network, e))?;
            }
        }
        Ok(())
    }

    /// Removes `network`'s rules (it is gone, or its workload may open connections again).
    pub async fn forget(&self, network: &str) -> Result<(), BackendError> {
        let _changing = self.changing.lock().await;
        self.remove_where(|tag| tag == network).await
    }

    /// Removes the rules of this worker's networks (named `prefix...`) that are not in
    /// `existing`.
    pub async fn sweep(&self, prefix: &str, existing: &[String]) -> Result<(), BackendError> {
        let _changing = self.changing.lock().await;
        self.remove_where(|tag| tag.starts_with(prefix) && !existing.iter().any(|n| n == tag))
            .await
    }

    async fn remove_where(&self, doomed: impl Fn(&str) -> bool) -> Result<(), BackendError> {
        for tool in [Tool::V4, Tool::V6] {
            // No chain (never used, or no such tool): nothing to remove.
            let Ok(listing) = run(tool, &["-t", "mangle", "-S", CHAIN]).await else {
                continue;
            };
            for line in listing.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                let tag = words
                    .windows(2)
                    .find(|w| w[0] == "--comment")
                    .map(|w| w[1].trim_matches('"'));
                if words.first() != Some(&"-A") || !tag.is_some_and(&doomed) {
                    continue;
                }
                let mut args = vec!["-t", "mangle", "-D"];
                args.extend(&words[1..]);
                run(tool, &args).await.map_err(|e| BackendError::Engine {
                    operation: "removing an egress rule".into(),
                    reason: e,
                })?;
            }
        }
        Ok(())
    }
}

/// The rules for one subnet, each without the table and chain.
fn rules(network: &str, subnet: &Subnet) -> [Vec<String>; 2] {
    let host = if subnet.is_ipv6() { "/128" } else { "/32" };
    let tail = |rule: &mut Vec<String>| {
        rule.extend(
            [
                "-m",
                "conntrack",
                "--ctstate",
                "NEW",
                "-m",
                "comment",
                "--comment",
                network,
                "-j",
                "DROP",
            ]
            .map(String::from),
        );
    };
    let mut to_gateway = vec![
        "-s".to_string(),
        subnet.cidr.clone(),
        "-d".to_string(),
        format!("{}{host}", subnet.gateway),
    ];
    tail(&mut to_gateway);
    let mut outside = vec![
        "-s".to_string(),
        subnet.cidr.clone(),
        "!".to_string(),
        "-d".to_string(),
        subnet.cidr.clone(),
    ];
    tail(&mut outside);
    [to_gateway, outside]
}

/// Creates the chain and puts the jump to it first in `PREROUTING`.
async fn ensure_chain(tool: Tool) -> Result<(), String> {
    if run(tool, &["-t", "mangle", "-S", CHAIN]).await.is_err() {
        run(tool, &["-t", "mangle", "-N", CHAIN]).await?;
    }
    let first = run(tool, &["-t", "mangle", "-S", "PREROUTING"]).await?;
    let jump = format!("-A PREROUTING -j {CHAIN}");
    if first.lines().nth(1).map(str::trim) != Some(jump.as_str()) {
        // Anywhere else it could come after a rule that accepts: move it first.
        while run(tool, &["-t", "mangle", "-D", "PREROUTING", "-j", CHAIN])
            .await
            .is_ok()
        {}
        run(
            tool,
            &["-t", "mangle", "-I", "PREROUTING", "1", "-j", CHAIN],
        )
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    V4,
    V6,
}

impl Tool {
    fn for_subnet(subnet: &Subnet) -> Tool {
        if subnet.is_ipv6() { Tool::V6 } else { Tool::V4 }
    }

    fn program(self) -> String {
        let name = match self {
            Tool::V4 => "iptables",
            Tool::V6 => "ip6tables",
        };
        // Root's PATH has them; a service manager's may not.
        ["/usr/sbin", "/sbin"]
            .into_iter()
            .map(|dir| std::path::Path::new(dir).join(name))
            .find(|path| path.exists())
            .map_or_else(|| name.to_string(), |path| path.display().to_string())
    }
}

/// Runs the tool (waiting for the kernel tables' lock), returning what it printed.
async fn run(tool: Tool, args: &[&str]) -> Result<String, String> {
    let output = Command::new(tool.program())
        .arg("-w")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", tool.program()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{} {}: {}",
            tool.program(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn refused(network: &str, reason: String) -> BackendError {
    BackendError::Engine {
        operation: format!(
            "denying egress on network {network} (the manifest asks for network.egress = \"none\"; \
             the worker must run as root beside a rootful engine)"
        ),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_gets_a_rule_for_its_gateway_and_one_for_outside() {
        let subnet = Subnet {
            cidr: "10.89.3.0/24".into(),
            gateway: "10.89.3.1".parse().unwrap(),
        };
        let [gateway, outside] = rules("wetee-abc-app-7-noegress", &subnet);
        assert_eq!(
            gateway.join(" "),
            "-s 10.89.3.0/24 -d 10.89.3.1/32 -m conntrack --ctstate NEW -m comment --comment \
             wetee-abc-app-7-noegress -j DROP"
        );
        assert_eq!(
            outside.join(" "),
            "-s 10.89.3.0/24 ! -d 10.89.3.0/24 -m conntrack --ctstate NEW -m comment --comment \
             wetee-abc-app-7-noegress -j DROP"
        );
        let v6 = Subnet {
            cidr: "fd00:1::/64".into(),
            gateway: "fd00:1::1".parse().unwrap(),
        };
        assert!(rules("n", &v6)[0].contains(&"fd00:1::1/128".to_string()));
    }
}
