//! Account keys the way Polkadot tooling makes them, so the same mnemonic or dev URI gives the
//! same account in `wetee`, in `subkey` and in a Polkadot wallet.
//!
//! A secret URI is `PHRASE[//hard|/soft]...[///password]`:
//! - PHRASE is a BIP39 mnemonic, a `0x` hex seed of 32 bytes, or empty for the public
//!   development phrase (so `//Alice` is the well-known dev account);
//! - each `//name` is a hard derivation and each `/name` a soft one (sr25519 only);
//! - the password is mixed into the mnemonic's seed.
//!
//! The mnemonic is turned into a seed from its *entropy* (PBKDF2-HMAC-SHA512, 2048 rounds,
//! salt "mnemonic" + password), as Substrate does, not from the words as BIP39's own seed
//! function does: that difference is what makes wallet mnemonics work.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use wetee_types::crypto::{AccountId, KeyScheme, Keypair};
use zeroize::Zeroizing;

pub use crate::keystore::{KeyEntry, Keystore, StoredKey};

/// The public development phrase: anyone can sign for accounts derived from it.
pub const DEV_PHRASE: &str =
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/// The names of the funded development accounts, as `//Name` URIs.
pub const DEV_ACCOUNTS: [&str; 6] = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];

/// The account that operates `wetee dev`'s worker, funded at genesis: never one of
/// [`DEV_ACCOUNTS`], so that the worker's transactions and the user's never share a nonce.
pub const DEV_WORKER_OPERATOR: &str = "DevWorkerOperator";

/// Why a key could not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The secret URI is not `PHRASE[//hard|/soft]...[///password]`.
    #[error("invalid secret URI: {0}")]
    InvalidUri(String),
    /// The phrase is not a valid English BIP39 mnemonic.
    #[error("invalid mnemonic: {0}")]
    InvalidMnemonic(String),
    /// Ed25519 keys support only hard derivation.
    #[error("ed25519 keys cannot use soft derivation (`/{0}`); use `//{0}`")]
    SoftDerivationUnsupported(String),
    /// No key of that name in the keystore.
    #[error("no key named {name:?} in the keystore at {dir}")]
    UnknownKey {
        /// The name looked up.
        name: String,
        /// The keystore directory.
        dir: String,
    },
    /// A key of that name already exists.
    #[error("a key named {0:?} already exists in the keystore")]
    KeyExists(String),
    /// Key names are short and simple so they are safe as file names.
    #[error("invalid key name {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    InvalidName(String),
    /// The operating system's random source failed.
    #[error("no randomness available: {0}")]
    Randomness(String),
    /// Reading or writing the keystore failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The passphrase does not open the key (or the file was altered).
    #[error("the passphrase does not open key {name:?} (or its file was altered)")]
    WrongPassphrase {
        /// The key's name.
        name: String,
    },
    /// No usable passphrase.
    #[error("passphrase: {0}")]
    Passphrase(String),
    /// A secret typed on the command line where it would outlive the command.
    #[error(
        "a mnemonic or seed on the command line is refused on this chain (it is not a \
         development chain): it would stay in your shell's history and be visible to other \
         users in the process list. Store it with `wetee key import NAME` (it reads the secret \
         from standard input) and pass NAME, or pass a file holding it"
    )]
    InlineSecret,
    /// A keystore file is damaged.
    #[error("{path}: not a WeTEE key file: {reason}")]
    BadKeyFile {
        /// The file involved.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One step of a derivation path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Junction {
    Hard([u8; 32]),
    Soft([u8; 32]),
}

/// A parsed secret URI. The phrase and password are wiped from memory when dropped.
#[derive(Clone)]
pub struct SecretUri {
    phrase: Zeroizing<String>,
    path: Vec<(Junction, String)>,
    password: Option<Zeroizing<String>>,
}

impl fmt::Debug for SecretUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the phrase or the password; the path alone is not secret.
        let path = self.path_text();
        write!(f, "SecretUri(<secret>{path})")
    }
}

impl FromStr for SecretUri {
    type Err = KeyError;

