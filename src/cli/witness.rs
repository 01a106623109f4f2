//! `oretrail witness`: follow a log's checkpoints, cosign the consistent
//! ones and submit the cosignatures to the log; alarm on a fork or a
//! rollback. `oretrail witness key|trust|untrust|list`: a witness's key
//! line, and the log operator's list of trusted witnesses.
//! `oretrail checkpoint verify`: what a buyer runs to require that
//! witnesses it trusts cosigned the checkpoint it is shown.
//!
//! The decision is `witness::observe` (pure); this module fetches, stores
//! and submits around it, over `cli::client` (plain `http://`).
//!
//! Exit codes of `oretrail witness`: 0 cosigned (and accepted by the log);
//! 1 refused a checkpoint it cannot use (bad signature, another log), or
//! the log did not accept the cosignature; 2 any other error (no server,
//! unreadable files); [`EXIT_ALARM`] (3) a fork or rollback: the state is
//! left as it was and nothing is cosigned.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};

use super::client::Client;
use crate::crypto::SecretKey;
use crate::ledger::LOG_FILE;
use crate::merkle::Hash;
use crate::merkle::checkpoint::{NoteVerifier, parse_verifier_key};
use crate::merkle::cosignature::{Cosigner, CosignerVerifier, verify_witnessed};
use crate::model::Timestamp;
use crate::witness::{
    Advance, Refusal, Sight, StateFile, TrustFile, WitnessFileError, WitnessState, claimed_size,
    observe,
};

/// Exit code of `oretrail witness` on a fork or a rollback.
pub const EXIT_ALARM: u8 = 3;

/// `oretrail witness ...`.
#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true)]
pub struct WitnessArgs {
    #[command(subcommand)]
    command: Option<WitnessCommand>,
    #[command(flatten)]
    run: RunArgs,
}

/// Witnessing a log (the command without a subcommand).
#[derive(Debug, Args)]
struct RunArgs {
    /// Base URL of the log's server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "ORETRAIL_URL", required = true)]
    url: Option<String>,
    /// The witness's state file: its memory of the last checkpoint it
    /// cosigned (created at the first cosignature; never goes backwards).
    #[arg(long, required = true)]
    state: Option<PathBuf>,
    /// Key file of the witness (as `oretrail keygen` writes it).
    #[arg(long, required = true)]
    key: Option<PathBuf>,
    /// The witness's name in its cosignatures, e.g. witness.example.org/w1.
    #[arg(long, env = "ORETRAIL_WITNESS_NAME", required = true)]
    name: Option<String>,
    /// The log's verifier key line (`<origin>+<key id>+<key>`), obtained
    /// from the operator out of band; pinned in the state at first sight.
    #[arg(long)]
    log_key: Option<String>,
    /// At first sight, trust the log key the server names itself
    /// (`GET /v1/log/key`) instead of one given with --log-key.
    #[arg(long, conflicts_with = "log_key")]
    trust_on_first_use: bool,
    /// Keep following the log: a round every --interval until SIGINT or
    /// SIGTERM (one round and exit without it).
    #[arg(long)]
    follow: bool,
    /// Time between rounds with --follow.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Print a witness's key line (`<name>+<key id>+<base64 key>`), for
    /// the log operator to trust and buyers to require.
    Key {
        /// Key file of the witness.
        #[arg(long)]
        key: PathBuf,
        /// The witness's name, as given to `oretrail witness --name`.
        #[arg(long)]
        name: String,
    },
    /// Trust a witness: the server accepts and serves its cosignatures
    /// (takes effect at once, also while the server runs).
    Trust {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// The witness's key line, as `oretrail witness key` prints it.
        line: String,
    },
    /// Stop trusting a witness: its cosignatures are neither accepted nor
    /// served any more.
    Untrust {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// The witness's name or its whole key line.
        witness: String,
    },
    /// List the trusted witnesses' key lines.
    List {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
    },
}

/// `oretrail checkpoint verify`.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Verify a checkpoint: signed by the log key and cosigned by every
    /// witness named. Exit 0 when it is, 1 when not (naming what is
    /// missing or wrong).
    Verify {
        /// Base URL of the log's server: verify the checkpoint it serves.
        #[arg(long, required_unless_present = "file")]
        url: Option<String>,
        /// With --url: the checkpoint of this tree size (default: the
        /// latest).
        #[arg(long, requires = "url")]
        size: Option<u64>,
        /// A checkpoint note saved earlier, instead of fetching one.
        #[arg(long, conflicts_with = "url")]
        file: Option<PathBuf>,
        /// The log's verifier key line, obtained independently.
        #[arg(long)]
        log_key: String,
        /// A witness that must have cosigned: its key line. Repeat for
        /// several; all of them are required.
        #[arg(long = "witness", value_name = "LINE")]
        witnesses: Vec<String>,
    },
}

