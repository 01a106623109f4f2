//! `oretrail load`: a load generator over loopback, for the server's
//! benchmarks (`BENCHMARKS.md`, "HTTP load").
//!
//! One run builds a ledger (`workload`), serves it with the real router
//! (`api::serve`) on 127.0.0.1 in this process, and measures:
//!
//! - ingest of pre-signed lot creations, one event per request
//!   (`POST /v1/events`) and in batches (`POST /v1/events/batch`), at each
//!   number of concurrent clients, each client a thread with its own
//!   keep-alive connection; and the same events appended in process
//!   (`Ledger::append`, or `submit` of a batch then `wait`) by as many
//!   threads, right before, so that the ratio of the two comes from one
//!   run on one ledger;
//! - the latency of `GET /v1/lots/{id}/provenance` of a cathode lot made
//!   from many upstream lots.
//!
//! It is a subcommand rather than an example so that the release binary
//! the lead benchmarks with carries it (no cargo on the machine needed),
//! and so its smoke test can run it as `CARGO_BIN_EXE_oretrail`. Every
//! phase is bounded in count and time; nothing but loopback is contacted.

mod workload;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::client::{Client, SignedEventBody};
use crate::access::tokens::TokenFile;
use crate::api::{self, AppState};
use crate::ledger::Ledger;
use crate::model::{ParticipantId, SignedEvent, Timestamp};

/// Options of `oretrail load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Folder for the load ledger, which must hold none yet; it is kept.
    /// Without it a temporary folder is used and removed at the end. Put
    /// it on the disk to measure: every append waits for its fdatasync.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Entries in the ledger before the ingest phases; lot creations fill
    /// up what the cathode's history leaves.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Concentrate lots behind the cathode whose provenance is read
    /// (blended ten at a time, then smelted).
    #[arg(long, default_value_t = 1000)]
    upstream: usize,
    /// Events of each ingest phase (each mode and client count, over HTTP
    /// and in process alike); shared evenly among the clients.
    #[arg(long, default_value_t = 25_600)]
    events: usize,
    /// Numbers of concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 128])]
    clients: Vec<usize>,
    /// Events per `POST /v1/events/batch`.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Timed `GET /v1/lots/{id}/provenance` requests (after ten untimed).
    #[arg(long, default_value_t = 1000)]
    reads: usize,
    /// Longest one phase may run; its clients send nothing more after it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    max_phase: Duration,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// How events are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// One event per request (or per `Ledger::append`).
    Single,
    /// `--batch` events per request (or submitted together, then awaited).
    Batch,
}

