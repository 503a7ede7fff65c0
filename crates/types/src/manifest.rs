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
/// Maximum capabilities a container may keep: every one [`Capability`] names.
pub const MAX_CAPABILITIES: usize = 8;
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

/// A Linux capability a container may keep. Workers drop every capability; a manifest can ask
/// for these back, and only these: none of them reaches past the container's own files and
/// processes. `NET_RAW` (spoofing neighbours on a shared bridge), `SYS_ADMIN`, `SYS_PTRACE`,
/// `NET_ADMIN`, `MKNOD` and the rest are never granted. Binding a port below 1024 needs none:
/// workers let containers bind every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    /// Change a file's owner (images that `chown` their data directory at start).
    Chown,
    /// Bypass file permission checks, on the container's own files.
    DacOverride,
    /// Bypass ownership checks on the container's own files.
    Fowner,
    /// Keep set-user-id bits when changing a file.
    Fsetid,
    /// Signal processes of other users in the container.
    Kill,
    /// Change group id (servers that start as root and drop to a user).
    Setgid,
    /// Change user id (servers that start as root and drop to a user).
    Setuid,
    /// Bind ports below 1024 in the container's own network namespace.
    NetBindService,
}
codec_enum!(Capability {
    0 => Chown,
    1 => DacOverride,
    2 => Fowner,
    3 => Fsetid,
    4 => Kill,
    5 => Setgid,
    6 => Setuid,
    7 => NetBindService,
});

impl Capability {
    /// Every capability a manifest may ask for, in order.
    pub const ALL: [Capability; MAX_CAPABILITIES] = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fowner,
        Capability::Fsetid,
        Capability::Kill,
        Capability::Setgid,
        Capability::Setuid,
        Capability::NetBindService,
    ];

    /// The kernel's name without `CAP_`, as engines and manifests write it: `SETUID`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Chown => "CHOWN",
            Capability::DacOverride => "DAC_OVERRIDE",
            Capability::Fowner => "FOWNER",
            Capability::Fsetid => "FSETID",
            Capability::Kill => "KILL",
            Capability::Setgid => "SETGID",
            Capability::Setuid => "SETUID",
            Capability::NetBindService => "NET_BIND_SERVICE",
        }
    }

    /// Parses `SETUID` or `CAP_SETUID`, in any case.
    pub fn parse(text: &str) -> Option<Capability> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a container may open connections (the manifest's `network.egress`). Whatever it
/// says, a container is reached only through the worker's ingress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Egress {
    /// Anywhere the worker's network reaches (`"all"`, the default).
    #[default]
    #[serde(rename = "all")]
    Open,
    /// Only its workload's other containers (`"none"`): not the internet, not the worker's
    /// machine. Its answers to the ingress still flow.
    #[serde(rename = "none")]
    Denied,
}
codec_enum!(Egress { 0 => Open, 1 => Denied });

impl Egress {
    /// The manifest's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Egress::Open => "all",
            Egress::Denied => "none",
        }
    }
}

/// What a container may do beyond the confinement every worker applies (no capabilities, no
/// privilege gain, the engine's seccomp profile, a process limit, its own network): see
/// `docs/worker.md`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Security {
    /// Capabilities kept, in [`Capability`] order, each once.
    pub capabilities: BoundedVec<Capability, MAX_CAPABILITIES>,
    /// The image's filesystem is mounted read-only; `/tmp` is a small in-memory filesystem.
    pub read_only_root: bool,
    /// Where it may open connections.
    pub egress: Egress,
}
codec_struct!(Security {
    capabilities,
    read_only_root,
    egress
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
    /// Capabilities kept and a read-only root.
    pub security: Security,
}
codec_struct!(ContainerSpec {
    image,
    command,
    args,
    env,
    secrets,
    ports,
    resources,
    gpu_model,
    security
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
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

/// Every problem found in a manifest, in the order they were found. Never empty when returned
/// as an error; displayed as one `field: problem` per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl From<ManifestError> for ManifestErrors {
    fn from(error: ManifestError) -> ManifestErrors {
        ManifestErrors(vec![error])
    }
}

/// The problems found so far: every check records its problem and carries on, so that one pass
/// reports all of them.
#[derive(Default)]
struct Problems(Vec<ManifestError>);

impl Problems {
    /// Records `problem()` for `field` unless `ok`; returns `ok`.
    fn check(&mut self, ok: bool, field: &str, problem: impl FnOnce() -> String) -> bool {
        if !ok {
            self.0.push(ManifestError::new(field, problem()));
        }
        ok
    }

    /// Records a problem.
    fn push(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ManifestError::new(field, problem));
    }

    /// The value, or `None` after recording its problem.
    fn take<T>(&mut self, result: Result<T, ManifestError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(error);
                None
            }
        }
    }

    /// Whether nothing is wrong so far.
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems, with `collect` recording into a fresh list.
    fn of(collect: impl FnOnce(&mut Problems)) -> Vec<ManifestError> {
        let mut problems = Problems::default();
        collect(&mut problems);
        problems.0
    }
}

