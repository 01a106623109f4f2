//! Ledger benchmarks, each beside the raw limit it is bounded by, measured
//! in the same run: Ed25519 `verify_strict` and batch verification on one
//! and two cores (ed25519-dalek's, and the ledger's own with each key's
//! terms merged), SHA-256 of an entry, and the `fdatasync` rate of the
//! disk that holds `target/`.
//!
//! Run with `cargo bench --bench ledger`; `BENCHMARKS.md` explains the
//! figures. After divan's table come the bytes on disk per entry and the
//! two goals that are ratios measured again in pairs (each round of the
//! ledger's work followed at once by its limits).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use oretrail::audit;
use oretrail::codec;
use oretrail::crypto::{Digest, KeyCache, PublicKey, SecretKey, Signature, SignatureCheck};
use oretrail::ledger::{
    CheckpointRecord, GenesisParams, KEYS_DIR, LOG_FILE, LOG_KEY_FILE, Ledger, OPERATOR_KEY_FILE,
    Options, verify_log,
};
use oretrail::merkle::{self, Frontier, Hash, checkpoint::Checkpoint};
use oretrail::model::{
    Assay, CountryCode, Element, Entry, Event, EventBody, Grams, LotCreation, LotId, LotKind,
    ParticipantId, ParticipantKind, Ppb, Registration, Role, SignedEvent, SiteId, SiteRegistration,
    SiteScale, Timestamp,
};
use oretrail::signer::Signer;
use oretrail::store::FrameKind;
use oretrail::store::dense::TreeFile;
use oretrail::store::log::{FrameReader, LOG_HEADER, encode_frame};
use rayon::prelude::*;

const ORIGIN: &str = "bench.example/oretrail";

fn main() {
    divan::main();
    report_disk_usage();
    report_paired_ratios();
}

/// Scratch space on the same disk as `target/` (not a tmpfs), so sync
/// figures are the disk's.
fn scratch_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).expect("target tmp dir");
    tempfile::tempdir_in(base).expect("scratch dir")
}

fn genesis() -> GenesisParams {
    GenesisParams {
        origin: ORIGIN.into(),
        operator: ParticipantId::new("operator").expect("id"),
        operator_name: "Bench Operator AG".into(),
        operator_country: CountryCode::new("CH").expect("country"),
    }
}

/// A fresh ledger with one mine and its site, and a signer for the mine.
fn new_ledger(dir: &Path) -> (Ledger, Signer) {
    let ledger = Ledger::create(dir, genesis(), Options::default()).expect("create ledger");
    let key = SecretKey::read_file(&dir.join(KEYS_DIR).join(OPERATOR_KEY_FILE)).expect("key");
    let mut operator = Signer::with_first_nonce(
        ORIGIN,
        ParticipantId::new("operator").expect("id"),
        key,
        1 << 40,
    );
    let mine_key = SecretKey::from_seed(&[0x4d; 32]);
    let mine = ParticipantId::new("mine.andina").expect("id");
    let setup = [
        EventBody::RegisterParticipant(Registration {
            participant: mine.clone(),
            legal_name: "Compañía Minera Andina del Sur S.A.".into(),
            country: CountryCode::new("PE").expect("country"),
            kinds: vec![ParticipantKind::Mine],
            roles: vec![Role::Producer, Role::Custodian, Role::Seller],
            keys: vec![mine_key.public()],
        }),
        EventBody::RegisterSite(SiteRegistration {
            site: SiteId::new("PE-ANDINA-1").expect("site"),
            operator: mine.clone(),
            name: "Andina open pit and concentrator".into(),
            country: CountryCode::new("PE").expect("country"),
            latitude_micro: -14_095_000,
            longitude_micro: -72_390_000,
            scale: SiteScale::LargeScale,
            metal: Element::Cu,
            annual_capacity: Grams(u64::MAX / 2),
        }),
    ];
    for body in setup {
        let signed = operator.sign(Timestamp::now(), body).expect("sign");
        ledger.append(signed).expect("setup");
    }
    (ledger, Signer::with_first_nonce(ORIGIN, mine, mine_key, 1))
}

/// `n` signed lot creations at the mine's site: the everyday custody event
/// (about 330 bytes per entry), signed by one participant, registering no
/// keys.
fn lot_creations(mine: &mut Signer, tag: &str, n: usize) -> Vec<SignedEvent> {
    (0..n)
        .map(|i| {
            let now = Timestamp::now();
            mine.sign(now, lot_creation(tag, i, now)).expect("sign")
        })
        .collect()
}

