//! `wetee key`: make, inspect and list account keys.

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;
use wetee_client::keys::{KeySource, Keystore, generate_mnemonic};
use wetee_types::{KeyScheme, Keypair};

use crate::output::{Format, print};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generates a new mnemonic and shows its account; `--name` also stores it.
    Generate {
        /// Store the key in the keystore under this name.
        #[arg(long)]
        name: Option<String>,
        /// 12 or 24 words.
        #[arg(long, default_value_t = 12)]
        words: usize,
    },
    /// Shows the account of a key: a dev URI (`//Alice`), a mnemonic, a keystore name or a file.
    Inspect {
        /// The key.
        key: String,
    },
    /// Lists the keystore's keys.
    List,
    /// Stores an existing secret URI or mnemonic under a name.
    Import {
        /// The name.
        name: String,
        /// The secret URI or mnemonic.
        secret: String,
    },
}

#[derive(Debug, Serialize)]
struct KeyInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    scheme: KeyScheme,
    account: String,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mnemonic: Option<String>,
}

fn info(name: Option<String>, pair: &Keypair, mnemonic: Option<String>) -> KeyInfo {
    KeyInfo {
        name,
        scheme: pair.scheme(),
        account: pair.account_id().to_ss58(),
        public_key: format!("0x{}", hex::encode(pair.account_id().0)),
        mnemonic,
    }
}

fn describe(info: &KeyInfo) -> String {
    let mut lines = Vec::new();
    if let Some(name) = &info.name {
        lines.push(format!("Name:        {name}"));
    }
    let scheme = match info.scheme {
        KeyScheme::Ed25519 => "ed25519",
        KeyScheme::Sr25519 => "sr25519",
    };
    lines.push(format!("Scheme:      {scheme}"));
    lines.push(format!("Account:     {}", info.account));
    lines.push(format!("Public key:  {}", info.public_key));
    if let Some(mnemonic) = &info.mnemonic {
        lines.push(format!("Mnemonic:    {mnemonic}"));
        lines.push("Write the mnemonic down and keep it secret: it is the only way to recover this account.".into());
    }
    lines.join("\n")
}

pub fn run(
    command: KeyCommand,
    scheme: KeyScheme,
    keystore: &Keystore,
    format: Format,
) -> Result<()> {
    match command {
        KeyCommand::Generate { name, words } => {
            let mnemonic = generate_mnemonic(words)?;
            if let Some(name) = &name {
                keystore.insert(name, scheme, &mnemonic)?;
            }
            let pair = wetee_client::keys::keypair_from_uri(&mnemonic, scheme)?;
            let info = info(name, &pair, Some(mnemonic.to_string()));
            print(format, &info, || describe(&info));
        }
        KeyCommand::Inspect { key } => {
            let pair = KeySource::parse(&key)?.keypair(scheme, keystore)?;
            let info = info(None, &pair, None);
            print(format, &info, || describe(&info));
        }
        KeyCommand::List => {
            let mut keys = Vec::new();
            for name in keystore.names()? {
                let stored = keystore.get(&name)?;
                keys.push(KeyInfo {
                    name: Some(name),
                    scheme: stored.scheme,
                    account: stored.account.to_ss58(),
                    public_key: format!("0x{}", hex::encode(stored.account.0)),
                    mnemonic: None,
                });
            }
            print(format, &keys, || {
                if keys.is_empty() {
                    format!("No keys in {}", keystore.dir().display())
                } else {
                    keys.iter()
                        .map(|k| format!("{:<16} {}", k.name.as_deref().unwrap_or(""), k.account))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        KeyCommand::Import { name, secret } => {
            let account = keystore.insert(&name, scheme, &secret)?;
            let pair = wetee_client::keys::keypair_from_uri(&secret, scheme)?;
            debug_assert_eq!(pair.account_id(), account);
            let info = info(Some(name), &pair, None);
            print(format, &info, || describe(&info));
        }
    }
    Ok(())
}
