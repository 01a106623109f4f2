//! The binary's commands. Thin: parse arguments, call the library, print.

mod audit;
pub mod client;
mod load;
mod passport;
mod token;
pub mod witness;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::access::tokens::TokenStore;
use crate::api::{self, AppState};
use crate::crypto::SecretKey;
use crate::demo::{self, DemoOptions};
use crate::ledger::{self, GenesisParams, LOG_FILE, Ledger, Options};
use crate::model::{CountryCode, ParticipantId};

/// oretrail: a signed, hash-chained, append-only chain-of-custody ledger.
#[derive(Debug, Parser)]
#[command(name = "oretrail", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ORETRAIL_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a ledger: a log key, an operator key and the genesis entry.
    Init {
        /// Data folder to create.
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// Log name: the checkpoint origin line and the log key's name.
        #[arg(long)]
        name: String,
        /// Participant id of the operator.
        #[arg(long, default_value = "operator")]
        operator: String,
        /// Legal name of the operator.
        #[arg(long, default_value = "Ledger operator")]
        operator_name: String,
        /// ISO 3166-1 alpha-2 country of the operator.
        #[arg(long, default_value = "CH")]
        country: String,
        /// Leave an existing ledger in the folder as it is instead of failing.
        #[arg(long)]
        if_missing: bool,
    },
    /// Build a demo ledger: a year (2026) of a copper and zinc supply chain,
    /// seven mines to one smelter to three buyers, signed by deterministic
    /// demo participants whose keys are written to <data>/keys/demo/.
    Demo {
        /// Data folder to create; it must be missing or empty.
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// Leave an existing ledger in the folder as it is instead of failing.
        #[arg(long)]
        if_missing: bool,
    },
    /// Serve the HTTP API over a ledger until SIGINT or SIGTERM.
    Serve {
        /// Data folder of the ledger.
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080", env = "ORETRAIL_ADDR")]
        addr: SocketAddr,
        /// Build the demo ledger first when the data folder holds none.
        #[arg(long)]
        demo: bool,
    },
    /// Generate an Ed25519 key file (mode 0600).
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the latest signed checkpoint note of a data folder; or, with
    /// `verify`, check a served one and its witnesses' cosignatures.
    Checkpoint {
        #[command(subcommand)]
        command: Option<witness::CheckpointCommand>,
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
    },
    /// Witness a log: check each new checkpoint extends the last one this
    /// witness cosigned, cosign it (C2SP tlog-cosignature) and submit the
    /// cosignature; alarm and exit 3 on a fork or rollback. Subcommands:
    /// a witness's key line, and the operator's trusted witnesses.
    Witness(witness::WitnessArgs),
    /// Print the log's verifier key line: <origin>+<key id>+<base64 key>.
    LogKey {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
    },
    /// Re-check every signature, link, rule, root and checkpoint of a ledger.
    Verify {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
    },
    /// Work with events on the client side.
    Event {
        #[command(subcommand)]
        command: EventCommand,
    },
    /// Issue, list and revoke the bearer tokens readers of the API use
    /// (works while the server runs).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Measure ingest and provenance reads over loopback: builds a ledger
    /// (1M entries by default), serves it on 127.0.0.1 in this process and
    /// prints events/s and p50/p99 latencies (BENCHMARKS.md, "HTTP load").
    Load(load::LoadArgs),
    /// Audit outputs from the log alone (works while the server runs):
    /// the GS1 EPCIS 2.0 export, audit bundles to export and verify, and
    /// audit reports.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Lot passports (works while the server runs): `passport LOT --out
    /// FILE` (or `passport export LOT --out FILE`) writes one file with a
    /// lot's provenance graph and every entry behind it, with inclusion
    /// proofs against a signed checkpoint; `passport verify FILE` checks it
    /// offline.
    Passport(passport::PassportArgs),
    /// Sign a JSON event and POST it to a server's /v1/events (plain
    /// http:// only); prints the receipt.
    Submit {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "ORETRAIL_URL")]
        url: String,
        #[command(flatten)]
        sign: SignArgs,
    },
}

#[derive(Debug, Subcommand)]
enum EventCommand {
    /// Sign a JSON event; prints the body POST /v1/events takes.
    Sign {
        #[command(flatten)]
        sign: SignArgs,
    },
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    /// Key file of the signer (as `oretrail keygen` writes it).
    #[arg(long)]
    key: PathBuf,
    /// Ledger origin, for events that do not name one.
    #[arg(long)]
    ledger: Option<String>,
    /// The event as JSON (`-` for stdin); `time` and `nonce` may be
    /// omitted (now, random).
    event: PathBuf,
}

