//! `wetee task ...`: one-off and periodic tasks.

use super::*;

/// `wetee task ...`: one-off and periodic tasks.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Tasks, all or the owner's.
    List {
        /// Only this owner's.
        #[arg(long)]
        owner: Option<AccountId>,
    },
    /// One task with its versions.
    Show {
        /// The task.
        task: TaskId,
    },
    /// A task's runs and their results.
    Runs {
        /// The task.
        task: TaskId,
    },
    /// A run's output and logs, from the worker that ran it (owner only).
    Logs {
        /// The task.
        task: TaskId,
        /// The run's number.
        run: u32,
        /// The owner's key.
        #[arg(long, default_value = "//Alice")]
        from: String,
    },
    /// Creates a task from its specification, reserving a deposit.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The task's specification (JSON or TOML).
        #[arg(long, short = 'f')]
        spec: PathBuf,
        /// The prepaid deposit.
        #[arg(long)]
        deposit: Balance,
    },
    /// Replaces the specification.
    Update {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
        /// The new specification (JSON or TOML).
        #[arg(long, short = 'f')]
        spec: PathBuf,
    },
    /// Changes the schedule, timeout or run limit (JSON or TOML).
    SetExecution {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
        /// The execution settings.
        #[arg(long)]
        execution: PathBuf,
    },
    /// Adds to the deposit.
    Recharge {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
        /// How much.
        amount: Balance,
    },
    /// Stops scheduling runs and refunds what no run holds.
    Stop {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
    },
}

/// `wetee task ...`.
pub async fn task(command: TaskCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        TaskCommand::List { owner } => {
            show(
                context.format,
                &connect(context).await?.tasks(owner.as_ref()).await?,
            );
            return Ok(());
        }
        TaskCommand::Show { task } => {
            let client = connect(context).await?;
            let state = TaskState::read(&client, task).await?;
            print(context.format, &state, || state.to_text());
            return Ok(());
        }
        TaskCommand::Logs { task, run, from } => {
            let client = connect(context).await?;
            let runs = client.task_runs(task).await?;
            let record = runs
                .iter()
                .find(|r| r.run == run)
                .with_context(|| format!("task {task} has no run {run}"))?;
            let worker = record
                .worker
                .with_context(|| format!("run {run} of task {task} was never assigned"))?;
            let path = format!("/_wetee/tasks/{task}/runs/{run}/logs");
            let logs = Some(wetee_types::Workload::TaskRun { task, run });
            return owner_get(context, worker, &from, &path, logs).await;
        }
        TaskCommand::Runs { task } => {
            let runs = connect(context).await?.task_runs(task).await?;
            print(context.format, &runs, || {
                if runs.is_empty() {
                    return format!("task {task} has no runs yet");
                }
                runs.iter()
                    .map(crate::task_state::run_words)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(());
        }
        TaskCommand::Create {
            signer,
            spec,
            deposit,
        } => {
            let spec = read_task_spec(&spec)?;
            publish_sealing_key(context, &signer).await;
            (signer, TasksCall::Create { spec, deposit })
        }
        TaskCommand::Update { signer, task, spec } => {
            let spec = read_task_spec(&spec)?;
            (signer, TasksCall::Update { task, spec })
        }
        TaskCommand::SetExecution {
            signer,
            task,
            execution,
        } => {
            let execution: TaskExecution = read_document(&execution)?;
            (signer, TasksCall::SetExecution { task, execution })
        }
        TaskCommand::Recharge {
            signer,
            task,
            amount,
        } => (signer, TasksCall::Recharge { task, amount }),
        TaskCommand::Stop { signer, task } => (signer, TasksCall::Stop { task }),
    };
    send(context, &signer, Call::Tasks(call)).await
}
