//! Keys as a user handles them: the keystore is encrypted at rest and opened only with its
//! passphrase, secrets are read from standard input, and a mnemonic typed on the command line
//! of a real (non-development) chain is refused without a word of it being printed.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const WETEE: &str = env!("CARGO_BIN_EXE_wetee");

/// A valid mnemonic (a throwaway key of these tests).
const MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";
/// The development phrase with one word mistyped.
const TYPO: &str = "bottom drive obey lake curtain smokey basket hold race lonely fit walk";

fn wetee(home: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(WETEE);
    command
        .env("WETEE_HOME", home)
        .env_remove("WETEE_PASSPHRASE")
        .env_remove("WETEE_PASSPHRASE_FILE")
        .env_remove("WETEE_NEW_PASSPHRASE")
        .env_remove("WETEE_NEW_PASSPHRASE_FILE")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("wetee runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every word of `phrase` that `said` contains as a whole word.
fn echoed<'a>(phrase: &'a str, said: &str) -> Vec<&'a str> {
    let words: Vec<&str> = said.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    phrase
        .split(' ')
        .filter(|word| words.contains(word))
        .collect()
}

#[test]
fn the_keystore_is_encrypted_and_opened_only_with_its_passphrase() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let pass = [("WETEE_PASSPHRASE", "correct horse battery")];
    let imported = wetee(home, &["key", "import", "ops"], &pass, Some(MNEMONIC));
    assert!(imported.status.success(), "{}", text(&imported));
    assert!(echoed(MNEMONIC, &text(&imported)).is_empty());
    let file = std::fs::read_to_string(home.join("keys/ops.json")).unwrap();
    assert!(
        echoed(MNEMONIC, &file).is_empty(),
        "the key file holds the mnemonic in the clear: {file}"
    );

    let listed = wetee(home, &["--output", "json", "key", "list"], &[], None);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], "ops");
    assert_eq!(listed[0]["encrypted"], true);

    let account = |output: &Output| -> String {
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(output)));
        json["account"].as_str().unwrap().to_string()
    };
    let inspect = |env: &[(&str, &str)]| {
        wetee(
            home,
            &["--output", "json", "key", "inspect", "ops"],
            env,
            None,
        )
    };
    let expected = account(&wetee(
        home,
        &["--output", "json", "key", "inspect", "-"],
        &[],
        Some(MNEMONIC),
    ));
    assert_eq!(account(&inspect(&pass)), expected);

    let wrong = inspect(&[("WETEE_PASSPHRASE", "wrong horse battery")]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("passphrase does not open"),
        "{}",
        text(&wrong)
    );
    // No passphrase and no terminal: the user is told where to put it.
    let none = inspect(&[]);
    assert!(!none.status.success());
    assert!(
        text(&none).contains("WETEE_PASSPHRASE_FILE"),
        "{}",
        text(&none)
    );

    // Changing needs a new passphrase: the current one's variable is not taken for it.
    let unchanged = wetee(home, &["key", "passwd", "ops"], &pass, None);
    assert!(!unchanged.status.success(), "{}", text(&unchanged));
    // A new passphrase from a file, as a service would give it; the old one stops working.
    let new_file = home.join("new-passphrase");
    std::fs::write(&new_file, "staple orbit meadow\n").unwrap();
    let changed = wetee(
        home,
        &["key", "passwd", "ops"],
        &[
            pass[0],
            ("WETEE_NEW_PASSPHRASE_FILE", new_file.to_str().unwrap()),
        ],
        None,
    );
    assert!(changed.status.success(), "{}", text(&changed));
    assert!(!inspect(&pass).status.success());
    let from_file = [("WETEE_PASSPHRASE_FILE", new_file.to_str().unwrap())];
    assert_eq!(account(&inspect(&from_file)), expected);

    let exported = wetee(home, &["key", "export", "ops"], &from_file, None);
    assert!(exported.status.success(), "{}", text(&exported));
    assert_eq!(String::from_utf8_lossy(&exported.stdout).trim(), MNEMONIC);
}

