//! The machine layouts in which the worker may give secrets, checked at start
//! (`docs/key-storage.md` describes them):
//!
//! - **TDX or SEV-SNP**: the worker and its container engine run in the same confidential VM.
//!   The engine is reached on a local Unix socket (not over a network, where it could be on
//!   the operator's host), and the engine's storage and the worker's data directory are on the
//!   VM's encrypted (dm-crypt) disk. Decrypted secrets are only ever in a tmpfs, which is in the
//!   VM's encrypted memory, and every swap area is zram or encrypted, so that neither they nor
//!   the keys are paged out to a plain disk.
//! - **SGX**: an enclave holds only the worker; its containers run outside any enclave, so an
//!   SGX worker gives them no secrets.
//! - **Simulated**: development only; nothing is protected and nothing is checked.
//!
//! A worker whose layout does not hold keeps running workloads without secrets, and says why
//! for each app that has some.

use std::path::{Path, PathBuf};

use wetee_types::TeeKind;

use crate::keys::disk;

/// How the container engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEndpoint {
    /// A Unix socket on this machine.
    Local(PathBuf),
    /// Anything else (`tcp://`, `ssh://`, `npipe://`): possibly another machine.
    Remote(String),
}

impl EngineEndpoint {
    /// The endpoint the worker configuration or `DOCKER_HOST` names (the engine's default
    /// socket when neither does).
    pub fn of(socket: Option<&str>, docker_host: Option<&str>) -> EngineEndpoint {
        let named = socket
            .or(docker_host)
            .unwrap_or("unix:///var/run/docker.sock");
        match named.strip_prefix("unix://") {
            Some(path) => EngineEndpoint::Local(PathBuf::from(path)),
            None if named.starts_with('/') => EngineEndpoint::Local(PathBuf::from(named)),
            None => EngineEndpoint::Remote(named.to_string()),
        }
    }
}

/// What the check looks at.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    /// The TEE the worker's evidence comes from.
    pub tee: TeeKind,
    /// The worker's data directory.
    pub data_dir: &'a Path,
    /// How the engine is reached.
    pub engine: EngineEndpoint,
    /// Where the engine keeps images and containers, as it reports.
    pub engine_storage: Option<PathBuf>,
    /// `/sys/dev/block`, or a stand-in in tests.
    pub sys_dev_block: &'a Path,
    /// The text of `/proc/swaps`.
    pub swaps: &'a str,
}

/// The `major:minor` of the block device file `path`.
pub fn block_device_number(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let rdev = std::fs::metadata(path).ok()?.rdev();
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    Some(format!("{major}:{minor}"))
}

/// Why a swap area listed in `swaps` (the text of `/proc/swaps`) could page memory out to a
/// plain disk, if one could: each must be zram or on dm-crypt. `device_of` names the block
/// device of a swap partition.
pub fn swap_refusal(
    swaps: &str,
    sys_dev_block: &Path,
    device_of: impl Fn(&Path) -> Option<String>,
) -> Option<String> {
    let mut plain = Vec::new();
    // `Filename Type Size Used Priority`, after a header line.
    for line in swaps.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = Path::new(name);
        if name.starts_with("/dev/zram") {
            continue;
        }
        let device = match kind {
            "partition" => device_of(path),
            _ => crate::mounts::mount_of_path(path).ok().map(|m| m.device),
        };
        if !device.is_some_and(|d| crate::mounts::is_dm_crypt(sys_dev_block, &d)) {
            plain.push(name.to_string());
        }
    }
    (!plain.is_empty()).then(|| {
        format!(
            "swap on {} is not encrypted: memory holding keys and secrets could be paged out to it",
            plain.join(", ")
        )
    })
}