/// The first problem, as `validate` reports it.
fn first(problems: Vec<ManifestError>) -> Result<(), ManifestError> {
    match problems.into_iter().next() {
        Some(error) => Err(error),
        None => Ok(()),
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

fn check_name(problems: &mut Problems, name: &str) {
    problems.check(is_label(name), "name", || {
        format!(
            "`{name}` must be 1-63 lower-case letters, digits or `-`, not starting or ending with `-`"
        )
    });
}

impl ContainerSpec {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ManifestError> {
        first(self.problems())
    }

    /// Every problem, in the order [`ContainerSpec::validate`] checks them.
    pub fn problems(&self) -> Vec<ManifestError> {
        Problems::of(|p| self.collect(p))
    }

    fn collect(&self, p: &mut Problems) {
        if let Err(problem) = self.image.validate_repository() {
            p.push("image", problem);
        }
        for (field, words) in [("command", &self.command), ("args", &self.args)] {
            for (i, word) in words.iter().enumerate() {
                p.check(!word.contains('\0'), &format!("{field}[{i}]"), || {
                    "contains a NUL byte".into()
                });
            }
        }
        let mut previous: Option<&str> = None;
        for var in &self.env {
            let field = format!("env.{}", var.name);
            p.check(is_env_name(&var.name), &field, || {
                "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)".into()
            });
            p.check(!var.name.starts_with(RESERVED_ENV_PREFIX), &field, || {
                format!("names starting with {RESERVED_ENV_PREFIX} are set by the worker")
            });
            p.check(!var.value.contains('\0'), &field, || {
                "contains a NUL byte".into()
            });
            p.check(previous < Some(var.name.as_str()), "env", || {
                format!("`{}` is listed twice or out of order", var.name)
            });
            previous = Some(var.name.as_str());
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            let field = format!("secrets[{i}]");
            p.check(is_env_name(secret), &field, || {
                format!("`{secret}` is not a valid name ([A-Za-z_][A-Za-z0-9_]*)")
            });
            p.check(!secret.starts_with(RESERVED_ENV_PREFIX), &field, || {
                format!("names starting with {RESERVED_ENV_PREFIX} are set by the worker")
            });
            p.check(!self.secrets[..i].contains(secret), &field, || {
                format!("`{secret}` is listed twice")
            });
            p.check(!self.env.iter().any(|v| v.name == *secret), &field, || {
                format!("`{secret}` is also a plain env variable")
            });
        }
        for (i, port) in self.ports.iter().enumerate() {
            let field = format!("ports[{i}]");
            // Port 0 is not a port at all: saying it is also listed twice would add nothing.
            if p.check(port.container != 0, &field, || {
                "port 0 is not a port".into()
            }) {
                p.check(!self.ports[..i].contains(port), &field, || {
                    format!("port {} is listed twice", port.container)
                });
            }
        }
        let r = &self.resources;
        let mut positive = |value: u64, field: &str, max: u64| {
            if p.check(value > 0, field, || "must be greater than zero".into()) {
                p.check(value <= max, field, || format!("must be at most {max}"));
            }
        };
        positive(
            r.cpu_millicores,
            "resources.cpu_millicores",
            MAX_REQUEST.cpu_millicores,
        );
        positive(r.memory_mib, "resources.memory_mib", MAX_REQUEST.memory_mib);
        p.check(
            r.disk_gib <= MAX_REQUEST.disk_gib,
            "resources.disk_gib",
            || format!("must be at most {}", MAX_REQUEST.disk_gib),
        );
        p.check(r.gpus <= MAX_REQUEST.gpus, "resources.gpus", || {
            format!("must be at most {}", MAX_REQUEST.gpus)
        });
        if let Some(model) = &self.gpu_model {
            p.check(r.gpus > 0, "resources.gpu_model", || {
                "is set but resources.gpus is 0".into()
            });
            p.check(is_label(model), "resources.gpu_model", || {
                format!("`{model}` must be lower-case letters, digits or `-`")
            });
        }
        let capabilities = &self.security.capabilities;
        p.check(
            capabilities.windows(2).all(|pair| pair[0] < pair[1]),
            "security.capabilities",
            || "must be listed once each, in order".into(),
        );
    }
}

impl Constraints {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        first(self.problems())
    }

    /// Every problem, in the order [`Constraints::validate`] checks them.
    pub fn problems(&self) -> Vec<ManifestError> {
        Problems::of(|p| self.collect(p))
    }

    fn collect(&self, p: &mut Problems) {
        if let Some(region) = &self.region {
            p.check(is_label(region), "placement.region", || {
                format!("`{region}` must be lower-case letters, digits or `-`")
            });
        }
        p.check(self.min_level <= MAX_LEVEL, "placement.min_level", || {
            format!("must be at most {MAX_LEVEL}")
        });
        if p.check(
            !self.max_price_per_epoch.is_zero(),
            "placement.max_price_per_epoch",
            || "must be greater than zero".into(),
        ) {
            p.check(
                self.max_price_per_epoch <= MAX_PRICE,
                "placement.max_price_per_epoch",
                || format!("must be at most {MAX_PRICE}"),
            );
        }
        for (i, rule) in self.measurements.iter().enumerate() {
            p.check(
                rule.is_pinned(),
                &format!("placement.measurements[{i}]"),
                || "pins no measurement and would match anything".into(),
            );
        }
    }
}

impl HealthCheck {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        first(self.problems())
    }

    /// Every problem, in the order [`HealthCheck::validate`] checks them.
    pub fn problems(&self) -> Vec<ManifestError> {
        Problems::of(|p| self.collect(p))
    }

    fn collect(&self, p: &mut Problems) {
        p.check(self.port() != 0, "health.port", || {
            "port 0 is not a port".into()
        });
        if let Probe::Http { path, .. } = &self.probe {
            p.check(path.starts_with('/'), "health.path", || {
                format!("`{path}` must start with `/`")
            });
        }
        p.check(
            (1..=3600).contains(&self.interval_secs),
            "health.interval_secs",
            || "must be between 1 and 3600".into(),
        );
    }

    fn port(&self) -> u16 {
        match &self.probe {
            Probe::Http { port, .. } | Probe::Tcp { port } => *port,
        }
    }
}