/// Lot creation number `i` of a run tagged `tag`, produced up to `now`.
fn lot_creation(tag: &str, i: usize, now: Timestamp) -> EventBody {
    let grade = |ppb| Ppb::new(ppb).expect("grade");
    EventBody::CreateLot(LotCreation {
        lot: LotId::new(format!("ANDINA-{tag}-{i:07}")).expect("lot"),
        site: SiteId::new("PE-ANDINA-1").expect("site"),
        kind: LotKind::Concentrate,
        wet: Grams(1_000_000_000 + i as u64),
        moisture: grade(82_000_000),
        assays: vec![
            Assay {
                element: Element::Cu,
                grade: grade(255_000_000),
            },
            Assay {
                element: Element::Au,
                grade: grade(3_210),
            },
            Assay {
                element: Element::Ag,
                grade: grade(85_000),
            },
            Assay {
                element: Element::As,
                grade: grade(1_200_000),
            },
        ],
        produced_from: now,
        produced_until: now,
    })
}

/// Submits every event at once (so they commit in large batches) and
/// waits until all are durable.
fn append_all(ledger: &Ledger, events: Vec<SignedEvent>) {
    let pending: Vec<_> = events
        .into_iter()
        .map(|e| ledger.submit(e).expect("submit"))
        .collect();
    for p in pending {
        p.wait().expect("append");
    }
}

/// Appends in each sample of `durable_append` and each round of the
/// paired report.
const PER_ITERATION: usize = 1024;

/// Appender threads on one ledger, started once like a server's clients,
/// each appending its share of a round and waiting for every receipt.
struct Appenders {
    ledger: Arc<Ledger>,
    work: Vec<std::sync::mpsc::Sender<Vec<SignedEvent>>>,
    done: std::sync::mpsc::Receiver<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Appenders {
    fn start(ledger: Ledger, threads: usize) -> Self {
        let ledger = Arc::new(ledger);
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let (work, threads) = (0..threads)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel::<Vec<SignedEvent>>();
                let ledger = ledger.clone();
                let done_tx = done_tx.clone();
                let appender = std::thread::spawn(move || {
                    for share in rx {
                        for event in share {
                            ledger.append(event).expect("append");
                        }
                        done_tx.send(()).expect("report");
                    }
                });
                (tx, appender)
            })
            .unzip();
        Self {
            ledger,
            work,
            done,
            threads,
        }
    }

    /// Splits a round into one share per appender (untimed).
    fn share(&self, events: Vec<SignedEvent>) -> Vec<Vec<SignedEvent>> {
        let per_appender = events.len().div_ceil(self.work.len());
        events
            .chunks(per_appender)
            .map(<[SignedEvent]>::to_vec)
            .collect()
    }

    /// Appends a round and waits until every entry is durable.
    fn append(&self, shares: Vec<Vec<SignedEvent>>) {
        let n = shares.len();
        for (appender, share) in self.work.iter().zip(shares) {
            appender.send(share).expect("hand out");
        }
        for _ in 0..n {
            self.done.recv().expect("appender finished");
        }
        // The index's sled writes wait in memory for a larger batch;
        // writing them out here keeps their cost in the timed work rather
        // than after it.
        self.ledger.flush_index().expect("flush the index");
    }

    fn stop(self) {
        drop(self.work);
        for appender in self.threads {
            appender.join().expect("appender thread");
        }
    }
}

/// Size of the ledger that `verify_full` checks.
const VERIFY_ENTRIES: usize = 20_000;

fn verify_fixture() -> &'static (tempfile::TempDir, u64) {
    static FIXTURE: OnceLock<(tempfile::TempDir, u64)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = scratch_dir();
        let (ledger, mut signer) = new_ledger(dir.path());
        append_all(&ledger, lot_creations(&mut signer, "v", VERIFY_ENTRIES));
        let size = ledger.size();
        ledger.close().expect("close");
        (dir, size)
    })
}

/// Messages of entry size, each signed by one of a few keys.
struct Signed {
    keys: Vec<PublicKey>,
    /// The keys decoded (curve points), as the ledger keeps them: it
    /// decodes a key once, not per signature.
    decoded: Vec<ed25519_dalek::VerifyingKey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<Signature>,
    /// The ledger's key cache, every key decoded and with its table built,
    /// for the ledger's strict and batch checks.
    cache: KeyCache,
}

