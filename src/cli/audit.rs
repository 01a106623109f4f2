//! `oretrail audit ...`: the EPCIS 2.0 export, audit bundles (export and
//! offline verification) and audit reports (`audit report KIND`). Each
//! reads the log file alone, read-only, so it works while a server holds
//! the ledger open.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::audit::epcis::{self, LotSelection, Reach, Selection, TypeFilter};
use crate::audit::report::cmrt::CmrtRequest;
use crate::audit::report::flags::FlagsRequest;
use crate::audit::report::impact::{ImpactRequest, Target};
use crate::audit::report::kpis::KpisRequest;
use crate::audit::report::mass_balance::MassBalanceRequest;
use crate::audit::report::origin::OriginRequest;
use crate::audit::report::receipts::ReceiptsRequest;
use crate::audit::report::sample::SampleRequest;
use crate::audit::report::{self, Params, Period, Request, Scope};
use crate::audit::{AuditError, LogSnapshot, bundle};
use crate::ledger::LOG_FILE;
use crate::model::{LotId, ParticipantId, SiteId, Timestamp};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export custody events as a GS1 EPCIS 2.0 JSON-LD document, after
    /// verifying the whole log.
    Epcis {
        #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
        data: PathBuf,
        /// Compute it offline from this audit bundle (`audit export`) instead
        /// of a data folder, verified as `audit verify` verifies it.
        #[arg(long, value_name = "FILE", conflicts_with = "data")]
        bundle: Option<PathBuf>,
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
    /// Audit reports for a site or organisation and a period, computed
    /// while verifying the whole log, as JSON (the whole report, with a
    /// header naming the checkpoint it was computed from) or CSV (one row
    /// per line item). Exit 0 when the report is written, even when it
    /// shows something to look at (a mass-balance variance, open red
    /// flags, refused deliveries: printed to stderr as `warning:` lines);
    /// 1 when the log does not verify (nothing is written); 2 on bad
    /// arguments (an unknown participant, an empty period) or I/O errors.
    Report {
        #[command(subcommand)]
        kind: ReportCommand,
    },
}

/// The kinds of audit report (README, "Audit reports", defines each).
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Line-item receipt summary: every delivery received (or refused) in
    /// the period, with lot, supplier, mines and countries of origin, wet
    /// and dry mass, assays, contained metal, documents and red flags.
    Receipts(ReportArgs),
    /// Contained-metal mass balance per metal: opening + receipts +
    /// produced - outputs - losses - closing = variance (0 when it closes;
    /// otherwise the assay revisions of metal held, listed), with each
    /// transformation's recovery factors.
    MassBalance(ReportArgs),
    /// Country-of-origin breakdown of the contained metal received,
    /// produced and dispatched in the period: large-scale mined,
    /// artisanal, recycled, CAHRA or not, in grams and exact shares.
    Origin(ReportArgs),
    /// Red-flag register: every flag raised in the period, its decisions
    /// with dates and notes, and the flags still open.
    Flags(ReportArgs),
    /// Supplier KPIs of an organisation (--org, or --site for the one it
    /// acts for): share of current suppliers that passed ESG review, new
    /// suppliers passed, local procurement share, overdue reviews,
    /// sanctioned suppliers and receipts from them (must be 0).
    Kpis(ReportArgs),
    /// CMRT/EMRT-style rows of a buyer (--site for one participant, --org
    /// for an organisation): the smelters and mines of the metal in the
    /// lots it bought or received in the period, with exact shares.
    Cmrt(ReportArgs),
    /// Forward impact of a mine site (a CAHRA finding) or a supplier (a
    /// sanction): every lot its material reached, with its share, holder
    /// and owner, and every customer, with the entries behind each.
    Impact(ImpactArgs),
    /// A reproducible audit sample: N receipts chosen by SHA-256 of the
    /// seed and each receipt's event id, each with its evidence chain back
    /// to the mines, and the checkpoint it was drawn from.
    Sample(SampleArgs),
}