    fn from_str(uri: &str) -> Result<Self, KeyError> {
        let uri = uri.trim();
        let (rest, password) = match uri.find("///") {
            Some(at) => (&uri[..at], Some(Zeroizing::new(uri[at + 3..].to_string()))),
            None => (uri, None),
        };
        let (phrase, mut path_text) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        let mut path = Vec::new();
        while !path_text.is_empty() {
            let (hard, tail) = match path_text.strip_prefix("//") {
                Some(tail) => (true, tail),
                None => (false, &path_text[1..]),
            };
            let end = tail.find('/').unwrap_or(tail.len());
            let name = &tail[..end];
            if name.is_empty() {
                return Err(KeyError::InvalidUri(
                    "empty derivation step (too many '/')".to_string(),
                ));
            }
            let code = chain_code(name);
            let junction = if hard {
                Junction::Hard(code)
            } else {
                Junction::Soft(code)
            };
            path.push((junction, name.to_string()));
            path_text = &tail[end..];
        }
        let phrase = phrase.trim();
        if phrase.is_empty() && path.is_empty() {
            return Err(KeyError::InvalidUri(
                "empty; give a mnemonic, a 0x seed or a dev path such as //Alice".to_string(),
            ));
        }
        Ok(SecretUri {
            phrase: Zeroizing::new(phrase.to_string()),
            path,
            password,
        })
    }
}

impl SecretUri {
    /// The derivation path as written (`//hard/soft`): never the phrase or the password.
    fn path_text(&self) -> String {
        self.path
            .iter()
            .map(|(junction, name)| match junction {
                Junction::Hard(_) => format!("//{name}"),
                Junction::Soft(_) => format!("/{name}"),
            })
            .collect()
    }

    /// Whether this URI names a public development key: the development phrase (or none)
    /// with no password, such as `//Alice`. Anyone can sign with those.
    pub fn is_public_dev_key(&self) -> bool {
        (self.phrase.is_empty() || self.phrase.as_str() == DEV_PHRASE) && self.password.is_none()
    }

    /// The key this URI names under `scheme`.
    pub fn keypair(&self, scheme: KeyScheme) -> Result<Keypair, KeyError> {
        let phrase: &str = if self.phrase.is_empty() {
            DEV_PHRASE
        } else {
            &self.phrase
        };
        let seed = root_seed(phrase, self.password.as_deref().map(String::as_str))?;
        derive(scheme, &seed, &self.path)
    }
}

/// The 32-byte root seed ("mini secret") of a phrase.
fn root_seed(phrase: &str, password: Option<&str>) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    if let Some(hex_seed) = phrase.strip_prefix("0x") {
        let bytes = Zeroizing::new(
            hex::decode(hex_seed)
                // The hex error would quote a character of the seed.
                .map_err(|_| KeyError::InvalidUri("the seed is not hex".to_string()))?,
        );
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            KeyError::InvalidUri(format!("a hex seed has 32 bytes, not {}", bytes.len()))
        })?;
        return Ok(Zeroizing::new(seed));
    }
    let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, phrase)
        .map_err(|e| KeyError::InvalidMnemonic(e.to_string()))?;
    let entropy = Zeroizing::new(mnemonic.to_entropy());
    let salt = Zeroizing::new(format!("mnemonic{}", password.unwrap_or("")));
    let mut wide = Zeroizing::new([0u8; 64]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(&entropy, salt.as_bytes(), 2048, wide.as_mut());
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&wide[..32]);
    Ok(seed)
}

fn blake2_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// The SCALE compact encoding of a length, as Substrate prefixes strings with it.
fn compact_len(len: usize) -> Vec<u8> {
    // Derivation names are command-line words; anything past 2^30 bytes cannot occur.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    match len {
        0..=0x3f => vec![(len << 2) as u8],
        0x40..=0x3fff => ((len << 2) as u16 | 0b01).to_le_bytes().to_vec(),
        _ => ((len << 2) | 0b10).to_le_bytes().to_vec(),
    }
}

