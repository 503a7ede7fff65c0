//! TDX (and any confidential VM): the keys in a file on the VM's dm-crypt disk. TDX has no
//! sealing key in hardware, so this protects the keys only as well as the disk's key is
//! protected: the disk must be unlocked inside the VM by a key the operator never holds (a key
//! broker releasing it to the attested VM, or a key derived inside it), never by a passphrase
//! the operator types. `docs/key-storage.md` says what the operator must set up; until
//! attested key brokers can release the keys themselves, the `memory` store is the choice that
//! needs no trust in the disk.

use std::path::Path;

use super::file::KeyFile;
use super::{KeyStoreError, Protection};
use crate::mounts;

/// Where block devices are described on a real system.
pub const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// Why `path` is not on an encrypted disk, if it is not: its mount must be a dm-crypt device
/// or built on one (LVM on LUKS), as `sys_dev_block` describes it.
pub fn check_encrypted(path: &Path, sys_dev_block: &Path) -> Result<(), String> {
    let mount = mounts::mount_of_path(path)?;
    if mounts::is_dm_crypt(sys_dev_block, &mount.device) {
        return Ok(());
    }
    Err(format!(
        "{} is on {} ({}, device {}), which is not a dm-crypt (LUKS) disk",
        path.display(),
        mount.mount_point.display(),
        mount.fs_type,
        mount.device
    ))
}

/// The key file in `data_dir`, once `data_dir` is shown to be on an encrypted disk.
pub fn encrypted_disk_file(
    data_dir: &Path,
    sys_dev_block: &Path,
) -> Result<KeyFile, KeyStoreError> {
    check_encrypted(data_dir, sys_dev_block).map_err(|why| {
        KeyStoreError::Unavailable(format!(
            "keys.store = \"encrypted-disk\": {why}; put data_dir on the confidential VM's \
             encrypted disk, or choose keys.store = \"memory\""
        ))
    })?;
    Ok(KeyFile::protected_by(data_dir, Protection::EncryptedDisk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_on_a_plain_disk_is_refused_with_where_it_is() {
        // This machine's temporary directory is on no dm-crypt device, and an empty sysfs
        // describes none.
        let dir = tempfile::tempdir().unwrap();
        let sys = tempfile::tempdir().unwrap();
        let error = encrypted_disk_file(dir.path(), sys.path())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("not a dm-crypt (LUKS) disk"), "{error}");
        assert!(error.contains("keys.store = \"memory\""), "{error}");
    }

    #[test]
    fn a_data_dir_whose_device_is_a_crypt_mapping_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let device = mounts::mount_of_path(dir.path()).unwrap().device;
        let sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join(&device).join("dm")).unwrap();
        std::fs::write(sys.path().join(&device).join("dm/uuid"), "CRYPT-LUKS2-x").unwrap();
        assert!(encrypted_disk_file(dir.path(), sys.path()).is_ok());
    }
}