/// What `audit report impact` takes.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["site", "supplier"]).required(true)))]
pub struct ImpactArgs {
    #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
    pub data: PathBuf,
    /// Compute it offline from this audit bundle (`audit export`) instead
    /// of a data folder, verified as `audit verify` verifies it.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub bundle: Option<PathBuf>,
    /// A registered mine or recycling site (for example one newly
    /// determined to be in a CAHRA).
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
    /// A participant (for example a newly sanctioned supplier): the lots
    /// it produced, received or bought, and what was made from them.
    #[arg(long, value_name = "PARTICIPANT")]
    pub supplier: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Where to write the report (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What `audit report sample` takes: a scope and period, a seed and N.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Any text or number; the same seed on the same ledger and
    /// checkpoint draws the same receipts.
    #[arg(long)]
    pub seed: String,
    /// How many receipts to draw (all of them when fewer exist).
    #[arg(long, value_name = "N")]
    pub count: u64,
}

/// The scope a report cannot do without.
fn required_scope(args: &ReportArgs, kind: &str) -> anyhow::Result<Scope> {
    args.scope()?.with_context(|| {
        format!("audit report {kind} needs --org ORGANISATION or --site PARTICIPANT")
    })
}

/// `audit report impact`: its target, written like any other report.
fn impact_report(a: &ImpactArgs, progress: bool) -> anyhow::Result<ExitCode> {
    let target = match (&a.site, &a.supplier) {
        (Some(site), _) => {
            Target::Site(SiteId::new(site.as_str()).with_context(|| format!("--site {site:?}"))?)
        }
        (None, Some(p)) => Target::Supplier(
            ParticipantId::new(p.as_str()).with_context(|| format!("--supplier {p:?}"))?,
        ),
        (None, None) => {
            anyhow::bail!("audit report impact needs --site SITE or --supplier PARTICIPANT")
        }
    };
    let output = ReportArgs {
        data: a.data.clone(),
        bundle: a.bundle.clone(),
        site: None,
        org: None,
        from: None,
        until: None,
        format: a.format,
        out: a.out.clone(),
    };
    write_report(&output, &ImpactRequest { target }, progress)
}

/// What every report command takes.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").args(["site", "org"])))]
pub struct ReportArgs {
    #[arg(long, default_value = "./oretrail-data", env = "ORETRAIL_DATA")]
    pub data: PathBuf,
    /// Compute it offline from this audit bundle (`audit export`) instead
    /// of a data folder, verified as `audit verify` verifies it.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub bundle: Option<PathBuf>,
    /// The participant that holds the lots (a smelter, a warehouse):
    /// custody on the ledger is held by participants, not by registered
    /// (mine) sites. Without --site or --org: the whole ledger.
    #[arg(long, value_name = "PARTICIPANT")]
    pub site: Option<String>,
    /// An organisation: the participant and everyone appointed to act for
    /// it (their custody, and its red-flag register).
    #[arg(long, value_name = "PARTICIPANT")]
    pub org: Option<String>,
    /// Start of the period (RFC 3339, UTC), inclusive, by record time;
    /// from the first entry when absent.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period (RFC 3339, UTC), exclusive, by record time; up
    /// to the last checkpoint when absent.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Where to write the report (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Json,
    Csv,
}

impl ReportArgs {
    /// `--site` or `--org`, checked as participant ids (whether they are
    /// registered is checked against the log).
    pub fn scope(&self) -> anyhow::Result<Option<Scope>> {
        let id = |text: &str, flag: &str| {
            ParticipantId::new(text).with_context(|| {
                format!(
                    "--{flag} {text:?} is not a participant id (custody is held by \
                     participants such as a smelter, not by registered mine sites)"
                )
            })
        };
        Ok(match (&self.site, &self.org) {
            (Some(site), _) => Some(Scope::Site(id(site, "site")?)),
            (None, Some(org)) => Some(Scope::Organisation(id(org, "org")?)),
            (None, None) => None,
        })
    }