/// A junction's 32-byte chain code: the SCALE encoding of the name (a number if it parses as
/// `u64`, a string otherwise), zero-padded, or hashed when longer than 32 bytes.
fn chain_code(name: &str) -> [u8; 32] {
    let encoded = match name.parse::<u64>() {
        Ok(number) => number.to_le_bytes().to_vec(),
        Err(_) => {
            let mut bytes = compact_len(name.len());
            bytes.extend_from_slice(name.as_bytes());
            bytes
        }
    };
    if encoded.len() > 32 {
        blake2_256(&encoded)
    } else {
        let mut code = [0u8; 32];
        code[..encoded.len()].copy_from_slice(&encoded);
        code
    }
}

fn derive(
    scheme: KeyScheme,
    seed: &[u8; 32],
    path: &[(Junction, String)],
) -> Result<Keypair, KeyError> {
    match scheme {
        KeyScheme::Ed25519 => {
            let mut secret = Zeroizing::new(*seed);
            for (junction, name) in path {
                let Junction::Hard(code) = junction else {
                    return Err(KeyError::SoftDerivationUnsupported(name.clone()));
                };
                // SCALE of ("Ed25519HDKD", seed, chain code): a compact-prefixed string, then
                // the two fixed arrays.
                let mut input = Zeroizing::new(compact_len(11));
                input.extend_from_slice(b"Ed25519HDKD");
                input.extend_from_slice(secret.as_ref());
                input.extend_from_slice(code);
                *secret = blake2_256(&input);
            }
            Ok(Keypair::from_seed(KeyScheme::Ed25519, *secret))
        }
        KeyScheme::Sr25519 => {
            use schnorrkel::derive::{ChainCode, Derivation};
            let mini = schnorrkel::MiniSecretKey::from_bytes(seed)
                .map_err(|e| KeyError::InvalidUri(e.to_string()))?;
            let mut secret = mini.expand(schnorrkel::ExpansionMode::Ed25519);
            for (junction, _) in path {
                secret = match junction {
                    Junction::Soft(code) => secret.derived_key_simple(ChainCode(*code), []).0,
                    Junction::Hard(code) => secret
                        .hard_derive_mini_secret_key(Some(ChainCode(*code)), b"")
                        .0
                        .expand(schnorrkel::ExpansionMode::Ed25519),
                };
            }
            Ok(Keypair::Sr25519(secret.to_keypair()))
        }
    }
}

/// The key pair of a secret URI such as `//Alice` or `"<mnemonic>//stash"`.
pub fn keypair_from_uri(uri: &str, scheme: KeyScheme) -> Result<Keypair, KeyError> {
    uri.parse::<SecretUri>()?.keypair(scheme)
}

/// The well-known development key `//Name` (sr25519, like Polkadot's dev accounts).
pub fn dev_keypair(name: &str) -> Keypair {
    keypair_from_uri(&format!("//{name}"), KeyScheme::Sr25519)
        .unwrap_or_else(|_| unreachable!("dev URIs are well formed"))
}

/// The funded development accounts, by name.
pub fn dev_accounts() -> Vec<(&'static str, AccountId)> {
    DEV_ACCOUNTS
        .iter()
        .map(|name| (*name, dev_keypair(name).account_id()))
        .collect()
}

/// A fresh English BIP39 mnemonic of 12 or 24 words from the operating system's randomness.
pub fn generate_mnemonic(words: usize) -> Result<Zeroizing<String>, KeyError> {
    let len = match words {
        12 => 16,
        24 => 32,
        other => {
            return Err(KeyError::InvalidMnemonic(format!(
                "{other} words requested; use 12 or 24"
            )));
        }
    };
    let mut entropy = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut entropy[..len]).map_err(|e| KeyError::Randomness(e.to_string()))?;
    let mnemonic = bip39::Mnemonic::from_entropy(&entropy[..len])
        .map_err(|e| KeyError::InvalidMnemonic(e.to_string()))?;
    Ok(Zeroizing::new(mnemonic.to_string()))
}

/// 32 fresh random bytes, e.g. the seed of a validator's consensus key.
pub fn random_seed() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(seed.as_mut()).map_err(|e| KeyError::Randomness(e.to_string()))?;
    Ok(seed)
}

