//! SEV-SNP: the keys in a file encrypted with a key the AMD secure processor derives (the
//! `MSG_KEY_REQ` guest request, through `/dev/sev-guest`) from the chip's VCEK, the guest's
//! launch measurement and its policy. The same worker image on the same chip derives it again
//! after a restart; another image, another policy or another machine cannot, and the operator
//! never sees it.
//!
//! The file is `WTEEKSN1`, the 32-byte key request it was sealed under, then the keys sealed
//! (HPKE, as secrets are) to the X25519 key made of the derived key, with the magic and the
//! request as associated data.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::file::write_private;
use super::{KeyMaterial, KeyStore, KeyStoreError, Protection};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "worker-keys.snp";
/// Where the guest driver is.
pub const DEVICE: &str = "/dev/sev-guest";
const MAGIC: &[u8; 8] = b"WTEEKSN1";

/// What a derived key is derived from: the `MSG_KEY_REQ` fields of the SEV-SNP firmware ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRequest {
    /// `false`: the chip's VCEK (versioned per TCB); `true`: the VM root key.
    pub root_key_is_vmrk: bool,
    /// Which guest fields are mixed in (bit 0 policy, 1 image id, 2 family id, 3 measurement,
    /// 4 SVN, 5 TCB version).
    pub guest_field_select: u64,
    /// The VMPL the key is for: a guest at this level or a more privileged one can derive it.
    pub vmpl: u32,
    /// The guest SVN mixed in when selected.
    pub guest_svn: u32,
    /// The TCB version whose VCEK derives the key.
    pub tcb_version: u64,
}

/// Bit 0 of `guest_field_select`.
pub const FIELD_GUEST_POLICY: u64 = 1 << 0;
/// Bit 3 of `guest_field_select`.
pub const FIELD_MEASUREMENT: u64 = 1 << 3;

impl KeyRequest {
    /// What the worker's keys are sealed under: the VCEK, the launch measurement and the
    /// policy (so a debuggable launch of the same image derives another key), at VMPL 0.
    pub const WORKER_KEYS: KeyRequest = KeyRequest {
        root_key_is_vmrk: false,
        guest_field_select: FIELD_GUEST_POLICY | FIELD_MEASUREMENT,
        vmpl: 0,
        guest_svn: 0,
        tcb_version: 0,
    };

    /// The request as the firmware lays it out (little-endian `ROOT_KEY_SELECT`, reserved,
    /// `GUEST_FIELD_SELECT`, `VMPL`, `GUEST_SVN`, `TCB_VERSION`: 32 bytes).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        bytes[0..4].copy_from_slice(&u32::from(self.root_key_is_vmrk).to_le_bytes());
        bytes[8..16].copy_from_slice(&self.guest_field_select.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.vmpl.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.guest_svn.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.tcb_version.to_le_bytes());
        bytes
    }

    /// The request [`Self::to_bytes`] wrote, if its reserved and unknown bits are clear.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<KeyRequest> {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let root = u32_at(0);
        let fields = u64_at(8);
        if root > 1 || u32_at(4) != 0 || fields >> 7 != 0 {
            return None;
        }
        Some(KeyRequest {
            root_key_is_vmrk: root == 1,
            guest_field_select: fields,
            vmpl: u32_at(16),
            guest_svn: u32_at(20),
            tcb_version: u64_at(24),
        })
    }
}

/// Derives keys bound to the running guest.
pub trait DerivedKeySource: Send + Sync {
    /// The key for `request`.
    fn derive(&self, request: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, KeyStoreError>;
}

/// The AMD secure processor, through the guest driver.
#[derive(Debug)]
pub struct SevGuest {
    _private: (),
}

impl SevGuest {
    /// The guest driver, or why there is none.
    pub fn open() -> Result<SevGuest, KeyStoreError> {
        SevGuest::open_at(Path::new(DEVICE))
    }

