//! How an app or task owner signs requests to a worker's owner API (logs, metrics, status), so
//! that a worker serves them to the owner and to nobody else, once.
//!
//! Headers:
//! - `x-wetee-account`: the owner (SS58 or 0x hex);
//! - `x-wetee-timestamp`: Unix milliseconds, and `x-wetee-nonce`: 16 random bytes in hex;
//! - `x-wetee-signature`: `ed25519:<hex>` or `sr25519:<hex>` over [`request_payload`]: the chain,
//!   the worker's id, the time, the nonce, the method, the whole target (path and query) and the
//!   worker's address (its endpoint's authority, which is also the `Host` header);
//! - optionally `x-wetee-session`: a [`Session`], a short-lived Ed25519 key the account
//!   delegated once; the request is then signed by that key, so that a browser or a log that
//!   follows for an hour does not ask the wallet every few seconds.
//!
//! A worker accepts a request only for itself (its id, its endpoint), signed at most
//! [`REPLAY_WINDOW_MS`] before and [`MAX_AHEAD_MS`] after the latest block it verified (not its
//! operator's clock), and only once: it keeps the nonces it saw for that window. A session ends at its expiry, judged the
//! same way, and a followed log ends with it.

use crate::crypto::{AccountId, Hash, KeyScheme, Keypair, Signature};
use crate::ids::WorkerId;

/// Domain tag of owner API requests.
pub const OWNER_REQUEST_DOMAIN: &[u8] = b"wetee/owner-api/v2";
/// Domain tag of a session key's delegation.
pub const OWNER_SESSION_DOMAIN: &[u8] = b"wetee/owner-session/v1";
/// Header: who asks.
pub const ACCOUNT_HEADER: &str = "x-wetee-account";
/// Header: when, in Unix milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-wetee-timestamp";
/// Header: 16 random bytes, hex; a request is accepted once.
pub const NONCE_HEADER: &str = "x-wetee-nonce";
/// Header: the signature.
pub const SIGNATURE_HEADER: &str = "x-wetee-signature";
/// Header: the session key the request is signed with, and its delegation.
pub const SESSION_HEADER: &str = "x-wetee-session";
/// How far a request's timestamp may be behind the latest verified block's (a client's clock,
/// a slow network); its nonce is remembered until then.
pub const REPLAY_WINDOW_MS: u64 = 60_000;
/// How far a request's timestamp may be ahead of the latest verified block's: the chain's time
/// trails the client's by the time to finality and the worker's following, plus clock error.
/// Short, because a restarted worker (its record of served requests gone) must refuse
/// everything signed up to this far past the first block it verifies; long enough for a pass
/// of the worker (which moves its chain time) and a few seconds of clock error.
pub const MAX_AHEAD_MS: u64 = 15_000;
/// The longest a session may be delegated for.
pub const MAX_SESSION_MS: u64 = 24 * 3_600 * 1_000;

/// What a request is: its method, target (path and query) and the worker's address.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    /// `GET`.
    pub method: &'a str,
    /// The path and query, such as `/_wetee/apps/1/logs?follow=1`.
    pub target: &'a str,
    /// The worker's address: its endpoint's authority, such as `127.0.0.1:8800`, sent as the
    /// `Host` header.
    pub host: &'a str,
}

/// Which worker a request is for: its id and its endpoint's authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audience<'a> {
    /// The worker.
    pub worker: WorkerId,
    /// Its endpoint's authority (`host:port`).
    pub authority: &'a str,
}

/// A worker endpoint's scheme (`https` or `http`) and authority as HTTP clients send it in
/// `Host`: the host in lower case, the scheme's default port left out. `None` if the endpoint
/// is not `http(s)://authority[/]`.
pub fn endpoint_authority(endpoint: &str) -> Option<(&str, String)> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority
        .strip_suffix(default_port)
        .map_or(authority.clone(), str::to_string);
    Some((scheme, authority))
}