impl Signed {
    /// Checks signature `i` with `verify_strict` under its decoded key.
    fn strict_ok(&self, i: usize) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(self.signatures[i].as_bytes());
        self.decoded[i]
            .verify_strict(&self.messages[i], &sig)
            .is_ok()
    }

    /// Checks signature `i` with the ledger's strict check
    /// (`KeyCache::verify_strict`), whose cache has a table for each key.
    fn ledger_strict_ok(&self, i: usize) -> bool {
        self.cache
            .verify_strict(&self.keys[i], &self.messages[i], &self.signatures[i])
            .is_ok()
    }

    /// Like [`Signed::strict_ok`], decoding the key afresh.
    fn strict_ok_decoding(&self, i: usize) -> bool {
        self.keys[i]
            .verify_strict(&self.messages[i], &self.signatures[i])
            .is_ok()
    }
}

/// Signatures each `verify_strict` sample checks.
const SIGNATURES: usize = 1024;

/// Signatures each batch-verification sample checks: enough for two
/// cores to each take whole batches of the largest size measured.
const BATCH_SIGNATURES: usize = 4096;

fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let secrets: Vec<SecretKey> = (0..16u8)
            .map(|i| SecretKey::from_seed(&[i + 1; 32]))
            .collect();
        let messages: Vec<Vec<u8>> = (0..BATCH_SIGNATURES)
            .map(|i| {
                let mut m = vec![0x5A; 350];
                m[..8].copy_from_slice(&(i as u64).to_le_bytes());
                m
            })
            .collect();
        let signatures = messages
            .iter()
            .enumerate()
            .map(|(i, m)| secrets[i % secrets.len()].sign(m))
            .collect();
        let keys: Vec<PublicKey> = (0..BATCH_SIGNATURES)
            .map(|i| secrets[i % secrets.len()].public())
            .collect();
        // Each key signs 256 of the messages: enough checks for the cache
        // to build every key's table, as it does for a ledger's signers.
        let cache = KeyCache::new();
        for ((key, message), signature) in keys.iter().zip(&messages).zip(&signatures) {
            cache
                .verify_strict(key, message, signature)
                .expect("signature");
        }
        Signed {
            cache,
            decoded: keys
                .iter()
                .map(|k| k.verifying_key().expect("key"))
                .collect(),
            keys,
            messages,
            signatures,
        }
    })
}

fn batch_verify(s: &Signed, range: std::ops::Range<usize>) -> bool {
    let keys = &s.decoded[range.clone()];
    let messages: Vec<&[u8]> = s.messages[range.clone()]
        .iter()
        .map(Vec::as_slice)
        .collect();
    let sigs: Vec<_> = s.signatures[range]
        .iter()
        .map(|sig| ed25519_dalek::Signature::from_bytes(sig.as_bytes()))
        .collect();
    ed25519_dalek::verify_batch(&messages, &sigs, keys).is_ok()
}

/// [`batch_verify`] with the ledger's own batch check
/// (`crypto::verify_batch`: each key's terms merged, OS-random weights).
fn merged_batch_verify(s: &Signed, range: std::ops::Range<usize>) -> bool {
    let checks: Vec<SignatureCheck<'_>> = range
        .map(|i| SignatureCheck {
            key: &s.keys[i],
            message: &s.messages[i],
            signature: &s.signatures[i],
        })
        .collect();
    oretrail::crypto::verify_batch(&checks, &s.cache)
}

/// `check` of the first `n` signatures, on both cores.
fn each_on_two_cores(s: &Signed, n: usize, check: fn(&Signed, usize) -> bool) {
    (0..n).into_par_iter().for_each(|i| assert!(check(s, i)));
}

/// `check` of every signature in batches of `batch`, on both cores.
fn batches_on_two_cores(
    s: &Signed,
    batch: usize,
    check: fn(&Signed, std::ops::Range<usize>) -> bool,
) {
    (0..BATCH_SIGNATURES / batch)
        .into_par_iter()
        .for_each(|b| assert!(check(s, b * batch..(b + 1) * batch)));
}

/// The raw limits: what the hardware and the chosen crates allow at most.
mod limits {
    use super::*;

