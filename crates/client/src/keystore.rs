//! The account keystore: named keys in a directory, one JSON file per key, readable only by
//! its owner and encrypted at rest under a passphrase (scrypt stretches the passphrase into a
//! key, XChaCha20-Poly1305 seals the secret URI with the key's scheme and account as
//! associated data, so a file's fields cannot be swapped for another's).
//!
//! The passphrase comes, in this order, from the file named by `WETEE_PASSPHRASE_FILE`, from
//! `WETEE_PASSPHRASE`, or from the terminal. A new passphrase (`wetee key passwd`) comes from
//! `WETEE_NEW_PASSPHRASE_FILE`, `WETEE_NEW_PASSPHRASE`, or the terminal, asked twice.
//!
//! Files written before encryption existed (a plaintext `secret`) are still read; `wetee key
//! passwd NAME` encrypts them. Dev keys (`//Alice`) never need the keystore.

use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use wetee_types::crypto::{AccountId, KeyScheme};
use zeroize::Zeroizing;

use crate::keys::{KeyError, keypair_from_uri, wetee_home};

/// The environment variable naming a file whose first line is the keystore's passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "WETEE_PASSPHRASE_FILE";
/// The environment variable holding the keystore's passphrase.
pub const PASSPHRASE_ENV: &str = "WETEE_PASSPHRASE";
/// The environment variable naming a file with the new passphrase, for `wetee key passwd`.
pub const NEW_PASSPHRASE_FILE_ENV: &str = "WETEE_NEW_PASSPHRASE_FILE";
/// The environment variable holding the new passphrase, for `wetee key passwd`.
pub const NEW_PASSPHRASE_ENV: &str = "WETEE_NEW_PASSPHRASE";

/// The shortest passphrase a key is encrypted under.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// scrypt's cost for new files: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s), the parameters
/// the scrypt paper and Go's x/crypto recommend for interactive logins.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The most a file may ask for (256 MiB): a planted file must not exhaust memory.
const MAX_SCRYPT_LOG_N: u8 = 18;
const MAX_SCRYPT_R: u32 = 16;
const MAX_SCRYPT_P: u32 = 4;

const FILE_VERSION: u32 = 2;
const DOMAIN: &[u8] = b"wetee/keystore/v2";

/// A key from the keystore: its scheme, secret URI and account.
#[derive(Clone)]
pub struct StoredKey {
    /// The signature scheme.
    pub scheme: KeyScheme,
    /// The secret URI (mnemonic with optional derivation path).
    pub secret: Zeroizing<String>,
    /// The account.
    pub account: AccountId,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredKey({:?}, {})", self.scheme, self.account)
    }
}

/// What a listing shows of a key, without its passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key's name.
    pub name: String,
    /// The signature scheme.
    pub scheme: KeyScheme,
    /// The account.
    pub account: AccountId,
    /// Whether the file is encrypted (files from before encryption are not).
    pub encrypted: bool,
}

/// The file on disk.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    #[serde(default = "legacy_version")]
    version: u32,
    scheme: KeyScheme,
    account: AccountId,
    /// Version 1 only: the secret URI in the clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crypto: Option<Sealed>,
}

fn legacy_version() -> u32 {
    1
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// Where passphrases come from.
#[derive(Clone)]
enum Passphrases {
    /// The environment variables, else the terminal.
    Environment,
    /// Given by the program (an SDK user, a test): the same for reading and for new files.
    Given(Zeroizing<String>),
}

/// Named keys in a directory (see the module's documentation).
#[derive(Clone)]
pub struct Keystore {
    dir: PathBuf,
    passphrases: Passphrases,
    scrypt_log_n: u8,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keystore({})", self.dir.display())
    }
}

impl Keystore {
    /// The keystore in `dir` (created on first write), asking for passphrases through the
    /// environment or the terminal.
    pub fn new(dir: impl Into<PathBuf>) -> Keystore {
        Keystore {
            dir: dir.into(),
            passphrases: Passphrases::Environment,
            scrypt_log_n: SCRYPT_LOG_N,
        }
    }

    /// The default keystore: `$WETEE_HOME/keys`, else `~/.wetee/keys`.
    pub fn default_location() -> Keystore {
        Keystore::new(wetee_home().join("keys"))
    }

    /// The same keystore, using `passphrase` for every key it reads or writes.
    pub fn with_passphrase(mut self, passphrase: &str) -> Keystore {
        self.passphrases = Passphrases::Given(Zeroizing::new(passphrase.to_string()));
        self
    }