/// The bytes signed for `request` to `worker` at `timestamp_ms` with `nonce` on the chain
/// `genesis_hash`.
pub fn request_payload(
    genesis_hash: &Hash,
    worker: WorkerId,
    request: RequestTarget<'_>,
    timestamp_ms: u64,
    nonce: &[u8; 16],
) -> Vec<u8> {
    let mut payload = OWNER_REQUEST_DOMAIN.to_vec();
    payload.extend_from_slice(&genesis_hash.0);
    payload.extend_from_slice(&worker.0.to_be_bytes());
    payload.extend_from_slice(&timestamp_ms.to_be_bytes());
    payload.extend_from_slice(nonce);
    for part in [request.method, request.target, request.host] {
        payload.extend_from_slice(&(part.len() as u64).to_be_bytes());
        payload.extend_from_slice(part.as_bytes());
    }
    payload
}

/// A short-lived Ed25519 key an account delegated its owner-API requests to, until an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The session's public key.
    pub key: [u8; 32],
    /// When it ends, Unix milliseconds.
    pub expires_ms: u64,
    /// The account's signature over [`Session::payload`].
    pub delegation: Signature,
}

impl Session {
    /// What the account signs: the domain, the chain, the session key and its expiry.
    pub fn payload(genesis_hash: &Hash, key: &[u8; 32], expires_ms: u64) -> Vec<u8> {
        let mut payload = OWNER_SESSION_DOMAIN.to_vec();
        payload.extend_from_slice(&genesis_hash.0);
        payload.extend_from_slice(key);
        payload.extend_from_slice(&expires_ms.to_be_bytes());
        payload
    }

    /// `account` delegates to the Ed25519 key `session` until `expires_ms`.
    pub fn delegate(
        account: &Keypair,
        genesis_hash: &Hash,
        session: &Keypair,
        expires_ms: u64,
    ) -> Session {
        let key = session.account_id().0;
        Session {
            key,
            expires_ms,
            delegation: account.sign(&Session::payload(genesis_hash, &key, expires_ms)),
        }
    }

    /// The header's value: `<key hex>.<expiry>.<scheme>:<signature hex>`.
    pub fn header(&self) -> String {
        format!(
            "{}.{}.{}",
            hex::encode(self.key),
            self.expires_ms,
            signature_text(&self.delegation)
        )
    }