    /// `check` of every signature, on one core.
    fn on_one_core(bencher: Bencher, check: fn(&Signed, usize) -> bool) {
        let s = signed();
        bencher.counter(ItemsCount::new(SIGNATURES)).bench(|| {
            for i in 0..SIGNATURES {
                assert!(check(s, i));
            }
        });
    }

    /// `verify_strict` on one core, keys decoded beforehand (the ledger
    /// decodes each key once and keeps it).
    #[divan::bench]
    fn verify_strict_one_core(bencher: Bencher) {
        on_one_core(bencher, Signed::strict_ok);
    }

    /// Key decoding and `verify_strict` on one core: the cost of a
    /// signature under a key not seen before.
    #[divan::bench]
    fn verify_strict_decoding_key_one_core(bencher: Bencher) {
        on_one_core(bencher, Signed::strict_ok_decoding);
    }

    /// `check` of every signature, on both cores.
    fn on_two_cores(bencher: Bencher, check: fn(&Signed, usize) -> bool) {
        let s = signed();
        bencher
            .counter(ItemsCount::new(SIGNATURES))
            .bench(|| each_on_two_cores(s, SIGNATURES, check));
    }

    /// `verify_strict` on both cores.
    #[divan::bench]
    fn verify_strict_two_cores(bencher: Bencher) {
        on_two_cores(bencher, Signed::strict_ok);
    }

    /// The ledger's strict check (what every append runs: the rule of
    /// `verify_strict`, with a table of multiples of each often-used key)
    /// on one core.
    #[divan::bench]
    fn ledger_strict_one_core(bencher: Bencher) {
        on_one_core(bencher, Signed::ledger_strict_ok);
    }

    /// The ledger's strict check on both cores.
    #[divan::bench]
    fn ledger_strict_two_cores(bencher: Bencher) {
        on_two_cores(bencher, Signed::ledger_strict_ok);
    }

    /// `check` over batches of `batch` signatures, on one core.
    fn batches_one_core(
        bencher: Bencher,
        batch: usize,
        check: fn(&Signed, std::ops::Range<usize>) -> bool,
    ) {
        let s = signed();
        bencher
            .counter(ItemsCount::new(BATCH_SIGNATURES))
            .bench(|| {
                for start in (0..BATCH_SIGNATURES).step_by(batch) {
                    assert!(check(s, start..start + batch));
                }
            });
    }

    /// `check` over batches of `batch` signatures, on both cores.
    fn batches_two_cores(
        bencher: Bencher,
        batch: usize,
        check: fn(&Signed, std::ops::Range<usize>) -> bool,
    ) {
        let s = signed();
        bencher
            .counter(ItemsCount::new(BATCH_SIGNATURES))
            .bench(|| batches_on_two_cores(s, batch, check));
    }

    /// ed25519-dalek's batch verification on one core, in batches of the
    /// given size. Its multiscalar multiplication gets cheaper per point
    /// with more points, so the limit is the fastest size measured.
    #[divan::bench(args = [64, 1024], sample_count = 30)]
    fn batch_verify_one_core(bencher: Bencher, batch: usize) {
        batches_one_core(bencher, batch, batch_verify);
    }

    /// ed25519-dalek's batch verification on both cores.
    #[divan::bench(args = [64, 1024], sample_count = 30)]
    fn batch_verify_two_cores(bencher: Bencher, batch: usize) {
        batches_two_cores(bencher, batch, batch_verify);
    }

    /// The ledger's batch verification (what `verify` runs) on one core:
    /// the same equation with each of the 16 keys' terms merged.
    #[divan::bench(args = [64, 1024], sample_count = 30)]
    fn merged_batch_verify_one_core(bencher: Bencher, batch: usize) {
        batches_one_core(bencher, batch, merged_batch_verify);
    }

    /// The ledger's batch verification on both cores.
    #[divan::bench(args = [64, 1024], sample_count = 30)]
    fn merged_batch_verify_two_cores(bencher: Bencher, batch: usize) {
        batches_two_cores(bencher, batch, merged_batch_verify);
    }

    /// SHA-256 of one entry-sized input (the leaf hash of an entry).
    #[divan::bench]
    fn sha256_entry(bencher: Bencher) {
        let data = vec![0xA5u8; 350];
        bencher
            .counter(BytesCount::new(data.len()))
            .bench(|| merkle::leaf_hash(black_box(&data)));
    }

