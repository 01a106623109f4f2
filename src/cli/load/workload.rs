//! The ledger `oretrail load` measures: participants, a cathode lot made
//! from many upstream concentrate lots, everyday filler up to the wanted
//! number of entries, and the pre-signed events of the ingest phases.
//!
//! Everything goes through `Ledger::submit`, so the rules accept every
//! event exactly as they would over HTTP. The upstream lots' lifecycles
//! (create, sell, dispatch, receive) are spread through the filler, so the
//! entries behind the cathode lie all over the log, not in one tail.

use std::path::Path;

use anyhow::{Context as _, bail};
use rayon::prelude::*;

use crate::crypto::{SecretKey, sha256};
use crate::ledger::{GenesisParams, KEYS_DIR, Ledger, OPERATOR_KEY_FILE, Options, Pending};
use crate::model::{
    Assay, Blend, CountryCode, Dispatch, DocumentKind, DocumentRef, Element, Event, EventBody,
    Grams, LotCreation, LotId, LotKind, LotReceipt, ParticipantId, ParticipantKind, Ppb,
    Registration, Role, Sale, SignedEvent, SiteId, SiteRegistration, SiteScale, Timestamp,
    TransformInput, TransformOutput, Transformation,
};
use crate::signer::{Signer, sign_event};

/// The load ledger's name: its checkpoint origin line.
pub const ORIGIN: &str = "load.oretrail.example/ledger";

pub const OPERATOR: &str = "operator";
const SMELTER: &str = "smelter.load";
/// The mine whose lot creations are the filler and the ingest workload.
const INGEST_MINE: &str = "mine.ingest";
const INGEST_SITE: &str = "INGEST-1";
const SMELTER_COUNTRY: &str = "FI";

/// The mines behind the cathode: id, site, country, scale. One artisanal
/// site, so that the cathode carries red flags as real ones do.
const MINES: &[(&str, &str, &str, SiteScale)] = &[
    ("mine.andina", "AND-1", "PE", SiteScale::LargeScale),
    ("mine.atacama", "ATC-1", "CL", SiteScale::LargeScale),
    ("mine.kansanshi", "KAN-1", "ZM", SiteScale::LargeScale),
    ("mine.kolwezi", "KOL-1", "CD", SiteScale::LargeScale),
    ("mine.kipushi", "KIP-ASM", "CD", SiteScale::Artisanal),
    ("mine.olympic", "OLY-1", "AU", SiteScale::LargeScale),
    ("mine.aitik", "AIT-1", "SE", SiteScale::LargeScale),
    ("mine.grasberg", "GRS-1", "ID", SiteScale::LargeScale),
    ("mine.oyu", "OYU-1", "MN", SiteScale::LargeScale),
    ("mine.sudbury", "SUD-1", "CA", SiteScale::LargeScale),
];

/// Most lots one blend takes: the upstream lots are blended in groups of
/// this many, then the blends again, until one transformation can take
/// what is left.
const FAN_IN: usize = 10;

/// Events appended with one round of submits.
const CHUNK: usize = 8192;

/// What `build` made.
pub struct Workload {
    pub ledger: std::sync::Arc<Ledger>,
    /// Signs the ingest phases' lot creations.
    pub ingest: Signer,
    /// The lot whose provenance is read.
    pub cathode: LotId,
    /// Concentrate lots behind the cathode.
    pub upstream: usize,
    /// Blend lots between them and the cathode.
    pub blends: usize,
}

fn pid(id: &str) -> anyhow::Result<ParticipantId> {
    Ok(ParticipantId::new(id)?)
}

fn country(code: &str) -> anyhow::Result<CountryCode> {
    Ok(CountryCode::new(code)?)
}

fn ppb(value: u64) -> anyhow::Result<Ppb> {
    Ok(Ppb::new(value)?)
}

/// A deterministic key per participant, so two runs build the same cast.
fn key_of(id: &str) -> SecretKey {
    SecretKey::from_seed(sha256(format!("oretrail load: {id}").as_bytes()).as_bytes())
}

/// Signs events in parallel. Nonces are handed out in order first, so the
/// events are the ones a sequential signer would make.
fn sign_all(signer: &mut Signer, bodies: Vec<EventBody>) -> anyhow::Result<Vec<SignedEvent>> {
    let now = Timestamp::now();
    let events: Vec<Event> = bodies
        .into_iter()
        .map(|body| signer.event(now, body))
        .collect();
    let key = signer.key();
    events
        .par_iter()
        .map(|e| sign_event(e, key).context("encoding an event"))
        .collect()
}

