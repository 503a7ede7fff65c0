//! `wetee key`: make, import, inspect, list, export and re-encrypt account keys.
//!
//! Secrets never come from the command line, which shell history and the process list keep:
//! they are read from a file, from standard input, or typed at a hidden prompt.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use wetee_client::keys::{KeySource, Keystore, generate_mnemonic, keypair_from_uri};
use wetee_types::{KeyScheme, Keypair};
use zeroize::Zeroizing;

use crate::output::{Format, print};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generates a new mnemonic and shows its account; `--name` also stores it, encrypted
    /// under a passphrase.
    Generate {
        /// Store the key in the keystore under this name.
        #[arg(long)]
        name: Option<String>,
        /// 12 or 24 words.
        #[arg(long, default_value_t = 12)]
        words: usize,
    },
    /// Shows the account of a key: a dev URI (`//Alice`), a keystore name, a key file, or `-`
    /// to read a mnemonic from standard input.
    Inspect {
        /// The key.
        key: String,
    },
    /// Lists the keystore's keys (no passphrase needed).
    List,
    /// Stores an existing secret URI or mnemonic under a name, encrypted under a passphrase.
    /// The secret is read from `--file`, or from standard input (a hidden prompt on a
    /// terminal).
    Import {
        /// The name.
        name: String,
        /// A file holding the secret URI or mnemonic.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Prints a stored key's secret URI (after its passphrase), to back it up or move it.
    Export {
        /// The name.
        name: String,
    },
    /// Encrypts a stored key under a new passphrase (and encrypts a key stored before the
    /// keystore was encrypted).
    Passwd {
        /// The name.
        name: String,
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
    encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mnemonic: Option<String>,
}

fn info(name: Option<String>, pair: &Keypair, mnemonic: Option<String>) -> KeyInfo {
    KeyInfo {
        name,
        scheme: pair.scheme(),
        account: pair.account_id().to_ss58(),
        public_key: format!("0x{}", hex::encode(pair.account_id().0)),
        encrypted: None,
        mnemonic,
    }
}

fn scheme_name(scheme: KeyScheme) -> &'static str {
    match scheme {
        KeyScheme::Ed25519 => "ed25519",
        KeyScheme::Sr25519 => "sr25519",
    }
}

fn describe(info: &KeyInfo) -> String {
    let mut lines = Vec::new();
    if let Some(name) = &info.name {
        lines.push(format!("Name:        {name}"));
    }
    lines.push(format!("Scheme:      {}", scheme_name(info.scheme)));
    lines.push(format!("Account:     {}", info.account));
    lines.push(format!("Public key:  {}", info.public_key));
    if let Some(mnemonic) = &info.mnemonic {
        lines.push(format!("Mnemonic:    {mnemonic}"));
        lines.push("Write the mnemonic down and keep it secret: it is the only way to recover this account.".into());
    }
    lines.join("\n")
}

/// A secret from `file`, else from standard input: a hidden prompt on a terminal, the first
/// line otherwise.
fn read_secret(file: Option<&std::path::Path>, what: &str) -> Result<Zeroizing<String>> {
    let text = match file {
        Some(path) if path != std::path::Path::new("-") => Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        _ if std::io::stdin().is_terminal() => {
            Zeroizing::new(rpassword::prompt_password(format!("{what}: "))?)
        }
        _ => {
            let mut text = Zeroizing::new(String::new());
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading standard input")?;
            text
        }
    };
    let line = text.lines().next().unwrap_or_default().trim();
    anyhow::ensure!(!line.is_empty(), "no {what} given");
    Ok(Zeroizing::new(line.to_string()))
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
            let pair = keypair_from_uri(&mnemonic, scheme)?;
            let info = info(name, &pair, Some(mnemonic.to_string()));
            print(format, &info, || describe(&info));
        }
        KeyCommand::Inspect { key } => {
            let pair = if key == "-" {
                let secret = read_secret(None, "secret URI or mnemonic")?;
                keypair_from_uri(&secret, scheme)?
            } else {
                // Inspecting is for any chain: a mnemonic is never taken inline (dev keys are
                // public, and fine to inspect).
                let source = KeySource::parse(&key)?;
                if source.is_inline_secret() {
                    return Err(wetee_client::keys::KeyError::InlineSecret.into());
                }
                source
                    .keypair(scheme, keystore)
                    .with_context(|| format!("reading {source}"))?
            };
            let info = info(None, &pair, None);
            print(format, &info, || describe(&info));
        }
        KeyCommand::List => {
            let keys: Vec<KeyInfo> = keystore
                .entries()?
                .into_iter()
                .map(|entry| KeyInfo {
                    name: Some(entry.name),
                    scheme: entry.scheme,
                    account: entry.account.to_ss58(),
                    public_key: format!("0x{}", hex::encode(entry.account.0)),
                    encrypted: Some(entry.encrypted),
                    mnemonic: None,
                })
                .collect();
            print(format, &keys, || {
                if keys.is_empty() {
                    return format!("No keys in {}", keystore.dir().display());
                }
                keys.iter()
                    .map(|k| {
                        let warning = match k.encrypted {
                            Some(false) => "  (not encrypted: run `wetee key passwd NAME`)",
                            _ => "",
                        };
                        format!(
                            "{:<16} {} {}{warning}",
                            k.name.as_deref().unwrap_or(""),
                            scheme_name(k.scheme),
                            k.account
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeyCommand::Import { name, file } => {
            let secret = read_secret(file.as_deref(), "secret URI or mnemonic")?;
            let account = keystore.insert(&name, scheme, &secret)?;
            let pair = keypair_from_uri(&secret, scheme)?;
            debug_assert_eq!(pair.account_id(), account);
            let info = info(Some(name), &pair, None);
            print(format, &info, || describe(&info));
        }
        KeyCommand::Export { name } => {
            let stored = keystore.get(&name)?;
            if format == Format::Text {
                eprintln!(
                    "the secret of key {name:?} follows: anyone who sees it owns the account"
                );
            }
            let json = serde_json::json!({
                "name": name,
                "scheme": stored.scheme,
                "account": stored.account.to_ss58(),
                "secret": stored.secret.as_str(),
            });
            print(format, &json, || stored.secret.to_string());
        }
        KeyCommand::Passwd { name } => {
            let account = keystore.change_passphrase(&name)?;
            let json = serde_json::json!({ "name": name, "account": account.to_ss58() });
            print(format, &json, || {
                format!("key {name:?} ({account}) is encrypted under the new passphrase")
            });
        }
    }
    Ok(())
}
