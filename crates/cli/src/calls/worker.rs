//! `wetee worker ...`: registering, staking and running worker clusters, their reports and complaints.

use super::*;

/// `wetee worker ...`: worker clusters.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Runs the worker agent: registers the cluster if needed, then runs what the chain
    /// assigns to it.
    Run(crate::worker::RunArgs),
    /// What this machine's TEE attests for the running build, and the rule admitting exactly
    /// it.
    Measurements(crate::worker::MeasurementsArgs),
    /// Every registered worker.
    List,
    /// One worker.
    Show {
        /// The worker.
        worker: WorkerId,
    },
    /// Registers a cluster operated by the signer.
    Register {
        #[command(flatten)]
        signer: Signer,
        /// The offer (JSON or TOML): capacity, prices, region, endpoint.
        #[arg(long)]
        profile: PathBuf,
        /// The TEE-bound keys and their evidence (JSON).
        #[arg(long)]
        attestation: PathBuf,
    },
    /// Replaces the offer, and optionally the attested keys.
    Update {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// The new offer (JSON or TOML).
        #[arg(long)]
        profile: PathBuf,
        /// New keys and evidence (JSON).
        #[arg(long)]
        attestation: Option<PathBuf>,
    },
    /// Bonds more stake.
    Stake {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// How much.
        amount: Balance,
    },
    /// Starts unbonding stake.
    Unstake {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// How much.
        amount: Balance,
    },
    /// Accepts placements.
    Start {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
    },
    /// Stops accepting placements and drains.
    Stop {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
    },
    /// Uploads a signed work report (JSON).
    SubmitReport {
        #[command(flatten)]
        signer: Signer,
        /// The report.
        #[arg(long)]
        report: PathBuf,
    },
    /// Moves earnings and unlocked stake to the operator.
    Withdraw {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
    },
    /// Complains about a worker, locking a bond.
    Complain {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// Hash of the evidence.
        #[arg(long)]
        evidence_hash: Hash,
        /// The bond.
        #[arg(long)]
        bond: Balance,
    },
    /// Root only: slashes a worker's stake.
    Slash {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// How much.
        amount: Balance,
        /// The complaint this upholds.
        #[arg(long)]
        complaint: Option<ComplaintId>,
    },
    /// Root only: dismisses a complaint.
    DismissComplaint {
        #[command(flatten)]
        signer: Signer,
        /// The complaint.
        complaint: ComplaintId,
    },
    /// Posts Intel's collateral (JSON in dcap-qvl's QuoteCollateralV3 layout) for a platform
    /// family; anyone may. The chain stores it only if Intel signed it, it is current, and it
    /// is newer than what the chain has.
    PostCollateral {
        #[command(flatten)]
        signer: Signer,
        /// The collateral file.
        collateral: PathBuf,
    },
}

/// `wetee worker ...`.
pub async fn worker(command: WorkerCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        WorkerCommand::Run(_) => bail!("`wetee worker run` is not a transaction"),
        WorkerCommand::Measurements(_) => {
            bail!("`wetee worker measurements` is not a transaction")
        }
        WorkerCommand::List => {
            show(context.format, &connect(context).await?.workers().await?);
            return Ok(());
        }
        WorkerCommand::Show { worker } => {
            let client = connect(context).await?;
            let found = client
                .worker(worker)
                .await?
                .with_context(|| format!("no worker {worker}"))?;
            let workloads = client.workloads(worker).await?;
            show(
                context.format,
                &serde_json::json!({ "worker": found, "workloads": workloads }),
            );
            return Ok(());
        }
        WorkerCommand::Register {
            signer,
            profile,
            attestation,
        } => {
            let profile: WorkerProfile = read_document(&profile)?;
            let attestation: Attestation = read_document(&attestation)?;
            (
                signer,
                WorkersCall::Register {
                    profile,
                    attestation,
                },
            )
        }
        WorkerCommand::Update {
            signer,
            worker,
            profile,
            attestation,
        } => {
            let profile: WorkerProfile = read_document(&profile)?;
            let attestation: Option<Attestation> =
                attestation.as_deref().map(read_document).transpose()?;
            (
                signer,
                WorkersCall::Update {
                    worker,
                    profile,
                    attestation,
                },
            )
        }
        WorkerCommand::Stake {
            signer,
            worker,
            amount,
        } => (signer, WorkersCall::Stake { worker, amount }),
        WorkerCommand::Unstake {
            signer,
            worker,
            amount,
        } => (signer, WorkersCall::Unstake { worker, amount }),
        WorkerCommand::Start { signer, worker } => (signer, WorkersCall::Start { worker }),
        WorkerCommand::Stop { signer, worker } => (signer, WorkersCall::Stop { worker }),
        WorkerCommand::SubmitReport { signer, report } => {
            let report: SignedWorkReport = read_document(&report)?;
            (signer, WorkersCall::SubmitWorkReport { report })
        }
        WorkerCommand::Withdraw { signer, worker } => (signer, WorkersCall::Withdraw { worker }),
        WorkerCommand::Complain {
            signer,
            worker,
            evidence_hash,
            bond,
        } => (
            signer,
            WorkersCall::FileComplaint {
                worker,
                evidence_hash,
                bond,
            },
        ),
        WorkerCommand::Slash {
            signer,
            worker,
            amount,
            complaint,
        } => (
            signer,
            WorkersCall::Slash {
                worker,
                amount,
                complaint,
            },
        ),
        WorkerCommand::DismissComplaint { signer, complaint } => {
            (signer, WorkersCall::DismissComplaint { complaint })
        }
        WorkerCommand::PostCollateral { signer, collateral } => {
            let bytes = std::fs::read(&collateral)
                .with_context(|| format!("reading {}", collateral.display()))?;
            let len = bytes.len();
            let collateral = bytes.try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{len} bytes: the chain stores at most {}",
                    wetee_types::records::MAX_COLLATERAL_BYTES
                )
            })?;
            let call = Call::Attestation(AttestationCall::PostCollateral { collateral });
            return send(context, &signer, call).await;
        }
    };
    send(context, &signer, Call::Workers(call)).await
}