    /// The same keystore, writing files with scrypt's N = 2^`log_n` (tests use a cheap one).
    pub fn with_scrypt_log_n(mut self, log_n: u8) -> Keystore {
        self.scrypt_log_n = log_n.clamp(1, MAX_SCRYPT_LOG_N);
        self
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, KeyError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(KeyError::InvalidName(name.to_string()));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Stores `secret` under `name`, encrypted under a new passphrase; refuses to overwrite an
    /// existing key.
    pub fn insert(
        &self,
        name: &str,
        scheme: KeyScheme,
        secret: &str,
    ) -> Result<AccountId, KeyError> {
        let path = self.path_of(name)?;
        if path.exists() {
            return Err(KeyError::KeyExists(name.to_string()));
        }
        let account = keypair_from_uri(secret, scheme)?.account_id();
        let passphrase = self.new_passphrase(name, false)?;
        let file = self.seal(scheme, &account, secret, &passphrase)?;
        write_private(&path, &file, false).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::KeyExists(name.to_string()),
            _ => io_error(&path, source),
        })?;
        Ok(account)
    }

    /// The key `name`, decrypted with the keystore's passphrase.
    pub fn get(&self, name: &str) -> Result<StoredKey, KeyError> {
        let (path, file) = self.read(name)?;
        let secret = match (&file.crypto, &file.secret) {
            (Some(sealed), _) => {
                let passphrase = self.passphrase(name)?;
                open(&file, sealed, &passphrase).ok_or_else(|| KeyError::WrongPassphrase {
                    name: name.to_string(),
                })?
            }
            (None, Some(secret)) if file.version == 1 => Zeroizing::new(secret.clone()),
            _ => return Err(bad_file(&path, "neither encrypted nor a version 1 key")),
        };
        let derived = keypair_from_uri(&secret, file.scheme)?.account_id();
        if derived != file.account {
            return Err(bad_file(
                &path,
                "the secret does not give the recorded account",
            ));
        }
        Ok(StoredKey {
            scheme: file.scheme,
            secret,
            account: file.account,
        })
    }

    /// Encrypts `name` under a new passphrase (the current one is asked first, unless the file
    /// predates encryption).
    pub fn change_passphrase(&self, name: &str) -> Result<AccountId, KeyError> {
        let key = self.get(name)?;
        let passphrase = self.new_passphrase(name, true)?;
        let file = self.seal(key.scheme, &key.account, &key.secret, &passphrase)?;
        let path = self.path_of(name)?;
        write_private(&path, &file, true).map_err(|source| io_error(&path, source))?;
        Ok(key.account)
    }

    /// Every key's name, scheme and account, sorted by name; asks for no passphrase.
    pub fn entries(&self) -> Result<Vec<KeyEntry>, KeyError> {
        self.names()?
            .into_iter()
            .map(|name| {
                let (_, file) = self.read(&name)?;
                Ok(KeyEntry {
                    name,
                    scheme: file.scheme,
                    account: file.account,
                    encrypted: file.crypto.is_some(),
                })
            })
            .collect()
    }

    /// The names of all stored keys, sorted.
    pub fn names(&self) -> Result<Vec<String>, KeyError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io_error(&self.dir, source)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> Result<(PathBuf, KeyFile), KeyError> {
        let path = self.path_of(name)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::UnknownKey {
                    name: name.to_string(),
                    dir: self.dir.display().to_string(),
                });
            }
            Err(source) => return Err(io_error(&path, source)),
        };
        // serde_json's messages quote no input, so a damaged file's secret is not echoed.
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|e| bad_file(&path, &e.to_string()))?;
        Ok((path, file))
    }

    fn seal(
        &self,
        scheme: KeyScheme,
        account: &AccountId,
        secret: &str,
        passphrase: &str,
    ) -> Result<KeyFile, KeyError> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut salt).map_err(|e| KeyError::Randomness(e.to_string()))?;
        getrandom::getrandom(&mut nonce).map_err(|e| KeyError::Randomness(e.to_string()))?;
        let (log_n, r, p) = (self.scrypt_log_n, SCRYPT_R, SCRYPT_P);
        let key = stretch(passphrase, &salt, log_n, r, p)
            .ok_or_else(|| KeyError::Randomness("scrypt refused its parameters".into()))?;
        let aad = associated_data(scheme, account);
        let ciphertext = XChaCha20Poly1305::new(&(*key).into())
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::Randomness("encryption failed".into()))?;
        Ok(KeyFile {
            version: FILE_VERSION,
            scheme,
            account: *account,
            secret: None,
            crypto: Some(Sealed {
                kdf: "scrypt".into(),
                log_n,
                r,
                p,
                salt: hex::encode(salt),
                cipher: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            }),
        })
    }

    /// The passphrase that opens `name`.
    fn passphrase(&self, name: &str) -> Result<Zeroizing<String>, KeyError> {
        match &self.passphrases {
            Passphrases::Given(passphrase) => Ok(passphrase.clone()),
            Passphrases::Environment => {
                if let Some(passphrase) = from_environment(PASSPHRASE_FILE_ENV, PASSPHRASE_ENV)? {
                    return Ok(passphrase);
                }
                prompt(&format!("Passphrase for key {name:?}: "))
            }
        }
    }

    /// A new passphrase for `name`, at least [`MIN_PASSPHRASE_CHARS`] long. When `changing`,
    /// the current passphrase's variables are not taken for the new one (that would change
    /// nothing).
    fn new_passphrase(&self, name: &str, changing: bool) -> Result<Zeroizing<String>, KeyError> {
        let passphrase = match &self.passphrases {
            Passphrases::Given(passphrase) => passphrase.clone(),
            Passphrases::Environment => {
                let current = match changing {
                    true => None,
                    false => from_environment(PASSPHRASE_FILE_ENV, PASSPHRASE_ENV)?,
                };
                match from_environment(NEW_PASSPHRASE_FILE_ENV, NEW_PASSPHRASE_ENV)? {
                    Some(passphrase) => passphrase,
                    None => match current {
                        Some(passphrase) => passphrase,
                        None => {
                            let first = prompt(&format!("New passphrase for key {name:?}: "))?;
                            let again = prompt("The same passphrase again: ")?;
                            if first != again {
                                return Err(KeyError::Passphrase(
                                    "the two passphrases differ".into(),
                                ));
                            }
                            first
                        }
                    },
                }
            }
        };
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(KeyError::Passphrase(format!(
                "a passphrase has at least {MIN_PASSPHRASE_CHARS} characters"
            )));
        }
        Ok(passphrase)
    }
}