/// WeTEE's per-user directory: `$WETEE_HOME`, else `~/.wetee`.
pub fn wetee_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("WETEE_HOME") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".wetee")
}

/// Where a signing key comes from, as given on the command line (`--from`).
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A secret URI such as `//Alice`, a mnemonic, or a `0x` seed.
    Uri(SecretUri),
    /// A named key in the keystore.
    Named(String),
    /// A file holding a mnemonic or secret URI.
    File(PathBuf),
}

impl KeySource {
    /// Reads a `--from` value: a URI if it starts with `/` or `0x` or has spaces, a file if one
    /// exists at that path, else a keystore name.
    pub fn parse(text: &str) -> Result<KeySource, KeyError> {
        // An existing file wins, whatever its name looks like (a path may have spaces).
        if Path::new(text).is_file() {
            return Ok(KeySource::File(PathBuf::from(text)));
        }
        // Several words, however separated, are a phrase: never taken for a name, which an
        // error message would quote.
        let looks_like_uri = text.starts_with('/')
            || text.starts_with("0x")
            || text.split_whitespace().nth(1).is_some();
        if looks_like_uri {
            return Ok(KeySource::Uri(text.parse()?));
        }
        Ok(KeySource::Named(text.to_string()))
    }

    /// Reads a `--from` value for a chain: on any chain but a development chain, a secret typed
    /// inline (a mnemonic or seed, anything but a public dev key such as `//Alice`) is refused
    /// without being echoed.
    pub fn parse_for_chain(text: &str, development_chain: bool) -> Result<KeySource, KeyError> {
        let source = KeySource::parse(text).map_err(|e| {
            if development_chain {
                e
            } else {
                KeyError::InlineSecret
            }
        })?;
        if !development_chain && source.is_inline_secret() {
            return Err(KeyError::InlineSecret);
        }
        Ok(source)
    }

    /// Whether the secret itself was given (a mnemonic or seed), rather than a public dev key,
    /// a keystore name or a file.
    pub fn is_inline_secret(&self) -> bool {
        matches!(self, KeySource::Uri(uri) if !uri.is_public_dev_key())
    }

    /// The key pair, using `scheme` unless the key is stored with its own.
    pub fn keypair(&self, scheme: KeyScheme, keystore: &Keystore) -> Result<Keypair, KeyError> {
        match self {
            KeySource::Uri(uri) => uri.keypair(scheme),
            KeySource::Named(name) => {
                let stored = keystore.get(name)?;
                keypair_from_uri(&stored.secret, stored.scheme)
            }
            KeySource::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                    KeyError::Io {
                        path: path.display().to_string(),
                        source,
                    }
                })?);
                keypair_from_uri(text.trim(), scheme)
            }
        }
    }
}

