//! How an app or task owner signs requests to the worker's owner API (logs, metrics, status),
//! so that a worker serves them to the owner and to nobody else.
//!
//! Headers: `x-wetee-account` (SS58 or 0x hex), `x-wetee-timestamp` (Unix milliseconds),
//! `x-wetee-signature` (`ed25519:<hex>` or `sr25519:<hex>`), the signature being over
//! [`request_payload`]: the chain, the time, the method, the whole target (path and query) and
//! the worker's address (the `Host` header), so a captured request cannot be replayed with
//! other parameters or to another worker. A worker accepts a timestamp within
//! [`MAX_SKEW_MS`] of its clock.

use crate::crypto::{AccountId, Hash, Keypair, Signature};

/// Domain tag of owner API requests.
pub const OWNER_REQUEST_DOMAIN: &[u8] = b"wetee/owner-api/v1";
/// Header: who asks.
pub const ACCOUNT_HEADER: &str = "x-wetee-account";
/// Header: when, in Unix milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-wetee-timestamp";
/// Header: the signature.
pub const SIGNATURE_HEADER: &str = "x-wetee-signature";
/// How far a request's timestamp may be from the worker's clock.
pub const MAX_SKEW_MS: u64 = 60_000;

/// What a request is: its method, target (path and query) and the worker's address.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    /// `GET`.
    pub method: &'a str,
    /// The path and query, such as `/_wetee/apps/1/logs?follow=1`.
    pub target: &'a str,
    /// The worker's address as in the `Host` header, such as `127.0.0.1:8800`.
    pub host: &'a str,
}

/// The bytes signed for `request` at `timestamp_ms` on the chain `genesis_hash`.
pub fn request_payload(
    genesis_hash: &Hash,
    request: RequestTarget<'_>,
    timestamp_ms: u64,
) -> Vec<u8> {
    let mut payload = OWNER_REQUEST_DOMAIN.to_vec();
    payload.extend_from_slice(&genesis_hash.0);
    payload.extend_from_slice(&timestamp_ms.to_be_bytes());
    for part in [request.method, request.target, request.host] {
        payload.extend_from_slice(&(part.len() as u64).to_be_bytes());
        payload.extend_from_slice(part.as_bytes());
    }
    payload
}

/// The three headers of a signed request.
pub fn sign_request(
    key: &Keypair,
    genesis_hash: &Hash,
    request: RequestTarget<'_>,
    timestamp_ms: u64,
) -> [(&'static str, String); 3] {
    let signature = key.sign(&request_payload(genesis_hash, request, timestamp_ms));
    let (scheme, bytes) = match signature {
        Signature::Ed25519(bytes) => ("ed25519", bytes),
        Signature::Sr25519(bytes) => ("sr25519", bytes),
    };
    [
        (ACCOUNT_HEADER, key.account_id().to_ss58()),
        (TIMESTAMP_HEADER, timestamp_ms.to_string()),
        (SIGNATURE_HEADER, format!("{scheme}:{}", hex::encode(bytes))),
    ]
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerAuthError {
    /// A header is missing or malformed.
    #[error("{0}")]
    Malformed(String),
    /// The timestamp is too far from now.
    #[error("the request's timestamp is more than a minute away from the worker's clock")]
    Stale,
    /// The signature does not verify.
    #[error("the signature does not match the account")]
    BadSignature,
}

/// Checks a request's headers and returns who signed it.
pub fn verify_request(
    genesis_hash: &Hash,
    request: RequestTarget<'_>,
    header: impl Fn(&str) -> Option<String>,
    now_ms: u64,
) -> Result<AccountId, OwnerAuthError> {
    let missing = |name: &str| OwnerAuthError::Malformed(format!("missing header {name}"));
    let account: AccountId = header(ACCOUNT_HEADER)
        .ok_or_else(|| missing(ACCOUNT_HEADER))?
        .parse()
        .map_err(|e| OwnerAuthError::Malformed(format!("{ACCOUNT_HEADER}: {e}")))?;
    let timestamp: u64 = header(TIMESTAMP_HEADER)
        .ok_or_else(|| missing(TIMESTAMP_HEADER))?
        .parse()
        .map_err(|_| OwnerAuthError::Malformed(format!("{TIMESTAMP_HEADER}: not a number")))?;
    if timestamp.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(OwnerAuthError::Stale);
    }
    let signature = header(SIGNATURE_HEADER).ok_or_else(|| missing(SIGNATURE_HEADER))?;
    let (scheme, hex_bytes) = signature
        .split_once(':')
        .ok_or_else(|| OwnerAuthError::Malformed(format!("{SIGNATURE_HEADER}: scheme:hex")))?;
    let bytes: [u8; 64] = hex::decode(hex_bytes)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| OwnerAuthError::Malformed(format!("{SIGNATURE_HEADER}: 64 bytes of hex")))?;
    let signature = match scheme {
        "ed25519" => Signature::Ed25519(bytes),
        "sr25519" => Signature::Sr25519(bytes),
        other => {
            return Err(OwnerAuthError::Malformed(format!(
                "{SIGNATURE_HEADER}: unknown scheme {other}"
            )));
        }
    };
    let payload = request_payload(genesis_hash, request, timestamp);
    if signature.verify(&payload, &account) {
        Ok(account)
    } else {
        Err(OwnerAuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyScheme;

    #[test]
    fn only_the_signer_for_this_request_and_time_is_accepted() {
        let genesis = Hash::of(b"chain");
        let request = |target| RequestTarget {
            method: "GET",
            target,
            host: "127.0.0.1:8800",
        };
        for scheme in [KeyScheme::Ed25519, KeyScheme::Sr25519] {
            let owner = Keypair::from_seed(scheme, [3; 32]);
            let headers = sign_request(&owner, &genesis, request("/_wetee/apps/1/logs"), 1_000_000);
            let lookup = |name: &str| {
                headers
                    .iter()
                    .find(|(h, _)| *h == name)
                    .map(|(_, v)| v.clone())
            };
            let check = |request: RequestTarget<'_>, now: u64| {
                verify_request(&genesis, request, lookup, now)
            };
            assert_eq!(
                check(request("/_wetee/apps/1/logs"), 1_000_500),
                Ok(owner.account_id())
            );
            // Another path, another query, another worker, another time, another chain.
            for other in ["/_wetee/apps/2/logs", "/_wetee/apps/1/logs?follow=1"] {
                assert_eq!(
                    check(request(other), 1_000_500),
                    Err(OwnerAuthError::BadSignature)
                );
            }
            let elsewhere = RequestTarget {
                host: "10.0.0.9:8800",
                ..request("/_wetee/apps/1/logs")
            };
            assert_eq!(
                check(elsewhere, 1_000_500),
                Err(OwnerAuthError::BadSignature)
            );
            assert_eq!(
                check(request("/_wetee/apps/1/logs"), 1_000_000 + MAX_SKEW_MS + 1),
                Err(OwnerAuthError::Stale)
            );
            let other_chain = verify_request(
                &Hash::of(b"other"),
                request("/_wetee/apps/1/logs"),
                lookup,
                1_000_500,
            );
            assert_eq!(other_chain, Err(OwnerAuthError::BadSignature));
        }
        assert!(matches!(
            verify_request(&genesis, request("/"), |_| None, 0),
            Err(OwnerAuthError::Malformed(_))
        ));
    }
}