impl AppSpec {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ManifestError> {
        first(self.problems())
    }

    /// Every problem, each naming its field, in the order [`AppSpec::validate`] checks them;
    /// empty when the app is valid.
    pub fn problems(&self) -> Vec<ManifestError> {
        Problems::of(|p| self.collect(p))
    }

    fn collect(&self, p: &mut Problems) {
        check_name(p, &self.name);
        self.container.collect(p);
        p.check(
            (1..=MAX_REPLICAS).contains(&self.replicas),
            "replicas",
            || format!("must be between 1 and {MAX_REPLICAS}"),
        );
        self.constraints.collect(p);
        if let Some(health) = &self.health {
            health.collect(p);
            let port = health.port();
            // Port 0 was reported above.
            if port != 0 {
                p.check(
                    self.container
                        .ports
                        .iter()
                        .any(|listed| listed.container == port),
                    "health.port",
                    || format!("{port} is not one of the container's ports"),
                );
            }
        }
        // Within the bounds checked above the product cannot overflow; this guards the rest.
        if p.is_empty() {
            p.check(self.total_resources().is_some(), "replicas", || {
                "resources times replicas overflow".into()
            });
        }
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
        first(self.problems())
    }

    /// Every problem, in the order [`TaskExecution::validate`] checks them.
    pub fn problems(&self) -> Vec<ManifestError> {
        Problems::of(|p| self.collect(p))
    }

