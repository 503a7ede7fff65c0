//! What a developer asks the chain to run: the on-chain form of app and task manifests, their
//! validation, and the human TOML form (`wetee.toml`) that converts into them.
//!
//! Validation happens twice on purpose: the CLI validates before sending anything (the user sees
//! the field at fault at once), and the runtime validates again because transactions are
//! untrusted input.

use crate::attestation::{MAX_MEASUREMENT_RULES, MeasurementRule, Measurements};
use crate::balance::Balance;
use crate::codec::{BoundedString, BoundedVec};
use crate::cron::CronSchedule;
use crate::resources::{GpuModel, Region, Resources, TeeKind};
use crate::{codec_enum, codec_struct};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Maximum command or argument entries.
pub const MAX_ARGS: usize = 64;
/// Maximum environment variables.
pub const MAX_ENV: usize = 64;
/// Maximum secret names.
pub const MAX_SECRETS: usize = 32;
/// Maximum exposed ports.
pub const MAX_PORTS: usize = 16;
/// Maximum replicas of one app.
pub const MAX_REPLICAS: u32 = 100;
/// Largest worker level a manifest may ask for.
pub const MAX_LEVEL: u8 = 10;
/// Largest task timeout: one week.
pub const MAX_TIMEOUT_SECS: u32 = 7 * 24 * 3600;
/// Largest resource request per replica, per component.
pub const MAX_REQUEST: Resources = Resources {
    cpu_millicores: 1_024_000,
    memory_mib: 16 * 1024 * 1024,
    disk_gib: 1024 * 1024,
    gpus: 64,
};
/// Largest unit price a worker may set or a manifest may accept: keeps every price computation
/// far from overflow.
pub const MAX_PRICE: Balance = Balance(1_000_000_000 * crate::balance::UNIT);

/// Environment variable and secret names.
pub type EnvName = BoundedString<128>;
/// One command-line word.
pub type Arg = BoundedString<1024>;

/// A container image pinned by its content digest: `registry/name@sha256:<64 hex>`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ImageRef {
    /// Repository, including any registry host: `docker.io/library/nginx`.
    pub repository: BoundedString<255>,
    /// SHA-256 digest of the image manifest (or of the local image's config).
    pub digest: [u8; 32],
}
codec_struct!(ImageRef { repository, digest });

impl ImageRef {
    /// Parses `repository@sha256:<hex>`; tags are refused because they can change under you.
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let Some((repository, digest)) = text.split_once('@') else {
            return Err(format!(
                "`{text}` has no digest: write `name@sha256:<64 hex digits>` (tags can change, digests cannot)"
            ));
        };
        let Some(hex_digest) = digest.strip_prefix("sha256:") else {
            return Err(format!("`{digest}` is not a sha256 digest"));
        };
        let bytes = hex::decode(hex_digest)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("`{hex_digest}` is not 64 hex digits"))?;
        let image = ImageRef {
            repository: BoundedString::try_new(repository)
                .map_err(|_| "the repository name is longer than 255 bytes".to_string())?,
            digest: bytes,
        };
        image.validate_repository()?;
        Ok(image)
    }

    fn validate_repository(&self) -> Result<(), String> {
        let name = self.repository.as_str();
        // A repository name may carry a tag before the digest (`nginx:1.27@sha256:..`), which
        // the engine ignores; the digest is what is run.
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
            && !name.starts_with(['/', '.', '-', ':']);
        if valid {
            Ok(())
        } else {
            Err(format!(
                "`{name}` is not a repository name (lower-case letters, digits, `._-/:`)"
            ))
        }
    }

    /// The digest as `sha256:<hex>`.
    pub fn digest_string(&self) -> String {
        format!("sha256:{}", hex::encode(self.digest))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repository, self.digest_string())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct EnvVar {
    /// Name: `[A-Za-z_][A-Za-z0-9_]*`.
    pub name: EnvName,
    /// Value (no NUL bytes).
    pub value: BoundedString<4096>,
}
codec_struct!(EnvVar { name, value });

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}
codec_enum!(Protocol { 0 => Tcp, 1 => Udp });