/// A development chain's spec, written by `wetee chain spec --dev` into `dir`.
fn dev_spec(dir: &Path) -> std::path::PathBuf {
    let dev = dir.join("dev.json");
    let made = Command::new(WETEE)
        .args(["chain", "spec", "--dev", "--out"])
        .arg(&dev)
        .output()
        .unwrap();
    assert!(made.status.success());
    dev
}

/// A production chain's spec: the simulated TEE refused, one TDX build pinned.
fn production_spec(dir: &Path) -> std::path::PathBuf {
    let dev = dev_spec(dir);
    let mut spec =
        wetee_types::ChainSpec::from_json(&std::fs::read_to_string(&dev).unwrap()).unwrap();
    let rule = serde_json::from_value(serde_json::json!({
        "kind": "tdx",
        "mr_td": "ab".repeat(48),
    }))
    .unwrap();
    spec.attestation = wetee_types::attestation::AttestationPolicy::production(vec![rule]);
    assert!(!spec.is_development());
    let path = dir.join("production.json");
    std::fs::write(&path, spec.to_json()).unwrap();
    path
}

#[test]
fn a_mnemonic_typed_on_the_command_line_of_a_real_chain_is_refused_unechoed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let spec = production_spec(home);
    let spec = spec.to_str().unwrap();
    let config = home.join("worker.toml");
    std::fs::write(
        &config,
        format!(
            r#"stake = "200"
data_dir = "{data}"

[chain]
spec = "{spec}"

[profile]
endpoint = "http://127.0.0.1:8800"
region = "local"
level = 1
tee_kinds = ["tdx"]
capacity = {{ cpu_millicores = 4000, memory_mib = 8192, disk_gib = 0, gpus = 0 }}
prices = {{ cpu_millicore = "1000", memory_mib = "100", disk_gib = "1000", gpu = "0" }}

[backend]
kind = "docker"
"#,
            data = home.join("worker").display()
        ),
    )
    .unwrap();
    let data = home.join("node");
    let data = data.to_str().unwrap();
    let config = config.to_str().unwrap();
    let rpc = ["--rpc", "ws://127.0.0.1:1", "--chain-spec", spec];
    for secret in [TYPO, MNEMONIC] {
        let attempts: [Vec<&str>; 4] = [
            [&rpc[..], &["account", "balance", "--from", secret]].concat(),
            [
                &rpc[..],
                &[
                    "account",
                    "transfer",
                    "--to",
                    "0x8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48",
                    "--amount",
                    "1",
                    "--from",
                    secret,
                ],
            ]
            .concat(),
            vec!["worker", "run", "--config", config, "--key", secret],
            vec!["node", "--chain", spec, "--data-dir", data, "--key", secret],
        ];
        for args in attempts {
            let output = wetee(home, &args, &[], None);
            let said = text(&output);
            assert!(!output.status.success(), "{args:?} was accepted: {said}");
            assert!(said.contains("wetee key import"), "{args:?}: {said}");
            assert!(
                echoed(secret, &said).is_empty(),
                "{args:?} echoed {:?}: {said}",
                echoed(secret, &said)
            );
        }
    }
}

#[test]
fn on_a_development_chain_a_mistyped_mnemonic_is_explained_without_its_words() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let dev = dev_spec(home);
    let output = wetee(
        home,
        &[
            "--rpc",
            "ws://127.0.0.1:1",
            "--chain-spec",
            dev.to_str().unwrap(),
            "account",
            "balance",
            "--from",
            TYPO,
        ],
        &[],
        None,
    );
    let said = text(&output);
    assert!(!output.status.success());
    assert!(said.contains("unknown word (word 5)"), "{said}");
    assert!(echoed(TYPO, &said).is_empty(), "{said}");
}
