//! `worker.toml`: what the operator offers and how the worker runs.
//!
//! ```toml
//! stake = "200"                  # WTE bonded at registration (at least what the level needs)
//! data_dir = "/var/lib/wetee-worker"
//!
//! [chain]                        # the chain served: trusted from here, never from a node
//! genesis_hash = "0x…"           # its spec's genesis hash (`wetee chain info`), or:
//! # spec = "/etc/wetee/chain-spec.json"
//! rpc = ["ws://10.0.0.2:9944"]   # further nodes, used when one fails or is caught lying
//!
//! [profile]                      # the offer, as registered on chain (prices in base units)
//! endpoint = "http://127.0.0.1:8800"
//! region = "local"
//! level = 1
//! tee_kinds = ["simulated"]
//! capacity = { cpu_millicores = 4000, memory_mib = 8192, disk_gib = 100, gpus = 0 }
//! prices = { cpu_millicore = "1000", memory_mib = "100", disk_gib = "1000", gpu = "0" }
//!
//! [backend]
//! kind = "docker"
//! socket = "/run/podman/podman.sock"   # default: $DOCKER_HOST or /var/run/docker.sock
//! secrets_dir = "/dev/shm/wetee-secrets" # the default; must be on a tmpfs or ramfs
//! pids_limit = 1024                     # the default: processes per container
//!
//! [logs]                         # containers' output, kept only sealed to each owner
//! retention_epochs = 24          # the default: epochs a workload's output is kept for
//! max_bytes_per_epoch = 67108864 # the default (64 MiB): per workload and epoch, then dropped
//!
//! [keys]                         # where the identity and sealing keys are kept
//! store = "file"                 # the default for the simulated TEE: a plain, UNPROTECTED file
//! # store = "snp-sealed"         # SEV-SNP (the default there): sealed to the launch measurement
//! # store = "gramine-protected"  # SGX (the default there): Gramine's encrypted mount
//! # store = "encrypted-disk"     # TDX (the default there): the VM's dm-crypt data disk
//! # store = "memory"             # any TEE: never written; new keys, rotated on chain, each start
//!
//! [ingress]                      # the default
//! listen = "127.0.0.1:8800"
//! domain = "localhost"           # apps answer at http://<app-id>.localhost:8800/
//!
//! [ingress.limits]               # the defaults (see src/ingress/limits.rs)
//! max_connections = 4096
//! max_connections_per_ip = 256
//! header_timeout_ms = 10000      # also closes idle kept-alive connections
//! body_timeout_ms = 30000
//! response_timeout_ms = 60000
//! max_body_bytes = 16777216
//! max_header_bytes = 32768
//! ```
//!
//! `secrets_dir` is where the owners' decrypted secrets are written for their containers (one
//! directory per container, mounted read-only at `/run/secrets`). It must be in memory: the
//! worker refuses to start when it is on a disk, and creates it (mode 0700) if missing.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use wetee_types::Balance;
use wetee_types::records::WorkerProfile;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Stake bonded when the worker registers itself, in WTE (`"200"`, `"2.5"`).
    #[serde(deserialize_with = "tokens")]
    pub stake: Balance,
    /// Where the worker keeps its keys and logs.
    pub data_dir: PathBuf,
    /// The chain this worker serves.
    pub chain: ChainTrust,
    /// The offer registered on chain.
    pub profile: WorkerProfile,
    /// Where workloads run.
    pub backend: BackendConfig,
    /// The HTTP entrance to the apps.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// Where the worker's keys are kept.
    #[serde(default)]
    pub keys: KeysConfig,
    /// How long and how much of each workload's sealed output is kept.
    #[serde(default)]
    pub logs: crate::logbook::LogLimits,
    /// SHA-384 of the file it was read from, measured into TDX RTMR3 ([`crate::rtmr`]); `None`
    /// for a configuration built in code (development).
    #[serde(skip)]
    pub text_digest: Option<[u8; 48]>,
}

/// Where the worker's keys are kept (see [`crate::keys`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The store; by default the one the offered TEE has.
    #[serde(default)]
    pub store: Option<crate::keys::StoreKind>,
}

impl WorkerConfig {
    /// The key store this worker uses.
    pub fn key_store(&self) -> crate::keys::StoreKind {
        self.keys
            .store
            .unwrap_or_else(|| crate::keys::StoreKind::default_for(self.profile.tee_kinds))
    }
}