/// Runs the binary; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format, default_log_filter(&cli.command));
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The log filter when `ORETRAIL_LOG` is not set. `load` leaves out the
/// line per request: it makes hundreds of thousands and reports them itself.
fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Load(_) => "warn",
        _ => "warn,oretrail::request=info",
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    // Warnings, plus the one line per HTTP request (`api::metrics::track`)
    // unless the command leaves it out.
    let filter =
        EnvFilter::try_from_env("ORETRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let progress = std::io::stderr().is_terminal();
    match command {
        Command::Init {
            data,
            name,
            operator,
            operator_name,
            country,
            if_missing,
        } => {
            if if_missing && data.join(LOG_FILE).exists() {
                println!(
                    "a ledger already exists in {}; left as it is",
                    data.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let params = GenesisParams {
                origin: name,
                operator: ParticipantId::new(operator)?,
                operator_name,
                operator_country: CountryCode::new(country)?,
            };
            let ledger = Ledger::create(
                &data,
                params,
                Options {
                    progress,
                    ..Options::default()
                },
            )
            .with_context(|| format!("creating a ledger in {}", data.display()))?;
            println!(
                "created ledger {} in {}",
                ledger.info().map(|i| i.origin).unwrap_or_default(),
                data.display()
            );
            println!(
                "log key:      {}",
                ledger.log_key_line().unwrap_or_default()
            );
            println!("secret keys:  {}", data.join(ledger::KEYS_DIR).display());
            ledger.close()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { data, if_missing } => {
            if if_missing && data.join(LOG_FILE).exists() {
                println!(
                    "a ledger already exists in {}; left as it is",
                    data.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let started = Instant::now();
            let summary = demo::build(&data, DemoOptions { progress })
                .with_context(|| format!("building the demo ledger in {}", data.display()))?;
            println!(
                "built demo ledger {} in {} ({:.1} s)",
                summary.origin,
                data.display(),
                started.elapsed().as_secs_f64()
            );
            println!("entries:      {}", summary.entries);
            println!(
                "lots:         {} ({} concentrate, {} cathode, {} zinc ingot, {} blend, {} anode, {} slime)",
                summary.lots(),
                summary.concentrate_lots,
                summary.cathode_lots,
                summary.ingot_lots,
                summary.blend_lots,
                summary.anode_lots,
                summary.slime_lots
            );
            println!(
                "participants: {} ({} mines in {} countries: {})",
                summary.participants,
                summary.mines,
                summary.mine_countries.len(),
                summary.mine_countries.join(", ")
            );
            println!(
                "red flags:    {} decided by the smelter's compliance officer",
                summary.flag_decisions
            );
            println!(
                "refused:      {} events, as the demo expected",
                summary.expected_refusals.len()
            );
            println!("root:         {}", hex::encode(summary.root));
            println!(
                "secret keys:  {}",
                data.join(ledger::KEYS_DIR).join("demo").display()
            );
            let tokens = token::issue_demo_tokens(&data)?;
            if let Some(line) = demo_tokens_line(&tokens) {
                println!("read tokens:  {line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { data, addr, demo } => {
            if demo && !data.join(LOG_FILE).exists() {
                build_demo_to_serve(&data, progress)?;
            }
            serve(&data, addr, progress)
        }
        Command::Keygen { out } => {
            let key = SecretKey::generate()?;
            key.write_file(&out)?;
            println!("{}", key.public());
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint {
            command: Some(command),
            ..
        } => witness::run_checkpoint(command),
        Command::Witness(args) => witness::run(args),
        Command::Checkpoint {
            data,
            command: None,
        } => {
            let head = ledger::read_head(&data.join(LOG_FILE))?;
            print!("{}", head.note);
            Ok(ExitCode::SUCCESS)
        }
        Command::LogKey { data } => {
            let head = ledger::read_head(&data.join(LOG_FILE))?;
            println!("{}", head.verifier_key);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { data } => {
            let path = data.join(LOG_FILE);
            if !path.exists() {
                anyhow::bail!(
                    "{} is not an oretrail data folder (no log file)",
                    data.display()
                );
            }
            // A ledger open in another process may be writing a batch
            // after its last checkpoint: check up to that checkpoint.
            let live = crate::files::is_locked(&data.join(ledger::WRITER_LOCK_FILE))?;
            let result = if live {
                match crate::audit::LogSnapshot::open(&path) {
                    Ok(snapshot) => snapshot.verify((), progress).map(|(report, ())| report),
                    Err(_) => ledger::verify_log(&path, progress),
                }
            } else {
                ledger::verify_log(&path, progress)
            };
            match result {
                Ok(report) => {
                    println!(
                        "intact: {} entries, {} checkpoints, root {}, origin {}{}",
                        report.entries,
                        report.checkpoints,
                        hex::encode(report.root),
                        report.origin,
                        if live {
                            " (the ledger is open in another process: checked up to its last \
                             checkpoint; a batch being written after it is not)"
                        } else {
                            ""
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(failure) => {
                    println!("FAILED at entry {}: {}", failure.index, failure.reason);
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Event {
            command: EventCommand::Sign { sign },
        } => {
            let signed = client::sign_file(&sign.event, &sign.key, sign.ledger.as_deref())?;
            println!(
                "{}",
                serde_json::to_string(&client::SignedEventBody::from(&signed))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => token::run(command),
        Command::Load(args) => load::run(args),
        Command::Audit { command } => audit::run(command, progress),
        Command::Passport(args) => passport::run(args, progress),
        Command::Submit { url, sign } => {
            let signed = client::sign_file(&sign.event, &sign.key, sign.ledger.as_deref())?;
            let answer = client::submit(&url, &signed)?;
            if answer.is_success() {
                println!("{}", answer.text().trim_end());
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{}", answer.text().trim_end());
                eprintln!(
                    "error: the server refused the event: {}",
                    answer.error_line()
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// `oretrail serve --demo` on a folder without a ledger.
fn build_demo_to_serve(data: &Path, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let summary = demo::build(data, DemoOptions { progress })
        .with_context(|| format!("building the demo ledger in {}", data.display()))?;
    println!(
        "built demo ledger {} in {} ({} entries, {:.1} s)",
        summary.origin,
        data.display(),
        summary.entries,
        started.elapsed().as_secs_f64()
    );
    token::issue_demo_tokens(data)?;
    Ok(())
}

/// Where the demo's reader tokens are: `FOLDER (a.token, b.token, ...)`;
/// `None` when there are none.
fn demo_tokens_line(files: &[PathBuf]) -> Option<String> {
    let first = files.first()?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    Some(format!(
        "{} ({})",
        first.parent().unwrap_or(first).display(),
        names.join(", ")
    ))
}

/// `oretrail serve`: opens the ledger, serves the API until SIGINT or
/// SIGTERM, lets the requests in flight finish and closes the ledger, so
/// every acknowledged append is in the log and nothing queued is lost.
fn serve(data: &Path, addr: SocketAddr, progress: bool) -> anyhow::Result<ExitCode> {
    if !data.join(LOG_FILE).exists() {
        anyhow::bail!(
            "{} holds no ledger; create one with `oretrail init`, or pass --demo to build the demo ledger",
            data.display()
        );
    }
    let ledger = Arc::new(
        Ledger::open(
            data,
            Options {
                progress,
                ..Options::default()
            },
        )
        .with_context(|| format!("opening the ledger in {}", data.display()))?,
    );
    // A malformed token file stops the server here, not at the first read.
    let tokens = TokenStore::open(data)?;
    let demo_tokens = token::demo_token_files(data);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        // Listening for the signals before saying where to connect, so
        // that a signal sent once the address is known stops us cleanly.
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        let origin = ledger.info().map(|i| i.origin).unwrap_or_default();
        println!(
            "serving ledger {origin} ({} entries) from {}",
            ledger.size(),
            data.display()
        );
        println!("listening on http://{local}");
        println!("  checkpoint:  http://{local}/v1/checkpoint");
        println!("  log key:     http://{local}/v1/log/key");
        println!("  entries:     http://{local}/v1/entries?start=0&end=10");
        println!("  submit:      POST http://{local}/v1/events (README, \"HTTP API\")");
        println!("  docs:        http://{local}/docs/ (OpenAPI: /v1/openapi.json)");
        println!("  metrics:     http://{local}/metrics");
        if let Some(reader) = demo_tokens
            .iter()
            .find(|f| f.ends_with("auditor.trailcheck.token"))
            .or(demo_tokens.first())
        {
            println!(
                "  read:        curl -H \"Authorization: Bearer $(cat {})\" http://{local}/v1/entries/1",
                reader.display()
            );
        } else {
            println!(
                "  read:        with a token from `oretrail token issue --participant ID` \
                 (README, \"Who sees what\")"
            );
        }
        if let Some(line) = demo_tokens_line(&demo_tokens) {
            println!("  tokens:      {line}");
        }
        println!("stop with Ctrl-C or SIGTERM");
        api::serve(
            listener,
            AppState::new(ledger.clone()).with_tokens(tokens),
            shutdown,
        )
        .await
        .context("serving the API")
    });
    // Blocking reads abandoned by timed-out requests finish here.
    runtime.shutdown_timeout(Duration::from_secs(30));
    served?;
    let size = ledger.size();
    match Arc::try_unwrap(ledger) {
        Ok(ledger) => ledger.close().context("closing the ledger")?,
        Err(_) => anyhow::bail!("the ledger is still in use after shutdown; it was not closed"),
    }
    println!("stopped; ledger closed with {size} entries");
    Ok(ExitCode::SUCCESS)
}

/// Listens for SIGINT and SIGTERM from now on; the future completes on the
/// first of them. Must be called inside the runtime.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down: finishing the requests in flight");
    })
}