/// A port the container listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Port {
    /// Port inside the container.
    pub container: u16,
    /// Protocol.
    pub protocol: Protocol,
}
codec_struct!(Port {
    container,
    protocol
});

/// How the worker decides an app replica is healthy (uptime is measured with it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Probe {
    /// `GET path` answers 2xx or 3xx.
    Http {
        /// Container port.
        port: u16,
        /// Absolute path, such as `/healthz`.
        path: BoundedString<256>,
    },
    /// A TCP connection is accepted.
    Tcp {
        /// Container port.
        port: u16,
    },
}
codec_enum!(Probe {
    0 => Http { port, path },
    1 => Tcp { port },
});

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HealthCheck {
    /// What to probe.
    pub probe: Probe,
    /// Seconds between probes.
    pub interval_secs: u32,
}
codec_struct!(HealthCheck {
    probe,
    interval_secs
});

/// The container to run and what it needs, shared by apps and tasks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ContainerSpec {
    /// The image, by digest.
    pub image: ImageRef,
    /// Replaces the image's entrypoint when not empty.
    pub command: BoundedVec<Arg, MAX_ARGS>,
    /// Arguments.
    pub args: BoundedVec<Arg, MAX_ARGS>,
    /// Plain environment variables, sorted by name, names unique.
    pub env: BoundedVec<EnvVar, MAX_ENV>,
    /// Names of secrets the owner provides sealed to the worker's TEE (never their values).
    pub secrets: BoundedVec<EnvName, MAX_SECRETS>,
    /// Ports the container listens on.
    pub ports: BoundedVec<Port, MAX_PORTS>,
    /// Resources per replica.
    pub resources: Resources,
    /// The GPU model required when `resources.gpus > 0`; any model when absent.
    pub gpu_model: Option<GpuModel>,
}
codec_struct!(ContainerSpec {
    image,
    command,
    args,
    env,
    secrets,
    ports,
    resources,
    gpu_model
});

/// Where a workload may run and what it may cost.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Constraints {
    /// The TEE the workload requires.
    pub tee: TeeKind,
    /// The region required; any region when absent.
    pub region: Option<Region>,
    /// The lowest acceptable worker level.
    pub min_level: u8,
    /// The most the owner pays per epoch for the whole workload (all replicas).
    pub max_price_per_epoch: Balance,
    /// The worker's attested TEE must match one of these (on top of the chain's policy); any
    /// measurement the chain accepts when empty. Part of the version: an update can change it.
    pub measurements: BoundedVec<MeasurementRule, MAX_MEASUREMENT_RULES>,
}
codec_struct!(Constraints {
    tee,
    region,
    min_level,
    max_price_per_epoch,
    measurements
});

impl Constraints {
    /// Whether a worker whose TEE reported `measurements` may run the workload.
    pub fn allows_measurements(&self, measurements: Option<&Measurements>) -> bool {
        self.measurements.is_empty()
            || measurements.is_some_and(|m| self.measurements.iter().any(|rule| rule.matches(m)))
    }
}

/// A long-running app.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AppSpec {
    /// A label for people: `[a-z0-9-]`, 1 to 63 bytes.
    pub name: BoundedString<63>,
    /// The container.
    pub container: ContainerSpec,
    /// Identical replicas, all on the assigned worker cluster.
    pub replicas: u32,
    /// Placement constraints and price ceiling.
    pub constraints: Constraints,
    /// Health check measuring uptime; without one, a running container counts as up.
    pub health: Option<HealthCheck>,
}
codec_struct!(AppSpec {
    name,
    container,
    replicas,
    constraints,
    health
});

/// When a task runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Once, as soon as it is created.
    Once,
    /// Every `blocks` blocks, the first run as soon as it is created.
    EveryBlocks {
        /// The period.
        blocks: u64,
    },
    /// At the times a cron expression names, evaluated on block time (UTC).
    Cron {
        /// The expression, such as `*/5 * * * *`.
        expression: BoundedString<128>,
    },
}
codec_enum!(Schedule {
    0 => Once,
    1 => EveryBlocks { blocks },
    2 => Cron { expression },
});