/// Appends events in order and waits until all are durable; any refusal
/// is an error naming the event.
fn append_in_order(ledger: &Ledger, events: Vec<SignedEvent>) -> anyhow::Result<()> {
    let pending: Vec<Pending> = events
        .into_iter()
        .map(|e| ledger.submit(e))
        .collect::<Result<_, _>>()
        .context("submitting a workload event")?;
    for p in pending {
        p.wait().context("appending a workload event")?;
    }
    Ok(())
}

/// Appends independent events from both cores (decoding and signature
/// checks run on the submitting threads), then waits for all.
fn append_unordered(ledger: &Ledger, events: Vec<SignedEvent>) -> anyhow::Result<()> {
    let pending: Vec<Pending> = events
        .into_par_iter()
        .map(|e| ledger.submit(e))
        .collect::<Result<_, _>>()
        .context("submitting a workload event")?;
    for p in pending {
        p.wait().context("appending a workload event")?;
    }
    Ok(())
}

/// Lot creations at the ingest site, the everyday custody event (as in
/// `benches/ledger.rs`): four assays, wet mass, moisture, period.
pub fn lot_creations(signer: &mut Signer, tag: &str, n: usize) -> anyhow::Result<Vec<SignedEvent>> {
    let now = Timestamp::now();
    let site = SiteId::new(INGEST_SITE)?;
    let assays = vec![
        Assay {
            element: Element::Cu,
            grade: ppb(255_000_000)?,
        },
        Assay {
            element: Element::Au,
            grade: ppb(3_210)?,
        },
        Assay {
            element: Element::Ag,
            grade: ppb(85_000)?,
        },
        Assay {
            element: Element::As,
            grade: ppb(1_200_000)?,
        },
    ];
    let moisture = ppb(82_000_000)?;
    let bodies = (0..n)
        .map(|i| {
            Ok(EventBody::CreateLot(LotCreation {
                lot: LotId::new(format!("LOAD-{tag}-{i:07}"))?,
                site: site.clone(),
                kind: LotKind::Concentrate,
                wet: Grams(1_000_000_000 + i as u64),
                moisture,
                assays: assays.clone(),
                produced_from: now,
                produced_until: now,
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    sign_all(signer, bodies)
}

/// Creates a ledger in `dir` of about `entries` entries (never fewer than
/// the cast and the cathode's history need) with a cathode lot made from
/// `upstream` concentrate lots. `progress` is called with the entries
/// appended so far.
pub fn build(
    dir: &Path,
    entries: u64,
    upstream: usize,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Workload> {
    if upstream < 2 {
        bail!("the cathode needs at least 2 upstream lots, not {upstream}");
    }
    let ledger = Ledger::create(
        dir,
        GenesisParams {
            origin: ORIGIN.into(),
            operator: pid(OPERATOR)?,
            operator_name: "Load Test Operator AG".into(),
            operator_country: country("CH")?,
        },
        Options::default(),
    )
    .with_context(|| format!("creating a ledger in {}", dir.display()))?;
    let ledger = std::sync::Arc::new(ledger);
    let operator_key = SecretKey::read_file(&dir.join(KEYS_DIR).join(OPERATOR_KEY_FILE))
        .context("reading the operator key")?;
    let mut operator = Signer::new(ORIGIN, pid(OPERATOR)?, operator_key);
    append_in_order(&ledger, sign_all(&mut operator, cast()?)?)?;

    let mut smelter = Signer::new(ORIGIN, pid(SMELTER)?, key_of(SMELTER));
    let mut mines = MINES
        .iter()
        .map(|(id, ..)| Ok(Signer::new(ORIGIN, pid(id)?, key_of(id))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut ingest = Signer::new(ORIGIN, pid(INGEST_MINE)?, key_of(INGEST_MINE));

    // Each upstream lot takes four entries; the blends and the
    // transformation one each.
    let levels = blend_levels(upstream);
    let blends: usize = levels.iter().map(Vec::len).sum();
    let history = upstream as u64 * 4 + blends as u64 + 1;
    let filler = entries.saturating_sub(ledger.size() + history);
    // Interleave: one round per group of upstream lots, each followed by
    // its share of the filler.
    let rounds = upstream.div_ceil(FAN_IN).max(1);
    let mut filled = 0u64;
    for round in 0..rounds {
        let lots = (round * FAN_IN)..((round + 1) * FAN_IN).min(upstream);
        let mut lifecycle = Vec::with_capacity(lots.len() * 4);
        for i in lots {
            let mine = i % MINES.len();
            lifecycle.extend(upstream_lot(&mut mines[mine], &mut smelter, mine, i)?);
        }
        append_in_order(&ledger, lifecycle)?;
        let target = filler * (round as u64 + 1) / rounds as u64;
        while filled < target {
            let n = (target - filled).min(CHUNK as u64) as usize;
            let events = lot_creations(&mut ingest, &format!("F{filled}"), n)?;
            append_unordered(&ledger, events)?;
            filled += n as u64;
            progress(ledger.size());
        }
        progress(ledger.size());
    }

    for (level, groups) in levels.iter().enumerate() {
        let bodies = groups
            .iter()
            .enumerate()
            .map(|(g, inputs)| {
                let inputs = inputs
                    .iter()
                    .map(|&i| lot_at(level, i))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(EventBody::Blend(Blend {
                    inputs,
                    output: lot_at(level + 1, g)?,
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        append_in_order(&ledger, sign_all(&mut smelter, bodies)?)?;
    }
    let top = levels.len();
    let last: Vec<LotId> = (0..levels.last().map_or(upstream, Vec::len))
        .map(|i| lot_at(top, i))
        .collect::<anyhow::Result<_>>()?;
    let cathode = LotId::new("LOAD-CATHODE-0001")?;
    let smelt = smelting(&ledger, &last, &cathode)?;
    append_in_order(&ledger, sign_all(&mut smelter, vec![smelt])?)?;
    progress(ledger.size());
    Ok(Workload {
        ledger,
        ingest,
        cathode,
        upstream,
        blends,
    })
}

/// The operator registers the smelter, the mines and their sites.
fn cast() -> anyhow::Result<Vec<EventBody>> {
    let huge = Grams(u64::MAX / 2);
    let mut bodies = vec![EventBody::RegisterParticipant(Registration {
        participant: pid(SMELTER)?,
        legal_name: "Load Test Smelter Oy".into(),
        country: country(SMELTER_COUNTRY)?,
        kinds: vec![ParticipantKind::Smelter],
        roles: vec![
            Role::Custodian,
            Role::Processor,
            Role::Seller,
            Role::Purchaser,
        ],
        keys: vec![key_of(SMELTER).public()],
    })];
    let ingest = (INGEST_MINE, INGEST_SITE, "PE", SiteScale::LargeScale);
    for (n, (id, site, code, scale)) in MINES.iter().chain([&ingest]).enumerate() {
        bodies.push(EventBody::RegisterParticipant(Registration {
            participant: pid(id)?,
            legal_name: format!("{id} mining company"),
            country: country(code)?,
            kinds: vec![ParticipantKind::Mine],
            roles: vec![Role::Producer, Role::Custodian, Role::Seller],
            keys: vec![key_of(id).public()],
        }));
        bodies.push(EventBody::RegisterSite(SiteRegistration {
            site: SiteId::new(*site)?,
            operator: pid(id)?,
            name: format!("{site} open pit and concentrator"),
            country: country(code)?,
            latitude_micro: -10_000_000 - n as i32 * 1_000_000,
            longitude_micro: 20_000_000 + n as i32 * 1_000_000,
            scale: *scale,
            metal: Element::Cu,
            annual_capacity: huge,
        }));
    }
    Ok(bodies)
}

/// The id of lot `i` at blend level `level` (0: the concentrate lots).
fn lot_at(level: usize, i: usize) -> anyhow::Result<LotId> {
    Ok(if level == 0 {
        LotId::new(format!("LOAD-UP-{i:05}"))?
    } else {
        LotId::new(format!("LOAD-BL{level}-{i:05}"))?
    })
}

/// The groups of each blend level: indices of the level below. Groups
/// hold at most `FAN_IN` lots and at least two (a blend needs two).
fn blend_levels(upstream: usize) -> Vec<Vec<Vec<usize>>> {
    let mut levels = Vec::new();
    let mut width = upstream;
    while width > FAN_IN {
        let groups = width.div_ceil(FAN_IN);
        // Even groups: sizes differ by at most one, so none is a single lot.
        let level: Vec<Vec<usize>> = (0..groups)
            .map(|g| (g * width / groups..(g + 1) * width / groups).collect())
            .collect();
        width = level.len();
        levels.push(level);
    }
    levels
}

/// One upstream lot's life: created at its mine, sold to the smelter,
/// shipped with a bill of lading and an export permit, received at the
/// dispatched weight.
fn upstream_lot(
    mine: &mut Signer,
    smelter: &mut Signer,
    mine_index: usize,
    i: usize,
) -> anyhow::Result<Vec<SignedEvent>> {
    let (_, site, code, _) = MINES[mine_index];
    let lot = lot_at(0, i)?;
    let now = Timestamp::now();
    let wet = Grams(900_000_000 + (i as u64 % 97) * 1_000_000);
    let document = |kind: DocumentKind| DocumentRef {
        kind,
        sha256: sha256(format!("{kind:?} for {lot}").as_bytes()),
    };
    let made = vec![
        EventBody::CreateLot(LotCreation {
            lot: lot.clone(),
            site: SiteId::new(site)?,
            kind: LotKind::Concentrate,
            wet,
            moisture: ppb(80_000_000)?,
            assays: vec![
                Assay {
                    element: Element::Cu,
                    grade: ppb(240_000_000 + (i as u64 % 11) * 1_000_000)?,
                },
                Assay {
                    element: Element::Ag,
                    grade: ppb(60_000)?,
                },
            ],
            produced_from: now,
            produced_until: now,
        }),
        EventBody::Sell(Sale {
            lot: lot.clone(),
            buyer: pid(SMELTER)?,
            documents: vec![document(DocumentKind::Other)],
        }),
        EventBody::Dispatch(Dispatch {
            lot: lot.clone(),
            to: pid(SMELTER)?,
            route: vec![country(code)?, country(SMELTER_COUNTRY)?],
            documents: vec![
                document(DocumentKind::BillOfLading),
                document(DocumentKind::ExportPermit),
            ],
        }),
    ];
    let weighed = document(DocumentKind::WeightCertificate);
    let mut events = sign_all(mine, made)?;
    events.extend(sign_all(
        smelter,
        vec![EventBody::Receive(LotReceipt {
            lot,
            measured_wet: wet,
            accepted: true,
            note: String::new(),
            documents: vec![weighed],
        })],
    )?);
    Ok(events)
}

/// The smelting of `inputs` (all of them) into one cathode lot holding
/// 98 % of their copper at 99.99 %, within the rules' metal balance.
fn smelting(ledger: &Ledger, inputs: &[LotId], cathode: &LotId) -> anyhow::Result<EventBody> {
    use crate::model::StateView as _;
    let mut copper = 0u64;
    let mut consumed = Vec::with_capacity(inputs.len());
    for id in inputs {
        let lot = ledger
            .state()
            .lot(id)
            .context("reading a blend lot")?
            .with_context(|| format!("blend lot {id} is missing"))?;
        copper += lot.contained_of(Element::Cu).0;
        consumed.push(TransformInput {
            lot: id.clone(),
            consumed_wet: lot.wet,
        });
    }
    Ok(EventBody::Transform(Transformation {
        process: "smelting and refining campaign L-1".into(),
        inputs: consumed,
        outputs: vec![TransformOutput {
            lot: cathode.clone(),
            kind: LotKind::Cathode,
            metal: Element::Cu,
            wet: Grams(copper / 100 * 98),
            moisture: ppb(0)?,
            assays: vec![Assay {
                element: Element::Cu,
                grade: ppb(999_900_000)?,
            }],
        }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_levels_cover_every_lot_once_in_groups_of_two_to_ten() {
        for upstream in [2, 10, 11, 19, 21, 100, 101, 1000, 1001] {
            let levels = blend_levels(upstream);
            let mut width = upstream;
            for level in &levels {
                let all: Vec<usize> = level.iter().flatten().copied().collect();
                assert_eq!(all, (0..width).collect::<Vec<_>>(), "{upstream}");
                assert!(level.iter().all(|g| (2..=FAN_IN).contains(&g.len())));
                width = level.len();
            }
            assert!(width <= FAN_IN, "{upstream}: {width} left for the smelting");
        }
        assert_eq!(blend_levels(1000).iter().map(Vec::len).sum::<usize>(), 110);
    }

    #[test]
    fn a_small_workload_builds_a_cathode_from_every_upstream_lot() {
        use crate::model::StateView as _;
        let dir = tempfile::tempdir().unwrap();
        let sizes = std::sync::Mutex::new(Vec::new());
        let w = build(dir.path(), 150, 23, &|n| sizes.lock().unwrap().push(n)).unwrap();
        // 23 lots blended into 3, then smelted: 23 * 4 + 3 + 1 entries of
        // history, 24 of cast and genesis, the rest filler.
        assert_eq!((w.upstream, w.blends), (23, 3));
        assert_eq!(w.ledger.size(), 150);
        assert_eq!(sizes.lock().unwrap().last(), Some(&150));
        let cathode = w.ledger.state().lot(&w.cathode).unwrap().unwrap();
        assert_eq!(cathode.kind, LotKind::Cathode);
        let sites: Vec<&str> = cathode
            .origin
            .shares()
            .iter()
            .map(|s| s.site.as_str())
            .collect();
        assert_eq!(sites.len(), MINES.len(), "{sites:?}");
        assert!(cathode.origin.is_whole());
    }
}