/// The HTTP entrance: `http://<app-id>.<domain>:<port>/` or `http://<listen>/<app-id>/`.
/// Which chain the worker serves, and through which nodes: a node serving another chain, or
/// whose answers fail verification against this chain's validators, is not used.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainTrust {
    /// The genesis hash of the chain's spec (which fixes its validator set).
    #[serde(default)]
    pub genesis_hash: Option<wetee_types::Hash>,
    /// The chain's spec file, instead of its hash.
    #[serde(default)]
    pub spec: Option<PathBuf>,
    /// Nodes to use besides the one given on the command line, in order of preference.
    #[serde(default)]
    pub rpc: Vec<String>,
}

impl ChainTrust {
    /// Trust in the chain named by its genesis hash.
    pub fn genesis(genesis_hash: wetee_types::Hash) -> ChainTrust {
        ChainTrust {
            genesis_hash: Some(genesis_hash),
            spec: None,
            rpc: Vec::new(),
        }
    }

    /// What the light client trusts.
    pub fn trust(&self) -> Result<wetee_client::light::Trust, String> {
        match (&self.genesis_hash, &self.spec) {
            (Some(hash), None) => Ok(wetee_client::light::Trust::GenesisHash(*hash)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("chain.spec {}: {e}", path.display()))?;
                let spec: wetee_types::ChainSpec = serde_json::from_str(&text)
                    .map_err(|e| format!("chain.spec {}: {e}", path.display()))?;
                Ok(wetee_client::light::Trust::Spec(Box::new(spec)))
            }
            (Some(_), Some(_)) => {
                Err("chain: name the chain by genesis_hash or by spec, not both".into())
            }
            (None, None) => Err(
                "chain.genesis_hash: name the chain this worker serves (its \
                 spec's genesis hash, printed by `wetee chain info`), or chain.spec: its spec \
                 file; the worker trusts no node to tell it"
                    .into(),
            ),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// Where it listens.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// The domain app ids are prefixed to.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Connections, time and bytes each client may hold (`[ingress.limits]`).
    #[serde(default)]
    pub limits: crate::ingress::IngressLimits,
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8800))
}

fn default_domain() -> String {
    "localhost".into()
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            listen: default_listen(),
            domain: default_domain(),
            limits: Default::default(),
        }
    }
}

fn tokens<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Balance, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Which backend, and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `docker` (Docker or Podman).
    pub kind: BackendKind,
    /// The engine's Unix socket.
    #[serde(default)]
    pub socket: Option<String>,
    /// Where decrypted secrets are written for the containers: a tmpfs or ramfs.
    #[serde(default = "default_secrets_dir")]
    pub secrets_dir: PathBuf,
    /// Processes (threads included) each container may have.
    #[serde(default = "default_pids_limit")]
    pub pids_limit: u32,
}

fn default_pids_limit() -> u32 {
    crate::backend::confinement::DEFAULT_PIDS_LIMIT
}

/// The default `secrets_dir`: `/dev/shm` is a tmpfs on Linux.
pub const DEFAULT_SECRETS_DIR: &str = "/dev/shm/wetee-secrets";

fn default_secrets_dir() -> PathBuf {
    DEFAULT_SECRETS_DIR.into()
}

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The Docker Engine API.
    Docker,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Why, naming the field.
    pub reason: String,
}

