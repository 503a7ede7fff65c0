//! Accounts, signatures, key pairs and hashes.
//!
//! An account is a 32-byte public key, ed25519 or sr25519, exactly as in Substrate chains, so a
//! Polkadot wallet's key controls the same account here. The signature says which scheme signed:
//! ed25519 signatures are checked with the strict verifier (no malleable encodings), sr25519 ones
//! under the `substrate` signing context that wallets use.

use crate::codec_newtype;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The incremental BLAKE3 hasher, for digests over many parts.
pub use blake3::Hasher as Blake3;

/// The SS58 address prefix of WeTEE accounts.
pub const SS58_PREFIX: u16 = 2026;

/// sr25519 signing context shared with Substrate wallets.
const SR25519_CONTEXT: &[u8] = b"substrate";
/// What Polkadot browser extensions put around a payload before signing it.
pub const EXTENSION_PREFIX: &[u8] = b"<Bytes>";
/// See [`EXTENSION_PREFIX`].
pub const EXTENSION_SUFFIX: &[u8] = b"</Bytes>";

/// A 32-byte digest (BLAKE3 unless stated otherwise).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Hash(pub [u8; 32]);
codec_newtype!(Hash);

impl Hash {
    /// The all-zero digest, used where "no value yet" must still have a fixed size.
    pub const ZERO: Hash = Hash([0; 32]);

    /// BLAKE3 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }

    /// BLAKE3 of the concatenation of `parts` (no separators: callers put fixed-size or
    /// length-prefixed parts after a domain tag).
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        parse_hex_32(s).map(Hash)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn parse_hex_32(s: &str) -> Result<[u8; 32], AddressError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(digits).map_err(|_| AddressError::NotHex)?;
    bytes.try_into().map_err(|_| AddressError::WrongLength)
}

/// Why an address or hex key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not base58.
    #[error("not a base58 SS58 address")]
    NotBase58,
    /// Not hex.
    #[error("not a hex string")]
    NotHex,
    /// Wrong number of bytes.
    #[error("expected 32 bytes")]
    WrongLength,
    /// The checksum does not match: a typo.
    #[error("the address checksum does not match (a typo?)")]
    BadChecksum,
    /// An address of another network.
    #[error(
        "the address has SS58 prefix {found}, WeTEE addresses use {SS58_PREFIX}: the key is the same, re-encode it with `wetee key inspect`"
    )]
    WrongPrefix {
        /// The prefix found.
        found: u16,
    },
    /// A prefix byte outside the SS58 format.
    #[error("invalid SS58 prefix byte")]
    InvalidPrefix,
}

/// An account: the public key that controls it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AccountId(pub [u8; 32]);
codec_newtype!(AccountId);

impl AccountId {
    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SS58 form with the WeTEE prefix.
    pub fn to_ss58(&self) -> String {
        ss58_encode(SS58_PREFIX, &self.0)
    }

    /// Parses an SS58 address, whatever its prefix (returned alongside).
    pub fn from_ss58_any(address: &str) -> Result<(AccountId, u16), AddressError> {
        ss58_decode(address).map(|(prefix, key)| (AccountId(key), prefix))
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

/// Accepts a WeTEE SS58 address or a 0x-prefixed hex public key.
impl FromStr for AccountId {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        if s.starts_with("0x") {
            return parse_hex_32(s).map(AccountId);
        }
        let (account, prefix) = AccountId::from_ss58_any(s)?;
        if prefix != SS58_PREFIX {
            return Err(AddressError::WrongPrefix { found: prefix });
        }
        Ok(account)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_ss58())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn ss58_checksum(payload: &[u8]) -> [u8; 2] {
    use blake2::{Blake2b512, Digest};
    let mut hasher = Blake2b512::new();
    hasher.update(b"SS58PRE");
    hasher.update(payload);
    let digest = hasher.finalize();
    [digest[0], digest[1]]
}

fn ss58_encode(prefix: u16, key: &[u8; 32]) -> String {
    let ident = prefix & 0b0011_1111_1111_1111;
    let mut payload = Vec::with_capacity(36);
    if ident < 64 {
        payload.push(ident as u8);
    } else {
        let first = ((ident & 0b0000_0000_1111_1100) as u8) >> 2;
        let second = ((ident >> 8) as u8) | (((ident & 0b11) as u8) << 6);
        payload.push(first | 0b0100_0000);
        payload.push(second);
    }
    payload.extend_from_slice(key);
    let checksum = ss58_checksum(&payload);
    payload.extend_from_slice(&checksum);
    bs58::encode(payload).into_string()
}

fn ss58_decode(address: &str) -> Result<(u16, [u8; 32]), AddressError> {
    let data = bs58::decode(address)
        .into_vec()
        .map_err(|_| AddressError::NotBase58)?;
    let (prefix_len, prefix) = match data.first() {
        Some(&b) if b < 64 => (1usize, u16::from(b)),
        Some(&b) if b < 128 => {
            let second = *data.get(1).ok_or(AddressError::WrongLength)?;
            let lower = (b << 2) | (second >> 6);
            let upper = second & 0b0011_1111;
            (2, u16::from(lower) | (u16::from(upper) << 8))
        }
        Some(_) => return Err(AddressError::InvalidPrefix),
        None => return Err(AddressError::WrongLength),
    };
    if data.len() != prefix_len + 32 + 2 {
        return Err(AddressError::WrongLength);
    }
    let (payload, checksum) = data.split_at(prefix_len + 32);
    if ss58_checksum(payload) != checksum {
        return Err(AddressError::BadChecksum);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&payload[prefix_len..]);
    Ok((prefix, key))
}

/// Whether `bytes` decode to an Ed25519 public key (a curve point in canonical encoding).
pub fn is_valid_ed25519_public_key(bytes: &[u8; 32]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(bytes).is_ok()
}

/// The two signature schemes an account may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScheme {
    /// Ed25519 (RFC 8032), strict verification.
    Ed25519,
    /// Schnorr over Ristretto25519, as used by Polkadot wallets.
    Sr25519,
}

/// A signature, tagged with the scheme that produced it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// An ed25519 signature.
    Ed25519([u8; 64]),
    /// An sr25519 signature.
    Sr25519([u8; 64]),
}

