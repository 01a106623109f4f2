//! `oretrail token`: the operator issues, lists and revokes the bearer
//! tokens that readers of the API authenticate with (`access::tokens`).
//!
//! The commands touch only `DATA/access/tokens.json` (under its lock), not
//! the ledger, so they work while `oretrail serve` holds the ledger open;
//! the server sees each change within about a second. The participant a
//! token is issued for is therefore not looked up here: the server refuses
//! a token whose participant the ledger does not hold.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::access::tokens::{Revocation, TokenFile, TokenSelector};
use crate::ledger::{KEYS_DIR, LOG_FILE};
use crate::model::{ParticipantId, Timestamp};

#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Issue a token for a participant; prints the token (once: only its
    /// hash is kept) on stdout, and its id on stderr.
    Issue {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// The participant whose reads the token makes.
        #[arg(long)]
        participant: String,
        /// A note to tell tokens apart in `token list` (who, which machine).
        #[arg(long, default_value = "")]
        label: String,
        /// How long the token is valid, e.g. 90d, 12h, 30min; no expiry
        /// when left out.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// Revoke a token, named by its id (or by the token itself).
    Revoke {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// The token's id, as `token list` shows it.
        id: String,
    },
    /// List every token: id, participant, status, created, expires, label.
    List {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
    },
}

/// The folder must hold a ledger, so that a mistyped `--data` does not
/// quietly start a token file somewhere else.
fn ledger_folder(data: &Path) -> anyhow::Result<TokenFile> {
    if !data.join(LOG_FILE).exists() {
        anyhow::bail!(
            "{} holds no ledger; tokens are kept in the data folder of the ledger they read",
            data.display()
        );
    }
    Ok(TokenFile::of(data))
}

pub(super) fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Issue {
            data,
            participant,
            label,
            expires,
        } => {
            let file = ledger_folder(&data)?;
            let participant = ParticipantId::new(participant)?;
            let now = Timestamp::now();
            let expires = match expires {
                Some(d) => Some(now.saturating_add_millis(
                    u64::try_from(d.as_millis()).context("--expires is too long")?,
                )),
                None => None,
            };
            let (token, record) = file
                .update(|table| table.issue(participant, &label, now, expires))
                .with_context(|| format!("issuing a token in {}", file.path().display()))?;
            println!("{}", token.as_str());
            eprintln!(
                "issued token {} for {} ({}); it is shown only this once: \
                 send it as `Authorization: Bearer <token>`",
                record.id,
                record.participant,
                match record.expires {
                    Some(t) => format!("expires {t}"),
                    None => "no expiry".into(),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { data, id } => {
            let file = ledger_folder(&data)?;
            let which = TokenSelector::parse(&id)?;
            let now = Timestamp::now();
            let revocation = file
                .update(|table| table.revoke(&which, now))
                .with_context(|| format!("revoking a token in {}", file.path().display()))?;
            match revocation {
                Revocation::Revoked(r) => println!(
                    "revoked token {} of {}; a running server refuses it within about a second",
                    r.id, r.participant
                ),
                Revocation::AlreadyRevoked(r) => println!(
                    "token {} of {} was already revoked at {}",
                    r.id,
                    r.participant,
                    r.revoked.map(|t| t.to_string()).unwrap_or_default()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { data } => {
            let file = ledger_folder(&data)?;
            let table = file
                .load()
                .with_context(|| format!("reading {}", file.path().display()))?;
            let now = Timestamp::now();
            println!(
                "{:<16}  {:<28}  {:<7}  {:<24}  {:<24}  label",
                "id", "participant", "status", "created", "expires"
            );
            for r in table.records() {
                // Padding needs strings: Display impls write as they are.
                println!(
                    "{:<16}  {:<28}  {:<7}  {:<24}  {:<24}  {}",
                    r.id.as_str(),
                    r.participant.as_str(),
                    r.status(now).to_string(),
                    r.created.to_string(),
                    r.expires.map_or("never".into(), |t| t.to_string()),
                    r.label
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The demo participants that get a token when the demo ledger is built:
/// the operator, the auditor, a buyer and the smelter.
pub(super) const DEMO_READERS: [&str; 4] = [
    "operator",
    "auditor.trailcheck",
    "buyer.rheinkabel",
    "smelter.pohjanmeri",
];

/// The folder the demo's keys and tokens are written to.
fn demo_folder(data: &Path) -> PathBuf {
    data.join(KEYS_DIR).join("demo")
}

/// Issues a token for each of [`DEMO_READERS`] and writes it beside the
/// demo keys, `DATA/keys/demo/<participant>.token` (mode 0600, never
/// overwriting), so that a new user can read the API at once. Tokens are
/// off the ledger: the demo log stays byte-identical from build to build.
pub(super) fn issue_demo_tokens(data: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let file = TokenFile::of(data);
    let folder = demo_folder(data);
    let now = Timestamp::now();
    let mut written = Vec::with_capacity(DEMO_READERS.len());
    for id in DEMO_READERS {
        let path = folder.join(format!("{id}.token"));
        let participant = ParticipantId::new(id)?;
        let (token, _) = file.update(|table| table.issue(participant, "demo", now, None))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "{}", token.as_str())
            .and_then(|()| out.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The demo token files in `data`, sorted; empty when there are none.
pub(super) fn demo_token_files(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo_folder(data))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "token"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