/// How a task's runs are scheduled and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TaskExecution {
    /// When runs are due.
    pub schedule: Schedule,
    /// A run is killed after this many seconds and paid at most for them.
    pub timeout_secs: u32,
    /// The task completes after this many runs; unlimited when absent (except `Once`).
    pub max_runs: Option<u32>,
}
codec_struct!(TaskExecution {
    schedule,
    timeout_secs,
    max_runs
});

/// A one-off or periodic task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TaskSpec {
    /// A label for people: `[a-z0-9-]`, 1 to 63 bytes.
    pub name: BoundedString<63>,
    /// The container.
    pub container: ContainerSpec,
    /// Placement constraints and price ceiling (per epoch of run time).
    pub constraints: Constraints,
    /// Schedule, timeout, run limit.
    pub execution: TaskExecution,
}
codec_struct!(TaskSpec {
    name,
    container,
    constraints,
    execution
});

/// A field of a manifest and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ManifestError {
    /// The field, as written in `wetee.toml`: `resources.cpu_millicores`.
    pub field: String,
    /// What is wrong and, where it helps, what to write instead.
    pub problem: String,
}

impl ManifestError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> ManifestError {
        ManifestError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

fn check(ok: bool, field: &str, problem: impl FnOnce() -> String) -> Result<(), ManifestError> {
    if ok {
        Ok(())
    } else {
        Err(ManifestError::new(field, problem()))
    }
}

fn is_label(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn is_env_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Variables the worker sets itself; a manifest may not define them.
pub const RESERVED_ENV_PREFIX: &str = "WETEE_";

fn validate_name(name: &str) -> Result<(), ManifestError> {
    check(is_label(name), "name", || {
        format!(
            "`{name}` must be 1-63 lower-case letters, digits or `-`, not starting or ending with `-`"
        )
    })
}

impl ContainerSpec {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.image
            .validate_repository()
            .map_err(|p| ManifestError::new("image", p))?;
        for (field, words) in [("command", &self.command), ("args", &self.args)] {
            for (i, word) in words.iter().enumerate() {
                check(!word.contains('\0'), &format!("{field}[{i}]"), || {
                    "contains a NUL byte".into()
                })?;
            }
        }
        let mut previous: Option<&str> = None;
        for var in &self.env {
            let field = format!("env.{}", var.name);
            check(is_env_name(&var.name), &field, || {
                "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)".into()
            })?;
            check(!var.name.starts_with(RESERVED_ENV_PREFIX), &field, || {
                format!("names starting with {RESERVED_ENV_PREFIX} are set by the worker")
            })?;
            check(!var.value.contains('\0'), &field, || {
                "contains a NUL byte".into()
            })?;
            check(previous < Some(var.name.as_str()), "env", || {
                format!("`{}` is listed twice or out of order", var.name)
            })?;
            previous = Some(var.name.as_str());
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            let field = format!("secrets[{i}]");
            check(is_env_name(secret), &field, || {
                format!("`{secret}` is not a valid name ([A-Za-z_][A-Za-z0-9_]*)")
            })?;
            check(!secret.starts_with(RESERVED_ENV_PREFIX), &field, || {
                format!("names starting with {RESERVED_ENV_PREFIX} are set by the worker")
            })?;
            check(!self.secrets[..i].contains(secret), &field, || {
                format!("`{secret}` is listed twice")
            })?;
            check(!self.env.iter().any(|v| v.name == *secret), &field, || {
                format!("`{secret}` is also a plain env variable")
            })?;
        }
        for (i, port) in self.ports.iter().enumerate() {
            let field = format!("ports[{i}]");
            check(port.container != 0, &field, || {
                "port 0 is not a port".into()
            })?;
            check(!self.ports[..i].contains(port), &field, || {
                format!("port {} is listed twice", port.container)
            })?;
        }
        let r = &self.resources;
        let positive = |value: u64, field: &str, max: u64| {
            check(value > 0, field, || "must be greater than zero".into())?;
            check(value <= max, field, || format!("must be at most {max}"))
        };
        positive(
            r.cpu_millicores,
            "resources.cpu_millicores",
            MAX_REQUEST.cpu_millicores,
        )?;
        positive(r.memory_mib, "resources.memory_mib", MAX_REQUEST.memory_mib)?;
        check(
            r.disk_gib <= MAX_REQUEST.disk_gib,
            "resources.disk_gib",
            || format!("must be at most {}", MAX_REQUEST.disk_gib),
        )?;
        check(r.gpus <= MAX_REQUEST.gpus, "resources.gpus", || {
            format!("must be at most {}", MAX_REQUEST.gpus)
        })?;
        if let Some(model) = &self.gpu_model {
            check(r.gpus > 0, "resources.gpu_model", || {
                "is set but resources.gpus is 0".into()
            })?;
            check(is_label(model), "resources.gpu_model", || {
                format!("`{model}` must be lower-case letters, digits or `-`")
            })?;
        }
        Ok(())
    }
}

impl Constraints {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if let Some(region) = &self.region {
            check(is_label(region), "placement.region", || {
                format!("`{region}` must be lower-case letters, digits or `-`")
            })?;
        }
        check(self.min_level <= MAX_LEVEL, "placement.min_level", || {
            format!("must be at most {MAX_LEVEL}")
        })?;
        check(
            !self.max_price_per_epoch.is_zero(),
            "placement.max_price_per_epoch",
            || "must be greater than zero".into(),
        )?;
        check(
            self.max_price_per_epoch <= MAX_PRICE,
            "placement.max_price_per_epoch",
            || format!("must be at most {MAX_PRICE}"),
        )?;
        for (i, rule) in self.measurements.iter().enumerate() {
            check(
                rule.is_pinned(),
                &format!("placement.measurements[{i}]"),
                || "pins no measurement and would match anything".into(),
            )?;
        }
        Ok(())
    }
}