    /// `--from` and `--until`; refused when empty.
    pub fn period(&self) -> anyhow::Result<Period> {
        let time = |text: &Option<String>, flag: &str| {
            text.as_deref()
                .map(|t| Timestamp::parse(t).with_context(|| format!("--{flag}")))
                .transpose()
        };
        Ok(Period::new(
            time(&self.from, "from")?,
            time(&self.until, "until")?,
        )?)
    }

    pub fn params(&self) -> anyhow::Result<Params> {
        Ok(Params {
            scope: self.scope()?,
            period: self.period()?,
        })
    }
}

fn run_report(kind: ReportCommand, progress: bool) -> anyhow::Result<ExitCode> {
    let (args, request): (&ReportArgs, Box<dyn Request>) = match &kind {
        ReportCommand::Receipts(a) => (a, Box::new(ReceiptsRequest(a.params()?))),
        ReportCommand::MassBalance(a) => (a, Box::new(MassBalanceRequest(a.params()?))),
        ReportCommand::Origin(a) => (a, Box::new(OriginRequest(a.params()?))),
        ReportCommand::Flags(a) => (a, Box::new(FlagsRequest(a.params()?))),
        ReportCommand::Kpis(a) => (
            a,
            Box::new(KpisRequest {
                scope: required_scope(a, "kpis")?,
                period: a.period()?,
            }),
        ),
        ReportCommand::Cmrt(a) => (
            a,
            Box::new(CmrtRequest {
                scope: required_scope(a, "cmrt")?,
                period: a.period()?,
            }),
        ),
        ReportCommand::Impact(a) => return impact_report(a, progress),
        ReportCommand::Sample(a) => (
            &a.report,
            Box::new(SampleRequest {
                scope: a.report.scope()?,
                period: a.report.period()?,
                seed: a.seed.clone(),
                count: a.count,
            }),
        ),
    };
    write_report(args, request.as_ref(), progress)
}

/// Computes `request` over the log in `args.data` and writes it as asked.
pub fn write_report(
    args: &ReportArgs,
    request: &dyn Request,
    progress: bool,
) -> anyhow::Result<ExitCode> {
    let snapshot = snapshot(&args.data, args.bundle.as_deref())?;
    let report = match report::compute(&snapshot, &[request], Timestamp::now(), progress) {
        Err(AuditError::Verify(failure)) => {
            println!(
                "FAILED at entry {}: {}; no report is made from a log that does not verify",
                failure.index, failure.reason
            );
            return Ok(ExitCode::from(1));
        }
        other => other?.pop().context("the report was not computed")?,
    };
    let mut bytes = Vec::new();
    match args.format {
        ReportFormat::Json => report.write_json(&mut bytes)?,
        ReportFormat::Csv => report.write_csv(&mut bytes)?,
    }
    match &args.out {
        Some(path) => {
            write_whole(path, &bytes)?;
            let header = report.header();
            println!(
                "wrote the {} report ({} rows) computed from {} at tree size {}, root {}, to {}",
                header.report,
                report.row_count(),
                header.ledger.origin,
                header.ledger.tree_size,
                header.ledger.root,
                path.display()
            );
        }
        None => to_stdout(&bytes, "the report")?,
    }
    for finding in report.findings() {
        eprintln!("warning: {finding}");
    }
    Ok(ExitCode::SUCCESS)
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
            bundle,
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
                entries: None,
            };
            let snapshot = snapshot(&data, bundle.as_deref())?;
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
                None => to_stdout(&text, "the document")?,
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
        AuditCommand::Report { kind } => run_report(kind, progress),
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

/// Writes an output to stdout. A reader that stopped reading (`| head`)
/// has what it wanted: that is not an error.
fn to_stdout(bytes: &[u8], what: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.with_context(|| format!("writing {what} to stdout")),
    }
}

/// The log of the data folder `data`, or the audit bundle `bundle`.
fn snapshot(data: &Path, bundle: Option<&Path>) -> anyhow::Result<LogSnapshot> {
    Ok(match bundle {
        Some(file) => LogSnapshot::open_bundle(file)
            .with_context(|| format!("reading the audit bundle {}", file.display()))?,
        None => LogSnapshot::open(&data.join(LOG_FILE))?,
    })
}
