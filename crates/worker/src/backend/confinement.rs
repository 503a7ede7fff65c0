//! How every container is confined, whatever its manifest asks: the engine settings that keep a
//! tenant inside its container and off its neighbours, the worker and the operator's disk. Each
//! setting and its reason is listed in `docs/worker.md`; a manifest can only ask for the few
//! relaxations [`Security`] names.
//!
//! This module decides settings; it talks to no engine.

use std::collections::HashMap;

use bollard::models::{HostConfig, HostConfigLogConfig, ResourcesUlimits};
use wetee_types::manifest::{ContainerSpec, Security};

/// Which engine speaks the Docker API: they differ in how user namespaces and limits are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Podman's Docker-compatible service.
    Podman,
    /// Docker Engine.
    Docker,
}

impl Engine {
    /// The engine a version report's component name describes (`Podman Engine`, `Engine`).
    pub fn from_component(name: &str) -> Engine {
        if name.to_ascii_lowercase().contains("podman") {
            Engine::Podman
        } else {
            Engine::Docker
        }
    }
}

/// Processes (threads included) one container may have by default: a fork bomb stops here.
pub const DEFAULT_PIDS_LIMIT: u32 = 1024;
/// Open files per process: enough for a busy server, below the hard limit of common hosts.
const OPEN_FILES: i64 = 16_384;
/// The writable layer of a container that asked for no disk, where the engine can cap it.
const SCRATCH_WITHOUT_DISK: &str = "256m";
/// Podman's user namespace: a private range of 65,536 ids per container, so that root in one
/// container is an unprivileged id on the host and in no other container (`nobody` included).
const PODMAN_USERNS: &str = "auto:size=65536";

/// The confinement of one worker's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confinement {
    /// The engine.
    pub engine: Engine,
    /// Processes per container.
    pub pids_limit: u32,
    /// Whether the engine runs as root (not rootless): only then can Podman give each
    /// container its own range of host user ids.
    pub rootful: bool,
    /// Whether the engine caps a container's writable layer (`storage_opt size`).
    pub disk_quota: bool,
}

