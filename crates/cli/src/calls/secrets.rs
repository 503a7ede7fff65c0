//! `wetee app secrets ...`: an app's secrets, sealed to the TEE of the worker it runs on after its evidence is verified here.

use super::*;

/// `wetee app secrets ...`: secrets sealed to the TEE of the worker the app runs on.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seals secrets to the app's worker, after verifying its attestation here; the others
    /// are kept (or resealed if the app moved). Values never leave this machine in the clear.
    Set {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// A file of `NAME=VALUE` lines (`#` comments and blank lines ignored), or `-` for
        /// standard input. Values are never taken from the command line, which shell history
        /// and the process list keep.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Names to forget.
        #[arg(long)]
        remove: Vec<String>,
        /// An image digest (`sha256:<hex>`) allowed to receive the secrets, repeatable (default:
        /// the images allowed so far, or else the app's current image).
        #[arg(long = "allow-image", value_parser = parse_image_digest)]
        allow_images: Vec<wetee_types::Hash>,
        /// A worker build you trust, as a measurement rule in JSON (for example
        /// `{"kind":"tdx","mr_td":"<hex>"}`, as `wetee worker measurements` prints), repeatable: the
        /// worker must run one of them, besides what the chain's policy allows.
        #[arg(long = "expect-measurement", value_parser = parse_measurement_rule)]
        expect_measurements: Vec<wetee_types::attestation::MeasurementRule>,
        /// Seal even to a worker running the simulated TEE (development chains only: it
        /// protects nothing).
        #[arg(long)]
        allow_simulated_tee: bool,
    },
    /// Reseals every secret to the worker the app now runs on (after it moved), from the
    /// owner's own sealed copies: nothing to type again.
    Reseal {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// A worker build you trust (see `secrets set`), repeatable.
        #[arg(long = "expect-measurement", value_parser = parse_measurement_rule)]
        expect_measurements: Vec<wetee_types::attestation::MeasurementRule>,
        /// Seal even to a worker running the simulated TEE (development chains only).
        #[arg(long)]
        allow_simulated_tee: bool,
    },
    /// The app's secrets: names, revisions, and the worker they are sealed to (never values).
    List {
        /// The app.
        app: AppId,
    },
}

/// Reads `NAME=VALUE` pairs: from the command line, then from a file.
pub(super) fn secret_values(file: &Path) -> Result<Vec<SecretValue>> {
    let from_stdin = file == Path::new("-");
    let place = |line: usize| match from_stdin {
        true => format!("standard input:{line}"),
        false => format!("{}:{line}", file.display()),
    };
    let text = zeroize::Zeroizing::new(if from_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    });
    let mut values: Vec<SecretValue> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The messages name the line, never its text: it may be a value.
        let Some((name, value)) = line.split_once('=') else {
            bail!("{}: expected NAME=VALUE", place(i + 1));
        };
        let name = name.trim();
        if values.iter().any(|v| v.name == name) {
            bail!("{}: `{name}` is given twice", place(i + 1));
        }
        values.push(SecretValue {
            name: name.to_string(),
            value: zeroize::Zeroizing::new(value.as_bytes().to_vec()),
        });
    }
    Ok(values)
}

