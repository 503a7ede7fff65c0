//! Chain specs for development and local networks, and `wetee chain spec`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use wetee_client::keys::{
    DEV_WORKER_OPERATOR, dev_accounts, dev_keypair, keypair_from_uri, random_seed,
};
use wetee_types::attestation::AttestationPolicy;
use wetee_types::balance::UNIT;
use wetee_types::spec::{BalanceSpec, ConsensusSpec, ValidatorSpec};
use wetee_types::{Balance, ChainConfig, ChainSpec, KeyScheme, Params};

/// First peer-to-peer port of local validators.
pub const FIRST_P2P_PORT: u16 = 30333;
/// Each dev account's starting balance.
pub const DEV_BALANCE: Balance = Balance(1_000_000 * UNIT);
/// Block time of dev and local chains.
pub const LOCAL_BLOCK_TIME_MS: u64 = 250;
/// Blocks per epoch on dev and local chains: 15 seconds.
pub const LOCAL_EPOCH_LENGTH: u64 = 60;

/// The dev validator's consensus key: the ed25519 key of `//Alice`, public like every dev key.
pub const DEV_VALIDATOR_URI: &str = "//Alice";

fn local_spec(
    name: &str,
    chain_id: &str,
    validators: Vec<ValidatorSpec>,
    genesis_time_ms: u64,
) -> ChainSpec {
    let params = Params {
        target_block_time_ms: LOCAL_BLOCK_TIME_MS,
        ..Params::dev()
    };
    ChainSpec {
        name: name.into(),
        chain_id: chain_id.into(),
        genesis_time_ms,
        validators,
        consensus: ConsensusSpec::local(),
        chain: ChainConfig {
            epoch_length: LOCAL_EPOCH_LENGTH,
        },
        params,
        // Local chains run workers without TEE hardware: the simulated TEE is accepted.
        attestation: AttestationPolicy::dev(),
        root: dev_keypair("Alice").account_id(),
        treasury: dev_keypair("Treasury").account_id(),
        balances: dev_accounts()
            .into_iter()
            .map(|(_, account)| account)
            .chain([dev_keypair(DEV_WORKER_OPERATOR).account_id()])
            .map(|account| BalanceSpec {
                account,
                amount: DEV_BALANCE,
            })
            .collect(),
    }
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// The single-validator dev chain: dev accounts funded, `//Alice` is root and validator.
pub fn dev_spec(genesis_time_ms: u64, p2p_port: u16) -> Result<ChainSpec> {
    let validator = keypair_from_uri(DEV_VALIDATOR_URI, KeyScheme::Ed25519)?;
    let spec = local_spec(
        "WeTEE dev",
        "wetee-dev",
        vec![ValidatorSpec {
            name: "alice".into(),
            public_key: hex::encode(validator.account_id().0),
            address: localhost(p2p_port),
        }],
        genesis_time_ms,
    );
    spec.validate()?;
    Ok(spec)
}

/// A local network of `count` validators with fresh keys, written to `keys_dir` as
/// `validator-<i>.key` (a `0x` seed, readable only by its owner).
pub fn local_testnet_spec(
    count: usize,
    first_port: u16,
    keys_dir: &Path,
    genesis_time_ms: u64,
) -> Result<ChainSpec> {
    std::fs::create_dir_all(keys_dir)
        .with_context(|| format!("creating {}", keys_dir.display()))?;
    let mut validators = Vec::new();
    for index in 0..count {
        let seed = random_seed()?;
        let uri = format!("0x{}", hex::encode(seed.as_ref()));
        let public = keypair_from_uri(&uri, KeyScheme::Ed25519)?.account_id();
        write_private(
            &keys_dir.join(format!("validator-{index}.key")),
            &format!("{uri}\n"),
        )?;
        let port = u16::try_from(index)
            .ok()
            .and_then(|i| first_port.checked_add(i))
            .context("too many validators for the port range")?;
        validators.push(ValidatorSpec {
            name: format!("validator-{index}"),
            public_key: hex::encode(public.0),
            address: localhost(port),
        });
    }
    let spec = local_spec(
        "WeTEE local testnet",
        "wetee-local",
        validators,
        genesis_time_ms,
    );
    spec.validate()?;
    Ok(spec)
}

/// Writes `text` to a new file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_spec_is_valid_and_funds_the_dev_accounts_and_the_worker_operator() {
        let spec = dev_spec(1_000, FIRST_P2P_PORT).unwrap();
        assert_eq!(spec.validators.len(), 1);
        assert_eq!(spec.balances.len(), 7);
        let operator = dev_keypair(DEV_WORKER_OPERATOR).account_id();
        assert!(spec.balances.iter().any(|b| b.account == operator));
        assert!(
            dev_accounts()
                .iter()
                .all(|(_, account)| *account != operator)
        );
        assert!(spec.attestation.allow_simulated_tee);
        assert_eq!(ChainSpec::from_json(&spec.to_json()).unwrap(), spec);
    }

    #[test]
    fn a_testnet_spec_writes_one_private_key_per_validator() {
        let dir = tempfile::tempdir().unwrap();
        let spec = local_testnet_spec(4, 40_000, dir.path(), 1_000).unwrap();
        assert_eq!(spec.validators.len(), 4);
        for (index, validator) in spec.validators.iter().enumerate() {
            let key =
                std::fs::read_to_string(dir.path().join(format!("validator-{index}.key"))).unwrap();
            let public = keypair_from_uri(key.trim(), KeyScheme::Ed25519)
                .unwrap()
                .account_id();
            assert_eq!(hex::encode(public.0), validator.public_key);
        }
    }
}
