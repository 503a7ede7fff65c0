//! What a path is stored on, from `/proc/self/mountinfo` and `/sys/dev/block`: whether it is in
//! memory (decrypted secrets), and whether its disk is encrypted by dm-crypt (the keys and the
//! engine's storage on a confidential VM).

use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

/// The mount a path is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The device's `major:minor`.
    pub device: String,
    /// The filesystem type (`ext4`, `tmpfs`, ...).
    pub fs_type: String,
}

/// `path` made absolute and canonical, even when it does not exist yet: the nearest existing
/// ancestor with symbolic links resolved, then the rest.
pub fn canonical(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let path = absolute.as_path();
    let mut existing = path;
    while !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    Ok(std::fs::canonicalize(existing)?.join(path.strip_prefix(existing).unwrap_or(Path::new(""))))
}

/// The mount that `path` (absolute and canonical) is on, from the text of
/// `/proc/self/mountinfo`: the longest mount point containing it, the last mounted if several
/// are mounted there.
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    // `36 35 98:0 /root /mount/point rw,noatime shared:1 - ext4 /dev/sda1 rw`: the device is the
    // third field, the mount point the fifth, the type follows the `-` that ends the optional
    // fields.
    let mut found: Option<(usize, Mount)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(device), Some(mount_point), Some(rest)) =
            (fields.get(2), fields.get(4), fields.get(6..))
        else {
            continue;
        };
        let Some(fs_type) = rest
            .iter()
            .position(|field| *field == "-")
            .and_then(|i| rest.get(i + 1))
        else {
            continue;
        };
        let mount_point = unescape_mount_path(mount_point);
        if path.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            if found.as_ref().is_none_or(|(deepest, _)| depth >= *deepest) {
                let mount = Mount {
                    mount_point,
                    device: (*device).to_string(),
                    fs_type: (*fs_type).to_string(),
                };
                found = Some((depth, mount));
            }
        }
    }
    found.map(|(_, mount)| mount)
}

/// The mount `path` is on, on this machine.
pub fn mount_of_path(path: &Path) -> Result<Mount, String> {
    let canonical = canonical(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    mount_of(&mountinfo, &canonical)
        .ok_or_else(|| format!("{}: on no mount /proc/self/mountinfo lists", path.display()))
}

/// Whether the block device `major:minor` is a dm-crypt mapping or is built only on such
/// mappings (LVM on LUKS), read under `sys_dev_block` (`/sys/dev/block` on a real system). A
/// volume spread over one encrypted device and one plain one is not encrypted.
pub fn is_dm_crypt(sys_dev_block: &Path, device: &str) -> bool {
    fn walk(device_dir: &Path, depth: u32) -> bool {
        // Device-mapper stacks are shallow; a loop in a broken sysfs must not hang the worker.
        if depth > 8 {
            return false;
        }
        let uuid = std::fs::read_to_string(device_dir.join("dm/uuid")).unwrap_or_default();
        if uuid.starts_with("CRYPT-") {
            return true;
        }
        let Ok(slaves) = std::fs::read_dir(device_dir.join("slaves")) else {
            return false;
        };
        let slaves: Vec<_> = slaves.flatten().collect();
        !slaves.is_empty() && slaves.iter().all(|slave| walk(&slave.path(), depth + 1))
    }
    walk(&sys_dev_block.join(device), 0)
}

/// A mountinfo path, whose space, tab, newline and backslash are written in octal (`\040`).
fn unescape_mount_path(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut path = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
                path.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                path.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=10k
24 23 0:22 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
25 24 0:40 / /dev/shm rw,relatime - ext4 /dev/vdb rw
26 25 0:41 / /dev/shm/in\\040memory rw master:7 shared:9 - ramfs none rw
27 22 0:42 / /srv rw - tmpfs tmpfs rw
";

    fn fs(path: &str) -> Option<String> {
        mount_of(MOUNTINFO, Path::new(path)).map(|m| m.fs_type)
    }

    #[test]
    fn the_mount_is_that_of_the_longest_mount_point_last_mounted() {
        assert_eq!(fs("/var/lib").as_deref(), Some("ext4"));
        assert_eq!(fs("/dev/null").as_deref(), Some("devtmpfs"));
        // Mounted over the tmpfs: the disk wins.
        assert_eq!(fs("/dev/shm/wetee").as_deref(), Some("ext4"));
        assert_eq!(
            mount_of(MOUNTINFO, Path::new("/dev/shm/wetee")).map(|m| m.device),
            Some("0:40".to_string())
        );
        // An escaped space, and optional fields before the separator.
        assert_eq!(fs("/dev/shm/in memory/x").as_deref(), Some("ramfs"));
        // Whole components only: `/srvx` is not under `/srv`.
        assert_eq!(fs("/srv/secrets").as_deref(), Some("tmpfs"));
        assert_eq!(fs("/srvx").as_deref(), Some("ext4"));
        assert_eq!(mount_of("garbage\n", Path::new("/")), None);
    }

    #[test]
    fn a_relative_path_is_checked_where_it_really_is() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            canonical(Path::new("not-yet/data")).unwrap(),
            std::fs::canonicalize(&here).unwrap().join("not-yet/data")
        );
    }

    #[test]
    fn dm_crypt_is_found_directly_or_under_lvm_and_nowhere_else() {
        let sys = tempfile::tempdir().unwrap();
        let device = |name: &str, uuid: Option<&str>, slaves: &[&str]| {
            let dir = sys.path().join(name);
            std::fs::create_dir_all(dir.join("slaves")).unwrap();
            if let Some(uuid) = uuid {
                std::fs::create_dir_all(dir.join("dm")).unwrap();
                std::fs::write(dir.join("dm/uuid"), uuid).unwrap();
            }
            for slave in slaves {
                std::os::unix::fs::symlink(sys.path().join(slave), dir.join("slaves").join(slave))
                    .unwrap();
            }
        };
        device("8:0", None, &[]);
        device("253:0", Some("CRYPT-LUKS2-0123-root\n"), &["8:0"]);
        device("253:1", Some("LVM-abc"), &["253:0"]);
        device("253:2", Some("LVM-def"), &["8:0"]);
        device("253:3", Some("LVM-half"), &["253:0", "8:0"]);
        assert!(is_dm_crypt(sys.path(), "253:0"));
        assert!(is_dm_crypt(sys.path(), "253:1"));
        assert!(!is_dm_crypt(sys.path(), "253:2"));
        assert!(!is_dm_crypt(sys.path(), "253:3"));
        assert!(!is_dm_crypt(sys.path(), "8:0"));
        assert!(!is_dm_crypt(sys.path(), "9:9"));
    }
}