    /// One 4 KiB write into space already written (zeros) and
    /// `fdatasync`: the rate of durable commits when the file's length does
    /// not change, as for the log's writes into its reserved space.
    #[divan::bench(sample_count = 30, sample_size = 4)]
    fn fdatasync_4k_reserved(bencher: Bencher) {
        write_and_sync(bencher, Some(8 << 20));
    }

    /// One 4 KiB append that grows the file and `fdatasync`: the rate of
    /// durable commits when each sync must also write the file's new
    /// length (the log's writes that reach past its reserved space).
    #[divan::bench(sample_count = 30, sample_size = 4)]
    fn fdatasync_4k(bencher: Bencher) {
        write_and_sync(bencher, None);
    }

    /// 4 KiB writes to a new file, each followed by `fdatasync`: over and
    /// over `reserved` bytes of zeros written and synced beforehand, or
    /// with none, each appended at the file's end.
    fn write_and_sync(bencher: Bencher, reserved: Option<u64>) {
        let dir = scratch_dir();
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(dir.path().join("sync"))
            .expect("open");
        if let Some(space) = reserved {
            file.write_all_at(&vec![0u8; space as usize], 0)
                .expect("reserve");
            file.sync_all().expect("sync the reserved space");
        }
        let block = vec![0x11u8; 4096];
        let mut at = 0u64;
        bencher.bench_local(|| {
            file.write_all_at(&block, at).expect("write");
            file.sync_data().expect("fdatasync");
            at += 4096;
            if let Some(space) = reserved {
                at %= space;
            }
        });
    }
}

/// The ledger itself, end to end.
mod ledger {
    use super::*;

    /// Durable appends from `threads` concurrent appenders, each waiting
    /// for its own receipt (decode, the strict signature check, rules,
    /// sequencing, log write, `fdatasync`, index update, and sled's share of
    /// the index writes, flushed at the end of each sample). The appenders
    /// are started once, like a server's clients, so thread start-up is not
    /// timed.
    #[divan::bench(args = [1, 8, 64], sample_count = 10, sample_size = 1)]
    fn durable_append(bencher: Bencher, threads: usize) {
        let dir = scratch_dir();
        let (ledger, mut signer) = new_ledger(dir.path());
        let appenders = Appenders::start(ledger, threads);
        let mut round = 0usize;
        bencher
            .counter(ItemsCount::new(PER_ITERATION))
            .with_inputs(|| {
                round += 1;
                appenders.share(lot_creations(
                    &mut signer,
                    &format!("r{round}"),
                    PER_ITERATION,
                ))
            })
            .bench_local_values(|shares| appenders.append(shares));
        appenders.stop();
    }

    /// `oretrail verify`: every frame, encoding, link, signature (batched,
    /// both cores), key window, rule and checkpoint, from the log alone.
    /// Each report comes before the replayed state is freed (on a thread
    /// of its own), so a sample shares the cores with the freeing of the
    /// sample before it, as back-to-back verifications do.
    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn verify_full(bencher: Bencher) {
        let (dir, size) = verify_fixture();
        let log = dir.path().join(LOG_FILE);
        bencher.counter(ItemsCount::new(*size)).bench(|| {
            let report = verify_log(&log, false).expect("intact");
            assert_eq!(report.entries, *size);
        });
    }

    /// Entries in the audit bundles `bundle_verify` checks. Two sizes, so
    /// one run shows whether the cost per entry stays flat; set
    /// `ORETRAIL_BENCH_BUNDLE_ENTRIES` (comma-separated) for others, such
    /// as the 1,000,000.
    fn bundle_sizes() -> Vec<usize> {
        std::env::var("ORETRAIL_BENCH_BUNDLE_ENTRIES")
            .ok()
            .map(|v| {
                v.split(',')
                    .filter_map(|n| n.trim().replace('_', "").parse().ok())
                    .collect::<Vec<usize>>()
            })
            .filter(|sizes| !sizes.is_empty())
            .unwrap_or_else(|| vec![10_000, 40_000])
    }