impl HealthCheck {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        match &self.probe {
            Probe::Http { port, path } => {
                check(*port != 0, "health.port", || "port 0 is not a port".into())?;
                check(path.starts_with('/'), "health.path", || {
                    format!("`{path}` must start with `/`")
                })?;
            }
            Probe::Tcp { port } => {
                check(*port != 0, "health.port", || "port 0 is not a port".into())?;
            }
        }
        check(
            (1..=3600).contains(&self.interval_secs),
            "health.interval_secs",
            || "must be between 1 and 3600".into(),
        )
    }
}

impl AppSpec {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ManifestError> {
        validate_name(&self.name)?;
        self.container.validate()?;
        check(
            (1..=MAX_REPLICAS).contains(&self.replicas),
            "replicas",
            || format!("must be between 1 and {MAX_REPLICAS}"),
        )?;
        self.constraints.validate()?;
        if let Some(health) = &self.health {
            health.validate()?;
            let port = match &health.probe {
                Probe::Http { port, .. } | Probe::Tcp { port } => *port,
            };
            check(
                self.container.ports.iter().any(|p| p.container == port),
                "health.port",
                || format!("{port} is not one of the container's ports"),
            )?;
        }
        self.total_resources()
            .map(|_| ())
            .ok_or_else(|| ManifestError::new("replicas", "resources times replicas overflow"))
    }

    /// Resources of all replicas together.
    pub fn total_resources(&self) -> Option<Resources> {
        self.container
            .resources
            .checked_mul(u64::from(self.replicas))
    }
}

impl TaskExecution {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        match &self.schedule {
            Schedule::Once => check(
                self.max_runs.is_none() || self.max_runs == Some(1),
                "task.max_runs",
                || "a task without a schedule runs once".into(),
            )?,
            Schedule::EveryBlocks { blocks } => check(*blocks > 0, "task.every_blocks", || {
                "must be greater than zero".into()
            })?,
            Schedule::Cron { expression } => {
                CronSchedule::parse(expression)
                    .map_err(|e| ManifestError::new("task.cron", e.to_string()))?;
            }
        }
        check(
            (1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs),
            "task.timeout_secs",
            || format!("must be between 1 and {MAX_TIMEOUT_SECS}"),
        )?;
        check(self.max_runs != Some(0), "task.max_runs", || {
            "must be at least 1 (leave it out for no limit)".into()
        })
    }

    /// The most runs this execution allows.
    pub fn run_limit(&self) -> Option<u32> {
        match self.schedule {
            Schedule::Once => Some(1),
            _ => self.max_runs,
        }
    }
}

