//! `wetee`: the command line of WeTEE.

#![forbid(unsafe_code)]

mod attest;
mod bench;
mod bench_dev;
mod bench_ingress;
mod calls;
mod console;
mod deploy;
mod dev;
mod keys;
mod logs;
mod node;
mod output;
mod owner_api;
mod progress;
mod signals;
mod spec;
mod task_state;
mod worker;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use wetee_client::keys::Keystore;
use wetee_types::KeyScheme;

use output::{Format, print};

#[derive(Debug, Parser)]
#[command(
    name = "wetee",
    version,
    about = "WeTEE: a decentralized confidential cloud"
)]
struct Cli {
    /// How to print results.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "text")]
    output: Format,
    /// Signature scheme for keys given as URIs or mnemonics.
    #[arg(long, global = true, value_enum, default_value = "sr25519")]
    scheme: SchemeArg,
    /// The keystore directory (default: $WETEE_HOME/keys or ~/.wetee/keys).
    #[arg(long, global = true, env = "WETEE_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// The node to talk to.
    #[arg(
        long,
        global = true,
        env = "WETEE_RPC",
        default_value = "ws://127.0.0.1:9944"
    )]
    rpc: String,
    /// The chain to trust, by its spec's genesis hash, where an answer must be verified rather
    /// than believed (sealing secrets); default: the chain spec of `wetee dev`, if any.
    #[arg(
        long,
        global = true,
        env = "WETEE_GENESIS_HASH",
        conflicts_with = "chain_spec"
    )]
    genesis_hash: Option<wetee_types::Hash>,
    /// The chain to trust, by its spec file.
    #[arg(long, global = true, env = "WETEE_CHAIN_SPEC")]
    chain_spec: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SchemeArg {
    Sr25519,
    Ed25519,
}