    /// `oretrail audit verify FILE`, the command itself, one process per
    /// sample: an audit bundle of the mine's setup and `entries` lot
    /// creations, checked in full (frames, encodings, links, signatures
    /// batched on both cores, key windows, every rule replayed, the tree
    /// and every checkpoint signature, then the header's claims). In this
    /// process instead, each verification after the first would run on a
    /// heap the ones before had filled and freed, about 10 % slower at a
    /// million entries than a fresh process (BENCHMARKS.md).
    #[divan::bench(args = bundle_sizes(), sample_count = 3, sample_size = 1)]
    fn bundle_verify(bencher: Bencher, entries: usize) {
        let dir = scratch_dir();
        let (bundle, size) = write_bundle(dir.path(), entries);
        // Written out before the clock starts, so that the kernel's
        // writeback of it does not share the cores with the samples.
        std::fs::File::open(&bundle)
            .and_then(|f| f.sync_all())
            .expect("sync the bundle");
        let intact = format!("intact: {size} entries,");
        bencher.counter(ItemsCount::new(size)).bench(|| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_oretrail"))
                .args(["audit", "verify"])
                .arg(&bundle)
                .output()
                .expect("run oretrail audit verify");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.starts_with(&intact),
                "{}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        });
    }

    /// Writes a log of a fresh ledger's setup entries followed by `n` lot
    /// creations, framed and checkpointed (every 4,096 entries, the
    /// writer's largest batch) as the writer would, but without a sync per
    /// batch, so a million entries take seconds rather than minutes; then
    /// exports its audit bundle. Returns the bundle and its entry count.
    fn write_bundle(dir: &Path, n: usize) -> (std::path::PathBuf, u64) {
        let (ledger, _) = new_ledger(dir);
        let setup: Vec<Vec<u8>> = (0..ledger.size())
            .map(|i| ledger.entry(i).expect("setup entry").1)
            .collect();
        ledger.close().expect("close");
        let log_key = SecretKey::read_file(&dir.join(KEYS_DIR).join(LOG_KEY_FILE)).expect("key");
        let mine_key = SecretKey::from_seed(&[0x4d; 32]);
        let mine = ParticipantId::new("mine.andina").expect("id");
        let signed: Vec<SignedEvent> = (0..n)
            .into_par_iter()
            .map(|i| {
                let now = Timestamp::now();
                let event = Event {
                    ledger: ORIGIN.into(),
                    signer: mine.clone(),
                    time: now,
                    nonce: i as u64 + 1,
                    body: lot_creation("b", i, now),
                };
                oretrail::signer::sign_event(&event, &mine_key).expect("sign")
            })
            .collect();
        let record_time = Timestamp::now();
        let log = dir.join("bundle-source.log");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&log).expect("log file"));
        out.write_all(&LOG_HEADER).expect("write");
        let mut frontier = Frontier::new();
        let mut frames = Vec::new();
        let mut append = |bytes: &[u8], last: bool| {
            frames.clear();
            encode_frame(FrameKind::Entry, bytes, &mut frames);
            frontier.push(merkle::leaf_hash(bytes));
            if frontier.size().is_multiple_of(4096) || last {
                let root = frontier.root();
                let note = Checkpoint::new(ORIGIN, frontier.size(), root).expect("checkpoint");
                let record = CheckpointRecord {
                    size: frontier.size(),
                    root: Digest::from_bytes(root),
                    signature: log_key.sign(note.body().as_bytes()),
                };
                let payload = codec::encode(&record).expect("encode");
                encode_frame(FrameKind::Checkpoint, &payload, &mut frames);
            }
            out.write_all(&frames).expect("write");
        };
        let mut prev = Digest::from_bytes([0; 32]);
        for bytes in &setup {
            append(bytes, false);
            prev = Digest::from_bytes(merkle::leaf_hash(bytes));
        }
        let first = setup.len();
        let total = first + signed.len();
        for (i, signed) in signed.into_iter().enumerate() {
            let entry = Entry {
                index: (first + i) as u64,
                prev,
                record_time,
                signed,
            };
            let bytes = codec::encode(&entry).expect("encode");
            prev = Digest::from_bytes(merkle::leaf_hash(&bytes));
            append(&bytes, first + i + 1 == total);
        }
        out.into_inner().expect("flush").sync_all().expect("sync");
        let bundle = dir.join("audit.bundle");
        let (header, _) =
            audit::bundle::export_file(&log, &bundle, Timestamp::now()).expect("export");
        assert_eq!(header.entries, total as u64);
        (bundle, header.entries)
    }

    /// Tree size for the proof benchmarks.
    const PROOF_SIZE: u64 = 1 << 20;

    /// A dense tree file of 2^20 leaves: the same node store the ledger's
    /// proofs read from (`Ledger::inclusion_proof` calls the same function
    /// over the same file type), built without signing a million events.
    fn proof_tree() -> &'static (tempfile::TempDir, TreeFile, Hash) {
        static TREE: OnceLock<(tempfile::TempDir, TreeFile, Hash)> = OnceLock::new();
        TREE.get_or_init(|| {
            let dir = scratch_dir();
            let tree = TreeFile::open(&dir.path().join("tree")).expect("tree file");
            let mut frontier = Frontier::new();
            let mut nodes = Vec::new();
            // Tree size when `nodes` was last written out.
            let mut flushed = 0u64;
            for i in 0..PROOF_SIZE {
                let leaf = merkle::leaf_hash(&i.to_le_bytes());
                nodes.extend(frontier.push(leaf).into_iter().map(|(_, _, h)| h));
                if nodes.len() >= 1 << 16 || i + 1 == PROOF_SIZE {
                    tree.append(flushed, &nodes).expect("append nodes");
                    nodes.clear();
                    flushed = frontier.size();
                }
            }
            let root = frontier.root();
            (dir, tree, root)
        })
    }

    /// An inclusion proof at tree size 2^20, for a different leaf each time.
    #[divan::bench]
    fn inclusion_proof_1m(bencher: Bencher) {
        let (_, tree, root) = proof_tree();
        let mut i = 0u64;
        bencher.bench_local(|| {
            i = (i + 7919) % PROOF_SIZE;
            let proof = merkle::inclusion_proof(tree, i, PROOF_SIZE).expect("proof");
            debug_assert!(
                merkle::verify_inclusion(
                    &merkle::leaf_hash(&i.to_le_bytes()),
                    i,
                    PROOF_SIZE,
                    &proof,
                    root
                )
                .is_ok()
            );
            proof
        });
    }

    /// A consistency proof from a varying earlier size to 2^20.
    #[divan::bench]
    fn consistency_proof_1m(bencher: Bencher) {
        let (_, tree, _) = proof_tree();
        let mut first = 1u64;
        bencher.bench_local(|| {
            first = (first + 7919) % (PROOF_SIZE - 1) + 1;
            merkle::consistency_proof(tree, first, PROOF_SIZE).expect("proof")
        });
    }
}