impl Confinement {
    /// The engine settings for a container running `container` on the network `network`. Ports
    /// and mounts are the caller's.
    pub fn host_config(&self, container: &ContainerSpec, network: &str) -> HostConfig {
        let resources = &container.resources;
        let memory = i64::try_from(resources.memory_mib)
            .ok()
            .and_then(|m| m.checked_mul(1 << 20))
            .filter(|m| *m > 0);
        let nano_cpus = i64::try_from(resources.cpu_millicores)
            .ok()
            .and_then(|m| m.checked_mul(1_000_000))
            .filter(|n| *n > 0);
        // Egress is the network's business (`docker/egress.rs`): `network` is the right one.
        let Security {
            capabilities,
            read_only_root,
            egress: _,
        } = &container.security;
        let pids = i64::from(self.pids_limit);
        let limit = |name: &str, value: i64| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(value),
            hard: Some(value),
        };
        // Rootless Podman (a developer's laptop) has too few ids to give each container a range
        // of its own: its containers share the user's.
        let private_ids = self.engine == Engine::Podman && self.rootful;
        // No core dumps: the kernel writes them where the operator can read them.
        let mut ulimits = vec![limit("core", 0)];
        if private_ids {
            // Podman replaces every limit once one is given, with values the host may refuse;
            // and per-container user ids make `nproc` a per-container count.
            ulimits.push(limit("nofile", OPEN_FILES));
            ulimits.push(limit("nproc", pids));
        }
        HostConfig {
            nano_cpus,
            memory,
            // Equal to the memory: no swap, which would put a tenant's memory on the disk.
            memory_swap: memory,
            pids_limit: Some(pids),
            ulimits: Some(ulimits),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: (!capabilities.is_empty())
                .then(|| capabilities.iter().map(|c| c.name().to_string()).collect()),
            // The engine's default seccomp profile applies: it is never turned off.
            security_opt: Some(vec!["no-new-privileges".into()]),
            privileged: Some(false),
            userns_mode: private_ids.then(|| PODMAN_USERNS.into()),
            // Every port can be bound without NET_BIND_SERVICE: only the container's own
            // network namespace is concerned.
            sysctls: Some(HashMap::from([(
                "net.ipv4.ip_unprivileged_port_start".into(),
                "0".into(),
            )])),
            readonly_rootfs: Some(*read_only_root),
            tmpfs: read_only_root.then(|| {
                // Counted in the container's memory.
                let size = (resources.memory_mib / 4).max(1);
                HashMap::from([(
                    "/tmp".into(),
                    format!("rw,nosuid,nodev,size={size}m,mode=1777"),
                )])
            }),
            storage_opt: self.disk_quota.then(|| {
                let size = match resources.disk_gib {
                    0 => SCRATCH_WITHOUT_DISK.to_string(),
                    gib => format!("{gib}g"),
                };
                HashMap::from([("size".into(), size)])
            }),
            // The engine keeps no copy of the output: the worker reads it as it is written
            // and keeps it only sealed to the owner (see `docker::output`).
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            network_mode: Some(network.into()),
            ..HostConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::codec::BoundedVec;
    use wetee_types::manifest::{Capability, ImageRef};
    use wetee_types::resources::Resources;

    fn container(security: Security, disk_gib: u64) -> ContainerSpec {
        ContainerSpec {
            image: ImageRef::parse(
                "localhost/x@sha256:3f1a6b0d4c8e2a9b7f5d1e3c6a8b0f2d4e6a8c0b2d4f6e8a0c2e4a6b8d0f2e4a",
            )
            .unwrap(),
            command: BoundedVec::new(),
            args: BoundedVec::new(),
            env: BoundedVec::new(),
            secrets: BoundedVec::new(),
            ports: BoundedVec::new(),
            resources: Resources {
                cpu_millicores: 500,
                memory_mib: 64,
                disk_gib,
                gpus: 0,
            },
            gpu_model: None,
            security,
        }
    }

    const PODMAN: Confinement = Confinement {
        engine: Engine::Podman,
        pids_limit: 100,
        rootful: true,
        disk_quota: false,
    };

    #[test]
    fn a_plain_container_keeps_no_capability_no_swap_and_no_privilege_gain() {
        let config = PODMAN.host_config(&container(Security::default(), 0), "net-1");
        assert_eq!(config.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(config.cap_add, None);
        assert_eq!(
            config.security_opt,
            Some(vec!["no-new-privileges".to_string()])
        );
        assert_eq!(config.memory, Some(64 << 20));
        assert_eq!(config.memory_swap, config.memory);
        assert_eq!(config.pids_limit, Some(100));
        assert_eq!(config.network_mode.as_deref(), Some("net-1"));
        assert_eq!(config.userns_mode.as_deref(), Some(PODMAN_USERNS));
        assert_eq!(config.readonly_rootfs, Some(false));
        assert_eq!(config.tmpfs, None);
        let ulimits = config.ulimits.unwrap();
        assert!(
            ulimits.iter().any(|u| u.name.as_deref() == Some("core")
                && u.soft == Some(0)
                && u.hard == Some(0))
        );
        assert_eq!(config.log_config.unwrap().typ.as_deref(), Some("none"));
    }

    #[test]
    fn a_manifest_gets_back_only_the_capabilities_it_names_and_a_read_only_root() {
        let security = Security {
            capabilities: BoundedVec::try_new(vec![Capability::Chown, Capability::Setuid]).unwrap(),
            read_only_root: true,
            ..Security::default()
        };
        let config = PODMAN.host_config(&container(security, 0), "net-1");
        assert_eq!(
            config.cap_add,
            Some(vec!["CHOWN".to_string(), "SETUID".to_string()])
        );
        assert_eq!(config.readonly_rootfs, Some(true));
        assert!(config.tmpfs.unwrap()["/tmp"].contains("size=16m"));
    }

    #[test]
    fn disk_is_capped_only_where_the_engine_can_and_docker_keeps_its_own_user_namespace() {
        assert_eq!(
            PODMAN
                .host_config(&container(Security::default(), 3), "n")
                .storage_opt,
            None
        );
        let docker = Confinement {
            engine: Engine::Docker,
            disk_quota: true,
            ..PODMAN
        };
        let config = docker.host_config(&container(Security::default(), 3), "n");
        assert_eq!(config.storage_opt.unwrap()["size"], "3g");
        assert_eq!(config.userns_mode, None);
        assert_eq!(config.ulimits.unwrap().len(), 1);
        let scratch = docker.host_config(&container(Security::default(), 0), "n");
        assert_eq!(scratch.storage_opt.unwrap()["size"], SCRATCH_WITHOUT_DISK);
        let rootless = Confinement {
            rootful: false,
            ..PODMAN
        };
        let config = rootless.host_config(&container(Security::default(), 0), "n");
        assert_eq!(config.userns_mode, None);
        assert_eq!(config.ulimits.unwrap().len(), 1);
    }
}