/// Now, in POSIX seconds.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A cosignature time for people.
fn when(secs: u64) -> Timestamp {
    Timestamp::from_millis(secs.saturating_mul(1000))
}

fn read_cosigner(key: &Path, name: &str) -> anyhow::Result<Cosigner> {
    let key = SecretKey::read_file(key).context("reading the witness key file")?;
    Cosigner::new(name, key.signing_key().clone()).context("the witness name")
}

/// Why a round did not cosign.
#[derive(Debug)]
pub enum RoundError {
    /// The witness refused the served checkpoint; its state is unchanged.
    Refused(Box<Rejection>),
    /// Anything else: the server could not be asked, answered with an
    /// error, or a file could not be read or written.
    Failed(anyhow::Error),
}

/// A refused checkpoint, with the evidence an alarm shows.
#[derive(Debug)]
pub struct Rejection {
    /// Why ([`Refusal::is_alarm`] tells a fork or rollback).
    pub refusal: Refusal,
    /// The note the log served.
    pub served: String,
    /// The note the state remembers, if any.
    pub known: Option<String>,
}

impl From<anyhow::Error> for RoundError {
    fn from(e: anyhow::Error) -> Self {
        RoundError::Failed(e)
    }
}

impl From<WitnessFileError> for RoundError {
    fn from(e: WitnessFileError) -> Self {
        RoundError::Failed(e.into())
    }
}

/// A round that cosigned: what the witness decided and stored, and whether
/// the log accepted the cosignature (`Err` with the log's answer if not).
#[derive(Debug)]
pub struct Round {
    pub advance: Advance,
    pub submitted: Result<(), String>,
}

/// A witness of one log: its server, its (locked) state file, its key and
/// the log key it was given.
#[derive(Debug)]
pub struct Witness {
    client: Client,
    state: StateFile,
    cosigner: Cosigner,
    pinned: Option<NoteVerifier>,
    trust_on_first_use: bool,
}