impl Signature {
    /// Whether this is a valid signature of `message` by the key `signer`.
    pub fn verify(&self, message: &[u8], signer: &AccountId) -> bool {
        match self {
            Signature::Ed25519(bytes) => {
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&signer.0) else {
                    return false;
                };
                let signature = ed25519_dalek::Signature::from_bytes(bytes);
                key.verify_strict(message, &signature).is_ok()
            }
            Signature::Sr25519(bytes) => {
                let Ok(key) = schnorrkel::PublicKey::from_bytes(&signer.0) else {
                    return false;
                };
                let Ok(signature) = schnorrkel::Signature::from_bytes(bytes) else {
                    return false;
                };
                key.verify_simple(SR25519_CONTEXT, message, &signature)
                    .is_ok()
            }
        }
    }

    /// Whether this is `signer`'s signature over `message` as an account signs it: over the
    /// message itself, or over `<Bytes>message</Bytes>`, the form Polkadot browser extensions
    /// sign so that a dapp can never make them sign a transaction of another chain. For what
    /// accounts sign (transactions, owner requests and sessions, secrets records); a worker's
    /// identity key signs reports and attestations with [`Signature::verify`] only.
    pub fn verify_account(&self, message: &[u8], signer: &AccountId) -> bool {
        if self.verify(message, signer) {
            return true;
        }
        let mut wrapped =
            Vec::with_capacity(message.len() + EXTENSION_PREFIX.len() + EXTENSION_SUFFIX.len());
        wrapped.extend_from_slice(EXTENSION_PREFIX);
        wrapped.extend_from_slice(message);
        wrapped.extend_from_slice(EXTENSION_SUFFIX);
        self.verify(&wrapped, signer)
    }

    /// Whether every `(message, signature, signer)` is a valid sr25519 signature of the message
    /// itself (not the `<Bytes>` form), checked in one batch: about twice as fast as one by
    /// one. `false` when any is not, or is not sr25519; the caller then checks them one by one
    /// to find which. Sr25519 works in a prime-order group, so a batch accepts exactly what
    /// single verification accepts (with random weights, but for a chance of 2^-128).
    pub fn verify_sr25519_batch(items: &[(&[u8], &Signature, &AccountId)]) -> bool {
        let mut transcripts = Vec::with_capacity(items.len());
        let mut signatures = Vec::with_capacity(items.len());
        let mut keys = Vec::with_capacity(items.len());
        let context = schnorrkel::signing_context(SR25519_CONTEXT);
        for (message, signature, signer) in items {
            let Signature::Sr25519(bytes) = signature else {
                return false;
            };
            let (Ok(key), Ok(signature)) = (
                schnorrkel::PublicKey::from_bytes(&signer.0),
                schnorrkel::Signature::from_bytes(bytes),
            ) else {
                return false;
            };
            transcripts.push(context.bytes(message));
            signatures.push(signature);
            keys.push(key);
        }
        schnorrkel::verify_batch(transcripts, &signatures, &keys, false).is_ok()
    }

    /// The scheme that produced it.
    pub fn scheme(&self) -> KeyScheme {
        match self {
            Signature::Ed25519(_) => KeyScheme::Ed25519,
            Signature::Sr25519(_) => KeyScheme::Sr25519,
        }
    }

    /// The 64 signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        match self {
            Signature::Ed25519(bytes) | Signature::Sr25519(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}:0x{}", self.scheme(), hex::encode(self.as_bytes()))
    }
}