/// Bytes on disk per entry, against the raw entry bytes, for a ledger of
/// 20,000 typical entries after a clean close.
fn report_disk_usage() {
    let dir = scratch_dir();
    let (ledger, mut signer) = new_ledger(dir.path());
    append_all(&ledger, lot_creations(&mut signer, "d", 20_000));
    let size = ledger.size();
    let raw: u64 = (0..size)
        .map(|i| ledger.entry(i).expect("entry").1.len() as u64)
        .sum();
    ledger.close().expect("close");
    let ledger = Ledger::open(dir.path(), Options::default()).expect("reopen");
    let (log, index) = ledger.disk_usage().expect("disk usage");
    // One checkpoint per committed group: their number depends on how the
    // appends were grouped, and each costs bytes in the log and the index.
    let log_bytes = std::fs::read(dir.path().join(LOG_FILE)).expect("read the log");
    let mut frames = FrameReader::new(&log_bytes[LOG_HEADER.len()..], log_bytes.len() as u64);
    let mut checkpoints = 0u64;
    while let Some(frame) = frames.next_frame().expect("read").expect("intact") {
        checkpoints += u64::from(frame.kind == FrameKind::Checkpoint);
    }
    println!(
        "disk: {size} entries, {checkpoints} checkpoints, raw entry bytes {raw} ({:.0}/entry), log {log} ({:.0}/entry), \
         index {index} ({:.0}/entry), total/raw = {:.2}",
        raw as f64 / size as f64,
        log as f64 / size as f64,
        index as f64 / size as f64,
        (log + index) as f64 / raw as f64
    );
}

/// Pairs in each paired report.
const PAIRS: usize = 16;

