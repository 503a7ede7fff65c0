//! One network per workload: an app's replicas (or a task's runs) reach each other and nothing
//! else of the worker's. Podman networks are created isolated (traffic between isolated bridges
//! is dropped); Docker isolates its bridge networks from each other by default. Ports are
//! published on 127.0.0.1 only, which no container can reach, so the ingress is the only way in.

use std::collections::HashMap;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::InspectNetworkOptions;
use wetee_types::Workload;

use super::{DockerBackend, engine, not_found};
use crate::backend::confinement::Engine;
use crate::backend::{Backend as _, BackendError, MANAGED_LABEL};

impl DockerBackend {
    /// The network of `workload`'s containers.
    pub(super) fn network_name(&self, workload: &Workload) -> String {
        let prefix = self.name_prefix();
        match workload {
            Workload::App { app } => format!("{prefix}app-{app}"),
            Workload::TaskRun { task, .. } => format!("{prefix}task-{task}"),
        }
    }

    /// Creates `workload`'s network unless it exists, and returns its name.
    pub(super) async fn ensure_network(&self, workload: &Workload) -> Result<String, BackendError> {
        let name = self.network_name(workload);
        match self
            .docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(name),
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
            Ok(_) => Ok(name),
            // Another replica created it first.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(name),
            Err(e) => Err(engine(format!("creating network {name}"))(e)),
        }
    }

    /// Removes `workload`'s network once none of this worker's containers is left on it.
    pub(super) async fn release_network(&self, workload: &Workload) -> Result<(), BackendError> {
        let name = self.network_name(workload);
        let in_use = self
            .list()
            .await?
            .iter()
            .any(|instance| self.network_name(&instance.identity.workload) == name);
        if in_use {
            return Ok(());
        }
        match self.docker.remove_network(&name).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            // A container of it is being created right now: the next removal takes it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409 | 500,
                ..
            }) => Ok(()),
            Err(e) => Err(engine(format!("removing network {name}"))(e)),
        }
    }
}
