//! The demo data set: one year (2026) of a copper and zinc supply chain,
//! recorded through the same signed-event path that real clients use.
//!
//! Seven mines in five countries sell concentrate to one custom smelter,
//! directly or through a trader, shipping by sea from their own port or by
//! truck to a transporter's port warehouse and on by sea. An assay lab
//! grades every lot twice (provisional at loading, final at the smelter).
//! The smelter blends copper concentrate, smelts it to anode and refines
//! the anode into cathode and anode slime; it runs zinc concentrate through
//! its roast-leach-electrowinning circuit into ingot; and it sells both to
//! three manufacturers. Its compliance officer registers the sites, records
//! their CAHRA determinations, onboards and reviews suppliers, decides the
//! red flags the ledger raises on receipts, and blacklists one supplier,
//! whose later delivery the ledger then refuses.
//!
//! Everything is deterministic: participant keys and the ledger's log and
//! operator keys come from fixed seeds, variation from a seeded splitmix64
//! generator, and record times from a simulated clock that the demo moves
//! one day at a time. The writer commits one entry per batch, because group
//! commit would put checkpoint frames wherever its batches happened to
//! fall; so two builds write byte-identical log files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::CodecError;
use crate::crypto::{KeyFileError, SecretKey, sha256};
use crate::ledger::{
    AppendError, GenesisParams, KEYS_DIR, LOG_FILE, Ledger, LedgerError, Options, Pending,
};
use crate::merkle::Hash;
use crate::model::{
    Assay, AssayReport, AssayStage, BILLION, Blend, CahraFinding, CodeOfConductAcknowledgement,
    Correction, CountryCode, Dispatch, DocumentAttachment, DocumentKind, DocumentRef, Element,
    EsgElement, EsgScore, EventBody, FlagDecision, FlagDecisionKind, FlagId, FlagKind, Grams,
    GrievanceOutcome, GrievanceReport, KeyRotated, Lot, LotCreation, LotId, LotKind, LotReceipt,
    OfficerAppointment, OnboardingAssessment, ParticipantId, ParticipantKind, Ppb, ReceiptPolicy,
    Registration, ReviewCadence, Role, Sale, SanctionKind, SanctionReason, SignedEvent, SiteId,
    SiteRegistration, SiteScale, StateError, StateView, SupplierReview, SupplierSanction,
    Timestamp, TransformInput, TransformOutput, Transformation, UnreviewedSupplierPolicy,
    apportion, dry_mass,
};
use crate::rules::RuleCode;
use crate::signer::Signer;

/// The demo ledger's name: its checkpoint origin line.
pub const ORIGIN: &str = "demo.oretrail.example/ledger";

/// 2026-01-01T00:00:00Z.
const START_MS: u64 = 1_767_225_600_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const MINUTE_MS: u64 = 60 * 1000;
/// Days in 2026: the demo records 2026-01-01 to 2026-12-31.
const DAYS: u32 = 365;

/// Grams in a tonne.
const T: u64 = 1_000_000;
/// Parts per billion in one percent, and in one gram per tonne.
const PCT: u64 = 10_000_000;
const GPT: u64 = 1_000;

/// Why the demo ledger could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} already holds a ledger; refusing to overwrite it")]
    LedgerExists(PathBuf),
    #[error("{0} is not empty; the demo builds its ledger only in a new or empty folder")]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("cannot encode a demo event: {0}")]
    Codec(#[from] CodecError),
    #[error("cannot read the ledger state: {0}")]
    State(#[from] StateError),
    #[error("the demo's {what} was not appended: {source}")]
    Append { what: String, source: AppendError },
    #[error("the demo's {what} should have been refused with {code}, but became entry {index}")]
    NotRefused {
        what: String,
        code: RuleCode,
        index: u64,
    },
    #[error("the ledger does not show what the demo recorded: {0}")]
    Inconsistent(String),
}

/// How to build the demo.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoOptions {
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

/// What the demo built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    pub origin: String,
    pub entries: u64,
    /// RFC 9162 root of the whole log.
    pub root: Hash,
    /// Registered participants, the operator included.
    pub participants: usize,
    pub mines: usize,
    /// Countries of the mines, sorted.
    pub mine_countries: Vec<String>,
    pub sites: usize,
    pub concentrate_lots: usize,
    pub blend_lots: usize,
    pub anode_lots: usize,
    pub cathode_lots: usize,
    pub slime_lots: usize,
    pub ingot_lots: usize,
    /// Red-flag decisions the compliance officer recorded.
    pub flag_decisions: usize,
    /// Events the demo submitted knowing the ledger must refuse them, each
    /// with the refusal it got.
    pub expected_refusals: Vec<String>,
}

impl DemoSummary {
    /// Every lot the demo made, of every kind.
    pub fn lots(&self) -> usize {
        self.concentrate_lots
            + self.blend_lots
            + self.anode_lots
            + self.cathode_lots
            + self.slime_lots
            + self.ingot_lots
    }
}

// ---------------------------------------------------------------------------
// Who takes part.

const OPERATOR: &str = "operator";
const SMELTER: &str = "smelter.pohjanmeri";
const OFFICER: &str = "compliance.pohjanmeri";
const LAB: &str = "lab.nordic-assay";
const TRADER: &str = "trader.lakeshore";
const TRANSPORTER: &str = "transporter.copperbelt";
const CABLE_MAKER: &str = "buyer.rheinkabel";
const BATTERY_MAKER: &str = "buyer.nordvolt";
const GALVANIZER: &str = "buyer.galvanica";

/// The smelter's country, where every concentrate lot ends up.
const SMELTER_COUNTRY: &str = "FI";
/// The transporter's port warehouse (Dar es Salaam).
const PORT_COUNTRY: &str = "TZ";

struct Party {
    id: &'static str,
    name: &'static str,
    country: &'static str,
    kind: ParticipantKind,
    roles: &'static [Role],
}

const MINE_ROLES: &[Role] = &[Role::Producer, Role::Custodian, Role::Seller];
const BUYER_ROLES: &[Role] = &[Role::Purchaser, Role::Custodian];

/// Everyone the operator registers, in order.
const PARTIES: &[Party] = &[
    Party {
        id: SMELTER,
        name: "Pohjanmeri Smelting & Refining Oy",
        country: "FI",
        kind: ParticipantKind::Smelter,
        roles: &[
            Role::Custodian,
            Role::Processor,
            Role::Seller,
            Role::Purchaser,
        ],
    },
    Party {
        id: OFFICER,
        name: "Pohjanmeri Smelting & Refining Oy, Responsible Sourcing Office",
        country: "FI",
        kind: ParticipantKind::Smelter,
        roles: &[Role::Compliance],
    },
    Party {
        id: LAB,
        name: "Nordic Assay Laboratories AB",
        country: "SE",
        kind: ParticipantKind::AssayLab,
        roles: &[Role::Assayer],
    },
    Party {
        id: TRADER,
        name: "Lakeshore Metals Trading SA",
        country: "CH",
        kind: ParticipantKind::Trader,
        roles: &[Role::Purchaser, Role::Seller],
    },
    Party {
        id: TRANSPORTER,
        name: "Copperbelt Corridor Logistics Ltd",
        country: "TZ",
        kind: ParticipantKind::Transporter,
        roles: &[Role::Custodian],
    },
    Party {
        id: "mine.chambishi-west",
        name: "Chambishi West Copper Mines plc",
        country: "ZM",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: "mine.lualaba-sud",
        name: "Lualaba Sud Mining SA",
        country: "CD",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: "mine.kipushi-coop",
        name: "Cooperative Miniere Artisanale de Kipushi",
        country: "CD",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: "mine.atacama-cobre",
        name: "Compania Minera Cobre Atacama SpA",
        country: "CL",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: "mine.huaylas-norte",
        name: "Minera Huaylas Norte SAC",
        country: "PE",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: "mine.chincha-zinc",
        name: "Compania Minera Chincha Zinc SAA",
        country: "PE",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: "mine.selwyn-range",
        name: "Selwyn Range Mining Pty Ltd",
        country: "AU",
        kind: ParticipantKind::Mine,
        roles: MINE_ROLES,
    },
    Party {
        id: CABLE_MAKER,
        name: "Rheinkabel & Messing GmbH",
        country: "DE",
        kind: ParticipantKind::Buyer,
        roles: BUYER_ROLES,
    },
    Party {
        id: BATTERY_MAKER,
        name: "Nordvolt Cell Materials AB",
        country: "SE",
        kind: ParticipantKind::Buyer,
        roles: BUYER_ROLES,
    },
    Party {
        id: GALVANIZER,
        name: "Galvanica Italiana SpA",
        country: "IT",
        kind: ParticipantKind::Buyer,
        roles: BUYER_ROLES,
    },
    Party {
        id: "auditor.trailcheck",
        name: "TrailCheck Assurance LLP",
        country: "GB",
        kind: ParticipantKind::Auditor,
        roles: &[Role::Auditor],
    },
];

fn party(id: &str) -> &'static Party {
    PARTIES
        .iter()
        .find(|p| p.id == id)
        .expect("the demo names only its own participants")
}