impl Witness {
    /// A witness of the log at `url`, locking its state file for as long
    /// as it lives. `pinned` is the log key given (required at first
    /// sight unless `trust_on_first_use`).
    pub fn new(
        url: &str,
        state: &Path,
        cosigner: Cosigner,
        pinned: Option<NoteVerifier>,
        trust_on_first_use: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: Client::new(url)?,
            state: StateFile::lock(state)?,
            cosigner,
            pinned,
            trust_on_first_use,
        })
    }

    /// The state on file, if any.
    pub fn state(&self) -> Result<Option<WitnessState>, WitnessFileError> {
        self.state.load()
    }

    fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let answer = self.client.request("GET", path, None)?;
        if !answer.is_success() {
            bail!("GET {path}: {}", answer.error_line());
        }
        String::from_utf8(answer.body).with_context(|| format!("GET {path}: not UTF-8 text"))
    }

    /// The log key to check against: the state's, else the one given,
    /// else (when allowed) the one the server names.
    fn log_key(&self, known: Option<&WitnessState>) -> anyhow::Result<NoteVerifier> {
        if let Some(pinned) = &self.pinned {
            // `observe` refuses it if it differs from the state's.
            return Ok(pinned.clone());
        }
        if let Some(known) = known {
            return Ok(known.log().clone());
        }
        if !self.trust_on_first_use {
            bail!(
                "this witness has no state yet: pass the log's key line with --log-key \
                 (from the log operator), or --trust-on-first-use to trust the key the \
                 server names"
            );
        }
        let line = self.get_text("/v1/log/key")?;
        let key = parse_verifier_key(line.trim_end()).context("GET /v1/log/key")?;
        eprintln!(
            "warning: first sight of this log: trusting the log key the server names: {}",
            key.verifier_key()
        );
        Ok(key)
    }

    /// The RFC 9162 consistency proof between two sizes.
    fn consistency_proof(&self, first: u64, second: u64) -> anyhow::Result<Vec<Hash>> {
        let path = format!("/v1/proofs/consistency?first={first}&second={second}");
        let text = self.get_text(&path)?;
        let body: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("GET {path}: not JSON"))?;
        let hashes = body["proof"]
            .as_array()
            .with_context(|| format!("GET {path}: no `proof` list"))?;
        hashes
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|b64| BASE64.decode(b64).ok())
                    .and_then(|bytes| Hash::try_from(bytes).ok())
                    .with_context(|| format!("GET {path}: a proof hash is not base64 of 32 bytes"))
            })
            .collect()
    }

    /// One round: fetch the checkpoint (and a consistency proof from the
    /// remembered size), decide, store the new state, then submit the
    /// cosignature. The state is stored before the cosignature leaves, so
    /// the witness never cosigned what it does not remember; a failed
    /// submission is made good by the next round, which cosigns the same
    /// checkpoint again.
    pub fn round(&self, now: u64) -> Result<Round, RoundError> {
        let known = self.state.load()?;
        let log = self.log_key(known.as_ref())?;
        let served = self.get_text("/v1/checkpoint")?;
        let proof = match (&known, claimed_size(&served)) {
            (Some(known), Some(size))
                if size > known.checkpoint().size() && known.checkpoint().size() > 0 =>
            {
                self.consistency_proof(known.checkpoint().size(), size)?
            }
            _ => Vec::new(),
        };
        let advance = observe(known.as_ref(), &log, &self.cosigner, &served, &proof, now).map_err(
            |refusal| {
                RoundError::Refused(Box::new(Rejection {
                    refusal,
                    served: served.clone(),
                    known: known.as_ref().map(WitnessState::note),
                }))
            },
        )?;
        self.state.store(&advance.state)?;
        let submitted = self.submit(&advance);
        Ok(Round { advance, submitted })
    }

    fn submit(&self, advance: &Advance) -> Result<(), String> {
        let body = serde_json::json!({ "checkpoint": advance.cosigned_note() }).to_string();
        match self
            .client
            .request("POST", "/v1/checkpoint/cosignatures", Some(body.as_bytes()))
        {
            Ok(answer) if answer.is_success() => Ok(()),
            Ok(answer) => Err(answer.error_line()),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}

/// `oretrail witness ...`.
pub fn run(args: WitnessArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(WitnessCommand::Key { key, name }) => {
            println!("{}", read_cosigner(&key, &name)?.verifier().key_line());
            Ok(ExitCode::SUCCESS)
        }
        Some(WitnessCommand::Trust { data, line }) => {
            let key = CosignerVerifier::parse(line.trim()).context("the witness key line")?;
            let added = trust_file(&data)?.update(|t| Ok(t.trust(key.clone())?))?;
            if added {
                println!("trusted witness {}", key.key_line());
            } else {
                println!("witness {} was trusted already", key.key_line());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(WitnessCommand::Untrust { data, witness }) => {
            let removed = trust_file(&data)?.update(|t| Ok(t.untrust(&witness)?))?;
            println!("no longer trusted: {}", removed.key_line());
            Ok(ExitCode::SUCCESS)
        }
        Some(WitnessCommand::List { data }) => {
            for key in trust_file(&data)?.load()?.keys() {
                println!("{}", key.key_line());
            }
            Ok(ExitCode::SUCCESS)
        }
        None => witness(args.run),
    }
}

fn trust_file(data: &Path) -> anyhow::Result<TrustFile> {
    if !data.join(LOG_FILE).exists() {
        bail!(
            "{} is not an oretrail data folder (no log file)",
            data.display()
        );
    }
    Ok(TrustFile::of(data))
}

/// The witness command itself: one round, or rounds until a signal.
fn witness(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (Some(url), Some(state), Some(key), Some(name)) =
        (args.url, args.state, args.key, args.name)
    else {
        bail!("--url, --state, --key and --name are required");
    };
    let cosigner = read_cosigner(&key, &name)?;
    let pinned = args
        .log_key
        .as_deref()
        .map(|line| parse_verifier_key(line.trim()))
        .transpose()
        .context("--log-key")?;
    let witness = Witness::new(&url, &state, cosigner, pinned, args.trust_on_first_use)?;
    if !args.follow {
        return match witness.round(now_secs()) {
            Ok(round) => Ok(report(&round, &witness)),
            Err(RoundError::Refused(rejection)) => Ok(refused(&rejection, &state)),
            Err(RoundError::Failed(e)) => Err(e),
        };
    }
    follow(witness, &state, args.interval)
}

/// Prints a round that cosigned; the exit code says whether the log took
/// the cosignature.
fn report(round: &Round, witness: &Witness) -> ExitCode {
    let state = &round.advance.state;
    let checkpoint = state.checkpoint();
    let how = match round.advance.sight {
        Sight::First => "first sight".to_string(),
        Sight::Grew { from } => format!("grew from {from}"),
        Sight::Unchanged => "unchanged".to_string(),
    };
    println!(
        "cosigned {} size {} ({how}), root {}, as of {}",
        checkpoint.origin(),
        checkpoint.size(),
        BASE64.encode(checkpoint.root()),
        when(state.cosigned_at())
    );
    match &round.submitted {
        Ok(()) => {
            println!("the log accepted the cosignature");
            ExitCode::SUCCESS
        }
        Err(answer) => {
            eprintln!("error: the log did not accept the cosignature: {answer}");
            if answer.contains("UNTRUSTED_WITNESS") {
                eprintln!(
                    "hint: the log operator trusts this witness with:\n  oretrail witness trust --data DIR '{}'",
                    witness.cosigner.verifier().key_line()
                );
            }
            ExitCode::from(1)
        }
    }
}

/// Prints a refusal (loudly for an alarm) and returns the exit code.
fn refused(rejection: &Rejection, state: &Path) -> ExitCode {
    let Rejection {
        refusal,
        served,
        known,
    } = rejection;
    if !refusal.is_alarm() {
        eprintln!("refused: {refusal}");
        eprintln!(
            "nothing was cosigned and the state ({}) is unchanged",
            state.display()
        );
        return ExitCode::from(1);
    }
    let rule = "=".repeat(72);
    eprintln!("{rule}");
    eprintln!("WITNESS ALARM: the log is not append-only");
    eprintln!("{refusal}");
    eprintln!(
        "This witness refused to cosign and left its state ({}) unchanged.",
        state.display()
    );
    eprintln!("Keep both checkpoints below as evidence: the log key signed each.");
    if let Some(known) = known {
        eprintln!("--- the checkpoint this witness cosigned before:");
        eprint!("{known}");
    }
    eprintln!("--- the checkpoint the log serves now:");
    eprint!("{served}");
    if !served.ends_with('\n') {
        eprintln!();
    }
    eprintln!("{rule}");
    ExitCode::from(EXIT_ALARM)
}

/// Rounds every `interval` until SIGINT or SIGTERM. A round that cannot
/// reach the log, or whose cosignature the log does not take, is retried
/// at the next one; a refusal stops the witness with its exit code.
fn follow(witness: Witness, state: &Path, interval: Duration) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let witness = std::sync::Arc::new(witness);
    runtime.block_on(async {
        let shutdown = super::shutdown_signal()?;
        tokio::pin!(shutdown);
        loop {
            let w = witness.clone();
            let outcome = tokio::task::spawn_blocking(move || w.round(now_secs()))
                .await
                .context("a witness round panicked")?;
            match outcome {
                Ok(round) => {
                    // A cosignature the log did not take is retried next
                    // round; report says why.
                    let _ = report(&round, &witness);
                }
                Err(RoundError::Refused(rejection)) => return Ok(refused(&rejection, state)),
                Err(RoundError::Failed(e)) => {
                    eprintln!("warning: this round failed, trying again in {interval:?}: {e:#}");
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
        println!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// `oretrail checkpoint verify`.
pub fn run_checkpoint(command: CheckpointCommand) -> anyhow::Result<ExitCode> {
    let CheckpointCommand::Verify {
        url,
        size,
        file,
        log_key,
        witnesses,
    } = command;
    let log = parse_verifier_key(log_key.trim()).context("--log-key")?;
    let witnesses = witnesses
        .iter()
        .map(|line| {
            CosignerVerifier::parse(line.trim()).with_context(|| format!("--witness {line}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (note, source) = match (file, url) {
        (Some(file), _) => (
            std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?,
            file.display().to_string(),
        ),
        (None, Some(url)) => {
            let path = match size {
                Some(size) => format!("/v1/checkpoint/{size}"),
                None => "/v1/checkpoint".to_string(),
            };
            let answer = Client::new(&url)?.request("GET", &path, None)?;
            if !answer.is_success() {
                bail!("GET {path}: {}", answer.error_line());
            }
            let text = String::from_utf8(answer.body)
                .with_context(|| format!("GET {path}: not UTF-8 text"))?;
            (text, format!("{}{path}", url.trim_end_matches('/')))
        }
        (None, None) => bail!("give --url or --file"),
    };
    match verify_witnessed(&note, &log, &witnesses) {
        Ok(witnessed) => {
            let checkpoint = witnessed.checkpoint();
            println!(
                "verified: {} size {} root {}, signed by the log key {}",
                checkpoint.origin(),
                checkpoint.size(),
                BASE64.encode(checkpoint.root()),
                log.verifier_key()
            );
            for c in witnessed.cosignatures() {
                println!("cosigned by {} as of {}", c.name, when(c.timestamp));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("NOT VERIFIED ({source}): {e}");
            Ok(ExitCode::from(1))
        }
    }
}