impl TaskSpec {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ManifestError> {
        validate_name(&self.name)?;
        self.container.validate()?;
        // Secrets are sealed to the one worker an app runs on; a task's runs may land anywhere.
        check(self.container.secrets.is_empty(), "secrets", || {
            "tasks cannot have sealed secrets: each run may go to another worker, and secrets \
             are sealed to one (use an app)"
                .into()
        })?;
        self.constraints.validate()?;
        self.execution.validate()
    }
}

/// A parsed manifest: an app or a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// `kind = "app"`.
    App(AppSpec),
    /// `kind = "task"`.
    Task(TaskSpec),
}

/// `wetee.toml` as written by people. Unknown fields are errors, so a typo never silently
/// drops a setting. Numbers are read as signed integers so that a negative value gets a
/// message naming its field rather than a type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    kind: String,
    name: String,
    image: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    ports: Vec<PortToml>,
    replicas: Option<i64>,
    resources: ResourcesToml,
    placement: PlacementToml,
    health: Option<HealthToml>,
    task: Option<TaskToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortToml {
    container: i64,
    #[serde(default)]
    protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesToml {
    cpu_millicores: i64,
    memory_mib: i64,
    #[serde(default)]
    disk_gib: i64,
    #[serde(default)]
    gpus: i64,
    gpu_model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacementToml {
    tee: String,
    region: Option<String>,
    #[serde(default)]
    min_level: i64,
    max_price_per_epoch: String,
    #[serde(default)]
    measurements: Vec<MeasurementRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthToml {
    http_path: Option<String>,
    port: i64,
    #[serde(default = "default_interval")]
    interval_secs: i64,
}

fn default_interval() -> i64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskToml {
    every_blocks: Option<i64>,
    cron: Option<String>,
    timeout_secs: i64,
    max_runs: Option<i64>,
}

fn integer<T: TryFrom<i64>>(value: i64, field: &str) -> Result<T, ManifestError> {
    if value < 0 {
        return Err(ManifestError::new(
            field,
            format!("must not be negative (got {value})"),
        ));
    }
    T::try_from(value).map_err(|_| ManifestError::new(field, format!("{value} is too large")))
}

fn bounded<const MAX: usize>(text: &str, field: &str) -> Result<BoundedString<MAX>, ManifestError> {
    BoundedString::try_new(text)
        .map_err(|_| ManifestError::new(field, format!("is longer than {MAX} bytes")))
}

fn bounded_list<T, const MAX: usize>(
    items: Vec<T>,
    field: &str,
) -> Result<BoundedVec<T, MAX>, ManifestError> {
    BoundedVec::try_new(items)
        .map_err(|e| ManifestError::new(field, format!("has {} entries, at most {MAX}", e.len)))
}

impl Manifest {
    /// Parses and validates a `wetee.toml`.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        let file: ManifestFile = toml::from_str(text).map_err(|e| {
            // The message names the key (`unknown field `foo``, `missing field `image``) and the
            // line; keep it whole.
            ManifestError::new("wetee.toml", e.to_string().trim_end().to_string())
        })?;
        let manifest = file.into_manifest()?;
        match &manifest {
            Manifest::App(app) => app.validate()?,
            Manifest::Task(task) => task.validate()?,
        }
        Ok(manifest)
    }
}