    /// Reads a header's value.
    pub fn parse(text: &str) -> Result<Session, OwnerAuthError> {
        let malformed =
            || OwnerAuthError::Malformed(format!("{SESSION_HEADER}: key.expiry.signature"));
        let mut parts = text.splitn(3, '.');
        let (Some(key), Some(expires), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let key: [u8; 32] = hex::decode(key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(malformed)?;
        let expires_ms = expires.parse().map_err(|_| malformed())?;
        Ok(Session {
            key,
            expires_ms,
            delegation: parse_signature(signature, SESSION_HEADER)?,
        })
    }
}

fn signature_text(signature: &Signature) -> String {
    let (scheme, bytes) = match signature {
        Signature::Ed25519(bytes) => ("ed25519", bytes),
        Signature::Sr25519(bytes) => ("sr25519", bytes),
    };
    format!("{scheme}:{}", hex::encode(bytes))
}

fn parse_signature(text: &str, header: &str) -> Result<Signature, OwnerAuthError> {
    let (scheme, hex_bytes) = text
        .split_once(':')
        .ok_or_else(|| OwnerAuthError::Malformed(format!("{header}: scheme:hex")))?;
    let bytes: [u8; 64] = hex::decode(hex_bytes)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| OwnerAuthError::Malformed(format!("{header}: 64 bytes of hex")))?;
    match scheme {
        "ed25519" => Ok(Signature::Ed25519(bytes)),
        "sr25519" => Ok(Signature::Sr25519(bytes)),
        other => Err(OwnerAuthError::Malformed(format!(
            "{header}: unknown scheme {other}"
        ))),
    }
}

/// Who signs a request: the account itself, or a session key it delegated.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// The account's own key.
    Account(&'a Keypair),
    /// A session key, for `account`.
    Session {
        /// The account that delegated it.
        account: AccountId,
        /// The session key.
        key: &'a Keypair,
        /// Its delegation.
        session: &'a Session,
    },
}

/// The headers of a signed request to `worker`.
pub fn sign_request(
    signer: Signer<'_>,
    genesis_hash: &Hash,
    worker: WorkerId,
    request: RequestTarget<'_>,
    timestamp_ms: u64,
    nonce: &[u8; 16],
) -> Vec<(&'static str, String)> {
    let payload = request_payload(genesis_hash, worker, request, timestamp_ms, nonce);
    let (account, signature, session) = match signer {
        Signer::Account(key) => (key.account_id(), key.sign(&payload), None),
        Signer::Session {
            account,
            key,
            session,
        } => (account, key.sign(&payload), Some(session.header())),
    };
    let mut headers = vec![
        (ACCOUNT_HEADER, account.to_ss58()),
        (TIMESTAMP_HEADER, timestamp_ms.to_string()),
        (NONCE_HEADER, hex::encode(nonce)),
        (SIGNATURE_HEADER, signature_text(&signature)),
    ];
    if let Some(session) = session {
        headers.push((SESSION_HEADER, session));
    }
    headers
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerAuthError {
    /// A header is missing or malformed.
    #[error("{0}")]
    Malformed(String),
    /// The timestamp is too far behind the latest verified block's.
    #[error("the request was signed more than a minute before the chain's time")]
    Stale,
    /// The timestamp is too far ahead of the latest verified block's.
    #[error(
        "the request was signed more than 15 s ahead of the chain's time: check this machine's clock"
    )]
    Ahead,
    /// Signed for another worker or another address.
    #[error("the request is addressed to another worker")]
    OtherWorker,
    /// The session is past its expiry, or longer than allowed.
    #[error("the session has expired or is longer than a day")]
    SessionExpired,
    /// A signature does not verify.
    #[error("the signature does not match the account")]
    BadSignature,
    /// Seen before within the window.
    #[error("this request was already served")]
    Replayed,
    /// Signed before the worker started keeping its record of served requests (a restart
    /// forgets it), so it may have been served: the client signs it again.
    #[error("the request was signed before this worker started serving: sign it again")]
    BeforeStart,
}

/// A request whose signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The owner it acts for.
    pub account: AccountId,
    /// When it was signed.
    pub timestamp_ms: u64,
    /// Its nonce, to be seen once.
    pub nonce: [u8; 16],
    /// Until when what it starts (a followed log) may go on: its session's expiry, else the
    /// end of the replay window.
    pub valid_until_ms: u64,
}

/// Checks a request's headers for the worker `audience` at the chain time `now_ms`, and returns
/// who signed it. Replays are the caller's to refuse (see [`VerifiedRequest::nonce`]).
pub fn verify_request(
    genesis_hash: &Hash,
    audience: Audience<'_>,
    request: RequestTarget<'_>,
    header: impl Fn(&str) -> Option<String>,
    now_ms: u64,
) -> Result<VerifiedRequest, OwnerAuthError> {
    let missing = |name: &str| OwnerAuthError::Malformed(format!("missing header {name}"));
    if request.host != audience.authority {
        return Err(OwnerAuthError::OtherWorker);
    }
    let account: AccountId = header(ACCOUNT_HEADER)
        .ok_or_else(|| missing(ACCOUNT_HEADER))?
        .parse()
        .map_err(|e| OwnerAuthError::Malformed(format!("{ACCOUNT_HEADER}: {e}")))?;
    let timestamp_ms: u64 = header(TIMESTAMP_HEADER)
        .ok_or_else(|| missing(TIMESTAMP_HEADER))?
        .parse()
        .map_err(|_| OwnerAuthError::Malformed(format!("{TIMESTAMP_HEADER}: not a number")))?;
    if timestamp_ms.saturating_add(REPLAY_WINDOW_MS) < now_ms {
        return Err(OwnerAuthError::Stale);
    }
    if timestamp_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(OwnerAuthError::Ahead);
    }
    let nonce: [u8; 16] = header(NONCE_HEADER)
        .and_then(|n| hex::decode(n).ok())
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| OwnerAuthError::Malformed(format!("{NONCE_HEADER}: 16 bytes of hex")))?;
    let signature = parse_signature(
        &header(SIGNATURE_HEADER).ok_or_else(|| missing(SIGNATURE_HEADER))?,
        SIGNATURE_HEADER,
    )?;
    let payload = request_payload(genesis_hash, audience.worker, request, timestamp_ms, &nonce);
    let valid_until_ms = match header(SESSION_HEADER) {
        None => {
            if !signature.verify_account(&payload, &account) {
                return Err(OwnerAuthError::BadSignature);
            }
            timestamp_ms.saturating_add(REPLAY_WINDOW_MS)
        }
        Some(text) => {
            let session = Session::parse(&text)?;
            if session.expires_ms < now_ms
                || session.expires_ms.saturating_sub(timestamp_ms) > MAX_SESSION_MS
            {
                return Err(OwnerAuthError::SessionExpired);
            }
            let delegated = Session::payload(genesis_hash, &session.key, session.expires_ms);
            if !session.delegation.verify_account(&delegated, &account) {
                return Err(OwnerAuthError::BadSignature);
            }
            let Signature::Ed25519(_) = signature else {
                return Err(OwnerAuthError::BadSignature);
            };
            if !signature.verify(&payload, &AccountId(session.key)) {
                return Err(OwnerAuthError::BadSignature);
            }
            session.expires_ms
        }
    };
    Ok(VerifiedRequest {
        account,
        timestamp_ms,
        nonce,
        valid_until_ms,
    })
}

