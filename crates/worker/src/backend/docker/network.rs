//! One network per workload: an app's replicas (or a task's runs) reach each other and nothing
//! else of the worker's. Podman networks are created isolated (traffic between isolated bridges
//! is dropped); Docker isolates its bridge networks from each other by default. Nothing is
//! published on the host: the worker's machine reaches containers at their address on the
//! network, so the ingress is the only way in.
//! A workload denied egress gets a network of its own (`...-noegress`), whose containers may
//! open no connection beyond it ([`super::egress`]).

use std::collections::HashMap;

use bollard::models::{NetworkCreateRequest, NetworkInspect};
use bollard::query_parameters::{
    InspectNetworkOptions, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};
use wetee_types::Workload;
use wetee_types::manifest::Egress;

use super::egress::Subnet;
use super::{DockerBackend, engine, not_found};
use crate::backend::confinement::Engine;
use crate::backend::{BackendError, MANAGED_LABEL};

/// The label naming a container's network, so that the network is removed with its last one.
pub(super) const NETWORK_LABEL: &str = "wetee.network";
/// Ends the name of a network whose containers are denied egress.
const NO_EGRESS: &str = "-noegress";

impl DockerBackend {
    /// The network of `workload`'s containers that may (or may not) open connections.
    pub(super) fn network_name(&self, workload: &Workload, egress: Egress) -> String {
        let prefix = self.name_prefix();
        let suffix = match egress {
            Egress::Open => "",
            Egress::Denied => NO_EGRESS,
        };
        match workload {
            Workload::App { app } => format!("{prefix}app-{app}{suffix}"),
            Workload::TaskRun { task, .. } => format!("{prefix}task-{task}{suffix}"),
        }
    }

    /// Creates `workload`'s network unless it exists, denies it egress if asked (again: a
    /// reboot forgets the rules, not the network), and returns its name.
    pub(super) async fn ensure_network(
        &self,
        workload: &Workload,
        egress: Egress,
    ) -> Result<String, BackendError> {
        let name = self.network_name(workload, egress);
        match self
            .docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(network) => {
                self.check_ours(&name, &network)?;
                if egress == Egress::Denied {
                    self.egress.deny(&name, &subnets(&network)).await?;
                }
                return Ok(name);
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(engine(format!("inspecting network {name}"))(e)),
        }
        match self
            .docker
            .create_network(self.isolated_network(&name))
            .await
        {
            Ok(_) => {}
            // Another replica created it first: checked below like any network found.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(engine(format!("creating network {name}"))(e)),
        }
        let network = self
            .docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await
            .map_err(engine(format!("inspecting network {name}")))?;
        self.check_ours(&name, &network)?;
        if egress == Egress::Denied
            && let Err(e) = self.egress.deny(&name, &subnets(&network)).await
        {
            // Never left for a container to join with its egress open.
            let _ = self.docker.remove_network(&name).await;
            return Err(e);
        }
        Ok(name)
    }

