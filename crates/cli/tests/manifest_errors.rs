//! A bad manifest is refused by the CLI before any transaction, naming the field at fault: the
//! node given here does not even exist, so reaching it would be a different error.

use std::process::Command;

const WETEE: &str = env!("CARGO_BIN_EXE_wetee");

const GOOD: &str = r#"
kind = "app"
name = "hello"
image = "localhost/hello@sha256:0933ee3d14f9b85a00a5f56a54c42bec5818cb6a6b6b188706dbfedf547216d4"
ports = [{ container = 8080 }]
resources = { cpu_millicores = 100, memory_mib = 32 }
placement = { tee = "simulated", max_price_per_epoch = "1" }
"#;

fn deploy(manifest: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wetee.toml");
    std::fs::write(&path, manifest).unwrap();
    let output = Command::new(WETEE)
        .args(["--rpc", "ws://127.0.0.1:1", "app", "deploy", "-f"])
        .arg(&path)
        .output()
        .expect("wetee runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn bad_manifests_are_refused_before_anything_is_sent_naming_the_field() {
    // A good manifest gets as far as the (missing) node.
    let (ok, error) = deploy(GOOD);
    assert!(!ok);
    assert!(error.contains("cannot talk to the node"), "{error}");

    let cases = [
        (GOOD.replace("image = ", "# image = "), "image"),
        (
            GOOD.replace("cpu_millicores = 100", "cpu_millicores = 0"),
            "cpu_millicores",
        ),
        (
            GOOD.replace("memory_mib = 32", "memory_mib = -5"),
            "memory_mib",
        ),
        (
            GOOD.replace("name = \"hello\"", "name = \"hello\"\ncolour = \"red\""),
            "colour",
        ),
        (
            GOOD.replace("kind = \"app\"", "kind = \"task\"")
                + "[task]\ncron = \"every tuesday\"\ntimeout_secs = 10\n",
            "cron",
        ),
        (GOOD.replace("@sha256:0933", "@sha256:zz33"), "image"),
        (
            GOOD.to_string() + "health = { http_path = \"/\", port = 9999 }\n",
            "health.port",
        ),
    ];
    for (manifest, field) in cases {
        let (ok, error) = deploy(&manifest);
        assert!(!ok, "accepted: {manifest}");
        assert!(
            error.contains(field) && !error.contains("cannot talk to the node"),
            "the error should name `{field}` before contacting the node: {error}"
        );
    }
}

#[test]
fn a_manifest_with_two_mistakes_names_both_each_on_its_own_line() {
    let manifest = GOOD
        .replace("@sha256:0933", ":latest@sha256:zz33")
        .replace("cpu_millicores = 100", "cpu_millicores = 0");
    let (ok, error) = deploy(&manifest);
    assert!(!ok, "accepted: {manifest}");
    assert!(!error.contains("cannot talk to the node"), "{error}");
    assert!(error.contains("wetee.toml: 2 problems:"), "{error}");
    for field in ["image: ", "resources.cpu_millicores: "] {
        assert!(
            error
                .lines()
                .any(|line| line.trim_start().starts_with(field)),
            "`{field}` should start a line of its own: {error}"
        );
    }
}