// ---------------------------------------------------------------------------
// Where the concentrate comes from.

/// How a site's lots reach the smelter physically.
#[derive(Clone, Copy)]
enum Route {
    /// By truck through these countries to the transporter's port warehouse
    /// in Tanzania, then by sea.
    Corridor(&'static [&'static str]),
    /// By sea from the mine's own port.
    Sea,
}

/// Who the mine sells a lot to.
#[derive(Clone, Copy)]
enum Sales {
    Smelter,
    Trader,
    /// Every third lot to the trader, the others to the smelter.
    EveryThirdToTrader,
}

struct SiteSpec {
    id: &'static str,
    operator: &'static str,
    name: &'static str,
    country: &'static str,
    latitude_micro: i32,
    longitude_micro: i32,
    scale: SiteScale,
    metal: Element,
    /// Yearly capacity in tonnes of contained payable metal.
    capacity_t: u64,
    /// Days between lots.
    cadence: u32,
    /// Wet tonnes per lot.
    lot_t: (u64, u64),
    /// Moisture, ppb.
    moisture: (u64, u64),
    /// Grades in ppb, payable metal first.
    grades: &'static [(Element, u64, u64)],
    route: Route,
    sales: Sales,
    /// Days at sea to the smelter.
    sea_days: (u32, u32),
}

/// The site whose lots the smelter's officer finds to be in a CAHRA from
/// 1 March.
const CAHRA_SITE: &str = "LUS-OP";
/// The artisanal cooperative the smelter blacklists in June.
const BLACKLISTED: &str = "mine.kipushi-coop";
/// The mine that fails an ad-hoc ESG review in July and passes in August.
const REVIEW_FAILED: &str = "mine.atacama-cobre";

const COPPER_GRADES_ZM: &[(Element, u64, u64)] = &[
    (Element::Cu, 26 * PCT, 29 * PCT),
    (Element::Au, GPT, 5 * GPT / 2),
    (Element::Ag, 25 * GPT, 50 * GPT),
    (Element::As, PCT / 25, 12 * PCT / 100),
];

const SITES: &[SiteSpec] = &[
    SiteSpec {
        id: "CHW-OP",
        operator: "mine.chambishi-west",
        name: "Chambishi West open pit and concentrator",
        country: "ZM",
        latitude_micro: -12_660_000,
        longitude_micro: 28_070_000,
        scale: SiteScale::LargeScale,
        metal: Element::Cu,
        capacity_t: 60_000,
        cadence: 7,
        lot_t: (2_400, 3_200),
        moisture: (8 * PCT, 95 * PCT / 10),
        grades: COPPER_GRADES_ZM,
        route: Route::Corridor(&["ZM", "TZ"]),
        sales: Sales::EveryThirdToTrader,
        sea_days: (28, 35),
    },
    SiteSpec {
        id: CAHRA_SITE,
        operator: "mine.lualaba-sud",
        name: "Lualaba Sud open pit",
        country: "CD",
        latitude_micro: -10_720_000,
        longitude_micro: 25_470_000,
        scale: SiteScale::LargeScale,
        metal: Element::Cu,
        capacity_t: 40_000,
        cadence: 10,
        lot_t: (1_800, 2_600),
        moisture: (75 * PCT / 10, 9 * PCT),
        grades: &[
            (Element::Cu, 30 * PCT, 36 * PCT),
            (Element::Au, 3 * GPT / 10, 8 * GPT / 10),
            (Element::Ag, 10 * GPT, 25 * GPT),
            (Element::As, PCT / 50, 6 * PCT / 100),
        ],
        route: Route::Corridor(&["CD", "ZM", "TZ"]),
        sales: Sales::Trader,
        sea_days: (28, 35),
    },
    SiteSpec {
        id: "KPC-ASM",
        operator: BLACKLISTED,
        name: "Kipushi artisanal hand-sorting site",
        country: "CD",
        latitude_micro: -11_760_000,
        longitude_micro: 27_250_000,
        scale: SiteScale::Artisanal,
        metal: Element::Cu,
        capacity_t: 1_200,
        cadence: 14,
        lot_t: (60, 140),
        moisture: (9 * PCT, 11 * PCT),
        grades: &[
            (Element::Cu, 18 * PCT, 24 * PCT),
            (Element::Au, GPT / 10, GPT / 2),
            (Element::Ag, 5 * GPT, 15 * GPT),
            (Element::As, PCT / 20, PCT / 5),
        ],
        route: Route::Corridor(&["CD", "ZM", "TZ"]),
        sales: Sales::Trader,
        sea_days: (28, 35),
    },
    SiteSpec {
        id: "ATC-OP",
        operator: "mine.atacama-cobre",
        name: "Cobre Atacama open pit",
        country: "CL",
        latitude_micro: -22_320_000,
        longitude_micro: -68_900_000,
        scale: SiteScale::LargeScale,
        metal: Element::Cu,
        capacity_t: 80_000,
        cadence: 9,
        lot_t: (5_000, 7_000),
        moisture: (85 * PCT / 10, 10 * PCT),
        grades: &[
            (Element::Cu, 25 * PCT, 28 * PCT),
            (Element::Au, 2 * GPT, 4 * GPT),
            (Element::Ag, 40 * GPT, 80 * GPT),
            (Element::As, 3 * PCT / 10, 6 * PCT / 10),
        ],
        route: Route::Sea,
        sales: Sales::Smelter,
        sea_days: (34, 42),
    },
    SiteSpec {
        id: "SRC-UG",
        operator: "mine.selwyn-range",
        name: "Selwyn Range copper underground",
        country: "AU",
        latitude_micro: -21_550_000,
        longitude_micro: 140_500_000,
        scale: SiteScale::LargeScale,
        metal: Element::Cu,
        capacity_t: 35_000,
        cadence: 12,
        lot_t: (3_000, 4_000),
        moisture: (8 * PCT, 9 * PCT),
        grades: &[
            (Element::Cu, 22 * PCT, 25 * PCT),
            (Element::Au, 4 * GPT, 8 * GPT),
            (Element::Ag, 15 * GPT, 30 * GPT),
            (Element::As, PCT / 50, PCT / 20),
        ],
        route: Route::Sea,
        sales: Sales::Smelter,
        sea_days: (40, 48),
    },
    SiteSpec {
        id: "SRZ-UG",
        operator: "mine.selwyn-range",
        name: "Selwyn Range zinc underground",
        country: "AU",
        latitude_micro: -21_600_000,
        longitude_micro: 140_450_000,
        scale: SiteScale::LargeScale,
        metal: Element::Zn,
        capacity_t: 110_000,
        cadence: 11,
        lot_t: (3_000, 4_000),
        moisture: (8 * PCT, 95 * PCT / 10),
        grades: &[
            (Element::Zn, 50 * PCT, 55 * PCT),
            (Element::Pb, PCT, 2 * PCT),
            (Element::Ag, 40 * GPT, 90 * GPT),
            (Element::Cd, PCT / 5, 3 * PCT / 10),
            (Element::Hg, 10 * GPT, 30 * GPT),
        ],
        route: Route::Sea,
        sales: Sales::Smelter,
        sea_days: (40, 48),
    },
    SiteSpec {
        id: "HYN-UG",
        operator: "mine.huaylas-norte",
        name: "Huaylas Norte polymetallic underground",
        country: "PE",
        latitude_micro: -9_530_000,
        longitude_micro: -77_050_000,
        scale: SiteScale::LargeScale,
        metal: Element::Zn,
        capacity_t: 80_000,
        cadence: 8,
        lot_t: (2_500, 3_500),
        moisture: (8 * PCT, 10 * PCT),
        grades: &[
            (Element::Zn, 48 * PCT, 53 * PCT),
            (Element::Pb, 3 * PCT / 2, 3 * PCT),
            (Element::Ag, 60 * GPT, 150 * GPT),
            (Element::Cd, PCT / 4, 35 * PCT / 100),
            (Element::Hg, 30 * GPT, 60 * GPT),
        ],
        route: Route::Sea,
        sales: Sales::Smelter,
        sea_days: (30, 38),
    },
    SiteSpec {
        id: "CHZ-UG",
        operator: "mine.chincha-zinc",
        name: "Chincha zinc underground",
        country: "PE",
        latitude_micro: -13_200_000,
        longitude_micro: -75_900_000,
        scale: SiteScale::LargeScale,
        metal: Element::Zn,
        capacity_t: 70_000,
        cadence: 9,
        lot_t: (2_000, 3_000),
        moisture: (8 * PCT, 10 * PCT),
        grades: &[
            (Element::Zn, 47 * PCT, 52 * PCT),
            (Element::Pb, PCT, 5 * PCT / 2),
            (Element::Ag, 30 * GPT, 80 * GPT),
            (Element::Cd, PCT / 5, 3 * PCT / 10),
            (Element::Hg, 20 * GPT, 50 * GPT),
        ],
        route: Route::Sea,
        sales: Sales::Smelter,
        sea_days: (30, 38),
    },
];

