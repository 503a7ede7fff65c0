//! `wetee chain status|block|events`: what the chain holds, read from a node.

use super::*;

/// `wetee chain status|block|events` (`chain spec` is handled with the local commands).
#[derive(Debug, Subcommand)]
pub enum ChainQuery {
    /// The node's view of the chain.
    Status,
    /// A finalized block with its transactions, receipts and events.
    Block {
        /// A height or a 0x block hash (default: the latest finalized).
        block: Option<String>,
    },
    /// Events of finalized blocks, optionally filtered.
    Events {
        /// Keep printing events as blocks are finalized.
        #[arg(long)]
        follow: bool,
        /// Only events about this account.
        #[arg(long)]
        account: Option<AccountId>,
        /// Only events about this worker.
        #[arg(long)]
        worker: Option<WorkerId>,
        /// Only events about this app.
        #[arg(long)]
        app: Option<AppId>,
        /// Only events about this task.
        #[arg(long)]
        task: Option<TaskId>,
        /// Without --follow: how many recent blocks to read.
        #[arg(long, default_value_t = 20)]
        blocks: u64,
    },
}

pub(super) fn parse_block_id(text: &str) -> Result<BlockId> {
    if text.starts_with("0x") {
        return Ok(BlockId::Hash(
            text.parse().map_err(|e| anyhow::anyhow!("{text}: {e}"))?,
        ));
    }
    Ok(BlockId::Height(text.parse().with_context(|| {
        format!("{text} is neither a height nor a 0x block hash")
    })?))
}

/// `wetee chain status|block|events`.
pub async fn chain(command: ChainQuery, context: &Session<'_>) -> Result<()> {
    let client = connect(context).await?;
    match command {
        ChainQuery::Status => {
            let health = client.health().await?;
            print(context.format, &health, || {
                format!(
                    "{} (genesis {})\n  finalized  #{} {}\n  network    #{}\n  validators {}{}\n  pending    {} transactions",
                    health.chain,
                    health.genesis_hash,
                    health.finalized.height,
                    health.finalized.hash,
                    health.network_finalized,
                    health.validators,
                    if health.is_validator {
                        " (this node is one)"
                    } else {
                        ""
                    },
                    health.pending_transactions
                )
            });
        }
        ChainQuery::Block { block } => {
            let id = block.as_deref().map(parse_block_id).transpose()?;
            let block = client.block(id).await?;
            show(context.format, &block);
        }
        ChainQuery::Events {
            follow,
            account,
            worker,
            app,
            task,
            blocks,
        } => {
            let filter = EventFilter {
                account,
                worker,
                app,
                task,
            };
            let print_record = |record: &wetee_types::rpc::EventRecord| match context.format {
                Format::Json => println!("{}", serde_json::to_string(record).unwrap_or_default()),
                Format::Text => println!(
                    "#{:<8} {}",
                    record.block.height,
                    crate::output::event_words(&record.event)
                ),
            };
            if follow {
                let mut events = client.events(&filter).await?;
                while let Some(record) = events.next().await {
                    print_record(&record.context("reading an event")?);
                }
                bail!("the node closed the event stream");
            }
            let head = client.header(None).await?.header.height;
            for height in head.saturating_sub(blocks.saturating_sub(1))..=head {
                let block = client.block(Some(BlockId::Height(height))).await?;
                let at = wetee_types::rpc::BlockRef {
                    height: block.header.header.height,
                    hash: block.header.hash,
                };
                let records = wetee_types::rpc::event_records(
                    at,
                    &block.begin_events,
                    &block.receipts,
                    &block.end_events,
                );
                for (record, signer) in records {
                    if filter.matches(&record, signer.as_ref()) {
                        print_record(&record);
                    }
                }
            }
        }
    }
    Ok(())
}