/// The passphrase from the file named by `file_variable`, else from `variable`.
fn from_environment(
    file_variable: &str,
    variable: &str,
) -> Result<Option<Zeroizing<String>>, KeyError> {
    if let Some(path) = std::env::var_os(file_variable) {
        let text = Zeroizing::new(
            std::fs::read_to_string(&path).map_err(|source| io_error(Path::new(&path), source))?,
        );
        let line = text.lines().next().unwrap_or_default();
        return Ok(Some(Zeroizing::new(line.to_string())));
    }
    Ok(std::env::var(variable).ok().map(Zeroizing::new))
}

fn prompt(text: &str) -> Result<Zeroizing<String>, KeyError> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|_| {
            KeyError::Passphrase(format!(
                "no terminal to ask for it: set {PASSPHRASE_FILE_ENV} to a file holding it \
                 (or {PASSPHRASE_ENV})"
            ))
        })
}

fn stretch(
    passphrase: &str,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Option<Zeroizing<[u8; 32]>> {
    if log_n > MAX_SCRYPT_LOG_N || r > MAX_SCRYPT_R || p > MAX_SCRYPT_P {
        return None;
    }
    let params = scrypt::Params::new(log_n, r, p, 32).ok()?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.as_bytes(), salt, &params, key.as_mut()).ok()?;
    Some(key)
}

fn associated_data(scheme: KeyScheme, account: &AccountId) -> Vec<u8> {
    let mut aad = DOMAIN.to_vec();
    aad.push(match scheme {
        KeyScheme::Ed25519 => 0,
        KeyScheme::Sr25519 => 1,
    });
    aad.extend_from_slice(&account.0);
    aad
}

/// The secret of `file`, or `None` if `passphrase` (or the file) is wrong.
fn open(file: &KeyFile, sealed: &Sealed, passphrase: &str) -> Option<Zeroizing<String>> {
    if sealed.kdf != "scrypt" || sealed.cipher != "xchacha20poly1305" {
        return None;
    }
    let salt = hex::decode(&sealed.salt).ok()?;
    let nonce: [u8; 24] = hex::decode(&sealed.nonce).ok()?.try_into().ok()?;
    let ciphertext = hex::decode(&sealed.ciphertext).ok()?;
    let key = stretch(passphrase, &salt, sealed.log_n, sealed.r, sealed.p)?;
    let aad = associated_data(file.scheme, &file.account);
    let plain = XChaCha20Poly1305::new(&(*key).into())
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .ok()?;
    let plain = Zeroizing::new(plain);
    Some(Zeroizing::new(String::from_utf8(plain.to_vec()).ok()?))
}