impl WorkerConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<WorkerConfig, ConfigError> {
        let error = |reason: String| ConfigError {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        WorkerConfig::parse(&text).map_err(error)
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<WorkerConfig, String> {
        let mut config: WorkerConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.text_digest = Some(crate::rtmr::config_digest(text));
        if config.profile.tee_kinds.is_empty() {
            return Err("profile.tee_kinds: list at least one TEE kind".into());
        }
        if config.profile.endpoint.as_str().is_empty() {
            return Err("profile.endpoint: where owners reach this worker".into());
        }
        if config.key_store() == crate::keys::StoreKind::File
            && !config
                .profile
                .tee_kinds
                .contains(wetee_types::TeeKind::Simulated)
        {
            return Err(
                "keys.store = \"file\" leaves the keys readable by the operator: it is \
                 only for the simulated TEE; choose snp-sealed, gramine-protected, \
                 encrypted-disk or memory"
                    .into(),
            );
        }
        if config.logs.retention_epochs < 2 {
            return Err(
                "logs.retention_epochs: at least 2 (an epoch's output is reported in the next \
                 one, and must still be there)"
                    .into(),
            );
        }
        if config.ingress.limits.write_timeout_ms == 0 {
            return Err(
                "ingress.limits.write_timeout_ms: more than 0 (every busy connection would be cut)"
                    .into(),
            );
        }
        if config.chain.genesis_hash.is_none() == config.chain.spec.is_none() {
            config.chain.trust()?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
stake = "200"
data_dir = "/tmp/w"

[chain]
genesis_hash = "0x0101010101010101010101010101010101010101010101010101010101010101"

[profile]
endpoint = "http://127.0.0.1:8800"
region = "local"
level = 1
tee_kinds = ["simulated"]
capacity = { cpu_millicores = 4000, memory_mib = 8192, disk_gib = 100, gpus = 0 }
prices = { cpu_millicore = "1000", memory_mib = "100", disk_gib = "1000", gpu = "0" }

[backend]
kind = "docker"
socket = "/run/podman/podman.sock"
"#;

    #[test]
    fn the_documented_example_parses() {
        let config = WorkerConfig::parse(EXAMPLE).unwrap();
        assert_eq!(config.profile.capacity.cpu_millicores, 4000);
        assert_eq!(config.backend.kind, BackendKind::Docker);
        assert_eq!(config.backend.secrets_dir, Path::new(DEFAULT_SECRETS_DIR));
        assert_eq!(config.stake, Balance(200 * wetee_types::balance::UNIT));
    }

    #[test]
    fn unknown_fields_and_missing_tee_kinds_are_refused() {
        let typo = EXAMPLE.replace("region", "regoin");
        assert!(WorkerConfig::parse(&typo).unwrap_err().contains("region"));
        let short = format!("{EXAMPLE}\n[logs]\nretention_epochs = 1\n");
        assert!(
            WorkerConfig::parse(&short)
                .unwrap_err()
                .contains("retention_epochs")
        );
        let none = EXAMPLE.replace(r#"tee_kinds = ["simulated"]"#, "tee_kinds = []");
        assert!(
            WorkerConfig::parse(&none)
                .unwrap_err()
                .contains("tee_kinds")
        );
    }

    #[test]
    fn the_chain_is_named_by_the_operator_or_the_worker_refuses_to_start() {
        let config = WorkerConfig::parse(EXAMPLE).unwrap();
        assert!(matches!(
            config.chain.trust(),
            Ok(wetee_client::light::Trust::GenesisHash(_))
        ));
        let unnamed = EXAMPLE.replace(
            "genesis_hash = \"0x0101010101010101010101010101010101010101010101010101010101010101\"",
            "",
        );
        assert!(
            WorkerConfig::parse(&unnamed)
                .unwrap_err()
                .contains("chain.genesis_hash")
        );
        let both = EXAMPLE.replace("[chain]", "[chain]\nspec = \"/etc/spec.json\"");
        assert!(WorkerConfig::parse(&both).unwrap_err().contains("not both"));
    }

    #[test]
    fn the_key_store_follows_the_tee_and_the_plain_file_is_only_for_the_simulated_one() {
        use crate::keys::StoreKind;
        assert_eq!(
            WorkerConfig::parse(EXAMPLE).unwrap().key_store(),
            StoreKind::File
        );
        let memory = format!("{EXAMPLE}\n[keys]\nstore = \"memory\"\n");
        assert_eq!(
            WorkerConfig::parse(&memory).unwrap().key_store(),
            StoreKind::Memory
        );
        let snp = EXAMPLE.replace(r#"tee_kinds = ["simulated"]"#, r#"tee_kinds = ["sev-snp"]"#);
        assert_eq!(
            WorkerConfig::parse(&snp).unwrap().key_store(),
            StoreKind::SnpSealed
        );
        let tdx = EXAMPLE.replace(r#"tee_kinds = ["simulated"]"#, r#"tee_kinds = ["tdx"]"#);
        assert_eq!(
            WorkerConfig::parse(&tdx).unwrap().key_store(),
            StoreKind::EncryptedDisk
        );
        let plain = format!("{tdx}\n[keys]\nstore = \"file\"\n");
        assert!(
            WorkerConfig::parse(&plain)
                .unwrap_err()
                .contains("keys.store")
        );
    }
}
