//! `oretrail passport ...`: a lot's passport, exported from the log file
//! alone (read-only, so it works while a server holds the ledger open) and
//! verified offline.
//!
//! The commands are `passport LOT --out FILE` (short for `passport export
//! LOT --out FILE`) and `passport verify FILE`. A lot whose id is `export`
//! or `verify` is exported with the long form, `passport export verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::audit::passport::{self, PassportFailure, VerifyOptions};
use crate::ledger::LOG_FILE;
use crate::model::LotId;

/// `oretrail passport`: a subcommand, or the lot to export.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PassportArgs {
    #[command(subcommand)]
    pub command: Option<PassportCommand>,
    #[command(flatten)]
    pub export: ExportArgs,
}

/// What exporting a passport takes.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The lot id.
    #[arg(required = true)]
    pub lot: Option<String>,
    #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
    pub data: PathBuf,
    /// The passport file to write (replaced if it exists).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PassportCommand {
    /// Write the passport of a lot: its provenance graph down to the mines
    /// and every entry behind it, each with its inclusion proof against
    /// the log's latest checkpoint, after verifying the whole log.
    Export(ExportArgs),
    /// Verify a passport offline: the checkpoint signature, every inclusion
    /// proof, event signature and key registration, and the graph and
    /// shares recomputed from the events. Exit 0 when intact, 1 naming the
    /// first problem otherwise.
    Verify {
        /// The passport file.
        file: PathBuf,
        /// The log's verifier key line (`<origin>+<key id>+<key>`), as
        /// obtained independently (for example from GET /v1/log/key): the
        /// checkpoint must be signed by exactly that key.
        #[arg(long)]
        log_key: Option<String>,
        /// The lot the passport must be of.
        #[arg(long)]
        lot: Option<String>,
    },
}

pub fn run(args: PassportArgs, progress: bool) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(PassportCommand::Export(args.export)) {
        PassportCommand::Export(ExportArgs { lot, data, out }) => {
            // clap requires both unless a subcommand is given.
            let (Some(lot), Some(out)) = (lot, out) else {
                anyhow::bail!("passport needs a lot and --out FILE");
            };
            let lot = LotId::new(lot)?;
            let (passport, bytes) =
                passport::export_file(&data.join(LOG_FILE), &lot, &out, progress)
                    .with_context(|| format!("exporting the passport of lot {lot}"))?;
            let header = passport.header();
            let graph = passport.graph();
            println!(
                "exported the passport of lot {lot}: {} back to {}, {} of {} with inclusion \
                 proofs against its checkpoint at tree size {}, to {} ({bytes} bytes)",
                count(graph.lots.len(), "lot"),
                count(
                    graph.lots.first().map_or(0, |l| l.origin.shares().len()),
                    "mine"
                ),
                count(passport.entries().len(), "entry"),
                header.origin,
                passport.tree_size(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PassportCommand::Verify { file, log_key, lot } => {
            let lot = lot.map(LotId::new).transpose()?;
            let options = VerifyOptions {
                trusted_log_key: log_key.as_deref(),
                lot: lot.as_ref(),
            };
            match passport::verify_file(&file, options) {
                Ok(report) => {
                    let (kind, metal) = report
                        .final_lot()
                        .map(|l| (format!("{:?}", l.kind), format!("{:?}", l.metal)))
                        .unwrap_or_default();
                    println!(
                        "intact: passport of lot {} ({kind}, {metal}) from {} through {}; \
                         {} in the log {} at tree size {}, root {}: the checkpoint \
                         signature, every inclusion proof, signature and key, and the graph and \
                         shares recomputed from the events check out{}",
                        report.lot,
                        count(report.mines().len(), "mine"),
                        count(report.graph.lots.len(), "lot"),
                        count(report.entries, "entry"),
                        report.origin,
                        report.tree_size,
                        report.root,
                        if log_key.is_some() {
                            ", signed by the trusted log key"
                        } else {
                            ""
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(PassportFailure::Unreadable { path, reason }) => {
                    anyhow::bail!("cannot read {}: {reason}", path.display())
                }
                Err(failure) => {
                    println!("FAILED: {failure}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// `n` and the noun, plural when `n` is not 1.
fn count(n: usize, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}