impl From<SchemeArg> for KeyScheme {
    fn from(scheme: SchemeArg) -> KeyScheme {
        match scheme {
            SchemeArg::Sr25519 => KeyScheme::Sr25519,
            SchemeArg::Ed25519 => KeyScheme::Ed25519,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Account keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// The chain: specs, status, blocks, events.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Balances and transfers.
    #[command(subcommand)]
    Account(calls::AccountCommand),
    /// Worker clusters.
    #[command(subcommand)]
    Worker(calls::WorkerCommand),
    /// Long-running apps.
    #[command(subcommand)]
    App(calls::AppCommand),
    /// One-off and periodic tasks.
    #[command(subcommand)]
    Task(calls::TaskCommand),
    /// Calls of the root key.
    #[command(subcommand)]
    Root(calls::RootCommand),
    /// Runs a validator of the chain in SPEC.
    Node(node::NodeArgs),
    /// Runs a single-validator development chain with funded dev accounts.
    Dev(dev::DevArgs),
    /// Runs a local network of validators, one process each, until interrupted.
    Testnet(node::TestnetArgs),
    /// TEE evidence: verify quotes and reports offline.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Measures the system on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Serves the web console for a chain on this machine (`wetee dev` serves one already).
    Console(console::ConsoleArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Finality latency, transfers per second, and pauses with a validator down, on a fresh
    /// local network (build with --release for meaningful numbers).
    Chain(bench::ChainBenchArgs),
    /// Time from `app create` to the first HTTP 200 on a dev chain with a local worker, and
    /// the worker's CPU use while idle with many apps.
    Deploy(bench::DeployBenchArgs),
    /// Attestation verifications per second on one core, with every check, over the genuine
    /// SGX, TDX and SEV-SNP vectors and the simulated TEE.
    Attest(attest::AttestBenchArgs),
    /// The CPU an idle `wetee dev` (node and worker, no apps) uses.
    Dev(bench_dev::DevBenchArgs),
    /// Requests through the worker's ingress, plain and over TLS bound to a worker key, against
    /// the same app asked directly, at 1 and 64 clients.
    Ingress(bench_ingress::IngressBenchArgs),
    /// The app `wetee bench ingress --container` runs in its container: `ok` to every request.
    #[command(hide = true)]
    IngressApp(bench_ingress::IngressAppArgs),
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// Writes a chain spec: `--dev` for one local validator, `--validators N` for a local network.
    Spec {
        /// The single-validator dev chain.
        #[arg(long, conflicts_with = "validators")]
        dev: bool,
        /// A local network of N validators with fresh keys.
        #[arg(long)]
        validators: Option<usize>,
        /// Where to write the spec (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to write the validators' keys (with --validators).
        #[arg(long, default_value = "keys")]
        keys_dir: PathBuf,
        /// The first validator's peer-to-peer port; the others follow.
        #[arg(long, default_value_t = spec::FIRST_P2P_PORT)]
        p2p_port: u16,
    },
    #[command(flatten)]
    Query(calls::ChainQuery),
}

fn main() {
    let cli = Cli::parse();
    let format = cli.output;
    if let Command::Attest(command) = &cli.command {
        std::process::exit(attest::run(command, format));
    }
    if let Err(error) = run(cli) {
        match format {
            Format::Json => println!("{}", serde_json::json!({ "error": format!("{error:#}") })),
            Format::Text => eprintln!("error: {error:#}"),
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let keystore = cli
        .keystore
        .map(Keystore::new)
        .unwrap_or_else(Keystore::default_location);
    let scheme = KeyScheme::from(cli.scheme);
    let session = calls::Session {
        rpc: &cli.rpc,
        trust: calls::TrustArgs {
            genesis_hash: cli.genesis_hash,
            chain_spec: cli.chain_spec.clone(),
        },
        scheme,
        keystore: &keystore,
        format: cli.output,
    };
    match cli.command {
        Command::Key(command) => keys::run(command, scheme, &keystore, cli.output),
        Command::Account(command) => block_on(calls::account(command, &session)),
        Command::Worker(calls::WorkerCommand::Run(args)) => {
            worker::run(args, scheme, &keystore, cli.output)
        }
        Command::Worker(calls::WorkerCommand::Measurements(args)) => {
            worker::measurements(args, cli.output)
        }
        Command::Worker(command) => block_on(calls::worker(command, &session)),
        Command::App(command) => block_on(calls::app(command, &session)),
        Command::Task(command) => block_on(calls::task(command, &session)),
        Command::Root(command) => block_on(calls::root(command, &session)),
        Command::Chain(ChainCommand::Query(query)) => block_on(calls::chain(query, &session)),
        Command::Attest(_) => unreachable!("attest commands exit with their own status"),
        Command::Node(args) => node::node(args, &keystore, cli.output),
        Command::Dev(args) => dev::run(args, cli.output),
        Command::Testnet(args) => node::testnet(args, cli.output),
        Command::Bench(BenchCommand::Chain(args)) => bench::chain(args, cli.output),
        Command::Bench(BenchCommand::Deploy(args)) => bench::deploy(args, cli.output),
        Command::Bench(BenchCommand::Attest(args)) => attest::bench(args, cli.output),
        Command::Bench(BenchCommand::Dev(args)) => bench_dev::dev(args, cli.output),
        Command::Bench(BenchCommand::Ingress(args)) => bench_ingress::ingress(args, cli.output),
        Command::Bench(BenchCommand::IngressApp(args)) => bench_ingress::ingress_app(args),
        Command::Console(args) => console::run(args, &session.trust, cli.output),
        Command::Chain(ChainCommand::Spec {
            dev,
            validators,
            out,
            keys_dir,
            p2p_port,
        }) => {
            let spec = match (dev, validators) {
                (_, Some(count)) => {
                    spec::local_testnet_spec(count, p2p_port, &keys_dir, spec::now_ms())?
                }
                (true, None) => spec::dev_spec(spec::now_ms(), p2p_port)?,
                (false, None) => anyhow::bail!("say which chain: --dev or --validators N"),
            };
            let json = spec.to_json();
            match out {
                Some(path) => {
                    std::fs::write(&path, format!("{json}\n"))?;
                    let summary = serde_json::json!({
                        "spec": path,
                        "genesis_hash": spec.genesis_hash(),
                        "validators": spec.validators.len(),
                    });
                    print(cli.output, &summary, || {
                        format!(
                            "Wrote {} ({} validator{}, genesis {})",
                            path.display(),
                            spec.validators.len(),
                            if spec.validators.len() == 1 { "" } else { "s" },
                            spec.genesis_hash()
                        )
                    });
                }
                None => println!("{json}"),
            }
            Ok(())
        }
    }
}

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