/// Why this layout may not give secrets, or `None` when it may.
pub fn secrets_refusal(layout: &Layout) -> Option<String> {
    match layout.tee {
        TeeKind::Simulated => None,
        TeeKind::Sgx => Some(
            "an SGX worker's containers run outside its enclave: it gives them no secrets \
             (run the worker in a TDX or SEV-SNP confidential VM for apps with secrets)"
                .into(),
        ),
        TeeKind::Tdx | TeeKind::SevSnp => {
            let mut problems = Vec::new();
            if let EngineEndpoint::Remote(endpoint) = &layout.engine {
                problems.push(format!(
                    "the container engine is reached at {endpoint}, not on a local Unix socket \
                     inside the confidential VM"
                ));
            }
            match &layout.engine_storage {
                Some(storage) => {
                    if let Err(why) = disk::check_encrypted(storage, layout.sys_dev_block) {
                        problems.push(format!("the engine's storage: {why}"));
                    }
                }
                None => problems.push("the engine does not say where it stores containers".into()),
            }
            if let Err(why) = disk::check_encrypted(layout.data_dir, layout.sys_dev_block) {
                problems.push(format!("the data directory: {why}"));
            }
            if let Some(why) = swap_refusal(layout.swaps, layout.sys_dev_block, block_device_number)
            {
                problems.push(why);
            }
            if problems.is_empty() {
                None
            } else {
                Some(format!(
                    "this machine's layout cannot keep secrets from its operator: {}",
                    problems.join("; ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_endpoint_is_local_only_for_a_unix_socket() {
        assert_eq!(
            EngineEndpoint::of(Some("/run/podman/podman.sock"), Some("tcp://10.0.0.1:2375")),
            EngineEndpoint::Local("/run/podman/podman.sock".into())
        );
        assert_eq!(
            EngineEndpoint::of(None, Some("unix:///run/docker.sock")),
            EngineEndpoint::Local("/run/docker.sock".into())
        );
        assert_eq!(
            EngineEndpoint::of(None, None),
            EngineEndpoint::Local("/var/run/docker.sock".into())
        );
        assert_eq!(
            EngineEndpoint::of(None, Some("tcp://10.0.0.1:2375")),
            EngineEndpoint::Remote("tcp://10.0.0.1:2375".into())
        );
    }

    #[test]
    fn a_confidential_vm_gives_secrets_only_with_a_local_engine_and_encrypted_disks() {
        let data = tempfile::tempdir().unwrap();
        let storage = tempfile::tempdir().unwrap();
        let sys = tempfile::tempdir().unwrap();
        let layout = |tee, engine| Layout {
            tee,
            data_dir: data.path(),
            engine,
            engine_storage: Some(storage.path().to_path_buf()),
            sys_dev_block: sys.path(),
            swaps: "Filename Type Size Used Priority\n",
        };
        let local = EngineEndpoint::Local("/run/podman/podman.sock".into());
        assert_eq!(
            secrets_refusal(&layout(TeeKind::Simulated, local.clone())),
            None
        );
        let sgx = secrets_refusal(&layout(TeeKind::Sgx, local.clone())).unwrap();
        assert!(sgx.contains("outside its enclave"), "{sgx}");

        // Nothing on this machine is dm-crypt: both disks are named.
        let plain = secrets_refusal(&layout(TeeKind::Tdx, local.clone())).unwrap();
        assert!(plain.contains("the engine's storage") && plain.contains("the data directory"));

        // Described as encrypted, with a local engine: allowed; a remote engine is not.
        for dir in [data.path(), storage.path()] {
            let device = crate::mounts::mount_of_path(dir).unwrap().device;
            std::fs::create_dir_all(sys.path().join(&device).join("dm")).unwrap();
            std::fs::write(sys.path().join(&device).join("dm/uuid"), "CRYPT-LUKS2-x").unwrap();
        }
        assert_eq!(secrets_refusal(&layout(TeeKind::SevSnp, local)), None);
        let remote = EngineEndpoint::Remote("tcp://10.0.0.1:2375".into());
        let refusal = secrets_refusal(&layout(TeeKind::Tdx, remote)).unwrap();
        assert!(refusal.contains("tcp://10.0.0.1:2375"), "{refusal}");
    }

    #[test]
    fn swap_must_be_zram_or_encrypted() {
        let sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("253:1/dm")).unwrap();
        std::fs::write(sys.path().join("253:1/dm/uuid"), "CRYPT-PLAIN-swap").unwrap();
        let device_of = |path: &Path| match path.to_str() {
            Some("/dev/dm-1") => Some("253:1".to_string()),
            Some("/dev/sda2") => Some("8:2".to_string()),
            _ => None,
        };
        let header = "Filename\tType\tSize\tUsed\tPriority\n";
        let swaps = |lines: &str| format!("{header}{lines}");
        assert_eq!(swap_refusal(&swaps(""), sys.path(), device_of), None);
        let zram = swaps("/dev/zram0 partition 8388604 0 100\n");
        assert_eq!(swap_refusal(&zram, sys.path(), device_of), None);
        let crypt = swaps("/dev/dm-1 partition 8388604 0 -2\n");
        assert_eq!(swap_refusal(&crypt, sys.path(), device_of), None);
        let plain = swaps("/dev/dm-1 partition 1 0 -2\n/dev/sda2 partition 1 0 -3\n");
        let refusal = swap_refusal(&plain, sys.path(), device_of).unwrap();
        assert!(
            refusal.contains("/dev/sda2") && !refusal.contains("dm-1"),
            "{refusal}"
        );
    }
}