/// Suppliers the smelter onboards and reviews: every mine, the trader it
/// buys through and the transporter that holds its material.
fn suppliers() -> impl Iterator<Item = &'static Party> {
    PARTIES
        .iter()
        .filter(|p| p.kind == ParticipantKind::Mine || [TRADER, TRANSPORTER].contains(&p.id))
}

/// Higher-risk suppliers are reviewed every quarter, the others yearly,
/// as the seed's policy asks.
fn cadence_of(supplier: &str) -> ReviewCadence {
    if [TRADER, BLACKLISTED, "mine.lualaba-sud"].contains(&supplier) {
        ReviewCadence::Quarterly
    } else {
        ReviewCadence::Annual
    }
}

// ---------------------------------------------------------------------------
// Small fixed helpers.

/// splitmix64 (Steele, Lea and Flood, 2014): tiny, fast, and its output
/// depends only on the seed, which is all the demo needs for variation.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`; the modulo bias is far below what a demo shows.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn days(&mut self, (lo, hi): (u32, u32)) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    /// `value` moved by up to ± `spread_ppm` millionths of itself.
    fn jitter(&mut self, value: u64, spread_ppm: u64) -> u64 {
        let span = (u128::from(value) * u128::from(spread_ppm) / 1_000_000) as u64;
        value - span + self.range(0, 2 * span)
    }
}

/// A secret key from a fixed label: the seed is SHA-256 of the label, so
/// every build of the demo signs with the same keys.
fn demo_key(label: &str) -> SecretKey {
    let seed = sha256(format!("oretrail demo 2026: {label}").as_bytes());
    SecretKey::from_seed(seed.as_bytes())
}

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id).expect("the demo's participant ids are valid")
}

fn country(code: &str) -> CountryCode {
    CountryCode::new(code).expect("the demo's country codes are valid")
}

fn lot_id(id: String) -> LotId {
    LotId::new(id).expect("the demo's lot ids are valid")
}

fn site_id(id: &str) -> SiteId {
    SiteId::new(id).expect("the demo's site ids are valid")
}

fn ppb(value: u64) -> Ppb {
    Ppb::new(value.min(BILLION)).expect("clamped to one billion")
}

fn day_start(day: u32) -> u64 {
    START_MS + u64::from(day) * DAY_MS
}

/// A document referenced by the hash of a text standing in for it; the
/// document itself never goes on the ledger.
fn document(kind: DocumentKind, text: String) -> DocumentRef {
    DocumentRef {
        kind,
        sha256: sha256(text.as_bytes()),
    }
}

/// Rounds down to a multiple of `step`: weights to the kilogram, grades to
/// the precision a lab reports.
fn round_down(value: u64, step: u64) -> u64 {
    value - value % step
}

/// The precision a lab reports an element's grade to, in ppb.
fn assay_step(element: Element) -> u64 {
    match element {
        Element::Au | Element::Ag => 10,
        Element::Hg => 1_000,
        _ => 10_000,
    }
}

/// The grade that puts at most `target` grams of metal into `dry` grams:
/// `floor(target × 10^9 / dry)`. The rules round contained metal down
/// again, so an output never holds more than its target.
fn grade_for(target: Grams, dry: Grams) -> Ppb {
    if dry.0 == 0 {
        return Ppb::ZERO;
    }
    let g = u128::from(target.0) * u128::from(BILLION) / u128::from(dry.0);
    ppb(u64::try_from(g).unwrap_or(BILLION))
}

/// `floor(value × part / whole)`, as the rules take metal from a partly
/// consumed lot.
fn pro_rata(value: Grams, part: Grams, whole: Grams) -> Grams {
    if whole.0 == 0 {
        return Grams(0);
    }
    Grams((u128::from(value.0) * u128::from(part.0) / u128::from(whole.0)) as u64)
}

/// Wet mass of dry metal at `grade` (moisture zero): `floor(metal × 10^9 /
/// grade)`, to the kilogram.
fn mass_at_grade(metal: Grams, grade: Ppb) -> Grams {
    let g = u128::from(metal.0) * u128::from(BILLION) / u128::from(grade.get().max(1));
    Grams(round_down(g as u64, 1_000))
}

/// Divides `total` into lots of about `lot` grams that add up exactly.
fn lots_of(total: Grams, lot: Grams) -> Vec<Grams> {
    let n = ((total.0 + lot.0 / 2) / lot.0).max(1) as usize;
    apportion(total.0, &vec![1; n])
        .unwrap_or_else(|| vec![total.0])
        .into_iter()
        .map(Grams)
        .collect()
}

// ---------------------------------------------------------------------------
// The calendar.

/// What happens on a day. Tasks that read the ledger state run at least a
/// day after the events they read, once those are committed.
#[derive(Debug, Clone)]
enum Task {
    /// A site produces its next lot.
    Produce {
        site: usize,
    },
    /// The lab's provisional assay at loading, the sale to `buyer` and the
    /// dispatch.
    Ship {
        lot: LotId,
        site: usize,
        buyer: &'static str,
    },
    /// A concentrate lot reaches the port warehouse or the smelter.
    Arrive {
        lot: LotId,
        at: &'static str,
        site: usize,
    },
    /// The transporter ships a lot on from its warehouse to the smelter.
    Forward {
        lot: LotId,
        site: usize,
    },
    /// A lot refused at the smelter is sent back in once fixed.
    Redispatch {
        lot: LotId,
        site: usize,
    },
    FinalAssay {
        lot: LotId,
        metal: Element,
    },
    /// The officer decides the red flags a receipt raised.
    DecideFlags {
        lot: LotId,
    },
    /// The smelter corrects a mistyped weight certificate reference.
    CorrectCertificate {
        lot: LotId,
    },
    CopperBlend,
    Smelt {
        blend: LotId,
        week: u32,
    },
    Refine {
        anode: LotId,
        week: u32,
    },
    ZincCampaign,
    /// The smelter sells and ships an output lot.
    Deliver {
        lot: LotId,
        buyer: &'static str,
    },
    /// An output lot reaches its buyer.
    Delivered {
        lot: LotId,
        buyer: &'static str,
    },
    Review {
        supplier: &'static str,
        passed: bool,
    },
    Grievance {
        outcome: GrievanceOutcome,
    },
    Blacklist,
    DetermineCahra,
    RotateLabKey,
}

/// What the demo expects of an event it submits.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Accepted,
    Refused(RuleCode),
}

/// A signed event waiting for its day to be recorded.
struct Planned {
    what: String,
    expect: Expect,
    signed: SignedEvent,
}

#[derive(Default)]
struct Counts {
    concentrate: usize,
    blend: usize,
    anode: usize,
    cathode: usize,
    slime: usize,
    ingot: usize,
    flag_decisions: usize,
}

struct Demo {
    ledger: Ledger,
    clock: Arc<AtomicU64>,
    rng: SplitMix64,
    signers: BTreeMap<&'static str, Signer>,
    day: u32,
    /// The day's signed events, recorded together when the day ends.
    today: Vec<Planned>,
    /// When the next event happens, and when the last one did (ms).
    next_event: u64,
    last_event: u64,
    calendar: BTreeMap<u32, Vec<Task>>,
    /// Concentrate lots graded final and held by the smelter, oldest first.
    copper_stock: Vec<LotId>,
    zinc_stock: Vec<LotId>,
    /// Lots graded today: they join the stock once today is committed, so
    /// no campaign reads their grades before the ledger has them.
    graded_today: Vec<(LotId, Element)>,
    /// Who the smelter bought each lot from.
    bought_from: BTreeMap<LotId, &'static str>,
    /// Suppliers the smelter has blacklisted.
    blacklisted: BTreeSet<&'static str>,
    /// Lots already refused once for moisture.
    refused_wet: BTreeSet<LotId>,
    decided: BTreeSet<FlagId>,
    lots_made: Vec<u32>,
    cathode_seq: u32,
    ingot_seq: u32,
    counts: Counts,
    refusals: Vec<String>,
}

/// The lot refused once at the smelter for moisture above the contract
/// limit, re-dried at the port and delivered again.
const WET_LOT: &str = "ATC-OP-2026-005";
/// The lot that arrives short by 1.4 %, beyond the variance tolerance.
const SHORT_LOT: &str = "CHW-OP-2026-011";
/// The lot dispatched across a border without its export permit.
const UNPERMITTED_LOT: &str = "KPC-ASM-2026-004";
/// The lot whose weight certificate reference is corrected after receipt.
const MISTYPED_LOT: &str = "HYN-UG-2026-003";

