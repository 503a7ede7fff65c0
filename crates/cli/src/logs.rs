//! Log lines on stderr. Each command has a default of what to show; `RUST_LOG` chooses instead.

use std::io::IsTerminal as _;

use tracing_subscriber::fmt::MakeWriter;

/// `wetee node`, `wetee worker run`: what an operator follows.
pub const OPERATOR: &str = "info,commonware_storage=error,commonware_p2p=warn,\
    commonware_consensus=warn,commonware_broadcast=warn,commonware_runtime=warn,jsonrpsee=warn";

/// `wetee dev`: warnings, and what the node and the worker do once (start, register, start or
/// stop an app); nothing per block.
pub const DEV: &str =
    "warn,commonware_storage=error,wetee_cli=info,wetee_node=info,wetee_worker=info";

/// `wetee dev --verbose`: everything WeTEE does, block by block.
pub const DEV_VERBOSE: &str = "info,wetee_cli=debug,wetee_node=debug,wetee_worker=debug,\
    wetee_runtime=debug,commonware_storage=error,commonware_p2p=warn,commonware_consensus=warn,\
    commonware_broadcast=warn,commonware_runtime=warn,jsonrpsee=warn";

/// Sends log lines to `writer`, filtered by `RUST_LOG` or else by `default`; colored only on a
/// terminal.
pub fn init<W>(default: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