impl Write for Signature {
    fn write(&self, buf: &mut impl BufMut) {
        let tag: u8 = match self {
            Signature::Ed25519(_) => 0,
            Signature::Sr25519(_) => 1,
        };
        tag.write(buf);
        self.as_bytes().write(buf);
    }
}

impl EncodeSize for Signature {
    fn encode_size(&self) -> usize {
        1 + 64
    }
}

impl Read for Signature {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, commonware_codec::Error> {
        let tag: u8 = crate::codec::read(buf)?;
        let bytes: [u8; 64] = crate::codec::read(buf)?;
        match tag {
            0 => Ok(Signature::Ed25519(bytes)),
            1 => Ok(Signature::Sr25519(bytes)),
            other => Err(commonware_codec::Error::InvalidEnum(other)),
        }
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tagged<'a> {
            scheme: KeyScheme,
            signature: &'a str,
        }
        Tagged {
            scheme: self.scheme(),
            signature: &format!("0x{}", hex::encode(self.as_bytes())),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Tagged {
            scheme: KeyScheme,
            signature: String,
        }
        let tagged = Tagged::deserialize(deserializer)?;
        let text = tagged
            .signature
            .strip_prefix("0x")
            .unwrap_or(&tagged.signature);
        let bytes: [u8; 64] = hex::decode(text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("a signature is 64 bytes of hex"))?;
        Ok(match tagged.scheme {
            KeyScheme::Ed25519 => Signature::Ed25519(bytes),
            KeyScheme::Sr25519 => Signature::Sr25519(bytes),
        })
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Signature {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let bytes: [u8; 64] = u.arbitrary()?;
        Ok(if u.arbitrary()? {
            Signature::Ed25519(bytes)
        } else {
            Signature::Sr25519(bytes)
        })
    }
}

/// A secret key able to sign for an account.
// Key pairs are created once and used by reference, so the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Keypair {
    /// Ed25519 secret key.
    Ed25519(ed25519_dalek::SigningKey),
    /// Sr25519 key pair.
    Sr25519(schnorrkel::Keypair),
}

