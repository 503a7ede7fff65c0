//! The worker's configuration, measured into the TDX runtime register RTMR3 before the worker
//! produces any evidence, so that a verifier sees which configuration the worker runs under
//! (the engine it talks to, where it keeps its keys, its offer), not only which binary.
//!
//! The value extended is SHA-384 of the configuration file's bytes (`sha384sum worker.toml`);
//! starting from a register of zeros, RTMR3 then reads SHA-384(48 zero bytes ‖ that digest),
//! which `wetee worker measurements --config` prints and an owner or a chain can pin. The
//! register is written through Linux's TDX guest measurement files (Linux 6.16 or later:
//! `/sys/class/misc/tdx_guest/measurements/rtmr3:sha384`; a write extends, a read returns the
//! value). A worker restarted in the same VM with the same file finds its measurement there and
//! extends nothing; one whose register holds anything else refuses secrets.
//!
//! SEV-SNP has no runtime register (its `HOST_DATA` is fixed at launch by the host) and SGX
//! measures the configuration through Gramine's manifest; this is TDX only.

use std::path::Path;

use sha2::{Digest as _, Sha384};

/// Where Linux exposes RTMR3 to a TDX guest.
pub const RTMR3: &str = "/sys/class/misc/tdx_guest/measurements/rtmr3:sha384";

/// A runtime measurement register.
pub trait Register {
    /// Its value.
    fn read(&self) -> Result<[u8; 48], String>;
    /// Extends it with `digest`: value ← SHA-384(value ‖ digest).
    fn extend(&self, digest: &[u8; 48]) -> Result<(), String>;
}

/// RTMR3 through the kernel's measurement file.
#[derive(Debug)]
pub struct SysfsRegister<'a>(pub &'a Path);

impl Register for SysfsRegister<'_> {
    fn read(&self) -> Result<[u8; 48], String> {
        let bytes = std::fs::read(self.0).map_err(|e| {
            format!(
                "{} cannot be read ({e}): RTMR3 needs Linux 6.16 or later in a TDX guest",
                self.0.display()
            )
        })?;
        bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!("{} holds {} bytes, not 48", self.0.display(), bytes.len())
        })
    }

    fn extend(&self, digest: &[u8; 48]) -> Result<(), String> {
        std::fs::write(self.0, digest)
            .map_err(|e| format!("{} cannot be extended ({e})", self.0.display()))
    }
}

/// SHA-384 of the configuration file's bytes.
pub fn config_digest(text: &str) -> [u8; 48] {
    Sha384::digest(text.as_bytes()).into()
}

/// RTMR3 once a fresh register is extended with `digest`.
pub fn expected(digest: &[u8; 48]) -> [u8; 48] {
    let mut hasher = Sha384::new();
    hasher.update([0u8; 48]);
    hasher.update(digest);
    hasher.finalize().into()
}

/// What [`measure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// The register was fresh and now holds the configuration.
    Extended,
    /// It already held exactly this configuration (the worker restarted in the same VM).
    AlreadyThere,
}

/// Measures the configuration whose digest is `digest` into `register`, or says why it cannot.
pub fn measure(register: &dyn Register, digest: &[u8; 48]) -> Result<Measured, String> {
    let wanted = expected(digest);
    let current = register.read()?;
    if current == wanted {
        return Ok(Measured::AlreadyThere);
    }
    if current != [0u8; 48] {
        return Err(
            "RTMR3 already holds other measurements (another program extended it, or the \
             worker's configuration changed since this VM booted): restart the VM with the \
             configuration to attest"
                .into(),
        );
    }
    register.extend(digest)?;
    if register.read()? != wanted {
        return Err("RTMR3 does not hold the configuration after extending it".into());
    }
    Ok(Measured::Extended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A register that extends as the TDX module does.
    struct Simulated(RefCell<[u8; 48]>);

    impl Register for Simulated {
        fn read(&self) -> Result<[u8; 48], String> {
            Ok(*self.0.borrow())
        }
        fn extend(&self, digest: &[u8; 48]) -> Result<(), String> {
            let mut hasher = Sha384::new();
            hasher.update(*self.0.borrow());
            hasher.update(digest);
            *self.0.borrow_mut() = hasher.finalize().into();
            Ok(())
        }
    }

    #[test]
    fn a_fresh_register_takes_the_configuration_once_and_a_restart_finds_it() {
        let register = Simulated(RefCell::new([0; 48]));
        let digest = config_digest("stake = \"200\"\n");
        assert_eq!(measure(&register, &digest), Ok(Measured::Extended));
        assert_eq!(register.read().unwrap(), expected(&digest));
        // The same worker restarted in the same VM extends nothing more.
        assert_eq!(measure(&register, &digest), Ok(Measured::AlreadyThere));
        assert_eq!(register.read().unwrap(), expected(&digest));
        // Another configuration in the same VM cannot pass for its own.
        let other = config_digest("stake = \"300\"\n");
        assert!(
            measure(&register, &other)
                .unwrap_err()
                .contains("restart the VM")
        );
    }

    #[test]
    fn the_expected_value_is_the_configuration_digest_extended_from_zero() {
        // Computed independently: sha384(b"\0" * 48 + sha384(b"").digest()) in Python.
        assert_eq!(
            hex::encode(expected(&config_digest(""))),
            "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c\
             10edb30948c90ba67310f7b964fc500a"
        );
    }

    #[test]
    fn without_the_kernel_file_the_reason_names_it() {
        let missing = SysfsRegister(Path::new("/nonexistent/rtmr3:sha384"));
        let why = measure(&missing, &config_digest("x")).unwrap_err();
        assert!(why.contains("Linux 6.16"), "{why}");
    }
}
