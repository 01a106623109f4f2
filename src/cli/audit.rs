//! `oretrail audit ...`: the EPCIS 2.0 export, and audit bundles (export
//! and offline verification). Each reads the log file alone, read-only,
//! so it works while a server holds the ledger open.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::audit::epcis::{self, LotSelection, Reach, Selection, TypeFilter};
use crate::audit::{LogSnapshot, bundle};
use crate::ledger::LOG_FILE;
use crate::model::{LotId, ParticipantId, Timestamp};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export custody events as a GS1 EPCIS 2.0 JSON-LD document, after
    /// verifying the whole log.
    Epcis {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// Only events about this lot.
        #[arg(long)]
        lot: Option<String>,
        /// With --lot: also every lot it was made from, down to the mines.
        #[arg(long, requires = "lot")]
        upstream: bool,
        /// With --lot: also every lot made from it.
        #[arg(long, requires = "lot")]
        downstream: bool,
        /// Only events of this type: ours (create_lot, dispatch, receive,
        /// ...) or EPCIS (ObjectEvent, TransformationEvent,
        /// TransactionEvent). Repeat for several.
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
        /// Only events at or after this time (RFC 3339, UTC).
        #[arg(long)]
        from: Option<String>,
        /// Only events before this time (RFC 3339, UTC).
        #[arg(long)]
        until: Option<String>,
        /// Only events this participant signed or is a source or
        /// destination of.
        #[arg(long)]
        participant: Option<String>,
        /// Where to write the document (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write an audit bundle: every acknowledged entry, every checkpoint
    /// and the log key, in one file that `audit verify` checks offline.
    Export {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// The bundle file to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an audit bundle: every signature, link, rule, tree root and
    /// checkpoint, and the header's claims. Exit 0 when intact, 1 naming
    /// the first bad entry otherwise.
    Verify {
        /// The bundle file.
        file: PathBuf,
        /// The log's verifier key line (`<origin>+<key id>+<key>`), as
        /// obtained independently (for example from GET /v1/log/key): the
        /// bundle must be signed by exactly that key.
        #[arg(long)]
        log_key: Option<String>,
    },
}

pub fn run(command: AuditCommand, progress: bool) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Epcis {
            data,
            lot,
            upstream,
            downstream,
            event_types,
            from,
            until,
            participant,
            out,
        } => {
            let reach = match (upstream, downstream) {
                (false, false) => Reach::Lot,
                (true, false) => Reach::Upstream,
                (false, true) => Reach::Downstream,
                (true, true) => Reach::UpstreamAndDownstream,
            };
            let selection = Selection {
                lot: lot
                    .map(|l| LotId::new(l).map(|lot| LotSelection { lot, reach }))
                    .transpose()?,
                types: event_types
                    .iter()
                    .map(|t| t.parse::<TypeFilter>().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()?,
                from: from.as_deref().map(Timestamp::parse).transpose()?,
                until: until.as_deref().map(Timestamp::parse).transpose()?,
                participant: participant.map(ParticipantId::new).transpose()?,
            };
            let snapshot = LogSnapshot::open(&data.join(LOG_FILE))?;
            let document = epcis::export(&snapshot, &selection, Timestamp::now(), progress)?;
            let mut text = serde_json::to_vec_pretty(&document)?;
            text.push(b'\n');
            match out {
                Some(path) => {
                    write_whole(&path, &text)?;
                    println!(
                        "wrote {} EPCIS events from {} verified entries of {} to {}",
                        document.events().len(),
                        snapshot.entries(),
                        snapshot.info().origin,
                        path.display()
                    );
                }
                None => std::io::stdout()
                    .lock()
                    .write_all(&text)
                    .context("writing the document to stdout")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { data, out } => {
            let (header, bytes) = bundle::export_file(&data.join(LOG_FILE), &out, Timestamp::now())
                .with_context(|| format!("exporting an audit bundle of {}", data.display()))?;
            println!(
                "exported {} entries and {} checkpoints of {} to {} ({bytes} bytes)",
                header.entries,
                header.checkpoints,
                header.origin,
                out.display()
            );
            println!("root:    {}", header.root);
            println!(
                "log key: {}",
                header.log_key_line().unwrap_or_else(|e| format!("({e})"))
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { file, log_key } => {
            let options = bundle::VerifyOptions {
                trusted_log_key: log_key.as_deref(),
                progress,
            };
            match bundle::verify_file(&file, options) {
                Ok(report) => {
                    println!(
                        "intact: {} entries, {} checkpoints, origin {}, root {}: every signature, \
                         link, rule, tree root and checkpoint checks out{}",
                        report.verified.entries,
                        report.verified.checkpoints,
                        report.verified.origin,
                        hex::encode(report.verified.root),
                        if log_key.is_some() {
                            ", signed by the trusted log key"
                        } else {
                            ""
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(bundle::BundleFailure::Unreadable { path, reason }) => {
                    anyhow::bail!("cannot read {}: {reason}", path.display())
                }
                Err(bundle::BundleFailure::Header(reason)) => {
                    println!("FAILED in the bundle header: {reason}");
                    Ok(ExitCode::from(1))
                }
                Err(bundle::BundleFailure::Entry(failure)) => {
                    println!("FAILED at entry {}: {}", failure.index, failure.reason);
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// Writes `bytes` to `path` under a temporary name beside it, then renames
/// it into place, so `path` never holds a partial document.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let partial = path.with_file_name(name);
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