    /// What creates network `name`, isolated from the engine's other networks and labelled as
    /// this worker's.
    fn isolated_network(&self, name: &str) -> NetworkCreateRequest {
        let options = match self.confinement.engine {
            Engine::Podman => HashMap::from([("isolate".to_string(), "true".to_string())]),
            Engine::Docker => HashMap::new(),
        };
        NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            options: Some(options),
            labels: Some(HashMap::from([(
                MANAGED_LABEL.to_string(),
                self.scope.clone(),
            )])),
            ..NetworkCreateRequest::default()
        }
    }

    /// Refuses a network this worker did not create: it may not be isolated from other
    /// networks (the worker checked at start that the engine isolates the ones it creates).
    fn check_ours(&self, name: &str, network: &NetworkInspect) -> Result<(), BackendError> {
        let labelled = network
            .labels
            .as_ref()
            .and_then(|labels| labels.get(MANAGED_LABEL));
        if labelled == Some(&self.scope) {
            return Ok(());
        }
        Err(BackendError::Engine {
            operation: format!("using network {name}"),
            reason: "this worker did not create it, so it may not be isolated from other \
                     networks: remove it (`podman network rm`) and the worker makes its own"
                .into(),
        })
    }

    /// Refuses an engine that does not isolate the networks the worker creates. Docker isolates
    /// every bridge network from the others; Podman only one created with `isolate`, and an
    /// engine that ignored the option would let tenants reach each other. A probe network is
    /// created as a workload's would be, its options read back from Podman's own API (the
    /// Docker-compatible one does not show them, and Podman 4.3 drops them from its own answer
    /// once a container has joined, so only a fresh network tells), and removed.
    pub(super) async fn check_engine_isolates(&self) -> Result<(), BackendError> {
        if self.confinement.engine != Engine::Podman {
            return Ok(());
        }
        static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let probe = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "{}isolation-probe-{}-{probe}",
            self.name_prefix(),
            std::process::id()
        );
        self.docker
            .create_network(self.isolated_network(&name))
            .await
            .map_err(engine(format!("creating network {name}")))?;
        let options = podman_network_options(&self.socket, &name).await;
        let _ = self.docker.remove_network(&name).await;
        match options?.get("isolate").map(String::as_str) {
            Some("true" | "strict") => Ok(()),
            found => Err(BackendError::Engine {
                operation: "checking that Podman isolates networks".into(),
                reason: format!(
                    "a network created with isolate = true reads back isolate = {}: tenants' \
                     containers could reach each other (Podman 4 or newer isolates networks)",
                    found.unwrap_or("unset")
                ),
            }),
        }
    }

    /// Removes network `name` once none of this worker's containers is left on it, with its
    /// egress rules.
    pub(super) async fn release_network(&self, name: &str) -> Result<(), BackendError> {
        let filters = HashMap::from([("label", vec![format!("{NETWORK_LABEL}={name}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let in_use = !self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine(format!("listing the containers of network {name}")))?
            .is_empty();
        if in_use {
            return Ok(());
        }
        match self.docker.remove_network(name).await {
            Ok(()) => {}
            Err(e) if not_found(&e) => {}
            // A container of it is being created right now, or one made before containers
            // were labelled with their network still uses it: a later removal takes it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409 | 500,
                ..
            }) => return Ok(()),
            Err(e) => return Err(engine(format!("removing network {name}"))(e)),
        }
        if name.ends_with(NO_EGRESS) {
            self.egress.forget(name).await?;
        }
        Ok(())
    }

    /// Removes egress rules left for networks of this worker that no longer exist (a worker
    /// killed between removing a network and its rules).
    pub(super) async fn sweep_egress_rules(&self) -> Result<(), BackendError> {
        let filters = HashMap::from([("label", vec![format!("{MANAGED_LABEL}={}", self.scope)])]);
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(engine("listing networks".to_string()))?;
        let names: Vec<String> = networks.into_iter().filter_map(|n| n.name).collect();
        self.egress.sweep(&self.name_prefix(), &names).await
    }
}

/// A network's subnets with their gateways, as the engine reports them.
fn subnets(network: &NetworkInspect) -> Vec<Subnet> {
    network
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|config| {
            Some(Subnet {
                cidr: config.subnet.clone()?,
                gateway: config.gateway.as_deref()?.parse().ok()?,
            })
        })
        .collect()
}

/// Network `name`'s options, as Podman's own API (`/libpod/networks/{name}/json`) shows them.
async fn podman_network_options(
    socket: &std::path::Path,
    name: &str,
) -> Result<HashMap<String, String>, BackendError> {
    use http_body_util::{BodyExt as _, Empty, Limited};
    /// A network's description is a few hundred bytes.
    const MAX_ANSWER_BYTES: usize = 1 << 20;
    let failed = |reason: String| BackendError::Engine {
        operation: format!("reading network {name} from Podman's API"),
        reason,
    };
    let asked = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| failed(format!("{}: {e}", socket.display())))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| failed(e.to_string()))?;
        let connection = tokio::spawn(connection);
        let request = hyper::Request::get(format!("/v4.0.0/libpod/networks/{name}/json"))
            .header(hyper::header::HOST, "podman")
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| failed(e.to_string()))?;
        let answered = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| failed(e.to_string()))?
                .to_bytes();
            Ok::<_, BackendError>((status, body))
        }
        .await;
        connection.abort();
        answered
    };
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(30), asked)
        .await
        .map_err(|_| failed("no answer within 30 s".into()))??;
    if !status.is_success() {
        return Err(failed(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    #[derive(serde::Deserialize)]
    struct Network {
        #[serde(default)]
        options: Option<HashMap<String, String>>,
    }
    let network: Network =
        serde_json::from_slice(&body).map_err(|e| failed(format!("unreadable answer: {e}")))?;
    Ok(network.options.unwrap_or_default())
}