impl ManifestFile {
    fn container(&self) -> Result<ContainerSpec, ManifestError> {
        let words =
            |list: &[String], field: &str| -> Result<BoundedVec<Arg, MAX_ARGS>, ManifestError> {
                let words = list
                    .iter()
                    .enumerate()
                    .map(|(i, w)| bounded(w, &format!("{field}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                bounded_list(words, field)
            };
        let env = self
            .env
            .iter()
            .map(|(name, value)| {
                Ok(EnvVar {
                    name: bounded(name, &format!("env.{name}"))?,
                    value: bounded(value, &format!("env.{name}"))?,
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        let secrets = self
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| bounded(s, &format!("secrets[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let ports = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("ports[{i}]");
                let protocol = match p.protocol.as_deref() {
                    None | Some("tcp") => Protocol::Tcp,
                    Some("udp") => Protocol::Udp,
                    Some(other) => {
                        return Err(ManifestError::new(
                            format!("{field}.protocol"),
                            format!("`{other}` is not tcp or udp"),
                        ));
                    }
                };
                Ok(Port {
                    container: integer(p.container, &format!("{field}.container"))?,
                    protocol,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let r = &self.resources;
        Ok(ContainerSpec {
            image: ImageRef::parse(&self.image).map_err(|p| ManifestError::new("image", p))?,
            command: words(&self.command, "command")?,
            args: words(&self.args, "args")?,
            env: bounded_list(env, "env")?,
            secrets: bounded_list(secrets, "secrets")?,
            ports: bounded_list(ports, "ports")?,
            resources: Resources {
                cpu_millicores: integer(r.cpu_millicores, "resources.cpu_millicores")?,
                memory_mib: integer(r.memory_mib, "resources.memory_mib")?,
                disk_gib: integer(r.disk_gib, "resources.disk_gib")?,
                gpus: integer(r.gpus, "resources.gpus")?,
            },
            gpu_model: r
                .gpu_model
                .as_deref()
                .map(|m| bounded(m, "resources.gpu_model"))
                .transpose()?,
        })
    }

    fn constraints(&self) -> Result<Constraints, ManifestError> {
        let p = &self.placement;
        Ok(Constraints {
            tee: p
                .tee
                .parse()
                .map_err(|e: String| ManifestError::new("placement.tee", e))?,
            region: p
                .region
                .as_deref()
                .map(|r| bounded(r, "placement.region"))
                .transpose()?,
            min_level: integer(p.min_level, "placement.min_level")?,
            max_price_per_epoch: p.max_price_per_epoch.parse().map_err(
                |e: crate::balance::AmountError| {
                    ManifestError::new("placement.max_price_per_epoch", e.to_string())
                },
            )?,
            measurements: p.measurements.clone().try_into().map_err(|_| {
                ManifestError::new(
                    "placement.measurements",
                    format!("at most {MAX_MEASUREMENT_RULES} rules"),
                )
            })?,
        })
    }

    fn into_manifest(self) -> Result<Manifest, ManifestError> {
        let name = bounded(&self.name, "name")?;
        let container = self.container()?;
        let constraints = self.constraints()?;
        match self.kind.as_str() {
            "app" => {
                check(self.task.is_none(), "task", || {
                    "only a `kind = \"task\"` manifest has a [task] table".into()
                })?;
                let health = self
                    .health
                    .as_ref()
                    .map(|h| {
                        let port = integer(h.port, "health.port")?;
                        Ok(HealthCheck {
                            probe: match &h.http_path {
                                Some(path) => Probe::Http {
                                    port,
                                    path: bounded(path, "health.http_path")?,
                                },
                                None => Probe::Tcp { port },
                            },
                            interval_secs: integer(h.interval_secs, "health.interval_secs")?,
                        })
                    })
                    .transpose()?;
                Ok(Manifest::App(AppSpec {
                    name,
                    container,
                    replicas: integer(self.replicas.unwrap_or(1), "replicas")?,
                    constraints,
                    health,
                }))
            }
            "task" => {
                check(self.replicas.is_none(), "replicas", || {
                    "tasks have no replicas; each run is one container".into()
                })?;
                check(self.health.is_none(), "health", || {
                    "tasks have no health check; a run ends with its exit code".into()
                })?;
                let Some(task) = self.task else {
                    return Err(ManifestError::new(
                        "task",
                        "a task needs a [task] table with at least timeout_secs",
                    ));
                };
                let schedule = match (task.every_blocks, task.cron) {
                    (Some(_), Some(_)) => {
                        return Err(ManifestError::new(
                            "task",
                            "set either every_blocks or cron, not both",
                        ));
                    }
                    (Some(blocks), None) => Schedule::EveryBlocks {
                        blocks: integer(blocks, "task.every_blocks")?,
                    },
                    (None, Some(expression)) => Schedule::Cron {
                        expression: bounded(&expression, "task.cron")?,
                    },
                    (None, None) => Schedule::Once,
                };
                Ok(Manifest::Task(TaskSpec {
                    name,
                    container,
                    constraints,
                    execution: TaskExecution {
                        schedule,
                        timeout_secs: integer(task.timeout_secs, "task.timeout_secs")?,
                        max_runs: task
                            .max_runs
                            .map(|n| integer(n, "task.max_runs"))
                            .transpose()?,
                    },
                }))
            }
            other => Err(ManifestError::new(
                "kind",
                format!("`{other}` is not \"app\" or \"task\""),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:3f1a6b0d4c8e2a9b7f5d1e3c6a8b0f2d4e6a8c0b2d4f6e8a0c2e4a6b8d0f2e4a";

    fn app_toml(extra: &str) -> String {
        format!(
            r#"
kind = "app"
name = "hello"
image = "localhost/hello@{DIGEST}"
command = ["/hello"]
secrets = ["API_TOKEN"]
{extra}

[env]
GREETING = "hi"

[[ports]]
container = 8080

[resources]
cpu_millicores = 250
memory_mib = 128

[placement]
tee = "tdx"
region = "eu"
max_price_per_epoch = "1.5"

[health]
http_path = "/healthz"
port = 8080
"#
        )
    }

    fn app() -> AppSpec {
        match Manifest::from_toml(&app_toml("")).unwrap() {
            Manifest::App(app) => app,
            Manifest::Task(_) => panic!("expected an app"),
        }
    }

    fn error(text: &str) -> ManifestError {
        Manifest::from_toml(text).unwrap_err()
    }

    #[test]
    fn a_complete_app_manifest_converts_to_the_on_chain_form() {
        let app = app();
        assert_eq!(app.name.as_str(), "hello");
        assert_eq!(app.replicas, 1);
        assert_eq!(app.container.image.repository.as_str(), "localhost/hello");
        assert_eq!(app.container.resources.cpu_millicores, 250);
        assert_eq!(app.constraints.tee, TeeKind::Tdx);
        assert_eq!(
            app.constraints.max_price_per_epoch,
            "1.5".parse::<Balance>().unwrap()
        );
        assert_eq!(
            app.health.unwrap().probe,
            Probe::Http {
                port: 8080,
                path: BoundedString::try_new("/healthz").unwrap()
            }
        );
    }

    #[test]
    fn a_task_manifest_with_cron() {
        let text = format!(
            r#"
kind = "task"
name = "backup"
image = "localhost/backup@{DIGEST}"
[resources]
cpu_millicores = 100
memory_mib = 64
[placement]
tee = "simulated"
max_price_per_epoch = "0.1"
[task]
cron = "*/5 * * * *"
timeout_secs = 60
max_runs = 3
"#
        );
        let Manifest::Task(task) = Manifest::from_toml(&text).unwrap() else {
            panic!("expected a task")
        };
        assert_eq!(task.execution.run_limit(), Some(3));
        assert!(matches!(task.execution.schedule, Schedule::Cron { .. }));
    }

    #[test]
    fn the_error_names_the_field_at_fault() {
        let cases = [
            (
                app_toml("").replace("cpu_millicores = 250", "cpu_millicores = 0"),
                "resources.cpu_millicores",
                "greater than zero",
            ),
            (
                app_toml("").replace("memory_mib = 128", "memory_mib = -5"),
                "resources.memory_mib",
                "negative",
            ),
            (
                app_toml("").replace(&format!("@{DIGEST}"), ":latest"),
                "image",
                "no digest",
            ),
            (
                app_toml("colour = \"blue\""),
                "wetee.toml",
                "unknown field `colour`",
            ),
            (app_toml("replicas = 0"), "replicas", "between 1 and"),
            (
                app_toml("").replace("tee = \"tdx\"", "tee = \"none\""),
                "placement.tee",
                "unknown TEE kind",
            ),
            (
                app_toml("").replace("\"1.5\"", "\"-1\""),
                "placement.max_price_per_epoch",
                "not an amount",
            ),
            (
                app_toml("").replace("GREETING", "WETEE_X"),
                "env.WETEE_X",
                "set by the worker",
            ),
            (
                app_toml("").replace("\"API_TOKEN\"", "\"GREETING\""),
                "secrets[0]",
                "also a plain env",
            ),
            (
                app_toml("").replace("/healthz", "healthz"),
                "health.path",
                "must start with",
            ),
            (
                app_toml("").replace("name = \"hello\"", "name = \"Hello World\""),
                "name",
                "lower-case",
            ),
            (
                app_toml("").replace("region = \"eu\"", "region = \"EU!\""),
                "placement.region",
                "lower-case",
            ),
        ];
        for (text, field, needle) in cases {
            let err = error(&text);
            assert_eq!(err.field, field, "{err}");
            assert!(err.problem.contains(needle), "{err}");
        }
    }

    #[test]
    fn malformed_task_schedules_are_refused() {
        let base = format!(
            "kind = \"task\"\nname = \"t\"\nimage = \"x@{DIGEST}\"\n[resources]\ncpu_millicores = 1\nmemory_mib = 1\n[placement]\ntee = \"sgx\"\nmax_price_per_epoch = \"1\"\n"
        );
        let cases = [
            (
                "[task]\ncron = \"61 * * * *\"\ntimeout_secs = 5",
                "task.cron",
            ),
            ("[task]\ncron = \"* * *\"\ntimeout_secs = 5", "task.cron"),
            (
                "[task]\nevery_blocks = 0\ntimeout_secs = 5",
                "task.every_blocks",
            ),
            (
                "[task]\nevery_blocks = 5\ncron = \"* * * * *\"\ntimeout_secs = 5",
                "task",
            ),
            (
                "[task]\nevery_blocks = 5\ntimeout_secs = 0",
                "task.timeout_secs",
            ),
            (
                "[task]\nevery_blocks = 5\ntimeout_secs = 5\nmax_runs = 0",
                "task.max_runs",
            ),
            ("", "task"),
        ];
        for (extra, field) in cases {
            let err = error(&format!("{base}{extra}"));
            assert_eq!(err.field, field, "{extra}: {err}");
        }
    }

    #[test]
    fn image_references_need_a_sha256_digest() {
        assert!(ImageRef::parse(&format!("docker.io/library/nginx:1.27@{DIGEST}")).is_ok());
        assert!(ImageRef::parse("nginx@sha256:abcd").is_err());
        assert!(ImageRef::parse(&format!("nginx@md5:{}", &DIGEST[7..])).is_err());
        assert!(ImageRef::parse(&format!("/nginx@{DIGEST}")).is_err());
        let image = ImageRef::parse(&format!("localhost/hello@{DIGEST}")).unwrap();
        assert_eq!(image.to_string(), format!("localhost/hello@{DIGEST}"));
    }

    #[test]
    fn specs_validated_on_chain_catch_what_toml_conversion_cannot() {
        let mut app = app();
        app.container.env = BoundedVec::try_new(vec![
            EnvVar {
                name: BoundedString::try_new("B").unwrap(),
                value: BoundedString::default(),
            },
            EnvVar {
                name: BoundedString::try_new("A").unwrap(),
                value: BoundedString::default(),
            },
        ])
        .unwrap();
        assert_eq!(app.validate().unwrap_err().field, "env");
        let mut app = self::app();
        app.container.resources.cpu_millicores = MAX_REQUEST.cpu_millicores;
        app.replicas = MAX_REPLICAS;
        assert!(app.validate().is_ok());
    }
}
