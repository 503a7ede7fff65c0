//! `wetee app ...`: long-running apps: deploy, update, settings, recharge, restart, stop, status and logs.

use super::*;

/// `wetee app ...`: long-running apps.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Deploys an app from its manifest and (with --wait) follows it until it serves.
    Deploy(crate::deploy::DeployArgs),
    /// An app's state, where it runs, and its URL.
    Status {
        /// The app.
        app: AppId,
        /// The owner's key: opens the failure report's log lines, which are sealed to it.
        #[arg(long)]
        from: Option<String>,
    },
    /// The app's logs, from its worker (owner only).
    Logs {
        /// The app.
        app: AppId,
        /// The owner's key.
        #[arg(long, default_value = "//Alice")]
        from: String,
        /// Keep printing new lines.
        #[arg(long)]
        follow: bool,
    },
    /// The app's containers, uptime and resource use per epoch, from its worker (owner only).
    Metrics {
        /// The app.
        app: AppId,
        /// The owner's key.
        #[arg(long, default_value = "//Alice")]
        from: String,
    },
    /// Apps, all or the owner's.
    List {
        /// Only this owner's.
        #[arg(long)]
        owner: Option<AccountId>,
    },
    /// One app with its versions.
    Show {
        /// The app.
        app: AppId,
    },
    /// Creates an app from its specification, reserving a deposit.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The app's manifest (`wetee.toml`) or on-chain specification (JSON).
        #[arg(long, short = 'f')]
        spec: PathBuf,
        /// The prepaid deposit.
        #[arg(long)]
        deposit: Balance,
    },
    /// Deploys a new version.
    Update {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// The new specification (JSON or TOML).
        #[arg(long, short = 'f')]
        spec: PathBuf,
    },
    /// Changes env, secret names or replicas (JSON or TOML settings).
    SetSettings {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// The settings.
        #[arg(long)]
        settings: PathBuf,
    },
    /// Adds to the deposit.
    Recharge {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// How much.
        amount: Balance,
    },
    /// Restarts the app's containers.
    Restart {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
    },
    /// Stops the app and refunds the unused deposit.
    Stop {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
    },
    /// Secrets sealed to the TEE of the app's worker.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

/// `wetee app ...`.
pub async fn app(command: AppCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        AppCommand::Deploy(args) => return crate::deploy::deploy(context, args).await,
        AppCommand::Status { app, from } => {
            let client = connect(context).await?;
            let mut state = AppState::read(&client, app)
                .await?
                .with_context(|| format!("there is no app {app}"))?;
            if let Some(from) = from {
                let owner = context.signing_key(&from)?;
                match connect_light(context).await {
                    Ok(light) => state.open_log(Some(&light), &owner).await,
                    Err(e) if state.failure.is_some() => {
                        state.failure_log_error = Some(format!("{e:#}"));
                    }
                    Err(_) => {}
                }
            }
            print(context.format, &state, || state.to_text());
            return Ok(());
        }
        AppCommand::Logs { app, from, follow } => {
            let query = if follow { "?follow=1" } else { "" };
            let target = format!("/_wetee/apps/{app}/logs{query}");
            let logs = Some(wetee_types::Workload::App { app });
            return owner_request(context, app, &from, &target, logs).await;
        }
        AppCommand::Metrics { app, from } => {
            let target = format!("/_wetee/apps/{app}/status");
            return owner_request(context, app, &from, &target, None).await;
        }
        AppCommand::List { owner } => {
            show(
                context.format,
                &connect(context).await?.apps(owner.as_ref()).await?,
            );
            return Ok(());
        }
        AppCommand::Show { app } => {
            let client = connect(context).await?;
            let found = client
                .app(app)
                .await?
                .with_context(|| format!("no app {app}"))?;
            let versions = client.app_versions(app).await?;
            show(
                context.format,
                &serde_json::json!({ "app": found, "versions": versions }),
            );
            return Ok(());
        }
        AppCommand::Create {
            signer,
            spec,
            deposit,
        } => {
            let spec = read_app_spec(&spec)?;
            publish_sealing_key(context, &signer).await;
            (signer, AppsCall::Create { spec, deposit })
        }
        AppCommand::Update { signer, app, spec } => {
            let spec = read_app_spec(&spec)?;
            let secrets_grant = secrets::secrets_grant(context, &signer, app, &spec).await?;
            (
                signer,
                AppsCall::Update {
                    app,
                    spec,
                    secrets_grant,
                },
            )
        }
        AppCommand::SetSettings {
            signer,
            app,
            settings,
        } => {
            let settings: AppSettings = read_document(&settings)?;
            (signer, AppsCall::SetSettings { app, settings })
        }
        AppCommand::Recharge {
            signer,
            app,
            amount,
        } => (signer, AppsCall::Recharge { app, amount }),
        AppCommand::Restart { signer, app } => (signer, AppsCall::Restart { app }),
        AppCommand::Stop { signer, app } => (signer, AppsCall::Stop { app }),
        AppCommand::Secrets(command) => return secrets::secrets(command, context).await,
    };
    send(context, &signer, Call::Apps(call)).await
}