/// Builds the demo ledger in `dir`, which must be missing or empty.
pub fn build(dir: &Path, options: DemoOptions) -> Result<DemoSummary, DemoError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(if dir.join(LOG_FILE).exists() {
                    DemoError::LedgerExists(dir.to_path_buf())
                } else {
                    DemoError::NotEmpty(dir.to_path_buf())
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DemoError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    // The genesis entry is recorded at 06:00 on 1 January; every later day
    // sets the clock itself before its events are submitted.
    let clock = Arc::new(AtomicU64::new(START_MS + 360 * MINUTE_MS));
    let reader = clock.clone();
    let ledger = Ledger::create_with_keys(
        dir,
        GenesisParams {
            origin: ORIGIN.into(),
            operator: pid(OPERATOR),
            operator_name: "Oretrail Demo Registry AG".into(),
            operator_country: country("CH"),
        },
        demo_key("log"),
        demo_key(OPERATOR),
        Options {
            clock: Arc::new(move || Timestamp::from_millis(reader.load(Ordering::SeqCst))),
            progress: options.progress,
            // A checkpoint after every entry falls in the same place in
            // every build; bigger batches would follow thread timing.
            // Submissions still pipeline, so this costs one sync per entry.
            max_batch: 1,
        },
    )?;
    let mut signers = BTreeMap::new();
    // Nonce 0 is the genesis event's.
    signers.insert(
        OPERATOR,
        Signer::with_first_nonce(ORIGIN, pid(OPERATOR), demo_key(OPERATOR), 1),
    );
    let mut demo = Demo {
        ledger,
        clock,
        rng: SplitMix64(0x0DE7_0202_6C0F_FEE5),
        signers,
        day: 0,
        today: Vec::new(),
        next_event: 0,
        last_event: 0,
        calendar: BTreeMap::new(),
        copper_stock: Vec::new(),
        zinc_stock: Vec::new(),
        graded_today: Vec::new(),
        bought_from: BTreeMap::new(),
        blacklisted: BTreeSet::new(),
        refused_wet: BTreeSet::new(),
        decided: BTreeSet::new(),
        lots_made: vec![0; SITES.len()],
        cathode_seq: 0,
        ingot_seq: 0,
        counts: Counts::default(),
        refusals: Vec::new(),
    };
    demo.start_day(0);
    demo.run_year(options)?;
    demo.write_participant_keys(dir)?;
    Ok(demo.summary())
}

impl Demo {
    fn run_year(&mut self, options: DemoOptions) -> Result<(), DemoError> {
        let bar = crate::progress::bar(u64::from(DAYS), options.progress, "building the demo");
        self.setup()?;
        while self.day < DAYS {
            while let Some(tasks) = self.calendar.remove(&self.day) {
                for task in tasks {
                    self.run(task)?;
                }
            }
            self.record_day()?;
            self.start_day(self.day + 1);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Day 0 registers everyone; day 1 the sites; day 2 onboards the
    /// suppliers; production starts on day 5. The rest of the year runs
    /// from the calendar.
    fn setup(&mut self) -> Result<(), DemoError> {
        for p in PARTIES {
            let key = demo_key(p.id);
            let body = EventBody::RegisterParticipant(Registration {
                participant: pid(p.id),
                legal_name: p.name.into(),
                country: country(p.country),
                kinds: vec![p.kind],
                roles: p.roles.to_vec(),
                keys: vec![key.public()],
            });
            self.sign(OPERATOR, format!("registration of {}", p.id), body)?;
            self.signers
                .insert(p.id, Signer::with_first_nonce(ORIGIN, pid(p.id), key, 1));
        }
        // The compliance officer acts for the smelter: its findings go in
        // the smelter's supplier files and red-flag register.
        self.sign(
            OPERATOR,
            "appointment of the compliance officer".into(),
            EventBody::AppointOfficer(OfficerAppointment {
                officer: pid(OFFICER),
                organisation: pid(SMELTER),
            }),
        )?;
        self.record_day()?;

        self.start_day(1);
        for spec in SITES {
            self.sign(
                OFFICER,
                format!("registration of site {}", spec.id),
                EventBody::RegisterSite(SiteRegistration {
                    site: site_id(spec.id),
                    operator: pid(spec.operator),
                    name: spec.name.into(),
                    country: country(spec.country),
                    latitude_micro: spec.latitude_micro,
                    longitude_micro: spec.longitude_micro,
                    scale: spec.scale,
                    metal: spec.metal,
                    annual_capacity: Grams(spec.capacity_t * T),
                }),
            )?;
            // Every site starts with a dated determination, so the CAHRA
            // status of its material is on record from the first lot.
            self.sign(
                OFFICER,
                format!("CAHRA determination for {}", spec.id),
                EventBody::DetermineCahra(CahraFinding {
                    site: site_id(spec.id),
                    cahra: false,
                    effective: Timestamp::from_millis(day_start(1)),
                    source: "EU indicative CAHRA list (2025-Q4) and OECD Annex II desk review"
                        .into(),
                }),
            )?;
        }
        self.record_day()?;

        self.start_day(2);
        for supplier in suppliers() {
            self.onboard_supplier(supplier.id)?;
        }
        // From here on the smelter accepts deliveries only from suppliers
        // that signed its code of conduct; a lapsed review raises a flag.
        self.sign(
            OFFICER,
            "receipt policy".into(),
            EventBody::SetReceiptPolicy(ReceiptPolicy {
                organisation: pid(SMELTER),
                unreviewed_supplier: UnreviewedSupplierPolicy::Flag,
            }),
        )?;
        self.record_day()?;

        self.schedule_compliance_year();
        for (site, spec) in SITES.iter().enumerate() {
            let first = 5 + self.rng.days((0, spec.cadence - 1));
            self.schedule(first, Task::Produce { site });
        }
        // Mondays (5 January is the first) blend copper concentrate;
        // Wednesdays run a zinc campaign.
        self.schedule(4, Task::CopperBlend);
        self.schedule(6, Task::ZincCampaign);
        self.schedule(59, Task::DetermineCahra);
        self.schedule(181, Task::RotateLabKey);
        self.start_day(3);
        Ok(())
    }

    fn schedule(&mut self, day: u32, task: Task) {
        if day < DAYS {
            self.calendar.entry(day).or_default().push(task);
        }
    }

    fn after(&mut self, days: u32, task: Task) {
        self.schedule(self.day + days.max(1), task);
    }

    /// Schedules the delivery of each lot, 1 to 9 days on, to `first` with
    /// a chance of `per_mille` in 1,000 and to `second` otherwise.
    fn deliver_to_either(
        &mut self,
        lots: Vec<LotId>,
        per_mille: u64,
        first: &'static str,
        second: &'static str,
    ) {
        for lot in lots {
            let buyer = if self.rng.chance(per_mille) {
                first
            } else {
                second
            };
            let days = self.rng.days((1, 9));
            self.after(days, Task::Deliver { lot, buyer });
        }
    }

    /// Moves to `day`, whose first event comes between 07:00 and 08:00.
    fn start_day(&mut self, day: u32) {
        self.day = day;
        self.next_event = day_start(day) + self.rng.range(7 * 60, 8 * 60) * MINUTE_MS;
    }

    /// When the next planned event happens.
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.next_event)
    }

    fn sign(&mut self, who: &'static str, what: String, body: EventBody) -> Result<(), DemoError> {
        self.plan(who, what, Expect::Accepted, body)
    }

    fn plan(
        &mut self,
        who: &'static str,
        what: String,
        expect: Expect,
        body: EventBody,
    ) -> Result<(), DemoError> {
        let time = self.now();
        let signer = self
            .signers
            .get_mut(who)
            .expect("every demo participant has a signer");
        let signed = signer.sign(time, body)?;
        self.today.push(Planned {
            what,
            expect,
            signed,
        });
        // Events follow each other 2 to 25 minutes apart, until 19:58.
        let step = self.rng.range(2, 25) * MINUTE_MS;
        let last = day_start(self.day) + (19 * 60 + 58) * MINUTE_MS;
        self.last_event = time.as_millis();
        self.next_event = (self.next_event + step).min(last);
        Ok(())
    }

    /// Records the day: the clock stands a minute after its last event,
    /// every event is submitted in order, and each answer is checked
    /// against what the demo expected.
    fn record_day(&mut self) -> Result<(), DemoError> {
        if self.today.is_empty() {
            return Ok(());
        }
        let record = self.last_event + MINUTE_MS;
        self.clock.store(record, Ordering::SeqCst);
        let planned = std::mem::take(&mut self.today);
        let mut answers: Vec<(String, Expect, Pending)> = Vec::with_capacity(planned.len());
        for p in planned {
            let pending = self
                .ledger
                .submit(p.signed)
                .map_err(|source| DemoError::Append {
                    what: p.what.clone(),
                    source,
                })?;
            answers.push((p.what, p.expect, pending));
        }
        for (what, expect, pending) in answers {
            match (expect, pending.wait()) {
                (Expect::Accepted, Ok(_)) => {}
                (Expect::Refused(code), Err(AppendError::Refused(refusal)))
                    if refusal.code == code =>
                {
                    tracing::info!(%code, "{what}: refused as expected: {}", refusal.message);
                    self.refusals.push(format!("{what}: {refusal}"));
                }
                (Expect::Refused(code), Ok(receipt)) => {
                    return Err(DemoError::NotRefused {
                        what,
                        code,
                        index: receipt.index,
                    });
                }
                (_, Err(source)) => return Err(DemoError::Append { what, source }),
            }
        }
        for (lot, metal) in std::mem::take(&mut self.graded_today) {
            match metal {
                Element::Zn => self.zinc_stock.push(lot),
                _ => self.copper_stock.push(lot),
            }
        }
        Ok(())
    }

    fn lot(&self, id: &LotId) -> Result<Lot, DemoError> {
        self.ledger
            .state()
            .lot(id)?
            .ok_or_else(|| DemoError::Inconsistent(format!("lot {id} is not on the ledger")))
    }

    fn run(&mut self, task: Task) -> Result<(), DemoError> {
        match task {
            Task::Produce { site } => self.produce(site),
            Task::Ship { lot, site, buyer } => self.ship(lot, site, buyer),
            Task::Arrive { lot, at, site } => self.arrive(lot, at, site),
            Task::Forward { lot, site } => self.forward(lot, site),
            Task::Redispatch { lot, site } => self.redispatch(lot, site),
            Task::FinalAssay { lot, metal } => self.final_assay(lot, metal),
            Task::DecideFlags { lot } => self.decide_flags(lot),
            Task::CorrectCertificate { lot } => self.correct_certificate(lot),
            Task::CopperBlend => self.copper_blend(),
            Task::Smelt { blend, week } => self.smelt(blend, week),
            Task::Refine { anode, week } => self.refine(anode, week),
            Task::ZincCampaign => self.zinc_campaign(),
            Task::Deliver { lot, buyer } => self.deliver(lot, buyer),
            Task::Delivered { lot, buyer } => self.delivered(lot, buyer),
            Task::Review { supplier, passed } => self.review_supplier(supplier, passed),
            Task::Grievance { outcome } => self.grievance(outcome),
            Task::Blacklist => self.blacklist(),
            Task::DetermineCahra => self.determine_cahra(),
            Task::RotateLabKey => self.rotate_lab_key(),
        }
    }

    // -----------------------------------------------------------------------
    // Supplier compliance: onboarding, reviews, grievances, sanctions.

    /// Onboarding, before any delivery: the officer scores the twelve ESG
    /// elements, the supplier signs the smelter's Supplier Code of Conduct,
    /// and a first review opens its validity window.
    fn onboard_supplier(&mut self, supplier: &'static str) -> Result<(), DemoError> {
        // Artisanal and CAHRA-exposed suppliers score lower but still pass,
        // with the quarterly reviews `cadence_of` gives them.
        let (lo, hi) = match cadence_of(supplier) {
            ReviewCadence::Quarterly => (52, 80),
            ReviewCadence::Annual => (66, 95),
        };
        let scores = EsgElement::ALL
            .iter()
            .map(|element| EsgScore {
                element: *element,
                score: self.rng.range(lo, hi) as u8,
            })
            .collect();
        self.sign(
            OFFICER,
            format!("onboarding assessment of {supplier}"),
            EventBody::AssessOnboarding(OnboardingAssessment {
                organisation: pid(SMELTER),
                supplier: pid(supplier),
                scores,
                passed: true,
                report: Some(document(
                    DocumentKind::Other,
                    format!("Onboarding ESG assessment of {supplier}, January 2026"),
                )),
            }),
        )?;
        self.sign(
            supplier,
            format!("code of conduct acknowledgement by {supplier}"),
            EventBody::AcknowledgeCode(CodeOfConductAcknowledgement {
                organisation: pid(SMELTER),
                policy_sha256: sha256(b"Pohjanmeri Supplier Code of Conduct, version 3.1"),
                version: "3.1".into(),
            }),
        )?;
        self.review_supplier(supplier, true)
    }

    /// An ESG review, valid for a quarter or a year from today. A failed
    /// review is an ad-hoc one, standing for a quarter unless a re-review
    /// replaces it.
    fn review_supplier(&mut self, supplier: &'static str, passed: bool) -> Result<(), DemoError> {
        if self.blacklisted.contains(supplier) {
            return Ok(());
        }
        let cadence = if passed {
            cadence_of(supplier)
        } else {
            ReviewCadence::Quarterly
        };
        let days = match cadence {
            ReviewCadence::Quarterly => 91,
            ReviewCadence::Annual => 365,
        };
        let report = if passed {
            format!("ESG review of {supplier}, day {} of 2026", self.day)
        } else {
            format!(
                "Ad-hoc ESG review of {supplier} after the June tailings seepage: failed on \
                 environmental protection measures; corrective action plan requested"
            )
        };
        self.sign(
            OFFICER,
            format!("ESG review of {supplier}"),
            EventBody::ReviewSupplier(SupplierReview {
                organisation: pid(SMELTER),
                supplier: pid(supplier),
                passed,
                cadence,
                valid_until: Timestamp::from_millis(day_start(self.day + days)),
                report: Some(document(DocumentKind::Other, report)),
            }),
        )
    }

    /// Quarterly reviews every 84 days; the trader's third one comes 13
    /// days late, leaving a gap in which a delivery through it is flagged
    /// under the receipt policy, as are the Chilean mine's deliveries
    /// between a failed ad-hoc review in July and its passed re-review a
    /// month later. The
    /// artisanal cooperative is investigated after a grievance in June and
    /// blacklisted.
    fn schedule_compliance_year(&mut self) {
        for supplier in suppliers() {
            if cadence_of(supplier.id) != ReviewCadence::Quarterly {
                continue;
            }
            for quarter in 1..=4u32 {
                let late = if supplier.id == TRADER && quarter == 2 {
                    13
                } else {
                    0
                };
                let task = Task::Review {
                    supplier: supplier.id,
                    passed: true,
                };
                self.schedule(2 + 84 * quarter + late, task);
            }
        }
        self.schedule(
            150,
            Task::Grievance {
                outcome: GrievanceOutcome::UnderInvestigation,
            },
        );
        self.schedule(
            171,
            Task::Grievance {
                outcome: GrievanceOutcome::Substantiated,
            },
        );
        self.schedule(172, Task::Blacklist);
        for (day, passed) in [(196, false), (226, true)] {
            let supplier = REVIEW_FAILED;
            self.schedule(day, Task::Review { supplier, passed });
        }
        // TODO(compliance): reinstatement (ReinstateSupplier) is not shown
        // yet; lifting the cooperative's blacklisting after a verified
        // remediation, late in the year, would show it.
    }

    fn grievance(&mut self, outcome: GrievanceOutcome) -> Result<(), DemoError> {
        self.sign(
            OFFICER,
            format!("grievance report about {BLACKLISTED} ({outcome:?})"),
            EventBody::ReportGrievance(GrievanceReport {
                organisation: pid(SMELTER),
                subject: pid(BLACKLISTED),
                // The report stays off the ledger; its hash ties the two
                // entries of the investigation together.
                report_sha256: sha256(b"Grievance 2026-017: minors at the hand-sorting site"),
                outcome,
            }),
        )
    }

    /// A substantiated grievance is a serious violation of the law: the
    /// seed's policy blacklists the supplier for two years. Its lots still
    /// at sea are refused on arrival.
    fn blacklist(&mut self) -> Result<(), DemoError> {
        self.sign(
            OFFICER,
            format!("blacklisting of {BLACKLISTED}"),
            EventBody::SanctionSupplier(SupplierSanction {
                organisation: pid(SMELTER),
                supplier: pid(BLACKLISTED),
                kind: SanctionKind::Blacklisted {
                    until: Timestamp::from_millis(day_start(self.day) + 730 * DAY_MS),
                },
                reason: SanctionReason::LegalViolation,
                note: "Grievance 2026-017 substantiated: minors found working at the \
                       cooperative's hand-sorting site (OECD Annex II, worst forms of child labour)"
                    .into(),
            }),
        )?;
        self.blacklisted.insert(BLACKLISTED);
        Ok(())
    }

    fn determine_cahra(&mut self) -> Result<(), DemoError> {
        self.sign(
            OFFICER,
            format!("CAHRA determination for {CAHRA_SITE}"),
            EventBody::DetermineCahra(CahraFinding {
                site: site_id(CAHRA_SITE),
                cahra: true,
                effective: Timestamp::from_millis(day_start(self.day)),
                source: "EU indicative CAHRA list, 2026-Q1 update, and the officer's OECD \
                         Annex II review of the Lualaba haulage corridor"
                    .into(),
            }),
        )
    }

    /// The lab's yearly key rotation, first thing on 1 July, so that none
    /// of its events that day is signed with the retired key after it.
    fn rotate_lab_key(&mut self) -> Result<(), DemoError> {
        let new = demo_key("lab.nordic-assay 2026-07");
        let old = demo_key(LAB).public();
        self.sign(
            LAB,
            "key rotation of the assay lab".into(),
            EventBody::RotateKey(KeyRotated {
                participant: pid(LAB),
                old,
                new: new.public(),
            }),
        )?;
        self.signers
            .get_mut(LAB)
            .expect("the lab has a signer")
            .set_key(new);
        Ok(())
    }

    /// The officer decides each open flag the smelter's register holds
    /// for a received lot: enhanced due diligence for CAHRA origin, the
    /// artisanal engagement plan for ASM material, and continued trade
    /// (with the reason) for the rest.
    fn decide_flags(&mut self, lot: LotId) -> Result<(), DemoError> {
        let l = self.lot(&lot)?;
        for id in l.flags {
            let Some(flag) = self.ledger.state().flag(id)? else {
                continue;
            };
            if flag.organisation.as_str() != SMELTER
                || !flag.decisions.is_empty()
                || !self.decided.insert(id)
            {
                continue;
            }
            let (decision, note) = match flag.kind {
                FlagKind::CahraOrigin => (
                    FlagDecisionKind::Mitigate {
                        plan: "Enhanced due diligence: third-party on-site assessment, \
                               chain-of-custody seals from mine gate to port, quarterly review"
                            .into(),
                    },
                    "Continue with measurable risk mitigation (OECD step 3)",
                ),
                FlagKind::ArtisanalOrigin => (
                    FlagDecisionKind::Mitigate {
                        plan: "ASM engagement: registered cooperative, site visits, bag tags, \
                               progressive improvement plan"
                            .into(),
                    },
                    "Artisanal origin accepted under the ASM engagement plan",
                ),
                FlagKind::WeightVariance => (
                    FlagDecisionKind::Continue,
                    "Variance reconciled against the draft survey and the warehouse tally",
                ),
                FlagKind::SupplierNotReviewed => (
                    FlagDecisionKind::Mitigate {
                        plan: "Corrective action plan and re-review within 30 days".into(),
                    },
                    "Shipped under contract before the supplier's review lapsed or failed",
                ),
                _ => (FlagDecisionKind::Continue, "Reviewed; no further action"),
            };
            self.sign(
                OFFICER,
                format!("decision on flag {}/{} of lot {lot}", id.entry, id.n),
                EventBody::DecideFlag(FlagDecision {
                    flag: id,
                    decision,
                    note: note.into(),
                }),
            )?;
            self.counts.flag_decisions += 1;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Concentrate: produce, ship, receive, grade.

    fn produce(&mut self, site: usize) -> Result<(), DemoError> {
        let spec = &SITES[site];
        let next = self.rng.days((spec.cadence - 1, spec.cadence + 1));
        self.after(next, Task::Produce { site });
        if self.blacklisted.contains(spec.operator) {
            // The cooperative keeps mining but no longer sells to the
            // smelter; its lots are no longer part of this ledger.
            return Ok(());
        }
        self.lots_made[site] += 1;
        let lot = lot_id(format!("{}-2026-{:03}", spec.id, self.lots_made[site]));
        let wet = round_down(self.rng.range(spec.lot_t.0 * T, spec.lot_t.1 * T), 1_000);
        let moisture = round_down(self.rng.range(spec.moisture.0, spec.moisture.1), 100_000);
        let assays = spec
            .grades
            .iter()
            .map(|(element, lo, hi)| Assay {
                element: *element,
                grade: ppb(round_down(self.rng.range(*lo, *hi), assay_step(*element))),
            })
            .collect();
        let now = self.now();
        let since = day_start(self.day.saturating_sub(spec.cadence)).max(START_MS);
        self.sign(
            spec.operator,
            format!("creation of lot {lot}"),
            EventBody::CreateLot(LotCreation {
                lot: lot.clone(),
                site: site_id(spec.id),
                kind: LotKind::Concentrate,
                wet: Grams(wet),
                moisture: ppb(moisture),
                assays,
                produced_from: Timestamp::from_millis(since),
                produced_until: now,
            }),
        )?;
        self.counts.concentrate += 1;
        let buyer = match spec.sales {
            Sales::Smelter => SMELTER,
            Sales::Trader => TRADER,
            Sales::EveryThirdToTrader if self.lots_made[site].is_multiple_of(3) => TRADER,
            Sales::EveryThirdToTrader => SMELTER,
        };
        let ship = self.rng.days((1, 3));
        self.after(ship, Task::Ship { lot, site, buyer });
        Ok(())
    }

    /// The lab's grades of `lot`, each moved by up to `spread_ppm`, and a
    /// moisture within 0.3 points of the lot's.
    fn lab_grades(&mut self, l: &Lot, spread_ppm: u64) -> (Vec<Assay>, Ppb) {
        let assays = l
            .assays
            .iter()
            .map(|a| Assay {
                element: a.element,
                grade: ppb(round_down(
                    self.rng.jitter(u64::from(a.grade.get()), spread_ppm),
                    assay_step(a.element),
                )),
            })
            .collect();
        let moisture = u64::from(l.moisture.get()) + self.rng.range(0, 6 * PCT / 10);
        let moisture = round_down(moisture.saturating_sub(3 * PCT / 10), 100_000);
        (assays, ppb(moisture))
    }

    fn ship(&mut self, lot: LotId, site: usize, buyer: &'static str) -> Result<(), DemoError> {
        let spec = &SITES[site];
        if self.blacklisted.contains(spec.operator) {
            return Ok(());
        }
        let l = self.lot(&lot)?;
        let (assays, moisture) = self.lab_grades(&l, 10_000);
        self.sign(
            LAB,
            format!("provisional assay of {lot}"),
            EventBody::RecordAssay(AssayReport {
                lot: lot.clone(),
                stage: AssayStage::Provisional,
                assays,
                moisture: Some(moisture),
                certificate: Some(document(
                    DocumentKind::AssayCertificate,
                    format!("Provisional certificate of analysis, lot {lot}"),
                )),
            }),
        )?;
        self.sign(
            spec.operator,
            format!("sale of {lot} to {buyer}"),
            EventBody::Sell(Sale {
                lot: lot.clone(),
                buyer: pid(buyer),
                documents: vec![document(
                    DocumentKind::Other,
                    format!("Sales contract and provisional invoice, lot {lot}"),
                )],
            }),
        )?;
        if buyer == SMELTER {
            self.bought_from.insert(lot.clone(), spec.operator);
        }
        let mut documents = vec![
            document(
                DocumentKind::BillOfLading,
                format!("Bill of lading, lot {lot}"),
            ),
            document(
                DocumentKind::WeightCertificate,
                format!("Loading weight certificate, lot {lot}"),
            ),
        ];
        // One dispatch leaves without its export permit: the ledger flags
        // it in the dispatcher's register.
        if lot.as_str() != UNPERMITTED_LOT {
            documents.push(document(
                DocumentKind::ExportPermit,
                format!("Export permit {} for lot {lot}", spec.country),
            ));
        }
        let (to, route, transit) = match spec.route {
            Route::Corridor(countries) => (TRANSPORTER, countries.to_vec(), (4, 7)),
            Route::Sea => (SMELTER, vec![spec.country, SMELTER_COUNTRY], spec.sea_days),
        };
        self.sign(
            spec.operator,
            format!("dispatch of {lot} to {to}"),
            EventBody::Dispatch(Dispatch {
                lot: lot.clone(),
                to: pid(to),
                route: route.into_iter().map(country).collect(),
                documents,
            }),
        )?;
        let days = self.rng.days(transit);
        self.after(days, Task::Arrive { lot, at: to, site });
        Ok(())
    }

    /// Weighed on arrival: usually within −0.45 % and +0.12 % of the
    /// dispatched weight, now and then a loss beyond the 0.5 % tolerance.
    fn measured(&mut self, lot: &LotId, wet: Grams) -> Grams {
        let ppm: i64 = if lot.as_str() == SHORT_LOT {
            -14_000
        } else if self.rng.chance(20) {
            -(self.rng.range(5_500, 9_000) as i64)
        } else {
            self.rng.range(0, 5_700) as i64 - 4_500
        };
        let delta = i128::from(wet.0) * i128::from(ppm) / 1_000_000;
        Grams(round_down((i128::from(wet.0) + delta) as u64, 1_000))
    }

    fn receipt(lot: &LotId, measured: Grams, accepted: bool, note: String) -> EventBody {
        EventBody::Receive(LotReceipt {
            lot: lot.clone(),
            measured_wet: measured,
            accepted,
            note,
            documents: vec![document(
                DocumentKind::WeightCertificate,
                format!("Discharge weight certificate, lot {lot}"),
            )],
        })
    }

    fn arrive(&mut self, lot: LotId, at: &'static str, site: usize) -> Result<(), DemoError> {
        let spec = &SITES[site];
        let l = self.lot(&lot)?;
        let measured = self.measured(&lot, l.wet);
        if at == TRANSPORTER {
            self.sign(
                at,
                format!("receipt of {lot} at the port warehouse"),
                Self::receipt(&lot, measured, true, String::new()),
            )?;
            let days = self.rng.days((4, 10));
            self.after(days, Task::Forward { lot, site });
            return Ok(());
        }
        if self.blacklisted.contains(spec.operator) {
            return self.refuse_blacklisted(lot, l.wet, spec.operator);
        }
        if lot.as_str() == WET_LOT && self.refused_wet.insert(lot.clone()) {
            self.sign(
                SMELTER,
                format!("refused receipt of {lot}"),
                Self::receipt(
                    &lot,
                    measured,
                    false,
                    "Moisture 11.2 % at discharge sampling, above the 10 % contract limit; \
                     held at the port for re-drying"
                        .into(),
                ),
            )?;
            self.after(6, Task::Redispatch { lot, site });
            return Ok(());
        }
        self.sign(
            SMELTER,
            format!("receipt of {lot} at the smelter"),
            Self::receipt(&lot, measured, true, String::new()),
        )?;
        let assay = self.rng.days((2, 5));
        self.after(
            assay,
            Task::FinalAssay {
                lot: lot.clone(),
                metal: spec.metal,
            },
        );
        if lot.as_str() == MISTYPED_LOT {
            self.after(1, Task::CorrectCertificate { lot: lot.clone() });
        }
        let review = self.rng.days((3, 8));
        self.after(review, Task::DecideFlags { lot });
        Ok(())
    }

    /// A lot from a blacklisted supplier reaches the smelter: the ledger
    /// must refuse the receipt (SUPPLIER_SANCTIONED). The smelter then
    /// records the delivery as refused, which leaves the lot with whoever
    /// dispatched it, and sells it back to whoever sold it.
    fn refuse_blacklisted(
        &mut self,
        lot: LotId,
        wet: Grams,
        supplier: &'static str,
    ) -> Result<(), DemoError> {
        self.plan(
            SMELTER,
            format!("receipt of {lot} from blacklisted {supplier}"),
            Expect::Refused(RuleCode::SupplierSanctioned),
            Self::receipt(&lot, wet, true, String::new()),
        )?;
        self.sign(
            SMELTER,
            format!("refused receipt of {lot}"),
            Self::receipt(
                &lot,
                wet,
                false,
                format!("{supplier} is blacklisted by Pohjanmeri; delivery refused"),
            ),
        )?;
        let seller = self.bought_from.get(&lot).copied().ok_or_else(|| {
            DemoError::Inconsistent(format!("the smelter never bought lot {lot}"))
        })?;
        self.sign(
            SMELTER,
            format!("sale of refused {lot} back to {seller}"),
            EventBody::Sell(Sale {
                lot: lot.clone(),
                buyer: pid(seller),
                documents: vec![document(
                    DocumentKind::Other,
                    format!("Cancellation of the purchase of lot {lot}"),
                )],
            }),
        )
    }

    fn forward(&mut self, lot: LotId, site: usize) -> Result<(), DemoError> {
        let spec = &SITES[site];
        if self.blacklisted.contains(spec.operator) {
            // The smelter buys nothing more of it; the lot stays at the
            // warehouse with the trader.
            return Ok(());
        }
        let l = self.lot(&lot)?;
        if l.owner.as_str() == TRADER {
            self.sign(
                TRADER,
                format!("sale of {lot} to the smelter"),
                EventBody::Sell(Sale {
                    lot: lot.clone(),
                    buyer: pid(SMELTER),
                    documents: vec![document(
                        DocumentKind::Other,
                        format!("Trader's sales contract and invoice, lot {lot}"),
                    )],
                }),
            )?;
            self.bought_from.insert(lot.clone(), TRADER);
        }
        self.sign(
            TRANSPORTER,
            format!("dispatch of {lot} from the port warehouse"),
            EventBody::Dispatch(Dispatch {
                lot: lot.clone(),
                to: pid(SMELTER),
                route: vec![country(PORT_COUNTRY), country(SMELTER_COUNTRY)],
                documents: vec![
                    document(
                        DocumentKind::BillOfLading,
                        format!("Ocean bill of lading, lot {lot}"),
                    ),
                    document(
                        DocumentKind::ExportPermit,
                        format!(
                            "Export permit {} and transit declaration, lot {lot}",
                            spec.country
                        ),
                    ),
                ],
            }),
        )?;
        let days = self.rng.days(spec.sea_days);
        self.after(
            days,
            Task::Arrive {
                lot,
                at: SMELTER,
                site,
            },
        );
        Ok(())
    }

    /// The refused wet lot, re-dried at the Finnish port, goes in again.
    fn redispatch(&mut self, lot: LotId, site: usize) -> Result<(), DemoError> {
        let spec = &SITES[site];
        let l = self.lot(&lot)?;
        let custodian = if l.custodian.as_str() == TRANSPORTER {
            TRANSPORTER
        } else {
            spec.operator
        };
        self.sign(
            custodian,
            format!("second dispatch of {lot}"),
            EventBody::Dispatch(Dispatch {
                lot: lot.clone(),
                to: pid(SMELTER),
                route: vec![country(SMELTER_COUNTRY)],
                documents: vec![document(
                    DocumentKind::Other,
                    format!("Re-drying and re-sampling report, lot {lot}"),
                )],
            }),
        )?;
        self.after(
            1,
            Task::Arrive {
                lot,
                at: SMELTER,
                site,
            },
        );
        Ok(())
    }

    fn final_assay(&mut self, lot: LotId, metal: Element) -> Result<(), DemoError> {
        let l = self.lot(&lot)?;
        let (assays, moisture) = self.lab_grades(&l, 15_000);
        self.sign(
            LAB,
            format!("final assay of {lot}"),
            EventBody::RecordAssay(AssayReport {
                lot: lot.clone(),
                stage: AssayStage::Final,
                assays,
                moisture: Some(moisture),
                certificate: Some(document(
                    DocumentKind::AssayCertificate,
                    format!("Final certificate of analysis, lot {lot}"),
                )),
            }),
        )?;
        self.graded_today.push((lot, metal));
        Ok(())
    }

    /// A correction never edits: it names the receipt entry and says what
    /// was wrong, and the corrected certificate is attached to the lot.
    fn correct_certificate(&mut self, lot: LotId) -> Result<(), DemoError> {
        let l = self.lot(&lot)?;
        let receipt = *l
            .history
            .last()
            .ok_or_else(|| DemoError::Inconsistent(format!("lot {lot} has no history")))?;
        self.sign(
            SMELTER,
            format!("corrected weight certificate of {lot}"),
            EventBody::AttachDocument(DocumentAttachment {
                lot: lot.clone(),
                document: document(
                    DocumentKind::WeightCertificate,
                    format!("Discharge weight certificate, lot {lot}, corrected number"),
                ),
            }),
        )?;
        self.sign(
            SMELTER,
            format!("correction of the receipt of {lot}"),
            EventBody::Correct(Correction {
                entry: receipt,
                lot: Some(lot),
                reason: "The weight certificate referenced at receipt carried a mistyped \
                         certificate number; the corrected certificate is attached"
                    .into(),
            }),
        )
    }

    // -----------------------------------------------------------------------
    // Processing: copper blend, smelt, refine; zinc campaigns.

    fn week(&self) -> u32 {
        self.day / 7 + 1
    }

    /// Each Monday the graded copper concentrate in stock is bedded into
    /// one blend, which goes to the furnace the next day.
    fn copper_blend(&mut self) -> Result<(), DemoError> {
        self.after(7, Task::CopperBlend);
        if self.copper_stock.len() < 2 {
            return Ok(());
        }
        let inputs = std::mem::take(&mut self.copper_stock);
        let week = self.week();
        let blend = lot_id(format!("PSO-BL-2026-W{week:02}"));
        self.sign(
            SMELTER,
            format!("blend {blend}"),
            EventBody::Blend(Blend {
                inputs,
                output: blend.clone(),
            }),
        )?;
        self.counts.blend += 1;
        self.after(1, Task::Smelt { blend, week });
        Ok(())
    }

    /// Flash smelting and converting: the whole blend becomes one anode
    /// lot holding 97.75 to 98.15 % of its copper and most of its gold and
    /// silver.
    fn smelt(&mut self, blend: LotId, week: u32) -> Result<(), DemoError> {
        let b = self.lot(&blend)?;
        let recovery = ppb(self.rng.range(977_500_000, 981_500_000));
        let cu = recovery.of(b.contained_of(Element::Cu));
        let au = ppb(985_000_000).of(b.contained_of(Element::Au));
        let ag = ppb(975_000_000).of(b.contained_of(Element::Ag));
        let wet = mass_at_grade(cu, ppb(993_000_000));
        let anode = lot_id(format!("PSO-AN-2026-W{week:02}"));
        self.sign(
            SMELTER,
            format!("smelting of {blend}"),
            EventBody::Transform(Transformation {
                process: format!(
                    "Flash smelting, converting and anode casting, campaign 2026-W{week:02}"
                ),
                inputs: vec![TransformInput {
                    lot: blend,
                    consumed_wet: b.wet,
                }],
                outputs: vec![TransformOutput {
                    lot: anode.clone(),
                    kind: LotKind::Anode,
                    metal: Element::Cu,
                    wet,
                    moisture: Ppb::ZERO,
                    assays: vec![
                        Assay {
                            element: Element::Cu,
                            grade: grade_for(cu, wet),
                        },
                        Assay {
                            element: Element::Au,
                            grade: grade_for(au, wet),
                        },
                        Assay {
                            element: Element::Ag,
                            grade: grade_for(ag, wet),
                        },
                    ],
                }],
            }),
        )?;
        self.counts.anode += 1;
        self.after(2, Task::Refine { anode, week });
        Ok(())
    }

    /// Electrorefining: 98.4 to 99.0 % of the anode copper plates as Grade A
    /// cathode, in lots of about 250 t; gold, silver and a little copper
    /// report to the anode slime. With the smelter's losses that is 96.2 to
    /// 97.2 % of the concentrate's copper.
    fn refine(&mut self, anode: LotId, week: u32) -> Result<(), DemoError> {
        let a = self.lot(&anode)?;
        let cu = a.contained_of(Element::Cu);
        let recovery = ppb(self.rng.range(984_000_000, 990_000_000));
        let grade = ppb(self.rng.range(999_940_000, 999_975_000));
        let total = mass_at_grade(recovery.of(cu), grade);
        let mut outputs = Vec::new();
        let mut cathodes = Vec::new();
        for wet in lots_of(total, Grams(250 * T)) {
            self.cathode_seq += 1;
            let lot = lot_id(format!("PSO-CA-2026-{:04}", self.cathode_seq));
            outputs.push(TransformOutput {
                lot: lot.clone(),
                kind: LotKind::Cathode,
                metal: Element::Cu,
                wet,
                moisture: Ppb::ZERO,
                assays: vec![Assay {
                    element: Element::Cu,
                    grade,
                }],
            });
            cathodes.push(lot);
        }
        let au = ppb(990_000_000).of(a.contained_of(Element::Au));
        let ag = ppb(985_000_000).of(a.contained_of(Element::Ag));
        let cu_slime = ppb(4_000_000).of(cu);
        if au.0 > 0 {
            // Gold, silver and copper are about 45 % of the dry slime.
            let dry_target = Grams((au.0 + ag.0 + cu_slime.0) * 20 / 9);
            let moisture = ppb(150_000_000);
            let wet = Grams(round_down(dry_target.0 * 20 / 17, 1_000) + 1_000);
            let dry = dry_mass(wet, moisture);
            outputs.push(TransformOutput {
                lot: lot_id(format!("PSO-SL-2026-W{week:02}")),
                kind: LotKind::Slime,
                metal: Element::Au,
                wet,
                moisture,
                assays: vec![
                    Assay {
                        element: Element::Au,
                        grade: grade_for(au, dry),
                    },
                    Assay {
                        element: Element::Ag,
                        grade: grade_for(ag, dry),
                    },
                    Assay {
                        element: Element::Cu,
                        grade: grade_for(cu_slime, dry),
                    },
                ],
            });
            self.counts.slime += 1;
        }
        self.sign(
            SMELTER,
            format!("electrorefining of {anode}"),
            EventBody::Transform(Transformation {
                process: format!("Electrorefining, tankhouse campaign 2026-W{week:02}"),
                inputs: vec![TransformInput {
                    lot: anode,
                    consumed_wet: a.wet,
                }],
                outputs,
            }),
        )?;
        self.counts.cathode += cathodes.len();
        self.deliver_to_either(cathodes, 550, CABLE_MAKER, BATTERY_MAKER);
        Ok(())
    }

    /// Each Wednesday the roaster takes 5,600 to 6,600 t of graded zinc
    /// concentrate, oldest first, the last lot only in part when it does not
    /// fit; 96.2 to 97.2 % of the zinc becomes SHG ingot in lots of about
    /// 500 t.
    fn zinc_campaign(&mut self) -> Result<(), DemoError> {
        self.after(7, Task::ZincCampaign);
        let mut room = Grams(self.rng.range(5_600, 6_600) * T);
        let mut inputs = Vec::new();
        let mut zinc = Grams(0);
        let mut used_up = 0;
        for id in &self.zinc_stock {
            let l = self.lot(id)?;
            let take = l.wet.min(room);
            // A sliver of a lot is not worth a partial charge.
            if take.0 < 50 * T && take < l.wet {
                break;
            }
            zinc = Grams(zinc.0 + pro_rata(l.contained_of(Element::Zn), take, l.wet).0);
            inputs.push(TransformInput {
                lot: id.clone(),
                consumed_wet: take,
            });
            room = Grams(room.0 - take.0);
            if take == l.wet {
                used_up += 1;
            }
            if room.0 == 0 {
                break;
            }
        }
        if inputs.is_empty() {
            return Ok(());
        }
        self.zinc_stock.drain(..used_up);
        let week = self.week();
        let recovery = ppb(self.rng.range(962_000_000, 972_000_000));
        let grade = ppb(self.rng.range(999_950_000, 999_985_000));
        let total = mass_at_grade(recovery.of(zinc), grade);
        let mut outputs = Vec::new();
        let mut ingots = Vec::new();
        for wet in lots_of(total, Grams(500 * T)) {
            self.ingot_seq += 1;
            let lot = lot_id(format!("PSO-ZN-2026-{:04}", self.ingot_seq));
            outputs.push(TransformOutput {
                lot: lot.clone(),
                kind: LotKind::Ingot,
                metal: Element::Zn,
                wet,
                moisture: Ppb::ZERO,
                assays: vec![Assay {
                    element: Element::Zn,
                    grade,
                }],
            });
            ingots.push(lot);
        }
        self.sign(
            SMELTER,
            format!("zinc campaign 2026-W{week:02}"),
            EventBody::Transform(Transformation {
                process: format!("Roasting, leaching and electrowinning, campaign 2026-W{week:02}"),
                inputs,
                outputs,
            }),
        )?;
        self.counts.ingot += ingots.len();
        self.deliver_to_either(ingots, 700, GALVANIZER, CABLE_MAKER);
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Sales of cathode and ingot.

    fn deliver(&mut self, lot: LotId, buyer: &'static str) -> Result<(), DemoError> {
        self.sign(
            SMELTER,
            format!("sale of {lot} to {buyer}"),
            EventBody::Sell(Sale {
                lot: lot.clone(),
                buyer: pid(buyer),
                documents: vec![document(
                    DocumentKind::Other,
                    format!("Sales contract and invoice, lot {lot}"),
                )],
            }),
        )?;
        self.sign(
            SMELTER,
            format!("dispatch of {lot} to {buyer}"),
            EventBody::Dispatch(Dispatch {
                lot: lot.clone(),
                to: pid(buyer),
                route: vec![country(SMELTER_COUNTRY), country(party(buyer).country)],
                documents: vec![
                    document(
                        DocumentKind::BillOfLading,
                        format!("Sea waybill, lot {lot}"),
                    ),
                    // The export document of the rules is, inside the EU,
                    // the dispatch declaration.
                    document(
                        DocumentKind::ExportPermit,
                        format!("Intra-EU dispatch declaration, lot {lot}"),
                    ),
                    document(
                        DocumentKind::AssayCertificate,
                        format!("Certificate of analysis, lot {lot}"),
                    ),
                ],
            }),
        )?;
        let days = self.rng.days((3, 6));
        self.after(days, Task::Delivered { lot, buyer });
        Ok(())
    }

    fn delivered(&mut self, lot: LotId, buyer: &'static str) -> Result<(), DemoError> {
        let l = self.lot(&lot)?;
        // Cathode bundles and ingot stacks are counted and weighed: the
        // buyer's scale agrees within 0.05 %.
        let measured = Grams(round_down(self.rng.jitter(l.wet.0, 500), 1_000));
        self.sign(
            buyer,
            format!("receipt of {lot} by {buyer}"),
            Self::receipt(&lot, measured, true, String::new()),
        )
    }

    // -----------------------------------------------------------------------
    // The end.

    /// Writes every participant's current secret key to `keys/demo/`, so
    /// that more events can be signed as any of them.
    fn write_participant_keys(&self, dir: &Path) -> Result<(), DemoError> {
        let folder = dir.join(KEYS_DIR).join("demo");
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&folder)
            .map_err(|source| DemoError::Io {
                path: folder.clone(),
                source,
            })?;
        for (id, signer) in &self.signers {
            if *id != OPERATOR {
                signer.key().write_file(&folder.join(format!("{id}.key")))?;
            }
        }
        Ok(())
    }

    fn summary(&self) -> DemoSummary {
        let mine_countries: BTreeSet<&str> = PARTIES
            .iter()
            .filter(|p| p.kind == ParticipantKind::Mine)
            .map(|p| p.country)
            .collect();
        DemoSummary {
            origin: ORIGIN.into(),
            entries: self.ledger.size(),
            root: self.ledger.root(),
            participants: PARTIES.len() + 1,
            mines: PARTIES
                .iter()
                .filter(|p| p.kind == ParticipantKind::Mine)
                .count(),
            mine_countries: mine_countries.into_iter().map(String::from).collect(),
            sites: SITES.len(),
            concentrate_lots: self.counts.concentrate,
            blend_lots: self.counts.blend,
            anode_lots: self.counts.anode,
            cathode_lots: self.counts.cathode,
            slime_lots: self.counts.slime,
            ingot_lots: self.counts.ingot,
            flag_decisions: self.counts.flag_decisions,
            expected_refusals: self.refusals.clone(),
        }
    }
}