impl Keypair {
    /// Derives a key pair from a 32-byte seed (the "mini secret" of Substrate tooling).
    pub fn from_seed(scheme: KeyScheme, seed: [u8; 32]) -> Keypair {
        match scheme {
            KeyScheme::Ed25519 => Keypair::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
            KeyScheme::Sr25519 => {
                // Every 32-byte string is a valid mini secret, so this never fails.
                let mini = schnorrkel::MiniSecretKey::from_bytes(&seed)
                    .unwrap_or_else(|_| unreachable!("32-byte mini secret"));
                Keypair::Sr25519(mini.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519))
            }
        }
    }

    /// The account this key controls.
    pub fn account_id(&self) -> AccountId {
        match self {
            Keypair::Ed25519(key) => AccountId(key.verifying_key().to_bytes()),
            Keypair::Sr25519(pair) => AccountId(pair.public.to_bytes()),
        }
    }

    /// The scheme of this key.
    pub fn scheme(&self) -> KeyScheme {
        match self {
            Keypair::Ed25519(_) => KeyScheme::Ed25519,
            Keypair::Sr25519(_) => KeyScheme::Sr25519,
        }
    }

    /// A 32-byte secret derived from this key for `context` (BLAKE3 key derivation over the
    /// secret key), so that other keys can follow the account (such as the key an owner's
    /// secrets are sealed to) without being stored. It cannot sign for the account.
    pub fn derive_secret(&self, context: &str) -> [u8; 32] {
        match self {
            Keypair::Ed25519(key) => blake3::derive_key(context, &key.to_bytes()),
            Keypair::Sr25519(pair) => blake3::derive_key(context, &pair.secret.to_bytes()),
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        match self {
            Keypair::Ed25519(key) => {
                use ed25519_dalek::Signer;
                Signature::Ed25519(key.sign(message).to_bytes())
            }
            Keypair::Sr25519(pair) => {
                let context = schnorrkel::signing_context(SR25519_CONTEXT);
                Signature::Sr25519(pair.sign(context.bytes(message)).to_bytes())
            }
        }
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secret material.
        write!(f, "Keypair({:?}, {})", self.scheme(), self.account_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn ss58_roundtrips_with_the_wetee_prefix() {
        let account = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]).account_id();
        let text = account.to_ss58();
        assert_eq!(text.parse::<AccountId>().unwrap(), account);
        let (_, prefix) = AccountId::from_ss58_any(&text).unwrap();
        assert_eq!(prefix, SS58_PREFIX);
    }

    #[test]
    fn ss58_matches_substrate_for_the_generic_prefix() {
        // //Alice's sr25519 public key and its well-known generic (prefix 42) address.
        let alice =
            parse_hex_32("0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
                .unwrap();
        assert_eq!(
            ss58_encode(42, &alice),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        let err = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
            .parse::<AccountId>()
            .unwrap_err();
        assert_eq!(err, AddressError::WrongPrefix { found: 42 });
    }

    #[test]
    fn a_typo_in_an_address_is_caught_by_the_checksum() {
        let account = Keypair::from_seed(KeyScheme::Ed25519, [9; 32]).account_id();
        let mut text = account.to_ss58().into_bytes();
        let last = text.len() - 1;
        text[last] = if text[last] == b'a' { b'b' } else { b'a' };
        let text = String::from_utf8(text).unwrap();
        assert!(text.parse::<AccountId>().is_err());
    }

    #[test]
    fn an_sr25519_batch_passes_only_when_every_signature_would() {
        let keys: Vec<Keypair> = (0..20u8)
            .map(|i| Keypair::from_seed(KeyScheme::Sr25519, [i; 32]))
            .collect();
        let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 40]).collect();
        let signatures: Vec<Signature> = keys
            .iter()
            .zip(&messages)
            .map(|(key, message)| key.sign(message))
            .collect();
        let ids: Vec<AccountId> = keys.iter().map(Keypair::account_id).collect();
        let items = |signatures: &[Signature]| -> bool {
            let items: Vec<(&[u8], &Signature, &AccountId)> = messages
                .iter()
                .zip(signatures)
                .zip(&ids)
                .map(|((m, s), id)| (m.as_slice(), s, id))
                .collect();
            Signature::verify_sr25519_batch(&items)
        };
        assert!(items(&signatures));
        assert!(items(&[]));
        // One signature of another message, one of another key, one of another scheme.
        let mut swapped = signatures.clone();
        swapped.swap(3, 4);
        assert!(!items(&swapped));
        let mut foreign = signatures.clone();
        foreign[7] = keys[8].sign(&messages[7]);
        assert!(!items(&foreign));
        let mut ed = signatures.clone();
        ed[0] = Keypair::from_seed(KeyScheme::Ed25519, [0; 32]).sign(&messages[0]);
        assert!(!items(&ed));
    }

    #[test]
    fn both_schemes_sign_and_verify_and_reject_other_messages_and_keys() {
        for scheme in [KeyScheme::Ed25519, KeyScheme::Sr25519] {
            let pair = Keypair::from_seed(scheme, [3; 32]);
            let other = Keypair::from_seed(scheme, [4; 32]);
            let signature = pair.sign(b"payload");
            assert!(signature.verify(b"payload", &pair.account_id()));
            assert!(!signature.verify(b"payloaD", &pair.account_id()));
            assert!(!signature.verify(b"payload", &other.account_id()));
            let decoded: Signature = decode(&encode(&signature)).unwrap();
            assert_eq!(decoded, signature);
        }
    }

    #[test]
    fn a_signature_claiming_the_wrong_scheme_fails() {
        let pair = Keypair::from_seed(KeyScheme::Ed25519, [5; 32]);
        let Signature::Ed25519(bytes) = pair.sign(b"m") else {
            unreachable!()
        };
        assert!(!Signature::Sr25519(bytes).verify(b"m", &pair.account_id()));
    }
    #[test]
    fn accounts_may_sign_the_extension_form_and_only_accounts() {
        for scheme in [KeyScheme::Sr25519, KeyScheme::Ed25519] {
            let pair = Keypair::from_seed(scheme, [9; 32]);
            let wrapped = pair.sign(b"<Bytes>payload</Bytes>");
            assert!(wrapped.verify_account(b"payload", &pair.account_id()));
            // What verifies worker reports takes the payload itself only.
            assert!(!wrapped.verify(b"payload", &pair.account_id()));
            assert!(!wrapped.verify_account(b"payloaD", &pair.account_id()));
            let plain = pair.sign(b"payload");
            assert!(plain.verify_account(b"payload", &pair.account_id()));
            // Half-wrapped is neither form.
            let half = pair.sign(b"<Bytes>payload");
            assert!(!half.verify_account(b"payload", &pair.account_id()));
        }
    }
}