    fn open_at(device: &Path) -> Result<SevGuest, KeyStoreError> {
        if !device.exists() {
            return Err(KeyStoreError::Unavailable(format!(
                "keys.store = \"snp-sealed\": {} is missing, so this is not an SEV-SNP guest (or \
                 its sev-guest driver is not loaded); the worker will not keep its keys \
                 unprotected",
                device.display()
            )));
        }
        Ok(SevGuest { _private: () })
    }
}

impl DerivedKeySource for SevGuest {
    fn derive(&self, request: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        use sev::firmware::guest::{DerivedKey, Firmware, GuestFieldSelect};
        let unavailable =
            |e: &dyn std::fmt::Display| KeyStoreError::Unavailable(format!("{DEVICE}: {e}"));
        let mut firmware = Firmware::open().map_err(|e| unavailable(&e))?;
        let derived = DerivedKey::new(
            request.root_key_is_vmrk,
            GuestFieldSelect(request.guest_field_select),
            request.vmpl,
            request.guest_svn,
            request.tcb_version,
            None,
        );
        // Message version 1: every SNP firmware answers it; later versions add the launch
        // mitigation vector, which this request does not select.
        let key = firmware
            .get_derived_key(Some(1), derived)
            .map_err(|e| unavailable(&e))?;
        Ok(Zeroizing::new(key))
    }
}

/// The keys sealed to this guest's launch.
pub struct SnpSealedFile {
    path: PathBuf,
    source: Box<dyn DerivedKeySource>,
    request: KeyRequest,
}

impl std::fmt::Debug for SnpSealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnpSealedFile")
            .field("path", &self.path)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl SnpSealedFile {
    /// The sealed file in `data_dir`, sealed with keys from `source`.
    pub fn new(data_dir: &Path, source: Box<dyn DerivedKeySource>) -> SnpSealedFile {
        SnpSealedFile {
            path: data_dir.join(FILE_NAME),
            source,
            request: KeyRequest::WORKER_KEYS,
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> KeyStoreError {
        KeyStoreError::File {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    fn associated_data(request: &KeyRequest) -> Vec<u8> {
        let mut aad = MAGIC.to_vec();
        aad.extend_from_slice(&request.to_bytes());
        aad
    }
}

impl KeyStore for SnpSealedFile {
    fn protection(&self) -> Protection {
        Protection::SealedToLaunch
    }

    fn load(&self) -> Result<Option<KeyMaterial>, KeyStoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let (Some(magic), Some(request), Some(sealed)) =
            (bytes.get(..8), bytes.get(8..40), bytes.get(40..))
        else {
            return Err(self.error("too short to be a sealed key file"));
        };
        if magic != MAGIC {
            return Err(self.error("not a sealed key file"));
        }
        let request = request
            .try_into()
            .ok()
            .and_then(KeyRequest::from_bytes)
            .ok_or_else(|| self.error("its key request is malformed"))?;
        // Anyone on this chip can derive the key of a weaker request (no measurement, another
        // VMPL) and seal keys they know to it: only the worker's own request is accepted.
        if request != self.request {
            return Err(KeyStoreError::Sealed(format!(
                "{}: sealed under a key request other than the worker's (measurement and \
                 policy, VCEK, VMPL 0): it was not written by this worker; move it aside to \
                 start with new keys (owners then reseal)",
                self.path.display()
            )));
        }
        let sealed: wetee_types::records::SealedBox = wetee_types::codec::decode(sealed)
            .map_err(|e| self.error(format_args!("its sealed keys are malformed: {e}")))?;
        let derived = self.source.derive(&request)?;
        let opened = wetee_sealing::open(&derived, &Self::associated_data(&request), &sealed)
            .map_err(|_| {
                KeyStoreError::Sealed(format!(
                    "{}: the keys do not open with the key this guest derives: it was sealed by \
                     another launch measurement or policy, on another chip, or altered; move it \
                     aside to start with new keys (owners then reseal)",
                    self.path.display()
                ))
            })?;
        KeyMaterial::from_bytes(&opened)
            .map(Some)
            .ok_or_else(|| self.error("the sealed keys have the wrong length"))
    }

    fn save(&self, keys: &KeyMaterial) -> Result<(), KeyStoreError> {
        let derived = self.source.derive(&self.request)?;
        let public = wetee_sealing::public_key(&derived);
        let sealed = wetee_sealing::seal(
            &public,
            &Self::associated_data(&self.request),
            keys.to_bytes().as_ref(),
        )
        .map_err(|e| self.error(e))?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&self.request.to_bytes());
        bytes.extend_from_slice(&wetee_types::codec::encode(&sealed));
        write_private(&self.path, &bytes).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for the secure processor in tests: a key per launch measurement.
    struct Launch([u8; 32]);

    impl DerivedKeySource for Launch {
        fn derive(&self, request: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
            let mut input = self.0.to_vec();
            input.extend_from_slice(&request.to_bytes());
            Ok(Zeroizing::new(wetee_types::Hash::of(&input).0))
        }
    }

    #[test]
    fn the_key_request_is_laid_out_as_the_firmware_reads_it() {
        let bytes = KeyRequest::WORKER_KEYS.to_bytes();
        let mut expected = [0u8; 32];
        // VCEK (0), reserved, fields = policy | measurement, VMPL 0, SVN 0, TCB 0.
        expected[8] = 0b1001;
        assert_eq!(bytes, expected);
        let request = KeyRequest {
            root_key_is_vmrk: true,
            guest_field_select: 0x7f,
            vmpl: 2,
            guest_svn: 0x0102_0304,
            tcb_version: 0x0a0b_0c0d_0e0f_1011,
        };
        let bytes = request.to_bytes();
        assert_eq!(&bytes[0..4], &[1, 0, 0, 0]);
        assert_eq!(&bytes[16..20], &[2, 0, 0, 0]);
        assert_eq!(&bytes[20..24], &[4, 3, 2, 1]);
        assert_eq!(
            &bytes[24..32],
            &[0x11, 0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a]
        );
        assert_eq!(KeyRequest::from_bytes(&bytes), Some(request));
        let mut reserved = bytes;
        reserved[5] = 1;
        assert_eq!(KeyRequest::from_bytes(&reserved), None);
        let mut unknown_field = bytes;
        unknown_field[8] = 0x80;
        assert_eq!(KeyRequest::from_bytes(&unknown_field), None);
    }

    #[test]
    fn sealed_keys_open_only_for_the_same_launch_and_hold_no_key_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnpSealedFile::new(dir.path(), Box::new(Launch([1; 32])));
        assert!(store.load().unwrap().is_none());
        let keys = KeyMaterial::generate().unwrap();
        store.save(&keys).unwrap();
        let again = store.load().unwrap().unwrap();
        assert_eq!(again.to_bytes().as_ref(), keys.to_bytes().as_ref());

        let file = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        for key in [keys.identity_seed.as_ref(), keys.sealing_secret.as_ref()] {
            assert!(!file.windows(32).any(|w| w == key));
            assert!(!String::from_utf8_lossy(&file).contains(&hex::encode(key)));
        }

        let other_launch = SnpSealedFile::new(dir.path(), Box::new(Launch([2; 32])));
        let error = other_launch.load().err().unwrap();
        assert!(matches!(error, KeyStoreError::Sealed(_)), "{error}");

        let mut altered = file.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        std::fs::write(dir.path().join(FILE_NAME), &altered).unwrap();
        assert!(matches!(store.load(), Err(KeyStoreError::Sealed(_))));

        // A request rewritten to a weaker one is part of the associated data.
        let mut weaker = file.clone();
        weaker[8 + 8] = FIELD_GUEST_POLICY as u8;
        std::fs::write(dir.path().join(FILE_NAME), &weaker).unwrap();
        assert!(matches!(store.load(), Err(KeyStoreError::Sealed(_))));

        // Keys the operator chose, sealed to a weaker request whose key the operator can
        // derive in a guest of their own on the same chip: refused, however well they open.
        let planted = KeyMaterial::generate().unwrap();
        let weak = KeyRequest {
            guest_field_select: 0,
            ..KeyRequest::WORKER_KEYS
        };
        let operator = Launch([1; 32]);
        let derived = operator.derive(&weak).unwrap();
        let sealed = wetee_sealing::seal(
            &wetee_sealing::public_key(&derived),
            &SnpSealedFile::associated_data(&weak),
            planted.to_bytes().as_ref(),
        )
        .unwrap();
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&weak.to_bytes());
        forged.extend_from_slice(&wetee_types::codec::encode(&sealed));
        std::fs::write(dir.path().join(FILE_NAME), &forged).unwrap();
        let error = store.load().err().unwrap().to_string();
        assert!(error.contains("not written by this worker"), "{error}");

        for broken in [
            &file[..20],
            &b"WTEEKSN2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..],
        ] {
            std::fs::write(dir.path().join(FILE_NAME), broken).unwrap();
            assert!(matches!(store.load(), Err(KeyStoreError::File { .. })));
        }
    }

    #[test]
    fn without_the_guest_driver_the_store_refuses_and_says_why() {
        let error = SevGuest::open_at(Path::new("/nonexistent/sev-guest"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("not an SEV-SNP guest"), "{error}");
    }
}
