//! The vectors the web console's TypeScript codec is checked against
//! (`web/tests/vectors/transactions.json`, by `node --test` in `web/`): for generated
//! transactions of every call the console sends, their JSON form, canonical encoding, signing
//! payload, signed encoding and hash, as this crate makes them. The test fails when the file
//! is stale; `WETEE_WRITE_VECTORS=1 cargo test -p wetee-types --test console_vectors` writes it.

use arbitrary::{Arbitrary, Unstructured};
use wetee_types::balance::Balance;
use wetee_types::codec::encode;
use wetee_types::manifest::AppSpec;
use wetee_types::transaction::{AppsCall, BalancesCall, Call, SignedTransaction, Transaction};
use wetee_types::{AccountId, AppId, Hash, KeyScheme, Keypair, Signature, WorkerId};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../web/tests/vectors/transactions.json"
);

/// A small deterministic generator (xorshift64*): the same vectors on every run.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self) -> [u8; 32] {
        let mut out = [0; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        out
    }

    /// Small, large and extreme values alike.
    fn number(&mut self) -> u64 {
        match self.next() % 4 {
            0 => self.next() % 256,
            1 => self.next() % 1_000_000,
            2 => self.next(),
            _ => u64::MAX - self.next() % 3,
        }
    }

    /// What a JSON number holds exactly in JavaScript (ids, resources).
    fn exact_number(&mut self) -> u64 {
        self.number() % (1 << 53)
    }

    /// A structured value of any shape `T` can take.
    fn arbitrary<T: for<'a> Arbitrary<'a>>(&mut self) -> T {
        let mut bytes = Vec::with_capacity(4096);
        for _ in 0..512 {
            bytes.extend_from_slice(&self.next().to_be_bytes());
        }
        T::arbitrary(&mut Unstructured::new(&bytes)).expect("enough bytes")
    }

    fn amount(&mut self) -> u128 {
        match self.next() % 4 {
            0 => u128::from(self.next() % 1_000),
            1 => u128::from(self.next()) * 1_000_000_000_000,
            2 => (u128::from(self.next()) << 64) | u128::from(self.next()),
            _ => u128::MAX - u128::from(self.next() % 3),
        }
    }
}

/// An app spec of any shape, its numbers those JSON carries exactly to JavaScript (the chain's
/// own checks bound them far lower).
fn app_spec(generator: &mut Generator) -> AppSpec {
    let mut spec: AppSpec = generator.arbitrary();
    let resources = &mut spec.container.resources;
    for value in [
        &mut resources.cpu_millicores,
        &mut resources.memory_mib,
        &mut resources.disk_gib,
        &mut resources.gpus,
    ] {
        *value %= 1 << 53;
    }
    spec
}

/// Every call the console sends, in turn: transfers most, each other call often (the secrets
/// records' revisions and sealed bytes as generated: the codec does not judge them).
fn call(index: usize, generator: &mut Generator) -> Call {
    let app = AppId(generator.exact_number());
    match index % 10 {
        0..=2 => Call::Balances(BalancesCall::Transfer {
            to: AccountId(generator.bytes()),
            amount: Balance(generator.amount()),
        }),
        3 => Call::Balances(BalancesCall::SetSealingKey {
            key: generator.bytes(),
        }),
        4 => Call::Apps(AppsCall::Create {
            spec: app_spec(generator),
            deposit: Balance(generator.amount()),
        }),
        5 => Call::Apps(AppsCall::Recharge {
            app,
            amount: Balance(generator.amount()),
        }),
        6 => Call::Apps(AppsCall::Restart { app }),
        7 => Call::Apps(AppsCall::Stop { app }),
        8 => Call::Apps(AppsCall::Update {
            app,
            spec: app_spec(generator),
            secrets_grant: generator.arbitrary(),
        }),
        _ => {
            let signature_bytes = [generator.bytes(), generator.bytes()].concat();
            let signature = if generator.next().is_multiple_of(2) {
                Signature::Ed25519(signature_bytes.try_into().unwrap())
            } else {
                Signature::Sr25519(signature_bytes.try_into().unwrap())
            };
            Call::Apps(AppsCall::SetSecrets {
                app,
                worker: WorkerId(generator.exact_number()),
                sealing_key: generator.bytes(),
                set: generator.arbitrary(),
                remove: generator.arbitrary(),
                allowed_images: generator.arbitrary(),
                signature,
            })
        }
    }
}

fn vectors() -> serde_json::Value {
    let mut generator = Generator(0x5745_5445_4520_7678);
    let mut cases = Vec::new();
    for index in 0..400 {
        // Ed25519 signatures are deterministic; sr25519 ones are randomized, so the sr25519
        // cases carry made-up signature bytes: they check the codec of the tag and bytes only
        // (the browser's own sr25519 signatures are checked by the node in the console's
        // browser tests).
        let scheme = if index % 2 == 0 {
            KeyScheme::Ed25519
        } else {
            KeyScheme::Sr25519
        };
        let key = Keypair::from_seed(scheme, generator.bytes());
        let genesis = Hash(generator.bytes());
        let tx = Transaction {
            signer: key.account_id(),
            nonce: generator.number(),
            fee: Balance(generator.amount()),
            expires_at: generator.number(),
            call: call(index, &mut generator),
        };
        let signed = match scheme {
            KeyScheme::Ed25519 => {
                let signed = tx.clone().sign(&key, &genesis);
                assert!(signed.verify_signature(&genesis));
                signed
            }
            KeyScheme::Sr25519 => {
                let mut bytes = [0; 64];
                bytes[..32].copy_from_slice(&generator.bytes());
                bytes[32..].copy_from_slice(&generator.bytes());
                SignedTransaction {
                    tx: tx.clone(),
                    signature: Signature::Sr25519(bytes),
                }
            }
        };
        cases.push(serde_json::json!({
            "genesis_hash": genesis,
            "signer_public_key": format!("0x{}", hex::encode(key.account_id().0)),
            "signed": signed,
            "encoded": format!("0x{}", hex::encode(encode(&tx))),
            "signing_payload": format!("0x{}", hex::encode(tx.signing_payload(&genesis))),
            "signed_encoded": format!("0x{}", hex::encode(signed.encode())),
            "hash": signed.hash(),
            "signature_valid": scheme == KeyScheme::Ed25519,
            // JSON numbers past 2^53 lose digits in JavaScript: the exact values, as text.
            "exact": {
                "nonce": tx.nonce.to_string(),
                "expires_at": tx.expires_at.to_string(),
            },
        }));
    }
    serde_json::json!({
        "about": "written by crates/types/tests/console_vectors.rs; do not edit",
        "transactions": cases,
    })
}

/// `value` with every object's keys in order: the text must not depend on whether another crate
/// of the build turned on serde_json's `preserve_order`.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

#[test]
fn the_consoles_codec_vectors_are_current() {
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&sorted(vectors())).unwrap()
    );
    if std::env::var_os("WETEE_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(VECTORS).parent().unwrap()).unwrap();
        std::fs::write(VECTORS, &text).unwrap();
    }
    let committed = std::fs::read_to_string(VECTORS).unwrap_or_default();
    assert!(
        committed == text,
        "web/tests/vectors/transactions.json is stale: run \
         WETEE_WRITE_VECTORS=1 cargo test -p wetee-types --test console_vectors and commit it"
    );
}