/// A fresh Ed25519 session key from 32 random bytes.
pub fn session_key(seed: [u8; 32]) -> Keypair {
    Keypair::from_seed(KeyScheme::Ed25519, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: Hash = Hash([5; 32]);
    const WORKER: WorkerId = WorkerId(3);
    const HOST: &str = "127.0.0.1:8800";
    const AUDIENCE: Audience<'static> = Audience {
        worker: WORKER,
        authority: HOST,
    };

    fn request(target: &str) -> RequestTarget<'_> {
        RequestTarget {
            method: "GET",
            target,
            host: HOST,
        }
    }

    fn lookup<'h>(headers: &'h [(&'static str, String)]) -> impl Fn(&str) -> Option<String> + 'h {
        move |name: &str| {
            headers
                .iter()
                .find(|(h, _)| *h == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn only_the_signer_for_this_worker_request_and_time_is_accepted() {
        for scheme in [KeyScheme::Ed25519, KeyScheme::Sr25519] {
            let owner = Keypair::from_seed(scheme, [3; 32]);
            let nonce = [9; 16];
            let headers = sign_request(
                Signer::Account(&owner),
                &GENESIS,
                WORKER,
                request("/_wetee/apps/1/logs"),
                1_000_000,
                &nonce,
            );
            let check = |audience: Audience<'_>, request: RequestTarget<'_>, now: u64| {
                verify_request(&GENESIS, audience, request, lookup(&headers), now)
            };
            let verified = check(AUDIENCE, request("/_wetee/apps/1/logs"), 1_000_500).unwrap();
            assert_eq!(verified.account, owner.account_id());
            assert_eq!(verified.nonce, nonce);
            assert_eq!(verified.valid_until_ms, 1_000_000 + REPLAY_WINDOW_MS);
            // Another path or query.
            for other in ["/_wetee/apps/2/logs", "/_wetee/apps/1/logs?follow=1"] {
                assert_eq!(
                    check(AUDIENCE, request(other), 1_000_500),
                    Err(OwnerAuthError::BadSignature)
                );
            }
            // Sent to another worker: its address differs, or its id does.
            let elsewhere = RequestTarget {
                host: "10.0.0.9:8800",
                ..request("/_wetee/apps/1/logs")
            };
            assert_eq!(
                check(AUDIENCE, elsewhere, 1_000_500),
                Err(OwnerAuthError::OtherWorker)
            );
            let other_id = Audience {
                worker: WorkerId(4),
                authority: HOST,
            };
            assert_eq!(
                check(other_id, request("/_wetee/apps/1/logs"), 1_000_500),
                Err(OwnerAuthError::BadSignature)
            );
            // Too far from the chain's time, either way; just within it, either way.
            for (now, refusal) in [
                (1_000_000 + REPLAY_WINDOW_MS + 1, OwnerAuthError::Stale),
                (1_000_000 - MAX_AHEAD_MS - 1, OwnerAuthError::Ahead),
            ] {
                assert_eq!(
                    check(AUDIENCE, request("/_wetee/apps/1/logs"), now),
                    Err(refusal)
                );
            }
            for now in [1_000_000 + REPLAY_WINDOW_MS, 1_000_000 - MAX_AHEAD_MS] {
                assert!(check(AUDIENCE, request("/_wetee/apps/1/logs"), now).is_ok());
            }
            let other_chain = verify_request(
                &Hash([6; 32]),
                AUDIENCE,
                request("/_wetee/apps/1/logs"),
                lookup(&headers),
                1_000_500,
            );
            assert_eq!(other_chain, Err(OwnerAuthError::BadSignature));
        }
        assert!(matches!(
            verify_request(&GENESIS, AUDIENCE, request("/"), |_| None, 0),
            Err(OwnerAuthError::Malformed(_))
        ));
    }

    #[test]
    fn endpoints_are_named_as_clients_send_them() {
        assert_eq!(
            endpoint_authority("https://W.Example:443/"),
            Some(("https", "w.example".to_string()))
        );
        assert_eq!(
            endpoint_authority("http://127.0.0.1:8800"),
            Some(("http", "127.0.0.1:8800".to_string()))
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://a/b",
            "127.0.0.1:8800",
            "https://u@h",
        ] {
            assert_eq!(endpoint_authority(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_session_key_signs_for_its_account_until_its_expiry() {
        let owner = Keypair::from_seed(KeyScheme::Sr25519, [1; 32]);
        let key = session_key([2; 32]);
        let session = Session::delegate(&owner, &GENESIS, &key, 2_000_000);
        assert_eq!(Session::parse(&session.header()), Ok(session));
        let signer = Signer::Session {
            account: owner.account_id(),
            key: &key,
            session: &session,
        };
        let headers = |timestamp| {
            sign_request(
                signer,
                &GENESIS,
                WORKER,
                request("/_wetee/apps/1/logs?follow=1"),
                timestamp,
                &[1; 16],
            )
        };
        let check = |headers: &[(&'static str, String)], now| {
            verify_request(
                &GENESIS,
                AUDIENCE,
                request("/_wetee/apps/1/logs?follow=1"),
                lookup(headers),
                now,
            )
        };
        let verified = check(&headers(1_000_000), 1_000_000).unwrap();
        assert_eq!(verified.account, owner.account_id());
        assert_eq!(verified.valid_until_ms, 2_000_000);
        // Past its expiry.
        assert_eq!(
            check(&headers(2_000_001), 2_000_001),
            Err(OwnerAuthError::SessionExpired)
        );
        // A session another account delegated cannot speak for this one.
        let mallory = Keypair::from_seed(KeyScheme::Ed25519, [7; 32]);
        let stolen = Session::delegate(&mallory, &GENESIS, &key, 2_000_000);
        let forged = sign_request(
            Signer::Session {
                account: owner.account_id(),
                key: &key,
                session: &stolen,
            },
            &GENESIS,
            WORKER,
            request("/_wetee/apps/1/logs?follow=1"),
            1_000_000,
            &[1; 16],
        );
        assert_eq!(check(&forged, 1_000_000), Err(OwnerAuthError::BadSignature));
        // A session longer than a day.
        let long = Session::delegate(&owner, &GENESIS, &key, 1_000_000 + MAX_SESSION_MS + 1);
        let headers = sign_request(
            Signer::Session {
                account: owner.account_id(),
                key: &key,
                session: &long,
            },
            &GENESIS,
            WORKER,
            request("/_wetee/apps/1/logs?follow=1"),
            1_000_000,
            &[1; 16],
        );
        assert_eq!(
            check(&headers, 1_000_000),
            Err(OwnerAuthError::SessionExpired)
        );
    }
}