/// Latencies of one phase, in milliseconds.
#[derive(Debug, Clone, Serialize)]
struct Latency {
    /// Requests (or in-process calls) timed.
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples`.
    fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[i - 1].as_secs_f64() * 1e3
        };
        Some(Self {
            requests: samples.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
        })
    }
}

/// One measured phase: over HTTP or in process.
#[derive(Debug, Clone, Serialize)]
struct Throughput {
    /// Events accepted (new entries).
    events: usize,
    /// Events planned but not sent because the phase ran out of time.
    unsent: usize,
    /// Events refused or lost to a failed request.
    failed: usize,
    seconds: f64,
    events_per_second: f64,
    latency: Option<Latency>,
}

#[derive(Debug, Clone, Serialize)]
struct IngestRow {
    mode: Mode,
    clients: usize,
    /// Events per request (1 for single).
    batch: usize,
    http: Throughput,
    in_process: Throughput,
    /// HTTP events/s over in-process events/s of this row.
    ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum ProvenanceResult {
    Measured {
        lot: String,
        /// The first answer after the server started, which waits for the
        /// catalog to take in the whole log.
        first_read_seconds: f64,
        latency: Latency,
        /// Size of one answer.
        bytes: usize,
        /// Lots the answer's graph holds (`nodes`), when it has one.
        lots_in_answer: Option<usize>,
    },
    Missing {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
struct LedgerSummary {
    data: String,
    /// Entries before the ingest phases.
    entries: u64,
    /// Entries at the end.
    entries_after: u64,
    upstream_lots: usize,
    blend_lots: usize,
    cathode: String,
    build_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Goals {
    /// Best HTTP batch events/s over the best in-process events/s.
    batch_ingest_ratio: f64,
    batch_ingest_goal: f64,
    batch_ingest_met: bool,
    provenance_p99_ms: Option<f64>,
    provenance_goal_ms: f64,
    provenance_met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    ledger: LedgerSummary,
    server: String,
    cores: usize,
    ingest: Vec<IngestRow>,
    provenance: ProvenanceResult,
    goals: Goals,
}

/// Issue 4's goals.
const BATCH_INGEST_GOAL: f64 = 0.60;
const PROVENANCE_P99_GOAL_MS: f64 = 5.0;
/// Longest the first provenance read is retried while the catalog builds.
const FIRST_READ_PATIENCE: Duration = Duration::from_secs(600);
/// Untimed provenance requests before the timed ones.
const WARM_UP_READS: usize = 10;

/// Runs `oretrail load`; exit 1 when any event failed or a request went
/// wrong (the results are printed first).
pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients needs one or more numbers above zero");
    }
    if args.batch == 0 || args.batch > api::Limits::default().max_batch_events {
        bail!(
            "--batch must be 1 to {} (the server's limit)",
            api::Limits::default().max_batch_events
        );
    }
    if args.events == 0 {
        bail!("--events must be above zero");
    }
    let temporary;
    let data = match &args.data {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("oretrail-load-")
                .tempdir()
                .context("creating a temporary data folder")?;
            temporary.path().to_path_buf()
        }
    };
    let terminal = std::io::stderr().is_terminal();
    eprintln!(
        "building a ledger of {} entries with a cathode from {} lots in {}",
        args.entries,
        args.upstream,
        data.display()
    );
    let started = Instant::now();
    let bar = crate::progress::bar(args.entries, terminal, "building");
    let workload = workload::build(&data, args.entries, args.upstream, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    let build_seconds = started.elapsed().as_secs_f64();
    let entries = workload.ledger.size();
    // Reads are made as the operator, who sees everything.
    let operator = ParticipantId::new(workload::OPERATOR)?;
    let token = TokenFile::of(&data)
        .update(|tokens| tokens.issue(operator, "oretrail load", Timestamp::now(), None))
        .context("issuing a read token for the load run")?
        .0;

    let server = Server::start(workload.ledger.clone())?;
    let url = format!("http://{}", server.addr);
    eprintln!("serving on {url} (in this process)");
    let client = Client::new(&url)?.with_token(token.as_str());

    let mut failures = 0usize;
    let provenance = read_provenance(&client, &workload, args.reads)?;

    let mut ingest = Vec::new();
    let mut ingest_signer = workload.ingest;
    let mut phase = 0usize;
    for mode in [Mode::Single, Mode::Batch] {
        for &clients in &args.clients {
            let batch = match mode {
                Mode::Single => 1,
                Mode::Batch => args.batch,
            };
            phase += 1;
            eprintln!(
                "ingest: {mode:?}, {clients} clients, {} events",
                args.events
            );
            let events =
                workload::lot_creations(&mut ingest_signer, &format!("P{phase}I"), args.events)?;
            let in_process = append_in_process(
                &workload.ledger,
                split(events, clients),
                batch,
                args.max_phase,
            );
            let events =
                workload::lot_creations(&mut ingest_signer, &format!("P{phase}H"), args.events)?;
            let http = post_over_http(&url, mode, split(events, clients), batch, args.max_phase);
            failures += http.failed + in_process.failed;
            let ratio = ratio(http.events_per_second, in_process.events_per_second);
            ingest.push(IngestRow {
                mode,
                clients,
                batch,
                http,
                in_process,
                ratio,
            });
        }
    }
    let entries_after = workload.ledger.size();
    drop(client);
    server.stop()?;
    match Arc::try_unwrap(workload.ledger) {
        Ok(ledger) => ledger.close().context("closing the load ledger")?,
        Err(_) => eprintln!("warning: the ledger is still in use after the server stopped"),
    }

    let best = |f: &dyn Fn(&IngestRow) -> Option<f64>| {
        ingest
            .iter()
            .filter_map(f)
            .fold(0.0f64, |best, v| best.max(v))
    };
    let best_batch = best(&|r| (r.mode == Mode::Batch).then_some(r.http.events_per_second));
    let best_in_process = best(&|r| Some(r.in_process.events_per_second));
    let batch_ingest_ratio = ratio(best_batch, best_in_process);
    let provenance_p99_ms = match &provenance {
        ProvenanceResult::Measured { latency, .. } => Some(latency.p99_ms),
        ProvenanceResult::Missing { .. } => None,
    };
    let report = Report {
        ledger: LedgerSummary {
            data: data.display().to_string(),
            entries,
            entries_after,
            upstream_lots: workload.upstream,
            blend_lots: workload.blends,
            cathode: workload.cathode.to_string(),
            build_seconds,
        },
        server: url,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        ingest,
        provenance,
        goals: Goals {
            batch_ingest_ratio,
            batch_ingest_goal: BATCH_INGEST_GOAL,
            batch_ingest_met: batch_ingest_ratio >= BATCH_INGEST_GOAL,
            provenance_p99_ms,
            provenance_goal_ms: PROVENANCE_P99_GOAL_MS,
            provenance_met: provenance_p99_ms.map(|p| p < PROVENANCE_P99_GOAL_MS),
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_tables(&report);
    }
    if failures > 0 {
        eprintln!("error: {failures} events were refused or lost to failed requests");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Deals events out to `clients`, in order, as evenly as they go.
fn split(events: Vec<SignedEvent>, clients: usize) -> Vec<Vec<SignedEvent>> {
    let per = events.len().div_ceil(clients);
    let mut parts: Vec<Vec<SignedEvent>> = Vec::with_capacity(clients);
    let mut events = events.into_iter();
    for _ in 0..clients {
        parts.push(events.by_ref().take(per).collect());
    }
    parts
}

/// What one client thread did.
#[derive(Default)]
struct Tally {
    accepted: usize,
    failed: usize,
    unsent: usize,
    latencies: Vec<Duration>,
    /// The first failure, to show.
    error: Option<String>,
}

/// Runs one client per part on its own thread, all released at once;
/// returns the tallies and the wall time from release to the last finish.
fn run_clients<T: Send>(
    parts: Vec<T>,
    client: impl Fn(T, Instant) -> Tally + Sync,
    max_phase: Duration,
) -> Throughput {
    let start = Barrier::new(parts.len() + 1);
    let tallies = Mutex::new(Vec::new());
    let mut began = Instant::now();
    std::thread::scope(|scope| {
        for part in parts {
            let (start, tallies, client) = (&start, &tallies, &client);
            scope.spawn(move || {
                start.wait();
                let deadline = Instant::now() + max_phase;
                let tally = client(part, deadline);
                if let Ok(mut all) = tallies.lock() {
                    all.push(tally);
                }
            });
        }
        start.wait();
        began = Instant::now();
    });
    let elapsed = began.elapsed();
    let tallies = tallies.into_inner().unwrap_or_default();
    let mut total = Tally::default();
    for t in tallies {
        total.accepted += t.accepted;
        total.failed += t.failed;
        total.unsent += t.unsent;
        total.latencies.extend(t.latencies);
        total.error = total.error.or(t.error);
    }
    if let Some(error) = &total.error {
        eprintln!("  first failure: {error}");
    }
    let seconds = elapsed.as_secs_f64();
    Throughput {
        events: total.accepted,
        unsent: total.unsent,
        failed: total.failed,
        seconds,
        events_per_second: if seconds > 0.0 {
            total.accepted as f64 / seconds
        } else {
            0.0
        },
        latency: Latency::of(total.latencies),
    }
}

/// The in-process figure: each thread appends its events, one at a time
/// (`batch` 1) or `batch` submitted together and then awaited.
fn append_in_process(
    ledger: &Ledger,
    parts: Vec<Vec<SignedEvent>>,
    batch: usize,
    max_phase: Duration,
) -> Throughput {
    run_clients(
        parts,
        |events, deadline| {
            let mut tally = Tally::default();
            let mut events = events.into_iter().peekable();
            while events.peek().is_some() {
                if Instant::now() >= deadline {
                    tally.unsent += events.count();
                    break;
                }
                let chunk: Vec<SignedEvent> = events.by_ref().take(batch).collect();
                let n = chunk.len();
                let sent = Instant::now();
                let pending: Vec<_> = chunk.into_iter().map(|e| ledger.submit(e)).collect();
                let mut ok = 0;
                for p in pending {
                    match p.and_then(|p| p.wait()) {
                        Ok(receipt) if !receipt.replay => ok += 1,
                        Ok(_) => tally.error = Some("an event was a replay".into()),
                        Err(e) => tally.error = tally.error.take().or(Some(e.to_string())),
                    }
                }
                tally.latencies.push(sent.elapsed());
                tally.accepted += ok;
                tally.failed += n - ok;
            }
            tally
        },
        max_phase,
    )
}

/// The HTTP figure: each client thread has its own keep-alive connection
/// and sends its events one per request or `batch` per request. Bodies are
/// encoded before the clock starts.
fn post_over_http(
    url: &str,
    mode: Mode,
    parts: Vec<Vec<SignedEvent>>,
    batch: usize,
    max_phase: Duration,
) -> Throughput {
    let bodies: Vec<Vec<(usize, Vec<u8>)>> = parts
        .iter()
        .map(|events| {
            events
                .chunks(batch)
                .map(|chunk| {
                    let items: Vec<SignedEventBody> =
                        chunk.iter().map(SignedEventBody::from).collect();
                    let body = match mode {
                        Mode::Single => serde_json::to_vec(&items[0]),
                        Mode::Batch => serde_json::to_vec(&serde_json::json!({ "events": items })),
                    };
                    (chunk.len(), body.unwrap_or_default())
                })
                .collect()
        })
        .collect();
    drop(parts);
    let path = match mode {
        Mode::Single => "/v1/events",
        Mode::Batch => "/v1/events/batch",
    };
    run_clients(
        bodies,
        |requests, deadline| {
            let mut tally = Tally::default();
            let client = match Client::new(url) {
                Ok(c) => c,
                Err(e) => {
                    tally.failed = requests.iter().map(|(n, _)| n).sum();
                    tally.error = Some(e.to_string());
                    return tally;
                }
            };
            let mut requests = requests.into_iter();
            while let Some((n, body)) = requests.next() {
                if Instant::now() >= deadline {
                    tally.unsent += n + requests.map(|(n, _)| n).sum::<usize>();
                    break;
                }
                let sent = Instant::now();
                let answer = client.request("POST", path, Some(&body));
                tally.latencies.push(sent.elapsed());
                let accepted = match answer {
                    Ok(a) => accepted_in(mode, &a),
                    Err(e) => Err(e.to_string()),
                };
                match accepted {
                    Ok(ok) => {
                        tally.accepted += ok;
                        tally.failed += n - ok;
                        if ok < n && tally.error.is_none() {
                            tally.error = Some(format!("{} of {n} events refused", n - ok));
                        }
                    }
                    Err(e) => {
                        tally.failed += n;
                        tally.error = tally.error.take().or(Some(e));
                    }
                }
            }
            tally
        },
        max_phase,
    )
}

/// New entries an ingest answer reports, or why it is not a good answer.
fn accepted_in(mode: Mode, answer: &super::client::Answer) -> Result<usize, String> {
    match mode {
        Mode::Single if answer.status == 201 => Ok(1),
        Mode::Single => Err(answer.error_line()),
        Mode::Batch if answer.status == 200 => {
            #[derive(serde::Deserialize)]
            struct Item {
                status: u16,
            }
            #[derive(serde::Deserialize)]
            struct Results {
                results: Vec<Item>,
            }
            let results: Results = serde_json::from_slice(&answer.body)
                .map_err(|e| format!("a batch answer is not the expected JSON: {e}"))?;
            Ok(results.results.iter().filter(|i| i.status == 201).count())
        }
        Mode::Batch => Err(answer.error_line()),
    }
}

/// Times `reads` provenance requests of the cathode after a first one
/// (which waits for the catalog) and a few untimed ones.
fn read_provenance(
    client: &Client,
    workload: &workload::Workload,
    reads: usize,
) -> anyhow::Result<ProvenanceResult> {
    let path = format!("/v1/lots/{}/provenance", workload.cathode);
    // The first read waits for the catalog to take in the whole log, which
    // for a large ledger can outlast the server's request time-out: it is
    // asked again until answered.
    let started = Instant::now();
    let first = loop {
        let answer = client.request("GET", &path, None)?;
        let timed_out = answer.status == 503
            && serde_json::from_slice::<serde_json::Value>(&answer.body)
                .is_ok_and(|v| v["code"] == crate::api::error::code::TIMEOUT);
        if !timed_out || started.elapsed() > FIRST_READ_PATIENCE {
            break answer;
        }
        eprintln!("provenance: the catalog is still catching up; asking again");
    };
    let first_read_seconds = started.elapsed().as_secs_f64();
    if first.status == 404 {
        let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default();
        if message.contains("no such endpoint") || message.is_empty() {
            eprintln!("provenance endpoint missing (404)");
            return Ok(ProvenanceResult::Missing {
                message: "provenance endpoint missing (404)".into(),
            });
        }
    }
    if first.status != 200 {
        bail!("GET {path}: {}", first.error_line());
    }
    let body: serde_json::Value = serde_json::from_slice(&first.body)
        .with_context(|| format!("GET {path}: the answer is not JSON"))?;
    let lots_in_answer = body["nodes"].as_array().map(Vec::len);
    let expected = 1 + workload.upstream + workload.blends;
    if let Some(n) = lots_in_answer
        && n != expected
    {
        bail!("GET {path}: the graph holds {n} lots, not the {expected} the cathode came from");
    }
    eprintln!("provenance: {reads} reads of {}", workload.cathode);
    for _ in 0..WARM_UP_READS {
        client.request("GET", &path, None)?;
    }
    let mut samples = Vec::with_capacity(reads);
    for _ in 0..reads {
        let sent = Instant::now();
        let answer = client.request("GET", &path, None)?;
        samples.push(sent.elapsed());
        if answer.status != 200 {
            bail!("GET {path}: {}", answer.error_line());
        }
    }
    let Some(latency) = Latency::of(samples) else {
        bail!("--reads must be above zero");
    };
    Ok(ProvenanceResult::Measured {
        lot: workload.cathode.to_string(),
        first_read_seconds,
        latency,
        bytes: first.body.len(),
        lots_in_answer,
    })
}

/// The API served on a free loopback port by a runtime of this process.
struct Server {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start(ledger: Arc<Ledger>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .context("listening on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(api::serve(listener, AppState::new(ledger), async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            runtime,
            stop: Some(stop),
            served: Some(served),
        })
    }

    /// Stops taking requests, lets those in flight finish, and shuts the
    /// runtime down.
    fn stop(self) -> anyhow::Result<()> {
        let Self {
            runtime,
            stop,
            served,
            ..
        } = self;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let served = served.map(|served| runtime.block_on(served));
        // Blocking reads still running end here, and with them the last
        // references to the ledger.
        runtime.shutdown_timeout(Duration::from_secs(30));
        if let Some(served) = served {
            served
                .context("the server task failed")?
                .context("serving the API")?;
        }
        Ok(())
    }
}

fn print_tables(r: &Report) {
    let l = &r.ledger;
    println!(
        "ledger: {} entries ({} after the ingest phases) in {}, built in {:.1} s",
        l.entries, l.entries_after, l.data, l.build_seconds
    );
    println!(
        "cathode {} from {} concentrate lots through {} blends; server {} on {} cores",
        l.cathode, l.upstream_lots, l.blend_lots, r.server, r.cores
    );
    println!();
    println!(
        "{:<7} {:>7} {:>6} | {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>6}",
        "ingest",
        "clients",
        "batch",
        "HTTP ev/s",
        "p50 ms",
        "p99 ms",
        "in-proc/s",
        "p50 ms",
        "p99 ms",
        "ratio"
    );
    let ms = |l: &Option<Latency>, f: fn(&Latency) -> f64| {
        l.as_ref()
            .map_or("-".to_string(), |l| format!("{:.2}", f(l)))
    };
    for row in &r.ingest {
        println!(
            "{:<7} {:>7} {:>6} | {:>10.0} {:>8} {:>8} | {:>10.0} {:>8} {:>8} | {:>5.0}%",
            format!("{:?}", row.mode).to_lowercase(),
            row.clients,
            row.batch,
            row.http.events_per_second,
            ms(&row.http.latency, |l| l.p50_ms),
            ms(&row.http.latency, |l| l.p99_ms),
            row.in_process.events_per_second,
            ms(&row.in_process.latency, |l| l.p50_ms),
            ms(&row.in_process.latency, |l| l.p99_ms),
            row.ratio * 100.0
        );
        for (what, t) in [("HTTP", &row.http), ("in-process", &row.in_process)] {
            if t.unsent > 0 || t.failed > 0 {
                println!(
                    "        {what}: {} events not sent (time limit), {} failed",
                    t.unsent, t.failed
                );
            }
        }
    }
    println!("latency is per request: one event (single) or one batch (batch)");
    println!();
    match &r.provenance {
        ProvenanceResult::Measured {
            lot,
            first_read_seconds,
            latency,
            bytes,
            lots_in_answer,
        } => println!(
            "provenance of {lot}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
             {bytes} bytes, {} lots per answer; first read {:.2} s",
            latency.requests,
            latency.p50_ms,
            latency.p99_ms,
            latency.max_ms,
            lots_in_answer.map_or("?".to_string(), |n| n.to_string()),
            first_read_seconds
        ),
        ProvenanceResult::Missing { message } => println!("provenance: {message}"),
    }
    let g = &r.goals;
    let met = |m: bool| if m { "met" } else { "NOT met" };
    println!(
        "goal: best HTTP batch ingest is {:.0}% of the best in-process append (goal >= {:.0}%): {}",
        g.batch_ingest_ratio * 100.0,
        g.batch_ingest_goal * 100.0,
        met(g.batch_ingest_met)
    );
    match (g.provenance_p99_ms, g.provenance_met) {
        (Some(p99), Some(m)) => println!(
            "goal: provenance p99 {p99:.2} ms (goal < {:.0} ms): {}",
            g.provenance_goal_ms,
            met(m)
        ),
        _ => println!("goal: provenance p99 not measured"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let l = Latency::of(samples).unwrap();
        assert_eq!(
            (l.requests, l.p50_ms, l.p99_ms, l.max_ms),
            (200, 100.0, 198.0, 200.0)
        );
        let one = Latency::of(vec![Duration::from_millis(3)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (3.0, 3.0));
        assert!(Latency::of(Vec::new()).is_none());
    }

    #[test]
    fn split_deals_every_event_out_once() {
        let key = crate::crypto::SecretKey::from_seed(&[1; 32]);
        let mut s = Signer::with_first_nonce("l", ParticipantId::new("p").unwrap(), key, 0);
        let events: Vec<SignedEvent> = (0..10)
            .map(|_| {
                s.sign(
                    Timestamp::from_millis(0),
                    crate::model::EventBody::AttachDocument(crate::model::DocumentAttachment {
                        lot: crate::model::LotId::new("L").unwrap(),
                        document: crate::model::DocumentRef {
                            kind: crate::model::DocumentKind::Other,
                            sha256: crate::crypto::sha256(b"d"),
                        },
                    }),
                )
                .unwrap()
            })
            .collect();
        let parts = split(events.clone(), 3);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        assert_eq!(parts.concat(), events);
        assert_eq!(split(events, 16).len(), 16);
    }
}
