//! SGX under Gramine: the keys in a file on one of Gramine's encrypted mounts, keyed to
//! MRENCLAVE, so that only this enclave build on this CPU reads it. The enclave cannot list its
//! own mounts, but its manifest is part of MRENCLAVE: the manifest names the mount in the
//! environment it sets (`loader.env`), and a manifest that lies is another measurement, which
//! the chain's pinned measurements refuse. The manifest lines are in `docs/key-storage.md`.

use std::path::{Component, Path, PathBuf};

use super::file::KeyFile;
use super::{KeyStoreError, Protection};

/// Names the encrypted mount, in the manifest's `loader.env`.
pub const MOUNT_VARIABLE: &str = "WETEE_ENCRYPTED_MOUNT";
/// Names the mount's key, in the manifest's `loader.env`.
pub const KEY_VARIABLE: &str = "WETEE_ENCRYPTED_MOUNT_KEY";
/// The only key accepted: derived by the CPU from MRENCLAVE.
pub const ENCLAVE_KEY: &str = "_sgx_mrenclave";
const ATTESTATION_TYPE: &str = "/dev/attestation/attestation_type";

/// What the enclave knows about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enclave {
    /// Gramine's `/dev/attestation/attestation_type`, absent outside Gramine.
    pub attestation_type: Option<String>,
    /// The encrypted mount the manifest names.
    pub encrypted_mount: Option<PathBuf>,
    /// The key that mount is encrypted with.
    pub mount_key: Option<String>,
}

impl Enclave {
    /// This process's view.
    pub fn of_this_process() -> Enclave {
        Enclave {
            attestation_type: std::fs::read_to_string(ATTESTATION_TYPE)
                .ok()
                .map(|text| text.trim().to_string()),
            encrypted_mount: std::env::var_os(MOUNT_VARIABLE).map(PathBuf::from),
            mount_key: std::env::var(KEY_VARIABLE).ok(),
        }
    }
}

/// The key file in `data_dir`, once `enclave` shows `data_dir` is on an encrypted mount keyed
/// to MRENCLAVE inside an attested SGX enclave.
pub fn protected_file(data_dir: &Path, enclave: &Enclave) -> Result<KeyFile, KeyStoreError> {
    let refuse = |why: String| {
        Err(KeyStoreError::Unavailable(format!(
            "keys.store = \"gramine-protected\": {why}; the worker will not keep its keys unprotected"
        )))
    };
    match enclave.attestation_type.as_deref() {
        None => {
            return refuse(format!(
                "not inside Gramine ({ATTESTATION_TYPE} is missing)"
            ));
        }
        Some("none") => {
            return refuse(
                "Gramine runs without SGX attestation (gramine-direct, or \
                 sgx.remote_attestation = \"none\")"
                    .into(),
            );
        }
        Some(_) => {}
    }
    let Some(mount) = &enclave.encrypted_mount else {
        return refuse(format!(
            "the manifest names no encrypted mount (loader.env.{MOUNT_VARIABLE})"
        ));
    };
    if enclave.mount_key.as_deref() != Some(ENCLAVE_KEY) {
        return refuse(format!(
            "the encrypted mount must be keyed to {ENCLAVE_KEY} (loader.env.{KEY_VARIABLE}), so \
             that only this enclave build opens it"
        ));
    }
    let plain =
        |path: &Path| path.is_absolute() && !path.components().any(|c| c == Component::ParentDir);
    if !plain(mount) || !plain(data_dir) || !data_dir.starts_with(mount) {
        return refuse(format!(
            "data_dir {} is not under the encrypted mount {}",
            data_dir.display(),
            mount.display()
        ));
    }
    Ok(KeyFile::protected_by(data_dir, Protection::EnclaveFile))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyStore as _;

    fn enclave() -> Enclave {
        Enclave {
            attestation_type: Some("dcap".into()),
            encrypted_mount: Some("/protected".into()),
            mount_key: Some(ENCLAVE_KEY.into()),
        }
    }

    fn refusal(data_dir: &str, enclave: &Enclave) -> String {
        protected_file(Path::new(data_dir), enclave)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn only_a_data_dir_on_the_enclaves_own_encrypted_mount_is_accepted() {
        let store = protected_file(Path::new("/protected/worker"), &enclave()).unwrap();
        assert_eq!(store.protection(), Protection::EnclaveFile);

        assert!(refusal("/protected/worker", &Enclave::default()).contains("not inside Gramine"));
        let direct = Enclave {
            attestation_type: Some("none".into()),
            ..enclave()
        };
        assert!(refusal("/protected/worker", &direct).contains("without SGX attestation"));
        let unnamed = Enclave {
            encrypted_mount: None,
            ..enclave()
        };
        assert!(refusal("/protected/worker", &unnamed).contains(MOUNT_VARIABLE));
        let signer_keyed = Enclave {
            mount_key: Some("_sgx_mrsigner".into()),
            ..enclave()
        };
        assert!(refusal("/protected/worker", &signer_keyed).contains(ENCLAVE_KEY));
        for outside in [
            "/var/lib/wetee",
            "/protected/../var",
            "protected/worker",
            "/protectedx",
        ] {
            assert!(
                refusal(outside, &enclave()).contains("not under"),
                "{outside}"
            );
        }
    }

    #[test]
    fn outside_gramine_this_process_is_refused() {
        // This machine has no SGX: the real check must refuse here.
        let error = refusal("/protected/worker", &Enclave::of_this_process());
        assert!(!error.is_empty());
    }
}