/// `wetee app secrets ...`.
pub(super) async fn secrets(command: SecretsCommand, context: &Session<'_>) -> Result<()> {
    let (signer, app, values, remove, options) = match command {
        SecretsCommand::List { app } => {
            let client = connect(context).await?;
            let stored = client.app_secrets(app).await?;
            let listed = stored.as_ref().map(|s| {
                serde_json::json!({
                    "app": app,
                    "worker": s.worker,
                    "revision": s.revision,
                    "secrets": s.secrets.iter().map(|secret| serde_json::json!({
                        "name": secret.name.as_str(),
                        "revision": secret.revision,
                    })).collect::<Vec<_>>(),
                })
            });
            print(context.format, &listed, || match &stored {
                None => format!("app {app} has no secrets on chain"),
                Some(s) => {
                    let mut text = format!(
                        "app {app}: secrets sealed to worker {} (revision {})",
                        s.worker, s.revision
                    );
                    for secret in s.secrets.iter() {
                        text.push_str(&format!(
                            "\n  {}  (revision {})",
                            secret.name.as_str(),
                            secret.revision
                        ));
                    }
                    text
                }
            });
            return Ok(());
        }
        SecretsCommand::Set {
            signer,
            app,
            file,
            remove,
            allow_images,
            expect_measurements,
            allow_simulated_tee,
        } => (
            signer,
            app,
            match &file {
                Some(file) => secret_values(file)?,
                None if remove.is_empty() => bail!(
                    "give the values with --file FILE (NAME=VALUE lines), or --file - to read \
                     them from standard input"
                ),
                None => Vec::new(),
            },
            remove,
            SealOptions {
                allowed_images: allow_images,
                expected_measurements: expect_measurements,
                allow_simulated: allow_simulated_tee,
            },
        ),
        SecretsCommand::Reseal {
            signer,
            app,
            expect_measurements,
            allow_simulated_tee,
        } => (
            signer,
            app,
            Vec::new(),
            Vec::new(),
            SealOptions {
                allowed_images: Vec::new(),
                expected_measurements: expect_measurements,
                allow_simulated: allow_simulated_tee,
            },
        ),
    };
    let key = context.signing_key(&signer.from)?;
    let light = connect_light(context).await?;
    let (call, worker) = wetee_client::secrets::seal(&light, &key, app, &values, &remove, &options)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if context.format == Format::Text {
        eprintln!(
            "worker {}'s attestation verified here ({}); sealing to its key",
            worker.id, worker.evidence.kind
        );
    }
    send(context, &signer, call).await
}

/// When the app has secrets and `spec`'s image may not receive them yet: the owner's consent,
/// which lets the new image (and only it) receive them, signed over the stored record.
pub(super) async fn secrets_grant(
    context: &Session<'_>,
    signer: &Signer,
    app: AppId,
    spec: &wetee_types::manifest::AppSpec,
) -> Result<Option<wetee_types::transaction::SecretsGrant>> {
    // Whether a grant is needed at all: a node lying here only gets the update refused.
    let image = &spec.container.image.digest;
    let client = connect(context).await?;
    if client
        .app_secrets(app)
        .await?
        .is_none_or(|record| record.allows_image(image))
    {
        return Ok(None);
    }
    // What the owner signs is read and verified through the light client.
    let light = connect_light(context).await?;
    let Some(record) = wetee_client::secrets::grant_record(&light, app, image).await? else {
        return Ok(None);
    };
    let key = context.signing_key(&signer.from)?;
    let signature = key.sign(&record.signing_payload(&light.genesis_hash(), app));
    if context.format == Format::Text {
        eprintln!(
            "the app's secrets will be given to the new image {image_hex} only",
            image_hex = hex::encode(image)
        );
    }
    Ok(Some(wetee_types::transaction::SecretsGrant {
        allowed_images: record.allowed_images,
        signature,
    }))
}

/// A measurement rule in JSON.
pub(super) fn parse_measurement_rule(
    text: &str,
) -> Result<wetee_types::attestation::MeasurementRule, String> {
    let rule: wetee_types::attestation::MeasurementRule =
        serde_json::from_str(text).map_err(|e| format!("not a measurement rule: {e}"))?;
    if !rule.is_pinned() {
        return Err("the rule pins no measurement and would match any worker".into());
    }
    Ok(rule)
}

/// `sha256:<64 hex>` (or the bare hex) as an image digest.
pub(super) fn parse_image_digest(text: &str) -> Result<wetee_types::Hash, String> {
    let digits = text.strip_prefix("sha256:").unwrap_or(text);
    hex::decode(digits)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(wetee_types::Hash)
        .ok_or_else(|| format!("`{text}` is not sha256:<64 hex digits>"))
}