/// The two goals that are ratios, measured in pairs: each round of the
/// ledger's work is followed at once by rounds of the limits it is judged
/// against, so both sides of a ratio meet the same load on a shared host.
/// (divan's medians above are minutes apart; on a busy host the limits'
/// own medians move by a quarter between runs.) The ledger is left idle
/// for a moment before the limits, so they do not share the cores with
/// the freeing or flushing left over from its round.
fn report_paired_ratios() {
    let s = signed();
    let strict = || {
        rate(SIGNATURES, || {
            each_on_two_cores(s, SIGNATURES, Signed::strict_ok)
        })
    };
    let own_strict = || {
        rate(SIGNATURES, || {
            each_on_two_cores(s, SIGNATURES, Signed::ledger_strict_ok)
        })
    };
    // The fastest batch size of the limits above, repeated so that a
    // round lasts about as long as the ledger's.
    let batches = |check: fn(&Signed, std::ops::Range<usize>) -> bool| {
        rate(4 * BATCH_SIGNATURES, || {
            for _ in 0..4 {
                batches_on_two_cores(s, 1024, check);
            }
        })
    };

    let dir = scratch_dir();
    let (ledger, mut signer) = new_ledger(dir.path());
    let appenders = Appenders::start(ledger, 64);
    let mut append = Ratios::default();
    for pair in 0..PAIRS {
        let shares = appenders.share(lot_creations(
            &mut signer,
            &format!("p{pair}"),
            PER_ITERATION,
        ));
        let appends = rate(PER_ITERATION, || appenders.append(shares));
        settle();
        append.push(appends, best_of_two(strict), best_of_two(own_strict));
    }
    appenders.stop();
    append.print(
        "durable append, 64 appenders",
        "two-core verify_strict",
        "the ledger's strict check",
    );

    let (dir, size) = verify_fixture();
    let log = dir.path().join(LOG_FILE);
    let mut verify = Ratios::default();
    for _ in 0..PAIRS {
        let verified = rate(*size as usize, || {
            let report = verify_log(&log, false).expect("intact");
            assert_eq!(report.entries, *size);
        });
        settle();
        verify.push(
            verified,
            best_of_two(|| batches(batch_verify)),
            best_of_two(|| batches(merged_batch_verify)),
        );
    }
    verify.print(
        "full verify",
        "two-core batch verify (1,024)",
        "the ledger's merged batch verify",
    );
}

/// Items per second of one run of `work`, which handles `items`.
fn rate(items: usize, work: impl FnOnce()) -> f64 {
    let start = std::time::Instant::now();
    work();
    items as f64 / start.elapsed().as_secs_f64()
}

/// The faster of two rounds of a limit: the first after an idle moment
/// is often the slower, and a limit measured low would flatter the ratio.
fn best_of_two(limit: impl Fn() -> f64) -> f64 {
    limit().max(limit())
}

/// Leaves the cores to the ledger's background work (freeing a verify's
/// state, sled's threads) before the limits are measured.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(250));
}

/// A measured rate and the two limits measured straight after it, pair
/// by pair.
#[derive(Default)]
struct Ratios {
    pairs: Vec<[f64; 3]>,
}

impl Ratios {
    fn push(&mut self, measured: f64, named_limit: f64, own_limit: f64) {
        self.pairs.push([measured, named_limit, own_limit]);
    }

    fn print(&self, what: &str, named: &str, own: &str) {
        let sorted = |values: Vec<f64>| {
            let mut values = values;
            values.sort_by(f64::total_cmp);
            values
        };
        let median = |sorted: &[f64]| {
            let n = sorted.len();
            sorted[n / 2].midpoint(sorted[(n - 1) / 2])
        };
        let rates = |i: usize| sorted(self.pairs.iter().map(|p| p[i]).collect());
        let measured = median(&rates(0));
        for (limit, name) in [(1, named), (2, own)] {
            let ratios: Vec<f64> = self.pairs.iter().map(|p| p[0] / p[limit]).collect();
            let each: Vec<String> = ratios.iter().map(|r| format!("{:.0}", 100.0 * r)).collect();
            let ratios = sorted(ratios);
            println!(
                "paired: {what} / {name}: median {:.1} % ({} pairs, {:.1} to {:.1} %; each: {}); \
                 medians {:.2} k/s and {:.2} k/s",
                100.0 * median(&ratios),
                ratios.len(),
                100.0 * ratios[0],
                100.0 * ratios[ratios.len() - 1],
                each.join(" "),
                measured / 1e3,
                median(&rates(limit)) / 1e3,
            );
        }
    }
}