/// Writes `file` readable by its owner only: a new file, or (`replace`) through a temporary
/// file renamed over the old one, so a crash leaves one or the other.
fn write_private(path: &Path, file: &KeyFile, replace: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(file)
        .unwrap_or_else(|_| unreachable!("plain struct serializes"));
    let target = if replace {
        path.with_extension("json.tmp")
    } else {
        path.to_path_buf()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut handle = options.open(&target)?;
    std::io::Write::write_all(&mut handle, text.as_bytes())?;
    handle.sync_all()?;
    if replace {
        std::fs::rename(&target, path)?;
    }
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn bad_file(path: &Path, reason: &str) -> KeyError {
    KeyError::BadKeyFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DEV_PHRASE, KeySource};

    fn store(dir: &Path, passphrase: &str) -> Keystore {
        Keystore::new(dir.join("keys"))
            .with_passphrase(passphrase)
            .with_scrypt_log_n(4)
    }

    #[test]
    fn keys_are_encrypted_at_rest_and_opened_only_with_their_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let keys = store(dir.path(), "correct horse");
        let secret = format!("{DEV_PHRASE}//ops");
        let account = keys.insert("ops", KeyScheme::Sr25519, &secret).unwrap();
        let on_disk = std::fs::read_to_string(dir.path().join("keys/ops.json")).unwrap();
        for word in DEV_PHRASE.split(' ') {
            assert!(!on_disk.contains(word), "{word:?} is on disk in the clear");
        }
        let opened = keys.get("ops").unwrap();
        assert_eq!(opened.account, account);
        assert_eq!(opened.secret.as_str(), secret);
        let wrong = store(dir.path(), "wrong horse").get("ops").unwrap_err();
        assert!(matches!(wrong, KeyError::WrongPassphrase { .. }), "{wrong}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/ops.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key files must not be readable by others");
        }
    }

    #[test]
    fn names_are_checked_and_keys_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let keys = store(dir.path(), "correct horse");
        keys.insert("ops", KeyScheme::Ed25519, "//Ops").unwrap();
        assert!(matches!(
            keys.insert("ops", KeyScheme::Sr25519, "//Other"),
            Err(KeyError::KeyExists(_))
        ));
        assert!(matches!(
            keys.insert("../evil", KeyScheme::Sr25519, "//X"),
            Err(KeyError::InvalidName(_))
        ));
        assert!(matches!(
            store(dir.path(), "short").insert("weak", KeyScheme::Sr25519, "//X"),
            Err(KeyError::Passphrase(_))
        ));
        let entries = keys.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].encrypted);
        let pair = KeySource::parse("ops")
            .unwrap()
            .keypair(KeyScheme::Sr25519, &keys)
            .unwrap();
        assert_eq!(pair.scheme(), KeyScheme::Ed25519, "the stored scheme wins");
        assert!(matches!(
            KeySource::parse("nobody")
                .unwrap()
                .keypair(KeyScheme::Sr25519, &keys),
            Err(KeyError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_tampered_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = store(dir.path(), "correct horse");
        keys.insert("ops", KeyScheme::Sr25519, "//Ops").unwrap();
        let path = dir.path().join("keys/ops.json");
        let text = std::fs::read_to_string(&path).unwrap();
        // The same ciphertext presented as an ed25519 key fails authentication.
        std::fs::write(&path, text.replace("\"sr25519\"", "\"ed25519\"")).unwrap();
        assert!(matches!(
            keys.get("ops"),
            Err(KeyError::WrongPassphrase { .. })
        ));
        // A file asking scrypt for gigabytes is refused before any is allocated.
        std::fs::write(&path, text.replace("\"log_n\": 4", "\"log_n\": 30")).unwrap();
        assert!(keys.get("ops").is_err());
    }

    #[test]
    fn plaintext_files_from_before_encryption_are_read_and_can_be_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let keys = store(dir.path(), "correct horse");
        std::fs::create_dir_all(keys.dir()).unwrap();
        let account = keypair_from_uri("//Legacy", KeyScheme::Sr25519)
            .unwrap()
            .account_id();
        let legacy = serde_json::json!({
            "scheme": "sr25519",
            "secret": "//Legacy",
            "account": account,
        });
        std::fs::write(dir.path().join("keys/old.json"), legacy.to_string()).unwrap();
        assert!(!keys.entries().unwrap()[0].encrypted);
        assert_eq!(keys.get("old").unwrap().account, account);
        keys.change_passphrase("old").unwrap();
        assert!(keys.entries().unwrap()[0].encrypted);
        let on_disk = std::fs::read_to_string(dir.path().join("keys/old.json")).unwrap();
        assert!(!on_disk.contains("Legacy"));
        assert_eq!(keys.get("old").unwrap().account, account);
        assert!(store(dir.path(), "other passphrase").get("old").is_err());
    }
}
