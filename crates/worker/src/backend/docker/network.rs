//! One network per workload: an app's replicas (or a task's runs) reach each other and nothing
//! else of the worker's. Podman networks are created isolated (traffic between isolated bridges
//! is dropped); Docker isolates its bridge networks from each other by default. Ports are
//! published on 127.0.0.1 only, which no container can reach, so the ingress is the only way in.
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
                if egress == Egress::Denied {
                    self.egress.deny(&name, &subnets(&network)).await?;
                }
                return Ok(name);
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(engine(format!("inspecting network {name}"))(e)),
        }
        let options = match self.confinement.engine {
            Engine::Podman => HashMap::from([("isolate".to_string(), "true".to_string())]),
            Engine::Docker => HashMap::new(),
        };
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            options: Some(options),
            labels: Some(HashMap::from([(
                MANAGED_LABEL.to_string(),
                self.scope.clone(),
            )])),
            ..NetworkCreateRequest::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => {}
            // Another replica created it first.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(engine(format!("creating network {name}"))(e)),
        }
        if egress == Egress::Denied {
            let denied = match self
                .docker
                .inspect_network(&name, None::<InspectNetworkOptions>)
                .await
            {
                Ok(network) => self.egress.deny(&name, &subnets(&network)).await,
                Err(e) => Err(engine(format!("inspecting network {name}"))(e)),
            };
            if let Err(e) = denied {
                // Never left for a container to join with its egress open.
                let _ = self.docker.remove_network(&name).await;
                return Err(e);
            }
        }
        Ok(name)
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