/// Names the source in messages without any secret: a mnemonic is "a secret given inline".
impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Uri(uri) if uri.is_public_dev_key() => {
                write!(f, "the dev key {}", uri.path_text())
            }
            KeySource::Uri(_) => write!(f, "the secret given inline"),
            KeySource::Named(name) => write!(f, "the keystore's key {name:?}"),
            KeySource::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_hex(uri: &str, scheme: KeyScheme) -> String {
        hex::encode(keypair_from_uri(uri, scheme).unwrap().account_id().0)
    }

    // Expected values are the public keys Substrate's `subkey inspect` prints.
    #[test]
    fn dev_accounts_match_substrate() {
        assert_eq!(
            public_hex("//Alice", KeyScheme::Sr25519),
            "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            public_hex("//Bob", KeyScheme::Sr25519),
            "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"
        );
        assert_eq!(
            public_hex("//Alice", KeyScheme::Ed25519),
            "88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"
        );
    }

    #[test]
    fn the_bare_dev_phrase_and_soft_paths_match_substrate() {
        assert_eq!(
            public_hex(DEV_PHRASE, KeyScheme::Sr25519),
            "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a"
        );
        // //Alice//stash, the well-known stash account.
        assert_eq!(
            public_hex("//Alice//stash", KeyScheme::Sr25519),
            "be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f"
        );
    }

    #[test]
    fn soft_derivation_is_refused_for_ed25519_with_a_hint() {
        let err = keypair_from_uri("//Alice/soft", KeyScheme::Ed25519).unwrap_err();
        assert!(err.to_string().contains("//soft"), "{err}");
    }

    #[test]
    fn passwords_and_paths_change_the_key() {
        let plain = public_hex(DEV_PHRASE, KeyScheme::Sr25519);
        let with_password = public_hex(&format!("{DEV_PHRASE}///secret"), KeyScheme::Sr25519);
        assert_ne!(plain, with_password);
        assert_ne!(
            public_hex("//0", KeyScheme::Sr25519),
            public_hex("//00x", KeyScheme::Sr25519)
        );
    }

    #[test]
    fn bad_mnemonics_and_uris_are_explained() {
        let err = keypair_from_uri("not a real mnemonic at all", KeyScheme::Sr25519).unwrap_err();
        assert!(matches!(err, KeyError::InvalidMnemonic(_)), "{err}");
        assert!(keypair_from_uri("", KeyScheme::Sr25519).is_err());
        assert!(keypair_from_uri("///", KeyScheme::Sr25519).is_err());
        assert!(keypair_from_uri("0x1234", KeyScheme::Sr25519).is_err());
        assert!(keypair_from_uri("//Alice///", KeyScheme::Sr25519).is_ok());
    }

    #[test]
    fn generated_mnemonics_are_valid_and_distinct() {
        let a = generate_mnemonic(12).unwrap();
        let b = generate_mnemonic(24).unwrap();
        assert_eq!(a.split(' ').count(), 12);
        assert_eq!(b.split(' ').count(), 24);
        assert!(keypair_from_uri(&a, KeyScheme::Sr25519).is_ok());
        assert_ne!(a.as_str(), generate_mnemonic(12).unwrap().as_str());
        assert!(generate_mnemonic(13).is_err());
    }

    #[test]
    fn key_sources_are_recognized() {
        assert!(matches!(
            KeySource::parse("//Alice").unwrap(),
            KeySource::Uri(_)
        ));
        assert!(matches!(
            KeySource::parse(DEV_PHRASE).unwrap(),
            KeySource::Uri(_)
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mnemonic.txt");
        std::fs::write(&file, format!("{DEV_PHRASE}//Alice\n")).unwrap();
        let source = KeySource::parse(file.to_str().unwrap()).unwrap();
        assert!(matches!(source, KeySource::File(_)));
        let pair = source
            .keypair(KeyScheme::Sr25519, &Keystore::new(dir.path()))
            .unwrap();
        assert_eq!(pair.account_id(), dev_keypair("Alice").account_id());
    }

    #[test]
    fn inline_secrets_are_refused_off_development_chains_without_an_echo() {
        let typo = "bottom drive obey lake curtain smokey basket hold race lonely fit walk";
        for text in [typo, "0xnothex", "//Alice///password"] {
            let err = KeySource::parse_for_chain(text, false).unwrap_err();
            assert!(matches!(err, KeyError::InlineSecret));
            let message = err.to_string();
            let said: Vec<&str> = message
                .split(|c: char| !c.is_ascii_alphanumeric())
                .collect();
            for word in text.split([' ', '/']).filter(|w| w.len() > 3) {
                assert!(!said.contains(&word), "{word:?} echoed: {message}");
            }
        }
        // Public dev keys are no secret: taken on any chain.
        let dev = KeySource::parse_for_chain("//Alice", false).unwrap();
        assert_eq!(dev.to_string(), "the dev key //Alice");
        // Words on separate lines are a phrase too, not a keystore name to quote.
        let lines = typo.replace(' ', "\n");
        assert!(matches!(
            KeySource::parse_for_chain(&lines, false),
            Err(KeyError::InlineSecret)
        ));
        let inline = KeySource::parse_for_chain(typo, true).unwrap();
        assert_eq!(inline.to_string(), "the secret given inline");
        let err = inline
            .keypair(KeyScheme::Sr25519, &Keystore::new("/nonexistent"))
            .unwrap_err();
        assert!(!err.to_string().contains("smokey"), "{err}");
    }
}