    fn collect(&self, p: &mut Problems) {
        let mut max_runs_ok = true;
        match &self.schedule {
            Schedule::Once => {
                max_runs_ok = p.check(
                    self.max_runs.is_none() || self.max_runs == Some(1),
                    "task.max_runs",
                    || "a task without a schedule runs once".into(),
                );
            }
            Schedule::EveryBlocks { blocks } => {
                p.check(*blocks > 0, "task.every_blocks", || {
                    "must be greater than zero".into()
                });
            }
            Schedule::Cron { expression } => {
                if let Err(e) = CronSchedule::parse(expression) {
                    p.push("task.cron", e.to_string());
                }
            }
        }
        p.check(
            (1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs),
            "task.timeout_secs",
            || format!("must be between 1 and {MAX_TIMEOUT_SECS}"),
        );
        if max_runs_ok {
            p.check(self.max_runs != Some(0), "task.max_runs", || {
                "must be at least 1 (leave it out for no limit)".into()
            });
        }
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
        first(self.problems())
    }

    /// Every problem, each naming its field, in the order [`TaskSpec::validate`] checks them;
    /// empty when the task is valid.
    pub fn problems(&self) -> Vec<ManifestError> {
        Problems::of(|p| self.collect(p))
    }

    fn collect(&self, p: &mut Problems) {
        check_name(p, &self.name);
        self.container.collect(p);
        // Secrets are sealed to the one worker an app runs on; a task's runs may land anywhere.
        p.check(self.container.secrets.is_empty(), "secrets", || {
            "tasks cannot have sealed secrets: each run may go to another worker, and secrets \
             are sealed to one (use an app)"
                .into()
        });
        self.constraints.collect(p);
        self.execution.collect(p);
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
    security: Option<SecurityToml>,
    network: Option<NetworkToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkToml {
    egress: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityToml {
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    read_only_root: bool,
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

/// `items`, cut to the first `MAX` after recording the problem when there are more.
fn bounded_list<T, const MAX: usize>(
    problems: &mut Problems,
    mut items: Vec<T>,
    field: &str,
) -> BoundedVec<T, MAX> {
    problems.check(items.len() <= MAX, field, || {
        format!("has {} entries, at most {MAX}", items.len())
    });
    items.truncate(MAX);
    BoundedVec::try_new(items).unwrap_or_default()
}

/// Command-line words; one that does not fit is emptied after recording its problem.
fn words(problems: &mut Problems, list: &[String], field: &str) -> BoundedVec<Arg, MAX_ARGS> {
    let words = list
        .iter()
        .enumerate()
        .map(|(i, w)| {
            problems
                .take(bounded(w, &format!("{field}[{i}]")))
                .unwrap_or_default()
        })
        .collect();
    bounded_list(problems, words, field)
}

/// Whether `field` is `parent` or a part of it: `ports[0].container` is part of `ports[0]`.
fn is_within(field: &str, parent: &str) -> bool {
    field
        .strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// A `wetee.toml` converted field by field, placeholders standing in for what did not convert.
enum Converted {
    Manifest(Manifest),
    /// `kind` is neither app nor task: only the parts they share can be checked.
    UnknownKind {
        name: BoundedString<63>,
        container: ContainerSpec,
        constraints: Constraints,
    },
}

impl Manifest {
    /// Parses and validates a `wetee.toml`. The error lists every problem found, each naming its
    /// field: first those converting the file (a negative number, an image without a digest),
    /// then those the on-chain checks find in what converted.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestErrors> {
        let file: ManifestFile = toml::from_str(text).map_err(|e| {
            // The message names the key (`unknown field `foo``, `missing field `image``) and the
            // line; keep it whole.
            ManifestError::new("wetee.toml", e.to_string().trim_end().to_string())
        })?;
        let mut conversion = Problems::default();
        let converted = file.convert(&mut conversion);
        let checks = match &converted {
            Converted::Manifest(Manifest::App(app)) => app.problems(),
            Converted::Manifest(Manifest::Task(task)) => task.problems(),
            Converted::UnknownKind {
                name,
                container,
                constraints,
            } => Problems::of(|p| {
                check_name(p, name);
                container.collect(p);
                constraints.collect(p);
            }),
        };
        let mut problems = conversion.0;
        // A field that did not convert holds a placeholder: what the checks say about it (or
        // about the entry it is part of) would be a second, misleading message.
        let checks: Vec<ManifestError> = checks
            .into_iter()
            .filter(|check| {
                !problems
                    .iter()
                    .any(|converting| is_within(&converting.field, &check.field))
            })
            .collect();
        problems.extend(checks);
        match converted {
            Converted::Manifest(manifest) if problems.is_empty() => Ok(manifest),
            // Never empty: an unknown kind is itself a problem.
            _ => Err(ManifestErrors(problems)),
        }
    }
}

impl ManifestFile {
    /// The container; what does not convert is recorded and replaced by a placeholder.
    fn container(&self, p: &mut Problems) -> ContainerSpec {
        let mut env = Vec::new();
        for (name, value) in &self.env {
            let field = format!("env.{name}");
            // A name that does not fit leaves the variable out; a value that does not fit is
            // emptied.
            if let Some(name) = p.take(bounded(name, &field)) {
                let value = p.take(bounded(value, &field)).unwrap_or_default();
                env.push(EnvVar { name, value });
            }
        }
        let secrets = self
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                p.take(bounded(s, &format!("secrets[{i}]")))
                    .unwrap_or_default()
            })
            .collect();
        let mut ports = Vec::new();
        for (i, port) in self.ports.iter().enumerate() {
            let field = format!("ports[{i}]");
            let protocol = match port.protocol.as_deref() {
                None | Some("tcp") => Some(Protocol::Tcp),
                Some("udp") => Some(Protocol::Udp),
                Some(other) => {
                    p.push(
                        format!("{field}.protocol"),
                        format!("`{other}` is not tcp or udp"),
                    );
                    None
                }
            };
            let container = p.take(integer(port.container, &format!("{field}.container")));
            let listed_elsewhere = self
                .ports
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.container == port.container);
            ports.push(match (container, protocol) {
                (Some(container), Some(protocol)) => Port {
                    container,
                    protocol,
                },
                // Keep the number for the health check unless another entry lists it: then a
                // placeholder protocol could make the two look like duplicates.
                (Some(container), None) if !listed_elsewhere => Port {
                    container,
                    protocol: Protocol::Tcp,
                },
                // Port 0 is never compared with another entry.
                _ => Port {
                    container: 0,
                    protocol: Protocol::Tcp,
                },
            });
        }
        let r = &self.resources;
        ContainerSpec {
            image: p
                .take(ImageRef::parse(&self.image).map_err(|e| ManifestError::new("image", e)))
                .unwrap_or_else(|| ImageRef {
                    repository: BoundedString::default(),
                    digest: [0; 32],
                }),
            command: words(p, &self.command, "command"),
            args: words(p, &self.args, "args"),
            env: bounded_list(p, env, "env"),
            secrets: bounded_list(p, secrets, "secrets"),
            ports: bounded_list(p, ports, "ports"),
            resources: Resources {
                cpu_millicores: p
                    .take(integer(r.cpu_millicores, "resources.cpu_millicores"))
                    .unwrap_or(1),
                memory_mib: p
                    .take(integer(r.memory_mib, "resources.memory_mib"))
                    .unwrap_or(1),
                disk_gib: p
                    .take(integer(r.disk_gib, "resources.disk_gib"))
                    .unwrap_or(0),
                // Not 0, which would fault a gpu_model.
                gpus: p.take(integer(r.gpus, "resources.gpus")).unwrap_or(1),
            },
            gpu_model: r
                .gpu_model
                .as_deref()
                .and_then(|m| p.take(bounded(m, "resources.gpu_model"))),
            security: self.security(p),
        }
    }

    /// The security settings; an unknown capability is recorded and left out.
    fn security(&self, p: &mut Problems) -> Security {
        let egress = match self.network.as_ref().and_then(|n| n.egress.as_deref()) {
            None | Some("all") => Egress::Open,
            Some("none") => Egress::Denied,
            Some(other) => {
                p.push(
                    "network.egress",
                    format!("`{other}` is not a choice: \"all\" (the default) or \"none\""),
                );
                Egress::Open
            }
        };
        let Some(security) = &self.security else {
            return Security {
                egress,
                ..Security::default()
            };
        };
        let mut capabilities = Vec::new();
        for (i, name) in security.capabilities.iter().enumerate() {
            match Capability::parse(name) {
                Some(capability) => capabilities.push(capability),
                None => p.push(
                    format!("security.capabilities[{i}]"),
                    format!(
                        "`{name}` cannot be granted; a container may keep only {}",
                        Capability::ALL.map(Capability::name).join(", ")
                    ),
                ),
            }
        }
        capabilities.sort();
        capabilities.dedup();
        Security {
            capabilities: BoundedVec::try_new(capabilities).unwrap_or_default(),
            read_only_root: security.read_only_root,
            egress,
        }
    }

    /// The constraints; what does not convert is recorded and replaced by a placeholder.
    fn constraints(&self, p: &mut Problems) -> Constraints {
        let placement = &self.placement;
        let tee = placement
            .tee
            .parse()
            .map_err(|e: String| ManifestError::new("placement.tee", e));
        let mut rules = placement.measurements.clone();
        p.check(
            rules.len() <= MAX_MEASUREMENT_RULES,
            "placement.measurements",
            || format!("at most {MAX_MEASUREMENT_RULES} rules"),
        );
        rules.truncate(MAX_MEASUREMENT_RULES);
        Constraints {
            tee: p.take(tee).unwrap_or(TeeKind::Simulated),
            region: placement
                .region
                .as_deref()
                .and_then(|r| p.take(bounded(r, "placement.region"))),
            min_level: p
                .take(integer(placement.min_level, "placement.min_level"))
                .unwrap_or(0),
            max_price_per_epoch: p
                .take(placement.max_price_per_epoch.parse().map_err(
                    |e: crate::balance::AmountError| {
                        ManifestError::new("placement.max_price_per_epoch", e.to_string())
                    },
                ))
                .unwrap_or(Balance(1)),
            measurements: BoundedVec::try_new(rules).unwrap_or_default(),
        }
    }

    /// The app or task; every problem is recorded, placeholders standing in for what does not
    /// convert.
    fn convert(&self, p: &mut Problems) -> Converted {
        let name = p.take(bounded(&self.name, "name")).unwrap_or_default();
        let container = self.container(p);
        let constraints = self.constraints(p);
        match self.kind.as_str() {
            "app" => {
                p.check(self.task.is_none(), "task", || {
                    "only a `kind = \"task\"` manifest has a [task] table".into()
                });
                let health = self.health.as_ref().map(|h| {
                    let port = p.take(integer(h.port, "health.port")).unwrap_or(0);
                    HealthCheck {
                        probe: match &h.http_path {
                            Some(path) => Probe::Http {
                                port,
                                path: p.take(bounded(path, "health.http_path")).unwrap_or_else(
                                    || BoundedString::try_new("/").unwrap_or_default(),
                                ),
                            },
                            None => Probe::Tcp { port },
                        },
                        interval_secs: p
                            .take(integer(h.interval_secs, "health.interval_secs"))
                            .unwrap_or(10),
                    }
                });
                Converted::Manifest(Manifest::App(AppSpec {
                    name,
                    container,
                    replicas: p
                        .take(integer(self.replicas.unwrap_or(1), "replicas"))
                        .unwrap_or(1),
                    constraints,
                    health,
                }))
            }
            "task" => {
                p.check(self.replicas.is_none(), "replicas", || {
                    "tasks have no replicas; each run is one container".into()
                });
                p.check(self.health.is_none(), "health", || {
                    "tasks have no health check; a run ends with its exit code".into()
                });
                let execution = match &self.task {
                    Some(task) => task.execution(p),
                    None => {
                        p.push(
                            "task",
                            "a task needs a [task] table with at least timeout_secs",
                        );
                        TaskExecution {
                            schedule: Schedule::Once,
                            timeout_secs: 1,
                            max_runs: None,
                        }
                    }
                };
                Converted::Manifest(Manifest::Task(TaskSpec {
                    name,
                    container,
                    constraints,
                    execution,
                }))
            }
            other => {
                p.push("kind", format!("`{other}` is not \"app\" or \"task\""));
                Converted::UnknownKind {
                    name,
                    container,
                    constraints,
                }
            }
        }
    }
}

impl TaskToml {
    /// The execution; what does not convert is recorded and replaced by a placeholder.
    fn execution(&self, p: &mut Problems) -> TaskExecution {
        let schedule = match (self.every_blocks, &self.cron) {
            (Some(_), Some(_)) => {
                p.push("task", "set either every_blocks or cron, not both");
                Schedule::EveryBlocks { blocks: 1 }
            }
            (Some(blocks), None) => Schedule::EveryBlocks {
                blocks: p.take(integer(blocks, "task.every_blocks")).unwrap_or(1),
            },
            (None, Some(expression)) => Schedule::Cron {
                expression: p.take(bounded(expression, "task.cron")).unwrap_or_default(),
            },
            (None, None) => Schedule::Once,
        };
        TaskExecution {
            schedule,
            timeout_secs: p
                .take(integer(self.timeout_secs, "task.timeout_secs"))
                .unwrap_or(1),
            max_runs: self
                .max_runs
                .and_then(|n| p.take(integer(n, "task.max_runs"))),
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

    /// The one problem `text` has.
    fn error(text: &str) -> ManifestError {
        let ManifestErrors(mut errors) = Manifest::from_toml(text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
    }

    /// The fields at fault in `text`, in the order reported.
    fn fields(text: &str) -> Vec<String> {
        let ManifestErrors(errors) = Manifest::from_toml(text).unwrap_err();
        errors.into_iter().map(|e| e.field).collect()
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
    fn security_grants_only_allowlisted_capabilities_in_canonical_order() {
        assert_eq!(app().container.security, Security::default());
        let text = app_toml(
            r#"security = { capabilities = ["setuid", "CAP_CHOWN", "SETUID"], read_only_root = true }"#,
        );
        let Manifest::App(app) = Manifest::from_toml(&text).unwrap() else {
            panic!("expected an app");
        };
        assert_eq!(
            app.container.security.capabilities.to_vec(),
            vec![Capability::Chown, Capability::Setuid]
        );
        assert!(app.container.security.read_only_root);
        for refused in ["NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "ALL"] {
            let problem = error(&app_toml(&format!(
                r#"security = {{ capabilities = ["{refused}"] }}"#
            )));
            assert_eq!(problem.field, "security.capabilities[0]");
            assert!(problem.problem.contains("cannot be granted"), "{problem:?}");
        }
        // On chain, where no conversion sorts them.
        let mut unsorted = app.clone();
        unsorted.container.security.capabilities =
            BoundedVec::try_new(vec![Capability::Setuid, Capability::Chown]).unwrap();
        assert_eq!(
            unsorted.validate().unwrap_err().field,
            "security.capabilities"
        );
    }

    #[test]
    fn egress_is_open_unless_the_manifest_denies_it() {
        assert_eq!(app().container.security.egress, Egress::Open);
        let parse = |extra: &str| match Manifest::from_toml(&app_toml(extra)).unwrap() {
            Manifest::App(app) => app.container.security.egress,
            Manifest::Task(_) => panic!("expected an app"),
        };
        assert_eq!(parse(r#"network = { egress = "none" }"#), Egress::Denied);
        assert_eq!(parse(r#"network = { egress = "all" }"#), Egress::Open);
        assert_eq!(
            parse(
                r#"network = { egress = "none" }
security = { read_only_root = true }"#
            ),
            Egress::Denied
        );
        let problem = error(&app_toml(r#"network = { egress = "some" }"#));
        assert_eq!(problem.field, "network.egress");
        assert!(problem.problem.contains("\"none\""), "{problem:?}");
        assert_eq!(serde_json::to_string(&Egress::Denied).unwrap(), "\"none\"");
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
        assert!(app.problems().is_empty());
    }

    #[test]
    fn a_manifest_with_several_mistakes_lists_each_with_its_field() {
        let text = r#"
kind = "app"
name = "Hello"
image = "localhost/hello:latest"
ports = [{ container = 8080 }, { container = 0 }]
[resources]
cpu_millicores = 0
memory_mib = -64
[placement]
tee = "tpm"
max_price_per_epoch = "1"
"#;
        let ManifestErrors(errors) = Manifest::from_toml(text).unwrap_err();
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        // Each once: the placeholders standing in for the image and the memory, which did not
        // convert, add no second message of their own.
        assert_eq!(
            fields,
            [
                "image",
                "name",
                "placement.tee",
                "ports[1]",
                "resources.cpu_millicores",
                "resources.memory_mib",
            ],
            "{errors:#?}"
        );
        let problem = |field: &str| &errors.iter().find(|e| e.field == field).unwrap().problem;
        assert!(problem("image").contains("no digest"));
        assert!(problem("resources.memory_mib").contains("negative"));
        assert!(problem("resources.cpu_millicores").contains("greater than zero"));
        assert!(problem("ports[1]").contains("port 0"));
        // One problem a line, each naming its field.
        let shown = ManifestErrors(errors.clone()).to_string();
        assert_eq!(shown.lines().count(), 6, "{shown}");
        assert!(shown.lines().any(|l| l.starts_with("placement.tee: ")));
    }

    #[test]
    fn a_field_that_does_not_convert_is_reported_once_and_spoils_no_other() {
        let app = |ports: &str| app_toml("").replace("[[ports]]\ncontainer = 8080", ports);
        // A negative port: not also "port 0" for its entry, nor a duplicate of the other port 0
        // placeholder, and the health check still finds its port.
        assert_eq!(
            fields(&app(
                "[[ports]]\ncontainer = -1\n[[ports]]\ncontainer = 70000\n[[ports]]\ncontainer = 8080"
            )),
            ["ports[0].container", "ports[1].container"]
        );
        // An unknown protocol on a port listed twice: not also a duplicate.
        assert_eq!(
            fields(&app(
                "[[ports]]\ncontainer = 8080\nprotocol = \"sctp\"\n[[ports]]\ncontainer = 8080"
            )),
            ["ports[0].protocol"]
        );
        // A negative GPU count: not also a GPU model without GPUs.
        assert_eq!(
            fields(&app_toml("").replace(
                "memory_mib = 128",
                "memory_mib = 128\ngpus = -1\ngpu_model = \"h100\""
            )),
            ["resources.gpus"]
        );
        let task = |table: &str| {
            format!(
                "kind = \"task\"\nname = \"t\"\nimage = \"x@{DIGEST}\"\n[resources]\ncpu_millicores = 1\nmemory_mib = 1\n[placement]\ntee = \"sgx\"\nmax_price_per_epoch = \"1\"\n[task]\n{table}"
            )
        };
        // A negative period: not also "runs once" for the run limit.
        assert_eq!(
            fields(&task("every_blocks = -5\ntimeout_secs = 5\nmax_runs = 3")),
            ["task.every_blocks"]
        );
        // Two schedules, and an unrelated mistake that is still found.
        assert_eq!(
            fields(&task(
                "every_blocks = 5\ncron = \"* * * * *\"\ntimeout_secs = 0\nmax_runs = 3"
            )),
            ["task", "task.timeout_secs"]
        );
        // An unknown kind: what apps and tasks share is still checked.
        assert_eq!(
            fields(
                &app_toml("")
                    .replace("kind = \"app\"", "kind = \"job\"")
                    .replace("hello\"", "Hello\"")
            ),
            ["kind", "name"]
        );
    }

    #[test]
    fn validate_reports_the_first_of_all_the_problems() {
        let mut app = app();
        app.name = BoundedString::try_new("Hello").unwrap();
        app.replicas = 0;
        app.container.resources.memory_mib = 0;
        app.constraints.min_level = MAX_LEVEL + 1;
        let problems = app.problems();
        let fields: Vec<&str> = problems.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "resources.memory_mib",
                "replicas",
                "placement.min_level"
            ]
        );
        assert_eq!(app.validate(), Err(problems[0].clone()));

        let Manifest::Task(mut task) = Manifest::from_toml(&format!(
            "kind = \"task\"\nname = \"t\"\nimage = \"x@{DIGEST}\"\n[resources]\ncpu_millicores = 1\nmemory_mib = 1\n[placement]\ntee = \"sgx\"\nmax_price_per_epoch = \"1\"\n[task]\ntimeout_secs = 5"
        ))
        .unwrap() else {
            panic!("expected a task")
        };
        assert!(task.validate().is_ok() && task.problems().is_empty());
        task.execution.timeout_secs = 0;
        task.constraints.max_price_per_epoch = Balance(0);
        let fields: Vec<String> = task.problems().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["placement.max_price_per_epoch", "task.timeout_secs"]
        );
        assert_eq!(
            task.validate().unwrap_err().field,
            "placement.max_price_per_epoch"
        );
    }
}
