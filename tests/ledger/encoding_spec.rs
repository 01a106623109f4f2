//! The worked examples of `schemas/ENCODING.md`, rebuilt from the library.
//!
//! Regenerate the examples after a deliberate change of format with:
//!
//! ```sh
//! ORETRAIL_BLESS=1 cargo test --test ledger encoding_spec
//! ```
//!
//! Without `ORETRAIL_BLESS=1` the test only compares, so the document cannot
//! drift from the code unnoticed. The field-by-field layouts are produced
//! here by a small encoder written from the document's rules alone, not by
//! slicing the library's output; the test asserts that they concatenate to
//! the library's bytes, that the bytes decode back to the values, and that
//! the example log file passes the library's offline verifier. So the prose
//! rules, the annotated examples and the code are checked against each
//! other, not just copied from one another.
//!
//! The custody examples come from a story of signed events run through the
//! library's rules; a small model written from section 6.1 of the document
//! recomputes every lot's masses, contained metal and origin, and must agree
//! with the library to the gram and the part per billion.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use oretrail::codec::{self, Canonical};
use oretrail::crypto::{Digest, PublicKey, SecretKey, Signature, sha256};
use oretrail::ledger::{CheckpointRecord, verify_log};
use oretrail::merkle::checkpoint::{self, Checkpoint, NoteVerifier};
use oretrail::merkle::{self, Hash, MemoryNodes};
use oretrail::model::{
    Assay, AssayReport, AssayStage, Blend, CahraFinding, CodeOfConductAcknowledgement, Correction,
    CountryCahraFinding, CountryCode, Dispatch, DocumentAttachment, DocumentKind, DocumentRef,
    Element, Entry, EsgElement, EsgScore, Event, EventBody, FlagDecision, FlagDecisionKind, FlagId,
    FlagKind, Genesis, Grams, GrievanceOutcome, GrievanceReport, KeyAdded, KeyRevoked, KeyRotated,
    Lot, LotCreation, LotId, LotKind, LotReceipt, LotStatus, MemoryState, OfficerAppointment,
    OnboardingAssessment, ParticipantId, ParticipantKind, Ppb, ReceiptPolicy, Registration,
    ReviewCadence, Role, Sale, SanctionKind, SanctionReason, SignedEvent, SiteId, SiteRegistration,
    SiteScale, Split, SplitPart, StateValue, SupplierReinstatement, SupplierReview,
    SupplierSanction, Timestamp, TransformInput, TransformOutput, Transformation,
    UnreviewedSupplierPolicy,
};
use oretrail::rules::{self, Context};
use oretrail::signer::sign_event;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/ENCODING.md");
const BLESS: &str = "ORETRAIL_BLESS=1 cargo test --test ledger encoding_spec";

const ORIGIN: &str = "example.org/oretrail";
/// 2026-01-31T12:00:00.000Z, when the operator signs the genesis event.
const GENESIS_TIME_MS: u64 = 1_769_860_800_000;

/// 9999-12-31T23:59:59.999Z: the latest time `Timestamp` can display (any
/// `u64` decodes, but RFC 3339 has four-digit years).
const LAST_TIME: Timestamp = Timestamp::from_millis(253_402_300_799_999);

/// Bytes per line in annotated layouts and full hex dumps.
const LAYOUT_WIDTH: usize = 16;
const HEX_WIDTH: usize = 32;

// ---------------------------------------------------------------------------
// An encoder written from the rules in ENCODING.md, independent of bincode.
// ---------------------------------------------------------------------------

/// One field, or one part of a field, of an annotated byte layout.
struct Row {
    bytes: Vec<u8>,
    what: String,
}

/// A structure's bytes, field by field, each with a description.
#[derive(Default)]
struct Layout {
    rows: Vec<Row>,
    /// Variant numbers written, by enum, so tests can check that every
    /// variant of every enum went through the encoder.
    seen: BTreeSet<(&'static str, u32)>,
}

impl Layout {
    fn raw(&mut self, bytes: impl AsRef<[u8]>, what: impl Into<String>) -> &mut Self {
        self.rows.push(Row {
            bytes: bytes.as_ref().to_vec(),
            what: what.into(),
        });
        self
    }

    /// The canonical prefix: a 16-byte NUL-padded tag and a `u16` LE version.
    fn prefix(&mut self, tag: &str, version: u16) -> &mut Self {
        let mut padded = [0u8; 16];
        padded[..tag.len()].copy_from_slice(tag.as_bytes());
        self.raw(padded, format!("tag {tag:?}, NUL-padded to 16 bytes"));
        self.raw(
            version.to_le_bytes(),
            format!("format version (u16) = {version}"),
        )
    }

    fn u32(&mut self, field: &str, value: u32) -> &mut Self {
        self.raw(value.to_le_bytes(), format!("{field} (u32) = {value}"))
    }

    fn u64(&mut self, field: &str, value: u64) -> &mut Self {
        self.raw(value.to_le_bytes(), format!("{field} (u64) = {value}"))
    }

    fn time(&mut self, field: &str, time: Timestamp) -> &mut Self {
        self.raw(
            time.as_millis().to_le_bytes(),
            format!("{field} (u64 ms) = {} = {time}", time.as_millis()),
        )
    }

    /// A string: `u64` byte length, then the UTF-8 bytes.
    fn string(&mut self, field: &str, value: &str) -> &mut Self {
        self.raw(
            (value.len() as u64).to_le_bytes(),
            format!("{field} length (u64) = {}", value.len()),
        );
        self.raw(value.as_bytes(), format!("{field} = {value:?}"))
    }

    /// A byte string: `u64` length, then the bytes.
    fn byte_string(&mut self, field: &str, value: &[u8], what: &str) -> &mut Self {
        self.raw(
            (value.len() as u64).to_le_bytes(),
            format!("{field} length (u64) = {}", value.len()),
        );
        self.raw(value, format!("{field}: {what}"))
    }

    /// A fixed-size byte array: the bytes, no length.
    fn fixed(&mut self, field: &str, value: &[u8], what: &str) -> &mut Self {
        self.raw(value, format!("{field} ({} bytes): {what}", value.len()))
    }

    fn count(&mut self, field: &str, n: usize) -> &mut Self {
        self.raw(
            (n as u64).to_le_bytes(),
            format!("{field} element count (u64) = {n}"),
        )
    }

    fn variant(&mut self, field: &str, index: u32, name: &str) -> &mut Self {
        self.raw(
            index.to_le_bytes(),
            format!("{field} variant index (u32) = {index}: {name}"),
        )
    }

    /// A signed 32-bit integer: two's complement, 4 bytes LE.
    fn i32(&mut self, field: &str, value: i32) -> &mut Self {
        self.raw(value.to_le_bytes(), format!("{field} (i32) = {value}"))
    }

    /// A boolean: one byte, `00` false or `01` true.
    fn bool(&mut self, field: &str, value: bool) -> &mut Self {
        self.raw([u8::from(value)], format!("{field} (bool) = {value}"))
    }

    /// A mass: `u64` LE grams.
    fn grams(&mut self, field: &str, value: Grams) -> &mut Self {
        self.raw(
            value.0.to_le_bytes(),
            format!("{field} (u64 g) = {}", value.0),
        )
    }

    /// A fraction: `u32` LE parts per billion.
    fn ppb(&mut self, field: &str, value: Ppb) -> &mut Self {
        self.raw(
            value.get().to_le_bytes(),
            format!("{field} (u32 ppb) = {}", value.get()),
        )
    }

    /// An option's tag: `00` none, or `01` followed by the value.
    fn option(&mut self, field: &str, some: bool) -> &mut Self {
        let (tag, what) = if some { (0x01, "some") } else { (0x00, "none") };
        self.raw([tag], format!("{field}: {what}"))
    }

    /// A unit variant of the enum `ty`, recorded as seen.
    fn unit(&mut self, ty: &'static str, field: &str, (index, name): (u32, &str)) -> &mut Self {
        self.seen.insert((ty, index));
        self.variant(field, index, name)
    }

    fn element(&mut self, field: &str, e: Element) -> &mut Self {
        self.unit("Element", field, element_number(e))
    }

    fn assays(&mut self, field: &str, assays: &[Assay]) -> &mut Self {
        self.count(field, assays.len());
        for (i, a) in assays.iter().enumerate() {
            self.element(&format!("{field}[{i}].element"), a.element)
                .ppb(&format!("{field}[{i}].grade"), a.grade);
        }
        self
    }

    fn document(&mut self, field: &str, d: &DocumentRef) -> &mut Self {
        self.unit(
            "DocumentKind",
            &format!("{field}.kind"),
            document_number(d.kind),
        )
        .fixed(
            &format!("{field}.sha256"),
            d.sha256.as_bytes(),
            "SHA-256 of the document",
        )
    }

    fn documents(&mut self, field: &str, documents: &[DocumentRef]) -> &mut Self {
        self.count(field, documents.len());
        for (i, d) in documents.iter().enumerate() {
            self.document(&format!("{field}[{i}]"), d);
        }
        self
    }

    fn u8(&mut self, field: &str, value: u8) -> &mut Self {
        self.raw([value], format!("{field} (u8) = {value}"))
    }

    fn u16(&mut self, field: &str, value: u16) -> &mut Self {
        self.raw(value.to_le_bytes(), format!("{field} (u16) = {value}"))
    }

    fn optional_document(&mut self, field: &str, d: Option<&DocumentRef>) -> &mut Self {
        self.option(field, d.is_some());
        if let Some(d) = d {
            self.document(field, d);
        }
        self
    }

    fn scores(&mut self, field: &str, scores: &[EsgScore]) -> &mut Self {
        self.count(field, scores.len());
        for (i, s) in scores.iter().enumerate() {
            self.unit(
                "EsgElement",
                &format!("{field}[{i}].element"),
                esg_number(s.element),
            )
            .u8(&format!("{field}[{i}].score"), s.score);
        }
        self
    }

    fn sanction_kind(&mut self, field: &str, k: &SanctionKind) -> &mut Self {
        self.unit("SanctionKind", field, sanction_number(k));
        if let SanctionKind::Blacklisted { until } = k {
            self.time("Blacklisted.until", *until);
        }
        self
    }

    fn flag_id(&mut self, field: &str, id: FlagId) -> &mut Self {
        self.u64(&format!("{field}.entry"), id.entry)
            .u16(&format!("{field}.n"), id.n)
    }

    fn decision(&mut self, field: &str, d: &FlagDecisionKind) -> &mut Self {
        self.unit("FlagDecisionKind", field, decision_number(d));
        if let FlagDecisionKind::Mitigate { plan } = d {
            self.string("Mitigate.plan", plan);
        }
        self
    }

    fn determinations(
        &mut self,
        field: &str,
        list: &[oretrail::model::CahraDetermination],
    ) -> &mut Self {
        self.count(field, list.len());
        for (i, d) in list.iter().enumerate() {
            self.bool(&format!("cahra[{i}].cahra"), d.cahra)
                .time(&format!("cahra[{i}].effective"), d.effective)
                .string(&format!("cahra[{i}].source"), &d.source)
                .string(&format!("cahra[{i}].by"), d.by.as_str())
                .u64(&format!("cahra[{i}].entry"), d.entry);
        }
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.rows.iter().flat_map(|r| r.bytes.clone()).collect()
    }

    /// The annotated table: decimal offset, up to 16 bytes of hex, field.
    /// Longer fields continue on following lines without a description.
    fn render(&self) -> String {
        let mut out = format!(
            "{:>6}  {:<w$}  field\n",
            "offset",
            "bytes",
            w = 2 * LAYOUT_WIDTH
        );
        let mut offset = 0usize;
        for row in &self.rows {
            for (i, chunk) in row.bytes.chunks(LAYOUT_WIDTH).enumerate() {
                let what = if i == 0 { row.what.as_str() } else { "" };
                let line = format!(
                    "{offset:>6}  {:<w$}  {what}",
                    hex::encode(chunk),
                    w = 2 * LAYOUT_WIDTH
                );
                out.push_str(line.trim_end());
                out.push('\n');
                offset += chunk.len();
            }
        }
        out
    }
}

/// Variant index and name of a participant kind, as ENCODING.md lists them.
/// No wildcard arm: a new kind does not compile until it is documented.
fn kind_number(kind: ParticipantKind) -> (u32, &'static str) {
    match kind {
        ParticipantKind::Operator => (0, "Operator"),
        ParticipantKind::Mine => (1, "Mine"),
        ParticipantKind::Trader => (2, "Trader"),
        ParticipantKind::Transporter => (3, "Transporter"),
        ParticipantKind::Smelter => (4, "Smelter"),
        ParticipantKind::Buyer => (5, "Buyer"),
        ParticipantKind::AssayLab => (6, "AssayLab"),
        ParticipantKind::Auditor => (7, "Auditor"),
    }
}

const ALL_KINDS: [ParticipantKind; 8] = [
    ParticipantKind::Operator,
    ParticipantKind::Mine,
    ParticipantKind::Trader,
    ParticipantKind::Transporter,
    ParticipantKind::Smelter,
    ParticipantKind::Buyer,
    ParticipantKind::AssayLab,
    ParticipantKind::Auditor,
];

/// Variant index and name of a role, as ENCODING.md lists them.
fn role_number(role: Role) -> (u32, &'static str) {
    match role {
        Role::Operator => (0, "Operator"),
        Role::Compliance => (1, "Compliance"),
        Role::Producer => (2, "Producer"),
        Role::Custodian => (3, "Custodian"),
        Role::Processor => (4, "Processor"),
        Role::Seller => (5, "Seller"),
        Role::Purchaser => (6, "Purchaser"),
        Role::Assayer => (7, "Assayer"),
        Role::Auditor => (8, "Auditor"),
    }
}

const ALL_ROLES: [Role; 9] = [
    Role::Operator,
    Role::Compliance,
    Role::Producer,
    Role::Custodian,
    Role::Processor,
    Role::Seller,
    Role::Purchaser,
    Role::Assayer,
    Role::Auditor,
];

/// Variant index and name of an event body, as ENCODING.md lists them.
fn body_number(body: &EventBody) -> (u32, &'static str) {
    match body {
        EventBody::Genesis(_) => (0, "Genesis"),
        EventBody::RegisterParticipant(_) => (1, "RegisterParticipant"),
        EventBody::AddKey(_) => (2, "AddKey"),
        EventBody::RotateKey(_) => (3, "RotateKey"),
        EventBody::RevokeKey(_) => (4, "RevokeKey"),
        EventBody::RegisterSite(_) => (5, "RegisterSite"),
        EventBody::DetermineCahra(_) => (6, "DetermineCahra"),
        EventBody::CreateLot(_) => (7, "CreateLot"),
        EventBody::RecordAssay(_) => (8, "RecordAssay"),
        EventBody::Dispatch(_) => (9, "Dispatch"),
        EventBody::Receive(_) => (10, "Receive"),
        EventBody::Split(_) => (11, "Split"),
        EventBody::Blend(_) => (12, "Blend"),
        EventBody::Transform(_) => (13, "Transform"),
        EventBody::Sell(_) => (14, "Sell"),
        EventBody::AppointOfficer(_) => (15, "AppointOfficer"),
        EventBody::AssessOnboarding(_) => (16, "AssessOnboarding"),
        EventBody::ReviewSupplier(_) => (17, "ReviewSupplier"),
        EventBody::SanctionSupplier(_) => (18, "SanctionSupplier"),
        EventBody::ReinstateSupplier(_) => (19, "ReinstateSupplier"),
        EventBody::AcknowledgeCode(_) => (20, "AcknowledgeCode"),
        EventBody::ReportGrievance(_) => (21, "ReportGrievance"),
        EventBody::SetReceiptPolicy(_) => (22, "SetReceiptPolicy"),
        EventBody::AttachDocument(_) => (23, "AttachDocument"),
        EventBody::Correct(_) => (24, "Correct"),
        EventBody::DecideFlag(_) => (25, "DecideFlag"),
        EventBody::DetermineCountryCahra(_) => (26, "DetermineCountryCahra"),
    }
}

/// Number of `EventBody` variants.
const EVENT_KINDS: usize = 27;

/// Variant numbers of the custody enumerations, as ENCODING.md lists them.
fn element_number(e: Element) -> (u32, &'static str) {
    match e {
        Element::Cu => (0, "Cu"),
        Element::Zn => (1, "Zn"),
        Element::Pb => (2, "Pb"),
        Element::Au => (3, "Au"),
        Element::Ag => (4, "Ag"),
        Element::As => (5, "As"),
        Element::Bi => (6, "Bi"),
        Element::Sb => (7, "Sb"),
        Element::Cd => (8, "Cd"),
        Element::Hg => (9, "Hg"),
        Element::F => (10, "F"),
        Element::Cl => (11, "Cl"),
    }
}

const ALL_ELEMENTS: [Element; 12] = [
    Element::Cu,
    Element::Zn,
    Element::Pb,
    Element::Au,
    Element::Ag,
    Element::As,
    Element::Bi,
    Element::Sb,
    Element::Cd,
    Element::Hg,
    Element::F,
    Element::Cl,
];

fn stage_number(s: AssayStage) -> (u32, &'static str) {
    match s {
        AssayStage::Provisional => (0, "Provisional"),
        AssayStage::Final => (1, "Final"),
        AssayStage::Umpire => (2, "Umpire"),
    }
}

const ALL_STAGES: [AssayStage; 3] = [
    AssayStage::Provisional,
    AssayStage::Final,
    AssayStage::Umpire,
];

fn lot_kind_number(k: LotKind) -> (u32, &'static str) {
    match k {
        LotKind::Concentrate => (0, "Concentrate"),
        LotKind::Blend => (1, "Blend"),
        LotKind::Matte => (2, "Matte"),
        LotKind::Anode => (3, "Anode"),
        LotKind::Slime => (4, "Slime"),
        LotKind::Cathode => (5, "Cathode"),
        LotKind::Ingot => (6, "Ingot"),
        LotKind::Scrap => (7, "Scrap"),
    }
}

const ALL_LOT_KINDS: [LotKind; 8] = [
    LotKind::Concentrate,
    LotKind::Blend,
    LotKind::Matte,
    LotKind::Anode,
    LotKind::Slime,
    LotKind::Cathode,
    LotKind::Ingot,
    LotKind::Scrap,
];

fn scale_number(s: SiteScale) -> (u32, &'static str) {
    match s {
        SiteScale::LargeScale => (0, "LargeScale"),
        SiteScale::Artisanal => (1, "Artisanal"),
        SiteScale::Recycling => (2, "Recycling"),
    }
}

const ALL_SCALES: [SiteScale; 3] = [
    SiteScale::LargeScale,
    SiteScale::Artisanal,
    SiteScale::Recycling,
];

fn document_number(k: DocumentKind) -> (u32, &'static str) {
    match k {
        DocumentKind::BillOfLading => (0, "BillOfLading"),
        DocumentKind::ExportPermit => (1, "ExportPermit"),
        DocumentKind::WeightCertificate => (2, "WeightCertificate"),
        DocumentKind::AssayCertificate => (3, "AssayCertificate"),
        DocumentKind::Other => (4, "Other"),
    }
}

const ALL_DOCUMENT_KINDS: [DocumentKind; 5] = [
    DocumentKind::BillOfLading,
    DocumentKind::ExportPermit,
    DocumentKind::WeightCertificate,
    DocumentKind::AssayCertificate,
    DocumentKind::Other,
];

/// Variant numbers of the compliance enumerations, as ENCODING.md lists
/// them.
fn esg_number(e: EsgElement) -> (u32, &'static str) {
    match e {
        EsgElement::EnvironmentalManagementSystem => (0, "EnvironmentalManagementSystem"),
        EsgElement::EnergyAndCarbon => (1, "EnergyAndCarbon"),
        EsgElement::PollutionViolationsAndFines => (2, "PollutionViolationsAndFines"),
        EsgElement::ProductionEnvironment => (3, "ProductionEnvironment"),
        EsgElement::EnvironmentalProtectionMeasures => (4, "EnvironmentalProtectionMeasures"),
        EsgElement::PublicAffairsEngagement => (5, "PublicAffairsEngagement"),
        EsgElement::LaborRightsPolicies => (6, "LaborRightsPolicies"),
        EsgElement::NegativePublicOpinion => (7, "NegativePublicOpinion"),
        EsgElement::ProductionSafety => (8, "ProductionSafety"),
        EsgElement::ComplianceAndAntiCorruption => (9, "ComplianceAndAntiCorruption"),
        EsgElement::DisclosureAndTransparency => (10, "DisclosureAndTransparency"),
        EsgElement::BusinessEthicsControversies => (11, "BusinessEthicsControversies"),
    }
}

fn cadence_number(c: ReviewCadence) -> (u32, &'static str) {
    match c {
        ReviewCadence::Quarterly => (0, "Quarterly"),
        ReviewCadence::Annual => (1, "Annual"),
    }
}

const ALL_CADENCES: [ReviewCadence; 2] = [ReviewCadence::Quarterly, ReviewCadence::Annual];

fn reason_number(r: SanctionReason) -> (u32, &'static str) {
    match r {
        SanctionReason::ContractViolation => (0, "ContractViolation"),
        SanctionReason::LegalViolation => (1, "LegalViolation"),
        SanctionReason::MajorQualityProblem => (2, "MajorQualityProblem"),
        SanctionReason::SafetyOrEnvironmentalRisk => (3, "SafetyOrEnvironmentalRisk"),
        SanctionReason::Bribery => (4, "Bribery"),
        SanctionReason::GovernmentBlacklist => (5, "GovernmentBlacklist"),
    }
}

const ALL_REASONS: [SanctionReason; 6] = [
    SanctionReason::ContractViolation,
    SanctionReason::LegalViolation,
    SanctionReason::MajorQualityProblem,
    SanctionReason::SafetyOrEnvironmentalRisk,
    SanctionReason::Bribery,
    SanctionReason::GovernmentBlacklist,
];

/// `SanctionKind` has a struct variant and a unit variant.
fn sanction_number(k: &SanctionKind) -> (u32, &'static str) {
    match k {
        SanctionKind::Blacklisted { .. } => (0, "Blacklisted"),
        SanctionKind::PermanentBan => (1, "PermanentBan"),
    }
}

fn outcome_number(o: GrievanceOutcome) -> (u32, &'static str) {
    match o {
        GrievanceOutcome::UnderInvestigation => (0, "UnderInvestigation"),
        GrievanceOutcome::Substantiated => (1, "Substantiated"),
        GrievanceOutcome::Unsubstantiated => (2, "Unsubstantiated"),
    }
}

const ALL_OUTCOMES: [GrievanceOutcome; 3] = [
    GrievanceOutcome::UnderInvestigation,
    GrievanceOutcome::Substantiated,
    GrievanceOutcome::Unsubstantiated,
];

fn policy_number(p: UnreviewedSupplierPolicy) -> (u32, &'static str) {
    match p {
        UnreviewedSupplierPolicy::Refuse => (0, "Refuse"),
        UnreviewedSupplierPolicy::Flag => (1, "Flag"),
    }
}

const ALL_POLICIES: [UnreviewedSupplierPolicy; 2] = [
    UnreviewedSupplierPolicy::Refuse,
    UnreviewedSupplierPolicy::Flag,
];

fn flag_kind_number(k: FlagKind) -> (u32, &'static str) {
    match k {
        FlagKind::CahraOrigin => (0, "CahraOrigin"),
        FlagKind::ArtisanalOrigin => (1, "ArtisanalOrigin"),
        FlagKind::CahraTransit => (2, "CahraTransit"),
        FlagKind::SupplierNotReviewed => (3, "SupplierNotReviewed"),
        FlagKind::ProductionAboveCapacity => (4, "ProductionAboveCapacity"),
        FlagKind::WeightVariance => (5, "WeightVariance"),
        FlagKind::MissingExportDocument => (6, "MissingExportDocument"),
        FlagKind::NearMetalTolerance => (7, "NearMetalTolerance"),
    }
}

const ALL_FLAG_KINDS: [FlagKind; 8] = [
    FlagKind::CahraOrigin,
    FlagKind::ArtisanalOrigin,
    FlagKind::CahraTransit,
    FlagKind::SupplierNotReviewed,
    FlagKind::ProductionAboveCapacity,
    FlagKind::WeightVariance,
    FlagKind::MissingExportDocument,
    FlagKind::NearMetalTolerance,
];

/// `FlagDecisionKind` has unit variants and one struct variant.
fn decision_number(d: &FlagDecisionKind) -> (u32, &'static str) {
    match d {
        FlagDecisionKind::Continue => (0, "Continue"),
        FlagDecisionKind::Mitigate { .. } => (1, "Mitigate"),
        FlagDecisionKind::Suspend => (2, "Suspend"),
        FlagDecisionKind::Disengage => (3, "Disengage"),
    }
}

/// `LotStatus` (state only) has a unit variant and two struct variants.
fn status_number(s: &LotStatus) -> (u32, &'static str) {
    match s {
        LotStatus::Held => (0, "Held"),
        LotStatus::InTransit { .. } => (1, "InTransit"),
        LotStatus::Consumed { .. } => (2, "Consumed"),
    }
}

const KEY: &str = "Ed25519 public key";

fn event_layout(e: &Event) -> Layout {
    let mut l = Layout::default();
    l.prefix("oretrail.event", 1)
        .string("Event.ledger", &e.ledger)
        .string("Event.signer", e.signer.as_str())
        .time("Event.time", e.time)
        .u64("Event.nonce", e.nonce);
    let (index, name) = body_number(&e.body);
    l.variant("Event.body", index, name);
    match &e.body {
        EventBody::Genesis(g) => {
            l.string("Genesis.origin", &g.origin)
                .fixed("Genesis.log_key", g.log_key.as_bytes(), KEY)
                .string("Genesis.operator", g.operator.as_str())
                .string("Genesis.operator_name", &g.operator_name)
                .string("Genesis.operator_country", g.operator_country.as_str())
                .fixed("Genesis.operator_key", g.operator_key.as_bytes(), KEY);
        }
        EventBody::RegisterParticipant(r) => {
            l.string("Registration.participant", r.participant.as_str())
                .string("Registration.legal_name", &r.legal_name)
                .string("Registration.country", r.country.as_str())
                .count("Registration.kinds", r.kinds.len());
            for (i, kind) in r.kinds.iter().enumerate() {
                let (index, name) = kind_number(*kind);
                l.variant(&format!("kinds[{i}]"), index, name);
            }
            l.count("Registration.roles", r.roles.len());
            for (i, role) in r.roles.iter().enumerate() {
                let (index, name) = role_number(*role);
                l.variant(&format!("roles[{i}]"), index, name);
            }
            l.count("Registration.keys", r.keys.len());
            for (i, key) in r.keys.iter().enumerate() {
                l.fixed(&format!("keys[{i}]"), key.as_bytes(), KEY);
            }
        }
        EventBody::AddKey(a) => {
            l.string("KeyAdded.participant", a.participant.as_str())
                .fixed("KeyAdded.key", a.key.as_bytes(), KEY);
        }
        EventBody::RotateKey(r) => {
            l.string("KeyRotated.participant", r.participant.as_str())
                .fixed("KeyRotated.old", r.old.as_bytes(), KEY)
                .fixed("KeyRotated.new", r.new.as_bytes(), KEY);
        }
        EventBody::RevokeKey(r) => {
            l.string("KeyRevoked.participant", r.participant.as_str())
                .fixed("KeyRevoked.key", r.key.as_bytes(), KEY)
                .string("KeyRevoked.reason", &r.reason);
        }
        EventBody::RegisterSite(r) => {
            l.string("SiteRegistration.site", r.site.as_str())
                .string("SiteRegistration.operator", r.operator.as_str())
                .string("SiteRegistration.name", &r.name)
                .string("SiteRegistration.country", r.country.as_str())
                .i32("SiteRegistration.latitude_micro", r.latitude_micro)
                .i32("SiteRegistration.longitude_micro", r.longitude_micro)
                .unit("SiteScale", "SiteRegistration.scale", scale_number(r.scale))
                .element("SiteRegistration.metal", r.metal)
                .grams("SiteRegistration.annual_capacity", r.annual_capacity);
        }
        EventBody::DetermineCahra(f) => {
            l.string("CahraFinding.site", f.site.as_str())
                .bool("CahraFinding.cahra", f.cahra)
                .time("CahraFinding.effective", f.effective)
                .string("CahraFinding.source", &f.source);
        }
        EventBody::CreateLot(c) => {
            l.string("LotCreation.lot", c.lot.as_str())
                .string("LotCreation.site", c.site.as_str())
                .unit("LotKind", "LotCreation.kind", lot_kind_number(c.kind))
                .grams("LotCreation.wet", c.wet)
                .ppb("LotCreation.moisture", c.moisture)
                .assays("LotCreation.assays", &c.assays)
                .time("LotCreation.produced_from", c.produced_from)
                .time("LotCreation.produced_until", c.produced_until);
        }
        EventBody::RecordAssay(a) => {
            l.string("AssayReport.lot", a.lot.as_str())
                .unit("AssayStage", "AssayReport.stage", stage_number(a.stage))
                .assays("AssayReport.assays", &a.assays)
                .option("AssayReport.moisture", a.moisture.is_some());
            if let Some(m) = a.moisture {
                l.ppb("AssayReport.moisture", m);
            }
            l.option("AssayReport.certificate", a.certificate.is_some());
            if let Some(d) = &a.certificate {
                l.document("AssayReport.certificate", d);
            }
        }
        EventBody::Dispatch(d) => {
            l.string("Dispatch.lot", d.lot.as_str())
                .string("Dispatch.to", d.to.as_str())
                .count("Dispatch.route", d.route.len());
            for (i, c) in d.route.iter().enumerate() {
                l.string(&format!("route[{i}]"), c.as_str());
            }
            l.documents("Dispatch.documents", &d.documents);
        }
        EventBody::Receive(r) => {
            l.string("LotReceipt.lot", r.lot.as_str())
                .grams("LotReceipt.measured_wet", r.measured_wet)
                .bool("LotReceipt.accepted", r.accepted)
                .string("LotReceipt.note", &r.note)
                .documents("LotReceipt.documents", &r.documents);
        }
        EventBody::Split(s) => {
            l.string("Split.lot", s.lot.as_str())
                .count("Split.parts", s.parts.len());
            for (i, p) in s.parts.iter().enumerate() {
                l.string(&format!("parts[{i}].lot"), p.lot.as_str())
                    .grams(&format!("parts[{i}].wet"), p.wet);
            }
        }
        EventBody::Blend(b) => {
            l.count("Blend.inputs", b.inputs.len());
            for (i, lot) in b.inputs.iter().enumerate() {
                l.string(&format!("inputs[{i}]"), lot.as_str());
            }
            l.string("Blend.output", b.output.as_str());
        }
        EventBody::Transform(t) => {
            l.string("Transformation.process", &t.process)
                .count("Transformation.inputs", t.inputs.len());
            for (i, input) in t.inputs.iter().enumerate() {
                l.string(&format!("inputs[{i}].lot"), input.lot.as_str())
                    .grams(&format!("inputs[{i}].consumed_wet"), input.consumed_wet);
            }
            l.count("Transformation.outputs", t.outputs.len());
            for (i, o) in t.outputs.iter().enumerate() {
                l.string(&format!("outputs[{i}].lot"), o.lot.as_str())
                    .unit(
                        "LotKind",
                        &format!("outputs[{i}].kind"),
                        lot_kind_number(o.kind),
                    )
                    .element(&format!("outputs[{i}].metal"), o.metal)
                    .grams(&format!("outputs[{i}].wet"), o.wet)
                    .ppb(&format!("outputs[{i}].moisture"), o.moisture)
                    .assays(&format!("outputs[{i}].assays"), &o.assays);
            }
        }
        EventBody::Sell(s) => {
            l.string("Sale.lot", s.lot.as_str())
                .string("Sale.buyer", s.buyer.as_str())
                .documents("Sale.documents", &s.documents);
        }
        EventBody::AppointOfficer(a) => {
            l.string("OfficerAppointment.officer", a.officer.as_str())
                .string("OfficerAppointment.organisation", a.organisation.as_str());
        }
        EventBody::AssessOnboarding(o) => {
            l.string("OnboardingAssessment.organisation", o.organisation.as_str())
                .string("OnboardingAssessment.supplier", o.supplier.as_str())
                .scores("OnboardingAssessment.scores", &o.scores)
                .bool("OnboardingAssessment.passed", o.passed)
                .optional_document("OnboardingAssessment.report", o.report.as_ref());
        }
        EventBody::ReviewSupplier(r) => {
            l.string("SupplierReview.organisation", r.organisation.as_str())
                .string("SupplierReview.supplier", r.supplier.as_str())
                .bool("SupplierReview.passed", r.passed)
                .unit(
                    "ReviewCadence",
                    "SupplierReview.cadence",
                    cadence_number(r.cadence),
                )
                .time("SupplierReview.valid_until", r.valid_until)
                .optional_document("SupplierReview.report", r.report.as_ref());
        }
        EventBody::SanctionSupplier(s) => {
            l.string("SupplierSanction.organisation", s.organisation.as_str())
                .string("SupplierSanction.supplier", s.supplier.as_str())
                .sanction_kind("SupplierSanction.kind", &s.kind)
                .unit(
                    "SanctionReason",
                    "SupplierSanction.reason",
                    reason_number(s.reason),
                )
                .string("SupplierSanction.note", &s.note);
        }
        EventBody::ReinstateSupplier(r) => {
            l.string(
                "SupplierReinstatement.organisation",
                r.organisation.as_str(),
            )
            .string("SupplierReinstatement.supplier", r.supplier.as_str())
            .string("SupplierReinstatement.note", &r.note);
        }
        EventBody::AcknowledgeCode(a) => {
            l.string(
                "CodeOfConductAcknowledgement.organisation",
                a.organisation.as_str(),
            )
            .fixed(
                "CodeOfConductAcknowledgement.policy_sha256",
                a.policy_sha256.as_bytes(),
                "SHA-256 of the code of conduct",
            )
            .string("CodeOfConductAcknowledgement.version", &a.version);
        }
        EventBody::ReportGrievance(g) => {
            l.string("GrievanceReport.organisation", g.organisation.as_str())
                .string("GrievanceReport.subject", g.subject.as_str())
                .fixed(
                    "GrievanceReport.report_sha256",
                    g.report_sha256.as_bytes(),
                    "SHA-256 of the report",
                )
                .unit(
                    "GrievanceOutcome",
                    "GrievanceReport.outcome",
                    outcome_number(g.outcome),
                );
        }
        EventBody::SetReceiptPolicy(p) => {
            l.string("ReceiptPolicy.organisation", p.organisation.as_str())
                .unit(
                    "UnreviewedSupplierPolicy",
                    "ReceiptPolicy.unreviewed_supplier",
                    policy_number(p.unreviewed_supplier),
                );
        }
        EventBody::AttachDocument(a) => {
            l.string("DocumentAttachment.lot", a.lot.as_str())
                .document("DocumentAttachment.document", &a.document);
        }
        EventBody::Correct(c) => {
            l.u64("Correction.entry", c.entry)
                .option("Correction.lot", c.lot.is_some());
            if let Some(lot) = &c.lot {
                l.string("Correction.lot", lot.as_str());
            }
            l.string("Correction.reason", &c.reason);
        }
        EventBody::DecideFlag(d) => {
            l.flag_id("FlagDecision.flag", d.flag)
                .decision("FlagDecision.decision", &d.decision)
                .string("FlagDecision.note", &d.note);
        }
        EventBody::DetermineCountryCahra(f) => {
            l.string("CountryCahraFinding.country", f.country.as_str())
                .bool("CountryCahraFinding.cahra", f.cahra)
                .time("CountryCahraFinding.effective", f.effective)
                .string("CountryCahraFinding.source", &f.source);
        }
    }
    l
}

/// The layout of a derived state value (section 3.7), from the rules of
/// the document like [`event_layout`]. No wildcard arm: a new kind of
/// state does not compile until it is documented.
fn state_layout(value: &StateValue) -> Layout {
    let mut l = Layout::default();
    l.prefix("oretrail.state", 1);
    let (index, name) = state_number(value);
    l.variant("StateValue", index, name);
    match value {
        StateValue::Ledger(i) => {
            l.string("LedgerInfo.origin", &i.origin)
                .fixed("LedgerInfo.log_key", i.log_key.as_bytes(), KEY)
                .string("LedgerInfo.operator", i.operator.as_str())
                .time("LedgerInfo.created_at", i.created_at);
        }
        StateValue::Participant(p) => {
            l.string("Participant.id", p.id.as_str())
                .string("Participant.legal_name", &p.legal_name)
                .string("Participant.country", p.country.as_str())
                .count("Participant.kinds", p.kinds.len());
            for (i, kind) in p.kinds.iter().enumerate() {
                let (index, name) = kind_number(*kind);
                l.variant(&format!("kinds[{i}]"), index, name);
            }
            l.count("Participant.roles", p.roles.len());
            for (i, role) in p.roles.iter().enumerate() {
                let (index, name) = role_number(*role);
                l.variant(&format!("roles[{i}]"), index, name);
            }
            l.time("Participant.registered_at", p.registered_at)
                .u64("Participant.registered_in", p.registered_in)
                .count("Participant.keys", p.keys.len());
            for (i, key) in p.keys.iter().enumerate() {
                l.fixed(&format!("keys[{i}]"), key.as_bytes(), KEY);
            }
        }
        StateValue::Key(k) => {
            l.fixed("KeyRecord.key", k.key.as_bytes(), KEY)
                .string("KeyRecord.participant", k.participant.as_str())
                .time("KeyRecord.valid_from", k.valid_from)
                .option("KeyRecord.valid_until", k.valid_until.is_some());
            if let Some(t) = k.valid_until {
                l.time("KeyRecord.valid_until", t);
            }
            l.u64("KeyRecord.added_in", k.added_in)
                .option("KeyRecord.ended_in", k.ended_in.is_some());
            if let Some(e) = k.ended_in {
                l.u64("KeyRecord.ended_in", e);
            }
        }
        StateValue::Site(s) => {
            l.string("Site.id", s.id.as_str())
                .string("Site.operator", s.operator.as_str())
                .string("Site.name", &s.name)
                .string("Site.country", s.country.as_str())
                .i32("Site.latitude_micro", s.latitude_micro)
                .i32("Site.longitude_micro", s.longitude_micro)
                .unit("SiteScale", "Site.scale", scale_number(s.scale))
                .element("Site.metal", s.metal)
                .grams("Site.annual_capacity", s.annual_capacity)
                .determinations("Site.cahra", &s.cahra)
                .u64("Site.registered_in", s.registered_in)
                .count("Site.production", s.production.len());
            for (i, (period, grams)) in s.production.iter().enumerate() {
                l.u64(&format!("production[{i}].0 (30-day period)"), *period)
                    .grams(&format!("production[{i}].1"), *grams);
            }
        }
        StateValue::Lot(lot) => {
            l.string("Lot.id", lot.id.as_str())
                .unit("LotKind", "Lot.kind", lot_kind_number(lot.kind))
                .element("Lot.metal", lot.metal)
                .string("Lot.custodian", lot.custodian.as_str())
                .string("Lot.owner", lot.owner.as_str())
                .unit("LotStatus", "Lot.status", status_number(&lot.status));
            match &lot.status {
                LotStatus::Held => {}
                LotStatus::InTransit { to, dispatched_in } => {
                    l.string("InTransit.to", to.as_str())
                        .u64("InTransit.dispatched_in", *dispatched_in);
                }
                LotStatus::Consumed { in_entry } => {
                    l.u64("Consumed.in_entry", *in_entry);
                }
            }
            l.grams("Lot.wet", lot.wet)
                .ppb("Lot.moisture", lot.moisture)
                .grams("Lot.dry", lot.dry)
                .assays("Lot.assays", &lot.assays)
                .unit(
                    "AssayStage",
                    "Lot.assay_stage",
                    stage_number(lot.assay_stage),
                )
                .count("Lot.contained", lot.contained.len());
            for (i, (e, g)) in lot.contained.iter().enumerate() {
                l.element(&format!("contained[{i}].0"), *e)
                    .grams(&format!("contained[{i}].1"), *g);
            }
            let shares = lot.origin.shares();
            l.count("Lot.origin", shares.len());
            for (i, s) in shares.iter().enumerate() {
                l.string(&format!("origin[{i}].site"), s.site.as_str())
                    .ppb(&format!("origin[{i}].share"), s.share);
            }
            l.count("Lot.history", lot.history.len());
            for (i, h) in lot.history.iter().enumerate() {
                l.u64(&format!("history[{i}]"), *h);
            }
            l.option("Lot.seller", lot.seller.is_some());
            if let Some(seller) = &lot.seller {
                l.string("Lot.seller", seller.as_str());
            }
            l.count("Lot.documents", lot.documents.len());
            for (i, d) in lot.documents.iter().enumerate() {
                l.document(&format!("documents[{i}].document"), &d.document)
                    .string(&format!("documents[{i}].by"), d.by.as_str())
                    .u64(&format!("documents[{i}].entry"), d.entry);
            }
            l.count("Lot.corrections", lot.corrections.len());
            for (i, (by, corrected, reason)) in lot.corrections.iter().enumerate() {
                l.u64(&format!("corrections[{i}].0 (correcting entry)"), *by)
                    .u64(&format!("corrections[{i}].1 (corrected entry)"), *corrected)
                    .string(&format!("corrections[{i}].2"), reason);
            }
            l.count("Lot.flags", lot.flags.len());
            for (i, f) in lot.flags.iter().enumerate() {
                l.flag_id(&format!("flags[{i}]"), *f);
            }
        }
        StateValue::Affiliation(a) => {
            l.string("Affiliation.member", a.member.as_str())
                .string("Affiliation.organisation", a.organisation.as_str())
                .u64("Affiliation.entry", a.entry);
        }
        StateValue::Supplier(f) => {
            l.string("SupplierFile.organisation", f.organisation.as_str())
                .string("SupplierFile.supplier", f.supplier.as_str())
                .option("SupplierFile.onboarding", f.onboarding.is_some());
            if let Some((scores, passed, entry)) = &f.onboarding {
                l.scores("onboarding.0", scores)
                    .bool("onboarding.1 (passed)", *passed)
                    .u64("onboarding.2 (entry)", *entry);
            }
            l.count("SupplierFile.reviews", f.reviews.len());
            for (i, r) in f.reviews.iter().enumerate() {
                l.bool(&format!("reviews[{i}].passed"), r.passed)
                    .unit(
                        "ReviewCadence",
                        &format!("reviews[{i}].cadence"),
                        cadence_number(r.cadence),
                    )
                    .time(&format!("reviews[{i}].reviewed_at"), r.reviewed_at)
                    .time(&format!("reviews[{i}].valid_until"), r.valid_until)
                    .u64(&format!("reviews[{i}].entry"), r.entry);
            }
            l.count("SupplierFile.sanctions", f.sanctions.len());
            for (i, s) in f.sanctions.iter().enumerate() {
                l.sanction_kind(&format!("sanctions[{i}].kind"), &s.kind)
                    .unit(
                        "SanctionReason",
                        &format!("sanctions[{i}].reason"),
                        reason_number(s.reason),
                    )
                    .time(&format!("sanctions[{i}].from"), s.from)
                    .u64(&format!("sanctions[{i}].imposed_in"), s.imposed_in)
                    .option(&format!("sanctions[{i}].lifted"), s.lifted.is_some());
                if let Some((at, entry)) = s.lifted {
                    l.time(&format!("sanctions[{i}].lifted.0"), at)
                        .u64(&format!("sanctions[{i}].lifted.1 (entry)"), entry);
                }
            }
            l.option(
                "SupplierFile.code_acknowledged",
                f.code_acknowledged.is_some(),
            );
            if let Some(c) = &f.code_acknowledged {
                l.fixed(
                    "code_acknowledged.policy_sha256",
                    c.policy_sha256.as_bytes(),
                    "SHA-256 of the code of conduct",
                )
                .string("code_acknowledged.version", &c.version)
                .u64("code_acknowledged.entry", c.entry);
            }
            l.count("SupplierFile.grievances", f.grievances.len());
            for (i, (digest, outcome, entry)) in f.grievances.iter().enumerate() {
                l.fixed(
                    &format!("grievances[{i}].0"),
                    digest.as_bytes(),
                    "SHA-256 of the report",
                )
                .unit(
                    "GrievanceOutcome",
                    &format!("grievances[{i}].1"),
                    outcome_number(*outcome),
                )
                .u64(&format!("grievances[{i}].2 (entry)"), *entry);
            }
        }
        StateValue::ReceiptPolicy(p) => {
            l.string("ReceiptPolicy.organisation", p.organisation.as_str())
                .unit(
                    "UnreviewedSupplierPolicy",
                    "ReceiptPolicy.unreviewed_supplier",
                    policy_number(p.unreviewed_supplier),
                );
        }
        StateValue::Flag(f) => {
            l.flag_id("Flag.id", f.id)
                .unit("FlagKind", "Flag.kind", flag_kind_number(f.kind))
                .string("Flag.organisation", f.organisation.as_str())
                .option("Flag.lot", f.lot.is_some());
            if let Some(lot) = &f.lot {
                l.string("Flag.lot", lot.as_str());
            }
            l.option("Flag.site", f.site.is_some());
            if let Some(site) = &f.site {
                l.string("Flag.site", site.as_str());
            }
            l.option("Flag.supplier", f.supplier.is_some());
            if let Some(supplier) = &f.supplier {
                l.string("Flag.supplier", supplier.as_str());
            }
            l.time("Flag.raised_at", f.raised_at)
                .string("Flag.detail", &f.detail)
                .count("Flag.decisions", f.decisions.len());
            for (i, d) in f.decisions.iter().enumerate() {
                l.decision(&format!("decisions[{i}].decision"), &d.decision)
                    .string(&format!("decisions[{i}].by"), d.by.as_str())
                    .time(&format!("decisions[{i}].at"), d.at)
                    .u64(&format!("decisions[{i}].entry"), d.entry)
                    .string(&format!("decisions[{i}].note"), &d.note);
            }
        }
        StateValue::CountryRisk(r) => {
            l.string("CountryRisk.country", r.country.as_str())
                .determinations("CountryRisk.cahra", &r.cahra);
        }
    }
    l
}

/// Variant index and name of a state value, as ENCODING.md lists them.
fn state_number(value: &StateValue) -> (u32, &'static str) {
    match value {
        StateValue::Ledger(_) => (0, "Ledger"),
        StateValue::Participant(_) => (1, "Participant"),
        StateValue::Key(_) => (2, "Key"),
        StateValue::Site(_) => (3, "Site"),
        StateValue::Lot(_) => (4, "Lot"),
        StateValue::Affiliation(_) => (5, "Affiliation"),
        StateValue::Supplier(_) => (6, "Supplier"),
        StateValue::ReceiptPolicy(_) => (7, "ReceiptPolicy"),
        StateValue::Flag(_) => (8, "Flag"),
        StateValue::CountryRisk(_) => (9, "CountryRisk"),
    }
}

/// The envelope's fields; `what` names the event it carries.
fn signed_event_fields(l: &mut Layout, field: &str, s: &SignedEvent, what: &str) {
    l.fixed(
        &format!("{field}.key"),
        s.key.as_bytes(),
        "Ed25519 public key of the signer",
    )
    .fixed(
        &format!("{field}.signature"),
        s.signature.as_bytes(),
        "Ed25519 signature (R || S) over the event bytes",
    )
    .byte_string(&format!("{field}.event"), &s.event, what);
}

fn entry_layout(e: &Entry, event_what: &str) -> Layout {
    let mut l = Layout::default();
    let prev_what = if e.index == 0 {
        "32 zero bytes: entry 0 has no predecessor"
    } else {
        "leaf hash of the previous entry"
    };
    l.prefix("oretrail.entry", 1)
        .u64("Entry.index", e.index)
        .fixed("Entry.prev", e.prev.as_bytes(), prev_what)
        .time("Entry.record_time", e.record_time);
    signed_event_fields(&mut l, "Entry.signed", &e.signed, event_what);
    l
}

fn checkpoint_record_layout(r: &CheckpointRecord) -> Layout {
    let mut l = Layout::default();
    l.prefix("oretrail.ckpt", 1)
        .u64("CheckpointRecord.size", r.size)
        .fixed(
            "CheckpointRecord.root",
            r.root.as_bytes(),
            "RFC 9162 root of the first `size` entries",
        )
        .fixed(
            "CheckpointRecord.signature",
            r.signature.as_bytes(),
            "Ed25519 signature of the log key over the note body",
        );
    l
}

const FRAME_MAGIC: &[u8; 4] = b"OTLF";
const LOG_HEADER: &[u8; 16] = b"ORETRAIL-LOG\0\0\0\x01";

/// A log frame: magic, kind, payload length, CRC-32 over kind, length and
/// payload, then the payload.
fn frame(l: &mut Layout, kind: u8, kind_name: &str, payload: &[u8], what: &str) {
    let len = u32::try_from(payload.len()).unwrap();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    l.raw(FRAME_MAGIC, "frame magic \"OTLF\"")
        .raw([kind], format!("frame kind (u8) = {kind}: {kind_name}"))
        .u32("payload length", len)
        .raw(
            crc.finalize().to_le_bytes(),
            "CRC-32 (u32) of kind || length || payload",
        )
        .raw(payload, format!("payload: {what}"));
}

// ---------------------------------------------------------------------------
// The example ledger: two entries, two checkpoints, from fixed keys.
// ---------------------------------------------------------------------------

struct World {
    log_key: SecretKey,
    genesis: Event,
    genesis_signed: SignedEvent,
    register: Event,
    register_signed: SignedEvent,
    entry0: Entry,
    entry0_bytes: Vec<u8>,
    leaf0: Hash,
    entry1: Entry,
    entry1_bytes: Vec<u8>,
    leaf1: Hash,
    root2: Hash,
    record1: CheckpointRecord,
    checkpoint2: Checkpoint,
    record2: CheckpointRecord,
    note2: String,
    verifier: NoteVerifier,
}

fn seed(byte: u8) -> SecretKey {
    SecretKey::from_seed(&[byte; 32])
}

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id).unwrap()
}

fn country(code: &str) -> CountryCode {
    CountryCode::new(code).unwrap()
}

fn record(cp: &Checkpoint, key: &SecretKey) -> CheckpointRecord {
    CheckpointRecord {
        size: cp.size(),
        root: Digest::from_bytes(*cp.root()),
        signature: key.sign(cp.body().as_bytes()),
    }
}

impl World {
    fn new() -> Self {
        let log_key = seed(0x01);
        let operator_key = seed(0x02);
        let mine_key = seed(0x03);
        let operator = pid("operator");

        let genesis = Event {
            ledger: ORIGIN.into(),
            signer: operator.clone(),
            time: Timestamp::from_millis(GENESIS_TIME_MS),
            nonce: 0,
            body: EventBody::Genesis(Genesis {
                origin: ORIGIN.into(),
                log_key: log_key.public(),
                operator: operator.clone(),
                operator_name: "Example Smelter Ltd".into(),
                operator_country: country("ZM"),
                operator_key: operator_key.public(),
            }),
        };
        let genesis_signed = sign_event(&genesis, &operator_key).unwrap();
        let entry0 = Entry {
            index: 0,
            prev: Digest::from_bytes([0; 32]),
            record_time: Timestamp::from_millis(GENESIS_TIME_MS + 250),
            signed: genesis_signed.clone(),
        };
        let entry0_bytes = codec::encode(&entry0).unwrap();
        let leaf0 = merkle::leaf_hash(&entry0_bytes);

        let register = Event {
            ledger: ORIGIN.into(),
            signer: operator,
            time: Timestamp::from_millis(GENESIS_TIME_MS + 60_000),
            nonce: 1,
            body: EventBody::RegisterParticipant(Registration {
                participant: pid("mine.kansanshi"),
                legal_name: "Kansanshi Mining PLC".into(),
                country: country("ZM"),
                kinds: vec![ParticipantKind::Mine],
                roles: vec![Role::Producer, Role::Custodian],
                keys: vec![mine_key.public()],
            }),
        };
        let register_signed = sign_event(&register, &operator_key).unwrap();
        let entry1 = Entry {
            index: 1,
            prev: Digest::from_bytes(leaf0),
            record_time: Timestamp::from_millis(GENESIS_TIME_MS + 60_500),
            signed: register_signed.clone(),
        };
        let entry1_bytes = codec::encode(&entry1).unwrap();
        let leaf1 = merkle::leaf_hash(&entry1_bytes);
        let root2 = merkle::node_hash(&leaf0, &leaf1);

        let checkpoint1 = Checkpoint::new(ORIGIN, 1, leaf0).unwrap();
        let record1 = record(&checkpoint1, &log_key);
        let checkpoint2 = Checkpoint::new(ORIGIN, 2, root2).unwrap();
        let record2 = record(&checkpoint2, &log_key);
        let note2 = checkpoint::sign(&checkpoint2, ORIGIN, log_key.signing_key()).unwrap();
        let vk = log_key.public().verifying_key().unwrap();
        let verifier = NoteVerifier::new(ORIGIN, vk).unwrap();
        Self {
            log_key,
            genesis,
            genesis_signed,
            register,
            register_signed,
            entry0,
            entry0_bytes,
            leaf0,
            entry1,
            entry1_bytes,
            leaf1,
            root2,
            record1,
            checkpoint2,
            record2,
            note2,
            verifier,
        }
    }

    fn key_id_layout(&self) -> Layout {
        let mut l = Layout::default();
        l.raw(ORIGIN, format!("key name = origin {ORIGIN:?}"))
            .raw([0x0a], "newline (0x0A)")
            .raw([0x01], "signature type 0x01: Ed25519")
            .fixed("log key", self.log_key.public().as_bytes(), KEY);
        l
    }

    fn node_layout(&self) -> Layout {
        let mut l = Layout::default();
        l.raw([0x01], "interior node prefix 0x01")
            .fixed("left", &self.leaf0, "leaf hash of entry 0")
            .fixed("right", &self.leaf1, "leaf hash of entry 1");
        l
    }

    fn note_body_layout(&self) -> Layout {
        let cp = &self.checkpoint2;
        let size = cp.size().to_string();
        let root = BASE64.encode(cp.root());
        let mut l = Layout::default();
        l.raw(cp.origin(), format!("origin line {:?}", cp.origin()))
            .raw("\n", "newline")
            .raw(&size, format!("tree size, ASCII decimal {size:?}"))
            .raw("\n", "newline")
            .raw(&root, format!("root hash, standard base64 {root:?}"))
            .raw("\n", "newline: the body ends here");
        l
    }

    fn note_signature_layout(&self) -> Layout {
        let body_len = self.checkpoint2.body().len();
        let mut l = Layout::default();
        l.fixed("key id", &self.verifier.key_id(), "see example key-id")
            .fixed(
                "signature",
                self.record2.signature.as_bytes(),
                &format!("Ed25519 over the {body_len} body bytes"),
            );
        l
    }

    fn log_file_layout(&self) -> Layout {
        let mut l = Layout::default();
        l.raw(
            LOG_HEADER,
            "log header \"ORETRAIL-LOG\", 3 NULs, version 0x01",
        );
        let records = [&self.record1, &self.record2].map(|r| codec::encode(r).unwrap());
        frame(
            &mut l,
            1,
            "entry",
            &self.entry0_bytes,
            "entry 0 (example genesis-entry)",
        );
        frame(
            &mut l,
            2,
            "checkpoint",
            &records[0],
            "checkpoint record, size 1",
        );
        frame(
            &mut l,
            1,
            "entry",
            &self.entry1_bytes,
            "entry 1 (example register-entry)",
        );
        frame(
            &mut l,
            2,
            "checkpoint",
            &records[1],
            "checkpoint record, size 2 (example checkpoint-record)",
        );
        l
    }

    fn key_file(&self) -> String {
        format!(
            "oretrail ed25519 secret key v1\npublic {}\nsecret {}\n",
            self.log_key.public(),
            hex::encode([0x01u8; 32])
        )
    }
}

// ---------------------------------------------------------------------------
// The custody story: entries 2 to 11 continue the example ledger and hold
// the custody examples; entries 12 onwards only feed the tests. Every entry
// goes through the library's rules, and every lot they derive is checked
// against the arithmetic of section 6.1, computed here independently.
// ---------------------------------------------------------------------------

/// The entries whose events section 10 shows.
const CREATE_LOT_ENTRY: u64 = 5;
const TRANSFORM_ENTRY: u64 = 11;

/// Seed of each signer's key in the story.
fn key_seed(signer: &str) -> u8 {
    match signer {
        "operator" => 0x02,
        "mine.kansanshi" => 0x03,
        "smelter.chambishi" => 0x04,
        "lab.alsa" => 0x05,
        "risk.example" => 0x06,
        "buyer.nacala" => 0x07,
        other => panic!("no key for {other}"),
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn lot_id(id: &str) -> LotId {
    LotId::new(id).unwrap()
}

fn site_id(id: &str) -> SiteId {
    SiteId::new(id).unwrap()
}

fn ppb(value: u64) -> Ppb {
    Ppb::new(value).unwrap()
}

fn assay(element: Element, grade: u64) -> Assay {
    Assay {
        element,
        grade: ppb(grade),
    }
}

/// A document reference: the SHA-256 of some stand-in bytes.
fn document(kind: DocumentKind, text: &str) -> DocumentRef {
    DocumentRef {
        kind,
        sha256: sha256(text.as_bytes()),
    }
}

/// The events of the story after entry 1, in order: signer, nonce, time
/// and body. Entry `2 + i` holds element `i`.
fn story_script() -> Vec<(&'static str, u64, Timestamp, EventBody)> {
    let smelter = pid("smelter.chambishi");
    let mine = pid("mine.kansanshi");
    let zm = || vec![country("ZM")];
    vec![
        // 2
        (
            "operator",
            2,
            at("2026-02-01T08:00:00Z"),
            EventBody::RegisterParticipant(Registration {
                participant: smelter.clone(),
                legal_name: "Chambishi Copper Smelter Ltd".into(),
                country: country("ZM"),
                kinds: vec![ParticipantKind::Smelter],
                roles: vec![Role::Custodian, Role::Processor],
                keys: vec![seed(0x04).public()],
            }),
        ),
        // 3
        (
            "operator",
            3,
            at("2026-02-01T08:01:00Z"),
            EventBody::RegisterSite(SiteRegistration {
                site: site_id("KAN-MAIN"),
                operator: mine.clone(),
                name: "Kansanshi Main Pit".into(),
                country: country("ZM"),
                latitude_micro: -12_094_000,
                longitude_micro: 26_427_000,
                scale: SiteScale::LargeScale,
                metal: Element::Cu,
                annual_capacity: Grams(250_000_000_000),
            }),
        ),
        // 4
        (
            "operator",
            4,
            at("2026-02-01T08:02:00Z"),
            EventBody::RegisterSite(SiteRegistration {
                site: site_id("KAN-NW"),
                operator: mine.clone(),
                name: "Kansanshi North-West Pit".into(),
                country: country("ZM"),
                latitude_micro: -12_081_500,
                longitude_micro: 26_409_800,
                scale: SiteScale::LargeScale,
                metal: Element::Cu,
                annual_capacity: Grams(60_000_000_000),
            }),
        ),
        // 5: the create-lot example
        (
            "mine.kansanshi",
            1,
            at("2026-02-02T06:00:00Z"),
            EventBody::CreateLot(LotCreation {
                lot: lot_id("KAN-2026-0001"),
                site: site_id("KAN-MAIN"),
                kind: LotKind::Concentrate,
                wet: Grams(32_500_000),
                moisture: ppb(80_000_000),
                assays: vec![
                    assay(Element::Cu, 255_000_000),
                    assay(Element::As, 1_200_000),
                ],
                produced_from: at("2026-02-01T06:00:00Z"),
                produced_until: at("2026-02-02T06:00:00Z"),
            }),
        ),
        // 6
        (
            "mine.kansanshi",
            2,
            at("2026-02-02T06:05:00Z"),
            EventBody::CreateLot(LotCreation {
                lot: lot_id("KAN-2026-0002"),
                site: site_id("KAN-NW"),
                kind: LotKind::Concentrate,
                wet: Grams(31_750_000),
                moisture: ppb(75_000_000),
                assays: vec![assay(Element::Cu, 281_000_000), assay(Element::As, 900_000)],
                produced_from: at("2026-02-01T06:00:00Z"),
                produced_until: at("2026-02-02T06:00:00Z"),
            }),
        ),
        // 7
        (
            "mine.kansanshi",
            3,
            at("2026-02-02T09:00:00Z"),
            EventBody::Dispatch(Dispatch {
                lot: lot_id("KAN-2026-0001"),
                to: smelter.clone(),
                route: zm(),
                documents: vec![document(
                    DocumentKind::WeightCertificate,
                    "Kansanshi weighbridge ticket KAN-2026-0001",
                )],
            }),
        ),
        // 8
        (
            "mine.kansanshi",
            4,
            at("2026-02-02T09:05:00Z"),
            EventBody::Dispatch(Dispatch {
                lot: lot_id("KAN-2026-0002"),
                to: smelter.clone(),
                route: zm(),
                documents: vec![document(
                    DocumentKind::WeightCertificate,
                    "Kansanshi weighbridge ticket KAN-2026-0002",
                )],
            }),
        ),
        // 9: weighed lighter on arrival
        (
            "smelter.chambishi",
            1,
            at("2026-02-03T14:00:00Z"),
            EventBody::Receive(LotReceipt {
                lot: lot_id("KAN-2026-0001"),
                measured_wet: Grams(32_461_000),
                accepted: true,
                note: String::new(),
                documents: vec![document(
                    DocumentKind::WeightCertificate,
                    "Chambishi weighbridge ticket 88231",
                )],
            }),
        ),
        // 10
        (
            "smelter.chambishi",
            2,
            at("2026-02-03T14:20:00Z"),
            EventBody::Receive(LotReceipt {
                lot: lot_id("KAN-2026-0002"),
                measured_wet: Grams(31_750_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        ),
        // 11: the transform example
        (
            "smelter.chambishi",
            3,
            at("2026-02-05T10:00:00Z"),
            EventBody::Transform(Transformation {
                process: "smelting and converting, campaign 2026-06".into(),
                inputs: vec![
                    TransformInput {
                        lot: lot_id("KAN-2026-0001"),
                        consumed_wet: Grams(32_461_000),
                    },
                    TransformInput {
                        lot: lot_id("KAN-2026-0002"),
                        consumed_wet: Grams(20_000_000),
                    },
                ],
                outputs: vec![
                    TransformOutput {
                        lot: lot_id("CHA-ANODE-0417"),
                        kind: LotKind::Anode,
                        metal: Element::Cu,
                        wet: Grams(11_000_000),
                        moisture: Ppb::ZERO,
                        assays: vec![assay(Element::Cu, 992_000_000)],
                    },
                    TransformOutput {
                        lot: lot_id("CHA-MATTE-0091"),
                        kind: LotKind::Matte,
                        metal: Element::Cu,
                        wet: Grams(3_000_000),
                        moisture: Ppb::ZERO,
                        assays: vec![
                            assay(Element::Cu, 620_000_000),
                            assay(Element::As, 2_500_000),
                        ],
                    },
                ],
            }),
        ),
        // 12: from here on, for the tests only
        (
            "operator",
            5,
            at("2026-02-05T11:00:00Z"),
            EventBody::RegisterParticipant(Registration {
                participant: pid("lab.alsa"),
                legal_name: "ALS Assay Laboratory Kitwe".into(),
                country: country("ZM"),
                kinds: vec![ParticipantKind::AssayLab],
                roles: vec![Role::Assayer],
                keys: vec![seed(0x05).public()],
            }),
        ),
        // 13
        (
            "operator",
            6,
            at("2026-02-05T11:01:00Z"),
            EventBody::RegisterParticipant(Registration {
                participant: pid("risk.example"),
                legal_name: "Example Supply Chain Risk Desk".into(),
                country: country("ZM"),
                kinds: vec![ParticipantKind::Auditor],
                roles: vec![Role::Compliance],
                keys: vec![seed(0x06).public()],
            }),
        ),
        // 14
        (
            "risk.example",
            1,
            at("2026-02-05T11:30:00Z"),
            EventBody::DetermineCahra(CahraFinding {
                site: site_id("KAN-NW"),
                cahra: false,
                effective: at("2026-01-01T00:00:00Z"),
                source: "annual red-flag review 2026".into(),
            }),
        ),
        // 15: three parts, so that one gram goes to the largest remainder
        (
            "smelter.chambishi",
            4,
            at("2026-02-06T08:00:00Z"),
            EventBody::Split(Split {
                lot: lot_id("CHA-ANODE-0417"),
                parts: vec![
                    SplitPart {
                        lot: lot_id("CHA-ANODE-0417/1"),
                        wet: Grams(3_666_667),
                    },
                    SplitPart {
                        lot: lot_id("CHA-ANODE-0417/2"),
                        wet: Grams(3_666_667),
                    },
                    SplitPart {
                        lot: lot_id("CHA-ANODE-0417/3"),
                        wet: Grams(3_666_666),
                    },
                ],
            }),
        ),
        // 16: what is left of KAN-2026-0002, blended with the matte
        (
            "smelter.chambishi",
            5,
            at("2026-02-06T09:00:00Z"),
            EventBody::Blend(Blend {
                inputs: vec![lot_id("KAN-2026-0002"), lot_id("CHA-MATTE-0091")],
                output: lot_id("CHA-BLEND-0001"),
            }),
        ),
        // 17
        (
            "lab.alsa",
            1,
            at("2026-02-07T12:00:00Z"),
            EventBody::RecordAssay(AssayReport {
                lot: lot_id("CHA-BLEND-0001"),
                stage: AssayStage::Final,
                assays: vec![assay(Element::Cu, 412_000_000), assay(Element::As, 600_000)],
                moisture: Some(ppb(52_000_000)),
                certificate: Some(document(DocumentKind::AssayCertificate, "ALS KIT26-0193")),
            }),
        ),
        // 18
        (
            "smelter.chambishi",
            6,
            at("2026-02-08T08:00:00Z"),
            EventBody::Dispatch(Dispatch {
                lot: lot_id("CHA-ANODE-0417/1"),
                to: mine.clone(),
                route: zm(),
                documents: vec![],
            }),
        ),
        // 19: a split part, whose dry mass was apportioned, received
        (
            "mine.kansanshi",
            5,
            at("2026-02-08T15:00:00Z"),
            EventBody::Receive(LotReceipt {
                lot: lot_id("CHA-ANODE-0417/1"),
                measured_wet: Grams(3_666_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        ),
        // 20
        (
            "lab.alsa",
            2,
            at("2026-02-09T12:00:00Z"),
            EventBody::RecordAssay(AssayReport {
                lot: lot_id("CHA-ANODE-0417/2"),
                stage: AssayStage::Umpire,
                assays: vec![assay(Element::Cu, 991_800_000)],
                moisture: None,
                certificate: None,
            }),
        ),
        // 21
        (
            "smelter.chambishi",
            7,
            at("2026-02-10T08:00:00Z"),
            EventBody::Dispatch(Dispatch {
                lot: lot_id("CHA-ANODE-0417/3"),
                to: mine.clone(),
                route: zm(),
                documents: vec![],
            }),
        ),
        // 22: refused: the lot stays with the smelter, masses unchanged
        (
            "mine.kansanshi",
            6,
            at("2026-02-10T15:00:00Z"),
            EventBody::Receive(LotReceipt {
                lot: lot_id("CHA-ANODE-0417/3"),
                measured_wet: Grams(3_666_666),
                accepted: false,
                note: "not ordered".into(),
                documents: vec![],
            }),
        ),
        // 23
        (
            "operator",
            7,
            at("2026-02-11T08:00:00Z"),
            EventBody::RegisterParticipant(Registration {
                participant: pid("buyer.nacala"),
                legal_name: "Nacala Metals Trading Lda".into(),
                country: country("MZ"),
                kinds: vec![ParticipantKind::Trader],
                roles: vec![Role::Custodian, Role::Purchaser],
                keys: vec![seed(0x07).public()],
            }),
        ),
        // 24: the risk desk becomes the smelter's compliance officer
        (
            "operator",
            8,
            at("2026-02-11T08:01:00Z"),
            EventBody::AppointOfficer(OfficerAppointment {
                officer: pid("risk.example"),
                organisation: smelter.clone(),
            }),
        ),
        // 25
        (
            "risk.example",
            2,
            at("2026-02-11T09:00:00Z"),
            EventBody::DetermineCountryCahra(CountryCahraFinding {
                country: country("MZ"),
                cahra: true,
                effective: at("2026-01-01T00:00:00Z"),
                source: "indicative CAHRA list, 2026 edition".into(),
            }),
        ),
        // 26: raises CahraTransit (0) and MissingExportDocument (1)
        (
            "smelter.chambishi",
            8,
            at("2026-02-12T08:00:00Z"),
            EventBody::Dispatch(Dispatch {
                lot: lot_id("CHA-ANODE-0417/3"),
                to: pid("buyer.nacala"),
                route: ["ZM", "MW", "MZ"].map(country).to_vec(),
                documents: vec![document(DocumentKind::BillOfLading, "B/L NAC-2026-0007")],
            }),
        ),
        // 27
        (
            "risk.example",
            3,
            at("2026-02-12T09:00:00Z"),
            EventBody::DecideFlag(FlagDecision {
                flag: FlagId { entry: 26, n: 1 },
                decision: FlagDecisionKind::Mitigate {
                    plan: "export permit to be presented at the Mwami border post".into(),
                },
                note: String::new(),
            }),
        ),
        // 28
        (
            "risk.example",
            4,
            at("2026-02-12T10:00:00Z"),
            EventBody::ReviewSupplier(SupplierReview {
                organisation: smelter.clone(),
                supplier: mine.clone(),
                passed: true,
                cadence: ReviewCadence::Quarterly,
                valid_until: at("2026-05-12T00:00:00Z"),
                report: Some(document(DocumentKind::Other, "Q1 2026 review")),
            }),
        ),
        // 29
        (
            "risk.example",
            5,
            at("2026-02-12T10:30:00Z"),
            EventBody::AssessOnboarding(OnboardingAssessment {
                organisation: smelter.clone(),
                supplier: mine.clone(),
                scores: EsgElement::ALL
                    .iter()
                    .zip([80, 65, 90, 70, 75, 60, 85, 95, 70, 88, 77, 91])
                    .map(|(e, score)| EsgScore { element: *e, score })
                    .collect(),
                passed: true,
                report: None,
            }),
        ),
        // 30
        (
            "mine.kansanshi",
            7,
            at("2026-02-12T11:00:00Z"),
            EventBody::AcknowledgeCode(CodeOfConductAcknowledgement {
                organisation: smelter.clone(),
                policy_sha256: sha256(b"Chambishi Supplier Code of Conduct 2026.1"),
                version: "2026.1".into(),
            }),
        ),
        // 31
        (
            "risk.example",
            6,
            at("2026-02-12T11:30:00Z"),
            EventBody::SetReceiptPolicy(ReceiptPolicy {
                organisation: smelter.clone(),
                unreviewed_supplier: UnreviewedSupplierPolicy::Flag,
            }),
        ),
        // 32
        (
            "risk.example",
            7,
            at("2026-02-13T08:00:00Z"),
            EventBody::ReportGrievance(GrievanceReport {
                organisation: smelter.clone(),
                subject: mine.clone(),
                report_sha256: sha256(b"grievance 2026-004"),
                outcome: GrievanceOutcome::UnderInvestigation,
            }),
        ),
        // 33
        (
            "risk.example",
            8,
            at("2026-02-13T09:00:00Z"),
            EventBody::SanctionSupplier(SupplierSanction {
                organisation: smelter.clone(),
                supplier: mine.clone(),
                kind: SanctionKind::Blacklisted {
                    until: at("2027-03-01T00:00:00Z"),
                },
                reason: SanctionReason::ContractViolation,
                note: "deliveries repeatedly short of contract weight".into(),
            }),
        ),
        // 34
        (
            "risk.example",
            9,
            at("2026-02-20T09:00:00Z"),
            EventBody::ReinstateSupplier(SupplierReinstatement {
                organisation: smelter.clone(),
                supplier: mine.clone(),
                note: "settled by arbitration".into(),
            }),
        ),
        // 35
        (
            "smelter.chambishi",
            9,
            at("2026-02-20T10:00:00Z"),
            EventBody::AttachDocument(DocumentAttachment {
                lot: lot_id("CHA-ANODE-0417/3"),
                document: document(DocumentKind::ExportPermit, "ZM export permit 2026/1182"),
            }),
        ),
        // 36
        (
            "mine.kansanshi",
            8,
            at("2026-02-20T11:00:00Z"),
            EventBody::Correct(Correction {
                entry: 19,
                lot: Some(lot_id("CHA-ANODE-0417/1")),
                reason: "weighbridge misread: 3,666,000 g, not 3,660,000 g as noted".into(),
            }),
        ),
        // 37: lighter by more than 0.5 %: raises WeightVariance
        (
            "buyer.nacala",
            1,
            at("2026-02-21T08:00:00Z"),
            EventBody::Receive(LotReceipt {
                lot: lot_id("CHA-ANODE-0417/3"),
                measured_wet: Grams(3_640_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        ),
    ]
}

/// One entry of the story.
struct Step {
    index: u64,
    event: Event,
    signed: SignedEvent,
    /// The values the library's rules derived from the entry.
    values: Vec<StateValue>,
}

struct Story {
    /// The values entries 0 and 1 derive.
    base: Vec<StateValue>,
    steps: Vec<Step>,
    /// The model's derivation of the quantities, line by line, by entry.
    arithmetic: Vec<(u64, Vec<String>)>,
}

impl Story {
    fn new(w: &World) -> Self {
        let mut state = MemoryState::new();
        let mut base = Vec::new();
        for entry in [&w.entry0, &w.entry1] {
            let event = codec::decode::<Event>(&entry.signed.event).unwrap();
            let ctx = Context {
                index: entry.index,
                record_time: entry.record_time,
            };
            for v in rules::apply(&state, ctx, &entry.signed.key, &event).unwrap() {
                state.put(v.clone());
                base.push(v);
            }
        }
        let mut model = Model::default();
        let mut steps = Vec::new();
        let mut arithmetic = Vec::new();
        for (i, (signer, nonce, time, body)) in story_script().into_iter().enumerate() {
            let index = 2 + i as u64;
            let event = Event {
                ledger: ORIGIN.into(),
                signer: pid(signer),
                time,
                nonce,
                body,
            };
            let signed = sign_event(&event, &seed(key_seed(signer))).unwrap();
            let ctx = Context {
                index,
                record_time: time.saturating_add_millis(400),
            };
            let values = rules::apply(&state, ctx, &signed.key, &event)
                .unwrap_or_else(|e| panic!("entry {index} is refused: {e}"));
            let (touched, lines) = model.apply(index, &event);
            let derived: BTreeMap<String, Quantities> = values
                .iter()
                .filter_map(|v| match v {
                    StateValue::Lot(l) => Some((l.id.to_string(), Quantities::of(l))),
                    _ => None,
                })
                .collect();
            let predicted: BTreeMap<String, Quantities> = touched
                .iter()
                .map(|id| (id.clone(), model.lots[id].clone()))
                .collect();
            assert_eq!(
                derived, predicted,
                "entry {index}: the library's lots differ from section 6.1's arithmetic"
            );
            if !lines.is_empty() {
                arithmetic.push((index, lines));
            }
            for v in &values {
                state.put(v.clone());
            }
            steps.push(Step {
                index,
                event,
                signed,
                values,
            });
        }
        Self {
            base,
            steps,
            arithmetic,
        }
    }

    fn step(&self, index: u64) -> &Step {
        &self.steps[usize::try_from(index - 2).unwrap()]
    }

    /// The derivation for entries `from..=to`, as the example shows it.
    fn arithmetic_text(&self, from: u64, to: u64) -> String {
        let mut out = String::new();
        for (index, lines) in &self.arithmetic {
            if (from..=to).contains(index) {
                if !out.is_empty() {
                    out.push('\n');
                }
                for line in lines {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Section 6.1's arithmetic, written from the document alone: plain
// integers, no library quantity functions.
// ---------------------------------------------------------------------------

const BILLION: u64 = 1_000_000_000;

/// `floor(a × b / c)` in 128 bits; `c` is not zero.
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    u64::try_from(u128::from(a) * u128::from(b) / u128::from(c)).unwrap()
}

fn dry_of(wet: u64, moisture: u32) -> u64 {
    wet - mul_div(wet, u64::from(moisture), BILLION)
}

/// Largest-remainder apportionment, with the working shown: the parts,
/// and a sentence on how the leftover units were handed out.
fn apportion(total: u64, weights: &[u128], names: &[String]) -> (Vec<u64>, String) {
    let sum: u128 = weights.iter().sum();
    if sum == 0 {
        return (
            vec![0; weights.len()],
            "all weights are 0: all parts 0".into(),
        );
    }
    let t = u128::from(total);
    let mut parts: Vec<u64> = weights
        .iter()
        .map(|w| u64::try_from(t * w / sum).unwrap())
        .collect();
    let floors = parts.clone();
    let left = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(t * weights[i] % sum), i));
    let mut to = Vec::new();
    for &i in order.iter().take(usize::try_from(left).unwrap()) {
        parts[i] += 1;
        to.push(names[i].as_str());
    }
    let floors: Vec<String> = floors.iter().map(u64::to_string).collect();
    let how = if left == 0 {
        format!("floors {}, nothing left over", floors.join(", "))
    } else {
        format!(
            "floors {}, {left} left over, 1 each to the largest remainders: {}",
            floors.join(", "),
            to.join(", ")
        )
    };
    (parts, how)
}

type Shares = Vec<(String, u32)>;

/// Mixes origins weighted by grams of metal; `None` when all weights are 0.
fn mix(parts: &[(&Shares, u64)], lines: &mut Vec<String>, indent: &str) -> Option<Shares> {
    let mut by_site: BTreeMap<String, u128> = BTreeMap::new();
    for (origin, grams) in parts {
        for (site, share) in *origin {
            *by_site.entry(site.clone()).or_default() += u128::from(*share) * u128::from(*grams);
        }
    }
    if by_site.values().all(|w| *w == 0) {
        return None;
    }
    let names: Vec<String> = by_site.keys().cloned().collect();
    let weights: Vec<u128> = by_site.values().copied().collect();
    let listed: Vec<String> = names
        .iter()
        .zip(&weights)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    lines.push(format!(
        "{indent}site weights (share x metal grams, summed by site): {}",
        listed.join(", ")
    ));
    let (shares, how) = apportion(BILLION, &weights, &names);
    lines.push(format!("{indent}apportion 10^9 ppb: {how}"));
    let origin: Shares = names
        .into_iter()
        .zip(shares)
        .filter(|(_, s)| *s > 0)
        .map(|(n, s)| (n, u32::try_from(s).unwrap()))
        .collect();
    lines.push(format!("{indent}origin = {}", show_origin(&origin)));
    Some(origin)
}

fn show_origin(origin: &Shares) -> String {
    let shares: Vec<String> = origin
        .iter()
        .map(|(site, share)| format!("{site} {share} ppb"))
        .collect();
    shares.join(", ")
}

/// What a verifier tracks of a lot's quantities.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Quantities {
    metal: Element,
    wet: u64,
    moisture: u32,
    dry: u64,
    assays: Vec<(Element, u32)>,
    contained: Vec<(Element, u64)>,
    origin: Shares,
    consumed: bool,
}

impl Quantities {
    fn of(lot: &Lot) -> Self {
        Self {
            metal: lot.metal,
            wet: lot.wet.0,
            moisture: lot.moisture.get(),
            dry: lot.dry.0,
            assays: lot
                .assays
                .iter()
                .map(|a| (a.element, a.grade.get()))
                .collect(),
            contained: lot.contained.iter().map(|(e, g)| (*e, g.0)).collect(),
            origin: lot
                .origin
                .shares()
                .iter()
                .map(|s| (s.site.to_string(), s.share.get()))
                .collect(),
            consumed: matches!(lot.status, LotStatus::Consumed { .. }),
        }
    }

    fn metal_of(&self, e: Element) -> u64 {
        self.contained
            .iter()
            .find(|(x, _)| *x == e)
            .map_or(0, |(_, g)| *g)
    }
}

/// Contained metal from dry mass and grades, with the working shown.
fn contained_of(
    dry: u64,
    assays: &[(Element, u32)],
    lines: &mut Vec<String>,
) -> Vec<(Element, u64)> {
    assays
        .iter()
        .map(|(e, grade)| {
            let g = mul_div(dry, u64::from(*grade), BILLION);
            lines.push(format!(
                "  {e:?} contained = floor({dry} x {grade} / 10^9) = {g} g"
            ));
            (*e, g)
        })
        .collect()
}

fn add_to(totals: &mut Vec<(Element, u64)>, e: Element, g: u64) {
    match totals.iter_mut().find(|(x, _)| *x == e) {
        Some((_, t)) => *t += g,
        None => totals.push((e, g)),
    }
}

/// The lots' quantities, kept by a verifier from the events alone.
#[derive(Default)]
struct Model {
    site_metal: BTreeMap<String, Element>,
    lots: BTreeMap<String, Quantities>,
}

impl Model {
    /// Applies an (accepted) event: the ids of the lots it changes, and
    /// the working.
    fn apply(&mut self, index: u64, event: &Event) -> (Vec<String>, Vec<String>) {
        let mut lines = Vec::new();
        let touched = match &event.body {
            EventBody::RegisterSite(r) => {
                self.site_metal.insert(r.site.to_string(), r.metal);
                vec![]
            }
            EventBody::CreateLot(c) => {
                let (wet, m) = (c.wet.0, c.moisture.get());
                let metal = self.site_metal[c.site.as_str()];
                lines.push(format!(
                    "entry {index}, CreateLot {}: site {} ({metal:?}), wet {wet} g, moisture {m} ppb",
                    c.lot, c.site
                ));
                let dry = dry_of(wet, m);
                lines.push(format!(
                    "  dry = {wet} - floor({wet} x {m} / 10^9) = {wet} - {} = {dry} g",
                    wet - dry
                ));
                let assays: Vec<(Element, u32)> = c
                    .assays
                    .iter()
                    .map(|a| (a.element, a.grade.get()))
                    .collect();
                let contained = contained_of(dry, &assays, &mut lines);
                let origin = vec![(c.site.to_string(), 1_000_000_000)];
                lines.push(format!("  origin = {}", show_origin(&origin)));
                self.lots.insert(
                    c.lot.to_string(),
                    Quantities {
                        metal,
                        wet,
                        moisture: m,
                        dry,
                        assays,
                        contained,
                        origin,
                        consumed: false,
                    },
                );
                vec![c.lot.to_string()]
            }
            EventBody::RecordAssay(a) => {
                let lot = self.lots.get_mut(a.lot.as_str()).unwrap();
                lines.push(format!("entry {index}, RecordAssay {}", a.lot));
                if let Some(m) = a.moisture {
                    lot.moisture = m.get();
                    lot.dry = dry_of(lot.wet, lot.moisture);
                    lines.push(format!(
                        "  dry = {} - floor({} x {} / 10^9) = {} g",
                        lot.wet, lot.wet, lot.moisture, lot.dry
                    ));
                }
                lot.assays = a
                    .assays
                    .iter()
                    .map(|a| (a.element, a.grade.get()))
                    .collect();
                lot.contained = contained_of(lot.dry, &lot.assays, &mut lines);
                vec![a.lot.to_string()]
            }
            EventBody::Dispatch(d) => vec![d.lot.to_string()],
            EventBody::Receive(r) => {
                let lot = self.lots.get_mut(r.lot.as_str()).unwrap();
                if r.accepted {
                    let wet = r.measured_wet.0;
                    lines.push(format!(
                        "entry {index}, Receive {}: accepted at {wet} g wet (was {} g)",
                        r.lot, lot.wet
                    ));
                    let dry = dry_of(wet, lot.moisture);
                    lines.push(format!(
                        "  dry = {wet} - floor({wet} x {} / 10^9) = {dry} g (was {} g)",
                        lot.moisture, lot.dry
                    ));
                    for (e, g) in lot.contained.iter_mut() {
                        let was = *g;
                        *g = if lot.dry == 0 {
                            0
                        } else {
                            mul_div(was, dry, lot.dry)
                        };
                        lines.push(format!(
                            "  {e:?} contained = floor({was} x {dry} / {}) = {g} g",
                            lot.dry
                        ));
                    }
                    lot.wet = wet;
                    lot.dry = dry;
                }
                vec![r.lot.to_string()]
            }
            EventBody::Split(s) => {
                let parent = self.lots.get_mut(s.lot.as_str()).unwrap();
                parent.consumed = true;
                let parent = parent.clone();
                lines.push(format!("entry {index}, Split {}", s.lot));
                let weights: Vec<u128> = s.parts.iter().map(|p| u128::from(p.wet.0)).collect();
                let names: Vec<String> = s.parts.iter().map(|p| p.lot.to_string()).collect();
                let (drys, how) = apportion(parent.dry, &weights, &names);
                lines.push(format!("  dry {} g by wet: {how}", parent.dry));
                let mut contained: Vec<Vec<u64>> = vec![Vec::new(); s.parts.len()];
                for (e, g) in &parent.contained {
                    let (split, how) = apportion(*g, &weights, &names);
                    lines.push(format!("  {e:?} {g} g by wet: {how}"));
                    for (i, part) in split.into_iter().enumerate() {
                        contained[i].push(part);
                    }
                }
                let mut ids = vec![s.lot.to_string()];
                for (i, p) in s.parts.iter().enumerate() {
                    let q = Quantities {
                        wet: p.wet.0,
                        dry: drys[i],
                        contained: parent
                            .contained
                            .iter()
                            .zip(&contained[i])
                            .map(|((e, _), g)| (*e, *g))
                            .collect(),
                        consumed: false,
                        ..parent.clone()
                    };
                    self.lots.insert(p.lot.to_string(), q);
                    ids.push(p.lot.to_string());
                }
                ids
            }
            EventBody::Blend(b) => {
                lines.push(format!("entry {index}, Blend into {}", b.output));
                let inputs: Vec<Quantities> = b
                    .inputs
                    .iter()
                    .map(|id| {
                        let lot = self.lots.get_mut(id.as_str()).unwrap();
                        lot.consumed = true;
                        lot.clone()
                    })
                    .collect();
                let metal = inputs[0].metal;
                let wet: u64 = inputs.iter().map(|q| q.wet).sum();
                let dry: u64 = inputs.iter().map(|q| q.dry).sum();
                let mut contained = Vec::new();
                for q in &inputs {
                    for (e, g) in &q.contained {
                        add_to(&mut contained, *e, *g);
                    }
                }
                let parts: Vec<(&Shares, u64)> = inputs
                    .iter()
                    .map(|q| (&q.origin, q.metal_of(metal)))
                    .collect();
                let origin = mix(&parts, &mut lines, "  ").unwrap();
                let assays = contained
                    .iter()
                    .map(|(e, g)| {
                        let grade = if dry == 0 {
                            0
                        } else {
                            mul_div((*g).min(dry), BILLION, dry)
                        };
                        (*e, u32::try_from(grade).unwrap())
                    })
                    .collect();
                let moisture = u32::try_from(mul_div(wet - dry, BILLION, wet)).unwrap();
                self.lots.insert(
                    b.output.to_string(),
                    Quantities {
                        metal,
                        wet,
                        moisture,
                        dry,
                        assays,
                        contained,
                        origin,
                        consumed: false,
                    },
                );
                let mut ids: Vec<String> = b.inputs.iter().map(LotId::to_string).collect();
                ids.push(b.output.to_string());
                ids
            }
            EventBody::Transform(t) => {
                lines.push(format!("entry {index}, Transform {:?}", t.process));
                let mut taken: Vec<Vec<(Element, u64)>> = Vec::new();
                let mut consumed_metal: Vec<(Element, u64)> = Vec::new();
                let mut origins: Vec<Shares> = Vec::new();
                for input in &t.inputs {
                    let lot = self.lots.get_mut(input.lot.as_str()).unwrap();
                    let cw = input.consumed_wet.0;
                    lines.push(format!(
                        "  input {}: {cw} of its {} g wet taken",
                        input.lot, lot.wet
                    ));
                    let dry_taken = mul_div(lot.dry, cw, lot.wet);
                    lines.push(format!(
                        "    dry taken = floor({} x {cw} / {}) = {dry_taken} g",
                        lot.dry, lot.wet
                    ));
                    let mut from_this = Vec::new();
                    for (e, g) in lot.contained.iter_mut() {
                        let part = mul_div(*g, cw, lot.wet);
                        lines.push(format!(
                            "    {e:?} taken = floor({g} x {cw} / {}) = {part} g, {} g left",
                            lot.wet,
                            *g - part
                        ));
                        *g -= part;
                        add_to(&mut consumed_metal, *e, part);
                        from_this.push((*e, part));
                    }
                    lot.wet -= cw;
                    lot.dry -= dry_taken;
                    lot.consumed = lot.wet == 0;
                    lines.push(format!(
                        "    left: {} g wet, {} g dry{}",
                        lot.wet,
                        lot.dry,
                        if lot.consumed { ": consumed" } else { "" }
                    ));
                    taken.push(from_this);
                    origins.push(lot.origin.clone());
                }
                let mut produced: Vec<(Element, u64)> = Vec::new();
                let mut ids: Vec<String> = t.inputs.iter().map(|i| i.lot.to_string()).collect();
                for o in &t.outputs {
                    let (wet, m) = (o.wet.0, o.moisture.get());
                    lines.push(format!(
                        "  output {} ({:?}, {:?}): wet {wet} g, moisture {m} ppb",
                        o.lot, o.kind, o.metal
                    ));
                    let dry = dry_of(wet, m);
                    lines.push(format!(
                        "    dry = {wet} - floor({wet} x {m} / 10^9) = {dry} g"
                    ));
                    let assays: Vec<(Element, u32)> = o
                        .assays
                        .iter()
                        .map(|a| (a.element, a.grade.get()))
                        .collect();
                    let mut working = Vec::new();
                    let contained = contained_of(dry, &assays, &mut working);
                    lines.extend(working.into_iter().map(|l| format!("  {l}")));
                    for (e, g) in &contained {
                        add_to(&mut produced, *e, *g);
                    }
                    let weighted: Vec<u64> = taken
                        .iter()
                        .map(|from| {
                            from.iter()
                                .find(|(e, _)| *e == o.metal)
                                .map_or(0, |(_, g)| *g)
                        })
                        .collect();
                    let parts: Vec<(&Shares, u64)> = origins.iter().zip(weighted).collect();
                    let origin = mix(&parts, &mut lines, "    ").unwrap();
                    self.lots.insert(
                        o.lot.to_string(),
                        Quantities {
                            metal: o.metal,
                            wet,
                            moisture: m,
                            dry,
                            assays,
                            contained,
                            origin,
                            consumed: false,
                        },
                    );
                    ids.push(o.lot.to_string());
                }
                for (e, out) in &produced {
                    let input = consumed_metal
                        .iter()
                        .find(|(x, _)| x == e)
                        .map_or(0, |(_, g)| *g);
                    let limit = input + mul_div(input, 5_000_000, BILLION);
                    assert!(
                        *out <= limit,
                        "the library accepted more {e:?} than allowed"
                    );
                    lines.push(format!(
                        "  {e:?} balance: the inputs gave up {input} g; outputs {out} g <= limit = \
                         {input} + floor({input} x 5000000 / 10^9) = {limit} g: allowed"
                    ));
                }
                ids
            }
            EventBody::Sell(s) => vec![s.lot.to_string()],
            EventBody::AttachDocument(a) => vec![a.lot.to_string()],
            EventBody::Correct(c) => c.lot.iter().map(LotId::to_string).collect(),
            EventBody::Genesis(_)
            | EventBody::RegisterParticipant(_)
            | EventBody::AddKey(_)
            | EventBody::RotateKey(_)
            | EventBody::RevokeKey(_)
            | EventBody::DetermineCahra(_)
            | EventBody::AppointOfficer(_)
            | EventBody::AssessOnboarding(_)
            | EventBody::ReviewSupplier(_)
            | EventBody::SanctionSupplier(_)
            | EventBody::ReinstateSupplier(_)
            | EventBody::AcknowledgeCode(_)
            | EventBody::ReportGrievance(_)
            | EventBody::SetReceiptPolicy(_)
            | EventBody::DecideFlag(_)
            | EventBody::DetermineCountryCahra(_) => vec![],
        };
        (touched, lines)
    }
}

// ---------------------------------------------------------------------------
// Rendering the example blocks.
// ---------------------------------------------------------------------------

struct Example {
    name: &'static str,
    text: String,
}

fn fenced(info: &str, body: &str) -> String {
    format!("```{info}\n{body}```\n")
}

fn full_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(HEX_WIDTH) {
        out.push_str(&hex::encode(chunk));
        out.push('\n');
    }
    out
}

/// A structure as the document shows it: the annotated table, built by the
/// encoder above from this document's rules, then the full hex of `bytes`,
/// which come from the library wherever it produces them. Whether the two
/// agree is checked on the rendered text by [`block_bytes`].
fn layout_block(title: &str, layout: &Layout, bytes: &[u8]) -> String {
    format!(
        "{title} ({} bytes), field by field:\n\n{}\nFull hex:\n\n{}",
        bytes.len(),
        fenced("text", &layout.render()),
        fenced("hex", &full_hex(bytes))
    )
}

/// A layout with no library function that produces the same bytes (hash
/// inputs, the log file): its checks verify the result instead.
fn own_block(title: &str, layout: &Layout) -> String {
    layout_block(title, layout, &layout.bytes())
}

fn json_block<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string_pretty(value).unwrap();
    format!(
        "The value, shown as JSON for reading only (JSON is never signed or hashed):\n\n{}\n",
        fenced("json", &format!("{json}\n"))
    )
}

fn proof_list(proof: Vec<Hash>) -> String {
    let hashes: Vec<String> = proof
        .iter()
        .map(|h| format!("`{}`", hex::encode(h)))
        .collect();
    format!("[{}]", hashes.join(", "))
}

fn enum_tables() -> String {
    let mut tables = String::from("| `ParticipantKind` | index |\n|---|---|\n");
    for kind in ALL_KINDS {
        let (index, name) = kind_number(kind);
        writeln!(tables, "| {name} | {index} |").unwrap();
    }
    tables.push_str("\n| `Role` | index |\n|---|---|\n");
    for role in ALL_ROLES {
        let (index, name) = role_number(role);
        writeln!(tables, "| {name} | {index} |").unwrap();
    }
    tables
}

fn enum_table(out: &mut String, name: &str, rows: impl IntoIterator<Item = (u32, &'static str)>) {
    if !out.is_empty() {
        out.push('\n');
    }
    writeln!(out, "| `{name}` | index |\n|---|---|").unwrap();
    for (index, variant) in rows {
        writeln!(out, "| {variant} | {index} |").unwrap();
    }
}

fn custody_enum_tables() -> String {
    let mut out = String::new();
    enum_table(&mut out, "Element", ALL_ELEMENTS.map(element_number));
    enum_table(&mut out, "AssayStage", ALL_STAGES.map(stage_number));
    enum_table(&mut out, "LotKind", ALL_LOT_KINDS.map(lot_kind_number));
    enum_table(&mut out, "SiteScale", ALL_SCALES.map(scale_number));
    enum_table(
        &mut out,
        "DocumentKind",
        ALL_DOCUMENT_KINDS.map(document_number),
    );
    let to = pid("smelter.chambishi");
    let statuses = [
        LotStatus::Held,
        LotStatus::InTransit {
            to,
            dispatched_in: 0,
        },
        LotStatus::Consumed { in_entry: 0 },
    ];
    out.push_str("\n| `LotStatus` (state only) | index | fields, in order |\n|---|---|---|\n");
    for status in &statuses {
        let (index, name) = status_number(status);
        let fields = match status {
            LotStatus::Held => "none",
            LotStatus::InTransit { .. } => {
                "`to`: `ParticipantId`; `dispatched_in`: `u64` (entry index)"
            }
            LotStatus::Consumed { .. } => "`in_entry`: `u64` (entry index)",
        };
        writeln!(out, "| {name} | {index} | {fields} |").unwrap();
    }
    out
}

fn compliance_enum_tables() -> String {
    let mut out = String::new();
    enum_table(&mut out, "EsgElement", EsgElement::ALL.map(esg_number));
    enum_table(&mut out, "ReviewCadence", ALL_CADENCES.map(cadence_number));
    enum_table(&mut out, "SanctionReason", ALL_REASONS.map(reason_number));
    enum_table(
        &mut out,
        "GrievanceOutcome",
        ALL_OUTCOMES.map(outcome_number),
    );
    enum_table(
        &mut out,
        "UnreviewedSupplierPolicy",
        ALL_POLICIES.map(policy_number),
    );
    enum_table(&mut out, "FlagKind", ALL_FLAG_KINDS.map(flag_kind_number));
    let kinds = [
        SanctionKind::Blacklisted {
            until: Timestamp::from_millis(0),
        },
        SanctionKind::PermanentBan,
    ];
    out.push_str("\n| `SanctionKind` | index | fields, in order |\n|---|---|---|\n");
    for kind in &kinds {
        let (index, name) = sanction_number(kind);
        let fields = match kind {
            SanctionKind::Blacklisted { .. } => "`until`: `Timestamp`",
            SanctionKind::PermanentBan => "none",
        };
        writeln!(out, "| {name} | {index} | {fields} |").unwrap();
    }
    let decisions = [
        FlagDecisionKind::Continue,
        FlagDecisionKind::Mitigate {
            plan: String::new(),
        },
        FlagDecisionKind::Suspend,
        FlagDecisionKind::Disengage,
    ];
    out.push_str("\n| `FlagDecisionKind` | index | fields, in order |\n|---|---|---|\n");
    for decision in &decisions {
        let (index, name) = decision_number(decision);
        let fields = match decision {
            FlagDecisionKind::Mitigate { .. } => "`plan`: string",
            _ => "none",
        };
        writeln!(out, "| {name} | {index} | {fields} |").unwrap();
    }
    out
}

fn event_block(event: &Event, signed: &SignedEvent) -> String {
    format!(
        "{}{}\n- event id = SHA-256(all bytes above): `{}`\n",
        json_block(event),
        layout_block("Canonical encoding", &event_layout(event), &signed.event),
        signed.event_id()
    )
}

/// A custody example: the event, its id, and its signature by a story key.
fn signed_event_block(step: &Step) -> String {
    format!(
        "{}- signed by `{}` with the key of seed 0x{:02x}, public key `{}`\n\
         - Ed25519 signature over all bytes above (entry {}'s `signed.signature`): `{}`\n",
        event_block(&step.event, &step.signed),
        step.event.signer,
        key_seed(step.event.signer.as_str()),
        step.signed.key,
        step.index,
        step.signed.signature,
    )
}

fn entry_block(title: &str, entry: &Entry, bytes: &[u8], leaf: &Hash, event: &str) -> String {
    format!(
        "{}\n- leaf hash = entry hash = SHA-256(0x00 || all bytes above): `{}`\n",
        layout_block(title, &entry_layout(entry, event), bytes),
        hex::encode(leaf)
    )
}

fn examples(w: &World, story: &Story) -> Vec<Example> {
    let key_id = w.verifier.key_id();
    let key_id_input = w.key_id_layout();
    let key_id_block = format!(
        "{}\n- SHA-256 of those bytes: `{}`\n- key id (its first 4 bytes): `{}`\n\
         - verifier key line: `{}`\n",
        own_block("Key id input for the log key of seed 0x01", &key_id_input),
        sha256(&key_id_input.bytes()),
        hex::encode(key_id),
        w.verifier.verifier_key(),
    );

    let mut envelope = Layout::default();
    signed_event_fields(
        &mut envelope,
        "SignedEvent",
        &w.register_signed,
        "the canonical Event (example register-participant-event)",
    );
    let envelope_block = layout_block(
        "The envelope of the register-participant event, signed by the operator key \
         (seed 0x02), as it appears from offset 66 of entry 1",
        &envelope,
        &w.entry1_bytes[66..],
    );

    let nodes = MemoryNodes::from_leaves([w.leaf0, w.leaf1]);
    let tree_block = format!(
        "{}\n- root of the tree of size 1 = leaf hash of entry 0: `{}`\n\
         - root of the tree of size 2 = SHA-256(all bytes above): `{}`\n\
         - inclusion proof of entry 0 in the tree of size 2 (RFC 9162 section 2.1.3): {}\n\
         - inclusion proof of entry 1 in the tree of size 2: {}\n\
         - consistency proof from size 1 to size 2 (RFC 9162 section 2.1.4): {}\n",
        own_block("Interior node over entries 0 and 1", &w.node_layout()),
        hex::encode(w.leaf0),
        hex::encode(w.root2),
        proof_list(merkle::inclusion_proof(&nodes, 0, 2).unwrap()),
        proof_list(merkle::inclusion_proof(&nodes, 1, 2).unwrap()),
        proof_list(merkle::consistency_proof(&nodes, 1, 2).unwrap()),
    );

    // The signature line as the library wrote it: its last word, decoded.
    let line = w.note2.lines().last().unwrap();
    let blob = BASE64.decode(line.rsplit(' ').next().unwrap()).unwrap();
    let note_block = format!(
        "{}\n{}\nThe signed note (body, blank line, signature line):\n\n{}",
        layout_block(
            "Note body of the checkpoint at size 2",
            &w.note_body_layout(),
            w.checkpoint2.body().as_bytes()
        ),
        layout_block(
            "Decoded base64 of the signature line",
            &w.note_signature_layout(),
            &blob
        ),
        fenced("text", &w.note2)
    );

    let key_file_block = format!(
        "The log key of seed 0x01 as a key file (a published secret: for examples only):\n\n{}",
        fenced("text", &w.key_file())
    );

    vec![
        Example {
            name: "enum-numbers",
            text: enum_tables(),
        },
        Example {
            name: "key-id",
            text: key_id_block,
        },
        Example {
            name: "genesis-event",
            text: event_block(&w.genesis, &w.genesis_signed),
        },
        Example {
            name: "register-participant-event",
            text: event_block(&w.register, &w.register_signed),
        },
        Example {
            name: "signed-event",
            text: envelope_block,
        },
        Example {
            name: "genesis-entry",
            text: entry_block(
                "Entry 0",
                &w.entry0,
                &w.entry0_bytes,
                &w.leaf0,
                "the canonical Event (example genesis-event)",
            ),
        },
        Example {
            name: "register-entry",
            text: entry_block(
                "Entry 1",
                &w.entry1,
                &w.entry1_bytes,
                &w.leaf1,
                "the canonical Event (example register-participant-event)",
            ),
        },
        Example {
            name: "tree-root",
            text: tree_block,
        },
        Example {
            name: "checkpoint-note",
            text: note_block,
        },
        Example {
            name: "checkpoint-record",
            text: layout_block(
                "The checkpoint at size 2 as the log file stores it",
                &checkpoint_record_layout(&w.record2),
                &codec::encode(&w.record2).unwrap(),
            ),
        },
        Example {
            name: "log-file",
            text: own_block(
                "The whole log file of the example ledger",
                &w.log_file_layout(),
            ),
        },
        Example {
            name: "key-file",
            text: key_file_block,
        },
        Example {
            name: "custody-enum-numbers",
            text: custody_enum_tables(),
        },
        Example {
            name: "compliance-enum-numbers",
            text: compliance_enum_tables(),
        },
        Example {
            name: "create-lot-event",
            text: signed_event_block(story.step(CREATE_LOT_ENTRY)),
        },
        Example {
            name: "transform-event",
            text: signed_event_block(story.step(TRANSFORM_ENTRY)),
        },
        Example {
            name: "custody-arithmetic",
            text: format!(
                "The quantities the rules derive in entries {CREATE_LOT_ENTRY} to \
                 {TRANSFORM_ENTRY}, with the working of section 6.1 (grams, parts per \
                 billion, `x` is multiplication):\n\n{}",
                fenced(
                    "text",
                    &story.arithmetic_text(CREATE_LOT_ENTRY, TRANSFORM_ENTRY)
                )
            ),
        },
    ]
}

// ---------------------------------------------------------------------------
// Reading the document back.
// ---------------------------------------------------------------------------

const OPEN: &str = "<!-- example:";
const CLOSE: &str = "<!-- /example -->";

/// Byte range of the content between `<!-- example:NAME -->` and the next
/// `<!-- /example -->`, each on its own line.
fn block_range(doc: &str, name: &str) -> std::ops::Range<usize> {
    let open = format!("{OPEN}{name} -->\n");
    let starts: Vec<usize> = doc.match_indices(&open).map(|(i, _)| i).collect();
    assert_eq!(
        starts.len(),
        1,
        "ENCODING.md must contain the marker {open:?} exactly once"
    );
    let start = starts[0] + open.len();
    let end = doc[start..]
        .find(CLOSE)
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("example {name} has no closing {CLOSE:?}"));
    assert!(
        end == start || doc[..end].ends_with('\n'),
        "the closing marker of example {name} must start a line"
    );
    start..end
}

fn marker_names(doc: &str) -> BTreeSet<String> {
    doc.match_indices(OPEN)
        .map(|(i, _)| {
            let rest = &doc[i + OPEN.len()..];
            rest[..rest.find(" -->").expect("unterminated marker")].to_string()
        })
        .collect()
}

/// Fenced code blocks of a text: (info string, content).
fn fences(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.to_string(), String::new())),
            (Some(_), Some("")) => out.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "unterminated code fence");
    out
}

/// Parses an annotated table back into bytes, checking that every offset
/// equals the number of bytes before it.
fn parse_layout(table: &str) -> Vec<u8> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.trim_start().starts_with("offset"), "{header:?}");
    let mut bytes = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let offset: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(offset, bytes.len(), "wrong offset on line {line:?}");
        let hex_column = words.next().unwrap_or_else(|| panic!("no bytes: {line:?}"));
        bytes.extend(hex::decode(hex_column).unwrap());
    }
    bytes
}

fn parse_hex(dump: &str) -> Vec<u8> {
    hex::decode(dump.lines().collect::<String>()).unwrap()
}

/// The byte strings an example block shows, checking on the way that each
/// annotated table concatenates to the full hex that follows it.
fn block_bytes(name: &str, block: &str) -> Vec<Vec<u8>> {
    let fences = fences(block);
    let tables: Vec<&String> = fences
        .iter()
        .filter(|(info, body)| info == "text" && body.trim_start().starts_with("offset"))
        .map(|(_, body)| body)
        .collect();
    let dumps: Vec<&String> = fences
        .iter()
        .filter(|(info, _)| info == "hex")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        tables.len(),
        dumps.len(),
        "example {name}: tables and dumps"
    );
    tables
        .iter()
        .zip(&dumps)
        .map(|(table, dump)| {
            let annotated = parse_layout(table);
            let full = parse_hex(dump);
            assert_eq!(
                hex::encode(&annotated),
                hex::encode(&full),
                "example {name}: the annotated fields do not concatenate to the full hex"
            );
            full
        })
        .collect()
}

fn text_fences(block: &str) -> Vec<String> {
    fences(block)
        .into_iter()
        .filter(|(info, body)| info == "text" && !body.trim_start().starts_with("offset"))
        .map(|(_, body)| body)
        .collect()
}

// ---------------------------------------------------------------------------
// What each example's bytes must decode to.
// ---------------------------------------------------------------------------

fn only(name: &str, shown: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(shown.len(), 1, "example {name} shows one byte string");
    shown[0].clone()
}

fn check_decodes(w: &World, story: &Story, name: &str, block: &str) {
    let shown = block_bytes(name, block);
    match name {
        "enum-numbers" | "custody-enum-numbers" | "compliance-enum-numbers" => {
            assert!(shown.is_empty());
        }
        "create-lot-event" | "transform-event" => {
            let bytes = only(name, &shown);
            let step = story.step(if name == "create-lot-event" {
                CREATE_LOT_ENTRY
            } else {
                TRANSFORM_ENTRY
            });
            assert_eq!(codec::decode::<Event>(&bytes).unwrap(), step.event);
            assert_eq!(sha256(&bytes), step.signed.event_id());
            // The key the block names signs the bytes it shows, and is the
            // signer's registered key.
            let key = seed(key_seed(step.event.signer.as_str())).public();
            assert_eq!(key, step.signed.key);
            assert!(block.contains(&format!("public key `{key}`")));
            assert!(block.contains(&format!("`{}`", step.signed.signature)));
            key.verify_strict(&bytes, &step.signed.signature).unwrap();
        }
        "custody-arithmetic" => {
            assert!(shown.is_empty());
            // Story::new has checked every figure against the library's
            // rules; the block must be that working, for those entries.
            let texts = text_fences(block);
            assert_eq!(texts.len(), 1);
            assert_eq!(
                texts[0],
                story.arithmetic_text(CREATE_LOT_ENTRY, TRANSFORM_ENTRY)
            );
        }
        "key-id" => {
            let bytes = only(name, &shown);
            let (name_bytes, rest) = bytes.split_at(bytes.len() - 34);
            assert_eq!(&rest[..2], &[0x0a, 0x01]);
            let key = PublicKey::from_slice(&rest[2..]).unwrap();
            let verifier = NoteVerifier::new(
                std::str::from_utf8(name_bytes).unwrap(),
                key.verifying_key().unwrap(),
            )
            .unwrap();
            assert_eq!(verifier.key_id(), sha256(&bytes).as_bytes()[..4]);
            assert_eq!(verifier, w.verifier);
            assert_eq!(
                checkpoint::parse_verifier_key(&verifier.verifier_key()).unwrap(),
                w.verifier
            );
        }
        "genesis-event" | "register-participant-event" => {
            let bytes = only(name, &shown);
            let want = if name == "genesis-event" {
                (&w.genesis, &w.genesis_signed)
            } else {
                (&w.register, &w.register_signed)
            };
            assert_eq!(&codec::decode::<Event>(&bytes).unwrap(), want.0);
            assert_eq!(sha256(&bytes), want.1.event_id());
        }
        "signed-event" => {
            let bytes = only(name, &shown);
            // The envelope has no tag of its own: it is read with the
            // plain bincode configuration the prefix is followed by.
            let config = bincode::config::standard()
                .with_little_endian()
                .with_fixed_int_encoding();
            let (envelope, read): (SignedEvent, usize) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(read, bytes.len());
            assert_eq!(envelope, w.register_signed);
            assert_eq!(&w.entry1_bytes[66..], bytes.as_slice());
            envelope
                .key
                .verify_strict(&envelope.event, &envelope.signature)
                .unwrap();
            assert_eq!(codec::decode::<Event>(&envelope.event).unwrap(), w.register);
        }
        "genesis-entry" | "register-entry" => {
            let bytes = only(name, &shown);
            let (want, leaf) = if name == "genesis-entry" {
                (&w.entry0, w.leaf0)
            } else {
                (&w.entry1, w.leaf1)
            };
            assert_eq!(&codec::decode::<Entry>(&bytes).unwrap(), want);
            let mut preimage = vec![0x00];
            preimage.extend(&bytes);
            assert_eq!(sha256(&preimage).as_bytes(), &leaf);
            assert_eq!(merkle::leaf_hash(&bytes), leaf);
        }
        "tree-root" => {
            let bytes = only(name, &shown);
            assert_eq!(bytes[0], 0x01);
            let left: Hash = bytes[1..33].try_into().unwrap();
            let right: Hash = bytes[33..].try_into().unwrap();
            assert_eq!((left, right), (w.leaf0, w.leaf1));
            let root = *sha256(&bytes).as_bytes();
            assert_eq!(root, merkle::node_hash(&left, &right));
            assert_eq!(root, MemoryNodes::from_leaves([left, right]).root());
            // The proofs the block lists are one sibling each.
            merkle::verify_inclusion(&left, 0, 2, &[right], &root).unwrap();
            merkle::verify_inclusion(&right, 1, 2, &[left], &root).unwrap();
            merkle::verify_consistency(1, 2, &left, &root, &[right]).unwrap();
            for listed in [
                format!("section 2.1.3): [`{}`]", hex::encode(right)),
                format!("entry 1 in the tree of size 2: [`{}`]", hex::encode(left)),
                format!("section 2.1.4): [`{}`]", hex::encode(right)),
            ] {
                assert!(block.contains(&listed), "the block lists {listed}");
            }
        }
        "checkpoint-note" => {
            assert_eq!(shown.len(), 2, "body and signature");
            let body = std::str::from_utf8(&shown[0]).unwrap();
            assert_eq!(checkpoint::parse_body(body).unwrap(), w.checkpoint2);
            assert_eq!(&shown[1][..4], &w.verifier.key_id());
            let signature = Signature::from_slice(&shown[1][4..]).unwrap();
            w.log_key
                .public()
                .verify_strict(body.as_bytes(), &signature)
                .unwrap();
            let notes = text_fences(block);
            assert_eq!(notes.len(), 1);
            let note = &notes[0];
            assert!(note.starts_with(body));
            assert_eq!(checkpoint::open(note, &w.verifier).unwrap(), w.checkpoint2);
            let stored = w.record2.note(ORIGIN, &w.log_key.public()).unwrap();
            assert_eq!(&stored, note, "the note rebuilt from the stored record");
        }
        "checkpoint-record" => {
            let bytes = only(name, &shown);
            assert_eq!(
                codec::decode::<CheckpointRecord>(&bytes).unwrap(),
                w.record2
            );
        }
        "log-file" => {
            let bytes = only(name, &shown);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log");
            std::fs::write(&path, &bytes).unwrap();
            let report = verify_log(&path, false).unwrap();
            assert_eq!((report.entries, report.checkpoints), (2, 2));
            assert_eq!(report.root, w.root2);
            assert_eq!(report.origin, ORIGIN);
            assert_eq!(report.checkpoint, w.note2);
            assert_eq!(report.log_key, w.verifier.verifier_key());
            // Cutting the final checkpoint frame leaves a torn tail.
            let record_len = codec::encode(&w.record2).unwrap().len();
            std::fs::write(&path, &bytes[..bytes.len() - 13 - record_len]).unwrap();
            let torn = verify_log(&path, false).unwrap_err();
            assert_eq!(torn.index, 1, "{torn}");
        }
        "key-file" => {
            assert!(shown.is_empty());
            let texts = text_fences(block);
            assert_eq!(texts.len(), 1);
            let dir = tempfile::tempdir().unwrap();
            let written = dir.path().join("written.key");
            w.log_key.write_file(&written).unwrap();
            assert_eq!(std::fs::read_to_string(&written).unwrap(), texts[0]);
            let shown_path = dir.path().join("shown.key");
            std::fs::write(&shown_path, &texts[0]).unwrap();
            let read = SecretKey::read_file(&shown_path).unwrap();
            assert_eq!(read.public(), w.log_key.public());
        }
        other => panic!("no check for example {other}"),
    }
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[test]
fn document_examples_match_the_library() {
    let world = World::new();
    let story = Story::new(&world);
    let examples = examples(&world, &story);
    let mut doc = std::fs::read_to_string(DOC).unwrap();

    let generated: BTreeSet<String> = examples.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(
        marker_names(&doc),
        generated,
        "ENCODING.md must have one marker pair per generated example"
    );

    if std::env::var("ORETRAIL_BLESS").as_deref() == Ok("1") {
        // Check before writing, so that a bless never leaves behind a
        // document whose examples contradict themselves.
        for example in &examples {
            check_decodes(&world, &story, example.name, &example.text);
        }
        for example in &examples {
            let range = block_range(&doc, example.name);
            doc.replace_range(range, &example.text);
        }
        std::fs::write(DOC, &doc).unwrap();
    } else {
        let stale: Vec<&str> = examples
            .iter()
            .filter(|e| doc[block_range(&doc, e.name)] != e.text)
            .map(|e| e.name)
            .collect();
        for name in &stale {
            let shown = &doc[block_range(&doc, name)];
            let want = &examples.iter().find(|e| e.name == *name).unwrap().text;
            let first = shown
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(shown.lines().count().min(want.lines().count()));
            eprintln!(
                "example {name} differs from line {} of its block: document has {:?}, library gives {:?}",
                first + 1,
                shown.lines().nth(first),
                want.lines().nth(first)
            );
        }
        assert!(
            stale.is_empty(),
            "examples {stale:?} in schemas/ENCODING.md are out of date; if the format change is \
             deliberate, regenerate them with `{BLESS}`"
        );
    }

    for example in &examples {
        check_decodes(
            &world,
            &story,
            example.name,
            &doc[block_range(&doc, example.name)],
        );
    }
}

/// The document's layout rules, as implemented by [`event_layout`], give
/// the library's bytes for every kind of event, not only those shown, and
/// every variant of every enumeration an event holds.
#[test]
fn layout_rules_match_the_codec_for_every_event_kind() {
    let w = World::new();
    let story = Story::new(&w);
    let mine = pid("mine.kansanshi");
    let key = |b: u8| seed(b).public();
    let mut bodies = vec![
        w.genesis.body.clone(),
        w.register.body.clone(),
        EventBody::RegisterParticipant(Registration {
            participant: pid("lab-1_x"),
            legal_name: "Ünïcode Assay GmbH".into(),
            country: country("DE"),
            kinds: ALL_KINDS.to_vec(),
            roles: ALL_ROLES.to_vec(),
            keys: vec![key(4), key(5)],
        }),
        EventBody::AddKey(KeyAdded {
            participant: mine.clone(),
            key: key(6),
        }),
        EventBody::RotateKey(KeyRotated {
            participant: mine.clone(),
            old: key(3),
            new: key(7),
        }),
        EventBody::RevokeKey(KeyRevoked {
            participant: mine.clone(),
            key: key(7),
            reason: "laptop stolen".into(),
        }),
        // Custody events beyond the story's: the other enum variants,
        // signs of coordinates, options and booleans.
        EventBody::RegisterSite(SiteRegistration {
            site: site_id("CD-KOL/ASM.07"),
            operator: pid("coop.kolwezi"),
            name: "Coopérative minière de Kolwezi, site 7".into(),
            country: country("CD"),
            latitude_micro: -10_716_700,
            longitude_micro: 25_472_300,
            scale: SiteScale::Artisanal,
            metal: Element::Cu,
            annual_capacity: Grams(1_200_000_000),
        }),
        EventBody::RegisterSite(SiteRegistration {
            site: site_id("DE-HAM-REC"),
            operator: pid("recycler.hamburg"),
            name: "Hamburg copper scrap yard".into(),
            country: country("DE"),
            latitude_micro: 53_551_100,
            longitude_micro: 9_993_700,
            scale: SiteScale::Recycling,
            metal: Element::Cu,
            annual_capacity: Grams(u64::MAX),
        }),
        EventBody::DetermineCahra(CahraFinding {
            site: site_id("CD-KOL/ASM.07"),
            cahra: true,
            effective: at("2025-07-01T00:00:00Z"),
            source: "EU CAHRA indicative list, 2025 edition".into(),
        }),
        EventBody::CreateLot(LotCreation {
            lot: lot_id("HAM-SCRAP-2026-11"),
            site: site_id("DE-HAM-REC"),
            kind: LotKind::Scrap,
            wet: Grams(24_000_000),
            moisture: Ppb::ONE,
            assays: vec![assay(Element::Cu, 960_000_000), assay(Element::Pb, 0)],
            produced_from: Timestamp::from_millis(0),
            produced_until: LAST_TIME,
        }),
        EventBody::RecordAssay(AssayReport {
            lot: lot_id("KAN-2026-0001"),
            stage: AssayStage::Umpire,
            assays: ALL_ELEMENTS
                .iter()
                .zip(1u64..)
                .map(|(e, i)| assay(*e, i * 1_000))
                .collect(),
            moisture: Some(Ppb::ZERO),
            certificate: None,
        }),
        EventBody::RecordAssay(AssayReport {
            lot: lot_id("KAN-2026-0002"),
            stage: AssayStage::Provisional,
            assays: vec![],
            moisture: None,
            certificate: Some(document(DocumentKind::Other, "lab notebook")),
        }),
        EventBody::Dispatch(Dispatch {
            lot: lot_id("CHA-CATH-0001"),
            to: pid("buyer.rotterdam"),
            route: ["ZM", "TZ", "NL"].map(country).to_vec(),
            documents: ALL_DOCUMENT_KINDS
                .iter()
                .map(|k| document(*k, &format!("{k:?}")))
                .collect(),
        }),
        EventBody::Transform(Transformation {
            process: "electrolytic refining".into(),
            inputs: vec![TransformInput {
                lot: lot_id("CHA-ANODE-0417/2"),
                consumed_wet: Grams(3_666_667),
            }],
            outputs: vec![
                TransformOutput {
                    lot: lot_id("CHA-CATH-0001"),
                    kind: LotKind::Cathode,
                    metal: Element::Cu,
                    wet: Grams(3_600_000),
                    moisture: Ppb::ZERO,
                    assays: vec![assay(Element::Cu, 999_950_000)],
                },
                TransformOutput {
                    lot: lot_id("CHA-SLIME-0001"),
                    kind: LotKind::Slime,
                    metal: Element::Au,
                    wet: Grams(9_000),
                    moisture: ppb(120_000_000),
                    assays: vec![
                        assay(Element::Au, 2_100_000),
                        assay(Element::Ag, 90_000_000),
                    ],
                },
                TransformOutput {
                    lot: lot_id("CHA-INGOT-0001"),
                    kind: LotKind::Ingot,
                    metal: Element::Cu,
                    wet: Grams(1),
                    moisture: Ppb::ZERO,
                    assays: vec![],
                },
            ],
        }),
        EventBody::Sell(Sale {
            lot: lot_id("CHA-CATH-0001"),
            buyer: pid("buyer.rotterdam"),
            documents: vec![document(DocumentKind::BillOfLading, "B/L 2026-ZM-0042")],
        }),
        EventBody::ReviewSupplier(SupplierReview {
            organisation: pid("smelter.chambishi"),
            supplier: pid("trader.lusaka"),
            passed: false,
            cadence: ReviewCadence::Annual,
            valid_until: LAST_TIME,
            report: None,
        }),
        EventBody::SetReceiptPolicy(ReceiptPolicy {
            organisation: pid("buyer.rotterdam"),
            unreviewed_supplier: UnreviewedSupplierPolicy::Refuse,
        }),
        EventBody::Correct(Correction {
            entry: 9,
            lot: None,
            reason: "wrong time zone in the receipt note".into(),
        }),
    ];
    for reason in ALL_REASONS {
        bodies.push(EventBody::SanctionSupplier(SupplierSanction {
            organisation: pid("smelter.chambishi"),
            supplier: pid("trader.lusaka"),
            kind: SanctionKind::PermanentBan,
            reason,
            note: format!("{reason:?}"),
        }));
    }
    for outcome in ALL_OUTCOMES {
        bodies.push(EventBody::ReportGrievance(GrievanceReport {
            organisation: pid("smelter.chambishi"),
            subject: pid("trader.lusaka"),
            report_sha256: sha256(format!("{outcome:?}").as_bytes()),
            outcome,
        }));
    }
    for decision in [
        FlagDecisionKind::Continue,
        FlagDecisionKind::Suspend,
        FlagDecisionKind::Disengage,
    ] {
        bodies.push(EventBody::DecideFlag(FlagDecision {
            flag: FlagId {
                entry: u64::MAX,
                n: u16::MAX,
            },
            decision,
            note: "board decision 2026-03".into(),
        }));
    }
    bodies.extend(story.steps.iter().map(|s| s.event.body.clone()));
    let doc = std::fs::read_to_string(DOC).unwrap();
    let mut seen_bodies = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (nonce, body) in bodies.into_iter().enumerate() {
        let (index, name) = body_number(&body);
        seen_bodies.insert(index);
        assert!(
            doc.contains(&format!("| {index} | `{name}` |")),
            "ENCODING.md lists EventBody variant {index} as {name}"
        );
        let event = Event {
            nonce: u64::MAX - nonce as u64,
            body,
            ..w.register.clone()
        };
        let layout = event_layout(&event);
        let bytes = codec::encode(&event).unwrap();
        assert_eq!(
            hex::encode(layout.bytes()),
            hex::encode(&bytes),
            "{event:?}"
        );
        assert_eq!(codec::decode::<Event>(&bytes).unwrap(), event);
        seen.extend(layout.seen);
    }
    assert_eq!(
        seen_bodies.len(),
        EVENT_KINDS,
        "every event body variant is covered"
    );
    let count = |ty: &str| seen.iter().filter(|(t, _)| *t == ty).count();
    assert_eq!(count("Element"), ALL_ELEMENTS.len());
    assert_eq!(count("AssayStage"), ALL_STAGES.len());
    assert_eq!(count("SiteScale"), ALL_SCALES.len());
    assert_eq!(count("DocumentKind"), ALL_DOCUMENT_KINDS.len());
    // `Blend` is the one kind no event here names: the rules give it to
    // the output of a blend (see the state test).
    assert_eq!(count("LotKind"), ALL_LOT_KINDS.len() - 1);
    assert_eq!(count("EsgElement"), EsgElement::ALL.len());
    assert_eq!(count("ReviewCadence"), ALL_CADENCES.len());
    assert_eq!(count("SanctionReason"), ALL_REASONS.len());
    assert_eq!(count("SanctionKind"), 2);
    assert_eq!(count("GrievanceOutcome"), ALL_OUTCOMES.len());
    assert_eq!(count("UnreviewedSupplierPolicy"), ALL_POLICIES.len());
    assert_eq!(count("FlagDecisionKind"), 4);
}

/// The tags and versions the document lists are the ones the code uses.
#[test]
fn tags_and_versions_match_the_document() {
    fn tag_of<T: Canonical>() -> (String, u16) {
        let tag = String::from_utf8(T::TAG.to_vec()).unwrap();
        (tag.trim_end_matches('\0').to_string(), T::VERSION)
    }
    assert_eq!(tag_of::<Event>(), ("oretrail.event".into(), 1));
    assert_eq!(tag_of::<Entry>(), ("oretrail.entry".into(), 1));
    assert_eq!(tag_of::<CheckpointRecord>(), ("oretrail.ckpt".into(), 1));
    assert_eq!(
        tag_of::<oretrail::model::StateValue>(),
        ("oretrail.state".into(), 1)
    );
    assert_eq!(&oretrail::store::log::LOG_HEADER, LOG_HEADER);
    assert_eq!(&oretrail::store::log::FRAME_MAGIC, FRAME_MAGIC);
    let doc = std::fs::read_to_string(DOC).unwrap();
    for tag in [
        "oretrail.event",
        "oretrail.entry",
        "oretrail.ckpt",
        "oretrail.state",
    ] {
        assert!(doc.contains(&format!("`{tag}`")), "ENCODING.md names {tag}");
    }
}

/// Decoding refuses what the document says a verifier must refuse.
#[test]
fn decoding_refuses_what_the_document_says_it_refuses() {
    let w = World::new();
    let good = codec::encode(&w.register).unwrap();
    let refused = |bytes: &[u8]| codec::decode::<Event>(bytes).is_err();
    assert!(!refused(&good));

    let mut wrong_tag = good.clone();
    wrong_tag[..16].copy_from_slice(&codec::tag("oretrail.entry"));
    assert!(refused(&wrong_tag), "a wrong tag");

    let mut wrong_version = good.clone();
    wrong_version[16] = 2;
    assert!(refused(&wrong_version), "an unknown version");

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(refused(&trailing), "trailing bytes");
    assert!(refused(&good[..good.len() - 1]), "a truncated structure");

    // Offsets in the register-participant-event layout: the signer string
    // starts at 18 + 8 + 20, its length at 46 and its first byte at 54.
    let mut bad_id = good.clone();
    bad_id[54] = b'O';
    assert!(refused(&bad_id), "a participant id with a capital letter");

    let body_at = 18 + 28 + 16 + 8 + 8;
    let mut bad_variant = good.clone();
    bad_variant[body_at] = 5;
    assert!(refused(&bad_variant), "an unknown event body variant");

    let mut huge_length = good.clone();
    huge_length[18..26].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(refused(&huge_length), "a length past the end of the input");

    let mut not_utf8 = good.clone();
    not_utf8[26] = 0xff;
    assert!(refused(&not_utf8), "a string that is not UTF-8");

    let mut bad_country = good;
    let country_at = body_at + 4 + 8 + 14 + 8 + 20 + 8;
    assert_eq!(&bad_country[country_at..country_at + 2], b"ZM");
    bad_country[country_at] = b'z';
    assert!(refused(&bad_country), "a lowercase country code");
}

/// Stored state follows the same rules; it is the only place options
/// occur, so this pins their encoding (`00`, or `01` then the value).
#[test]
fn state_values_follow_the_layout_rules() {
    use oretrail::model::{KeyRecord, StateValue};
    let record = KeyRecord {
        key: seed(0x03).public(),
        participant: pid("mine.kansanshi"),
        valid_from: Timestamp::from_millis(GENESIS_TIME_MS),
        valid_until: Some(Timestamp::from_millis(GENESIS_TIME_MS + 1)),
        added_in: 1,
        ended_in: None,
    };
    let mut l = Layout::default();
    l.prefix("oretrail.state", 1)
        .variant("StateValue", 2, "Key")
        .fixed("KeyRecord.key", record.key.as_bytes(), KEY)
        .string("KeyRecord.participant", record.participant.as_str())
        .time("KeyRecord.valid_from", record.valid_from)
        .raw([0x01], "KeyRecord.valid_until: some")
        .time(
            "KeyRecord.valid_until",
            Timestamp::from_millis(GENESIS_TIME_MS + 1),
        )
        .u64("KeyRecord.added_in", record.added_in)
        .raw([0x00], "KeyRecord.ended_in: none");
    let value = StateValue::Key(record);
    let bytes = codec::encode(&value).unwrap();
    assert_eq!(hex::encode(l.bytes()), hex::encode(&bytes));
    assert_eq!(codec::decode::<StateValue>(&bytes).unwrap(), value);

    let mut bad_option = bytes.clone();
    let at = bytes.len() - 1;
    bad_option[at] = 2;
    assert!(codec::decode::<StateValue>(&bad_option).is_err());
}

/// Derived state follows the same rules: every value the story derives,
/// of every kind, through all three lot statuses, encodes as
/// [`state_layout`] says and decodes back.
#[test]
fn derived_state_follows_the_layout_rules() {
    let w = World::new();
    let story = Story::new(&w);
    let check = |value: &StateValue| {
        let layout = state_layout(value);
        let bytes = codec::encode(value).unwrap();
        assert_eq!(
            hex::encode(layout.bytes()),
            hex::encode(&bytes),
            "{value:?}"
        );
        assert_eq!(&codec::decode::<StateValue>(&bytes).unwrap(), value);
        layout.seen
    };
    let mut kinds = BTreeSet::new();
    let mut seen = BTreeSet::new();
    // The storage keys of section 9, built from its table.
    let storage_key = |value: &StateValue| -> Vec<u8> {
        let (letter, rest): (u8, Vec<u8>) = match value {
            StateValue::Ledger(_) => (b'L', vec![]),
            StateValue::Participant(p) => (b'P', p.id.as_str().into()),
            StateValue::Key(k) => (b'K', k.key.as_bytes().to_vec()),
            StateValue::Site(s) => (b'S', s.id.as_str().into()),
            StateValue::Lot(l) => (b'T', l.id.as_str().into()),
            StateValue::Affiliation(a) => (b'A', a.member.as_str().into()),
            StateValue::Supplier(f) => (
                b'U',
                format!("{} {}", f.organisation, f.supplier).into_bytes(),
            ),
            StateValue::ReceiptPolicy(p) => (b'R', p.organisation.as_str().into()),
            StateValue::Flag(f) => (
                b'F',
                [f.id.entry.to_be_bytes().as_slice(), &f.id.n.to_be_bytes()].concat(),
            ),
            StateValue::CountryRisk(r) => (b'C', r.country.as_str().into()),
        };
        [vec![letter], rest].concat()
    };
    let values: Vec<&StateValue> = story
        .base
        .iter()
        .chain(story.steps.iter().flat_map(|s| &s.values))
        .collect();
    for value in &values {
        kinds.insert(state_number(value).0);
        seen.extend(check(value));
        assert_eq!(storage_key(value), value.key().to_bytes(), "{value:?}");
    }
    assert_eq!(kinds.len(), 10, "every kind of state value");
    for status in 0..3 {
        assert!(seen.contains(&("LotStatus", status)), "lot status {status}");
    }
    assert!(seen.contains(&("LotKind", lot_kind_number(LotKind::Blend).0)));
    assert!(seen.contains(&("FlagDecisionKind", 1)), "a decided flag");
    // The flags the story raises, as section 6.3 says it raises them.
    let raised: Vec<(u64, u16, FlagKind)> = values
        .iter()
        .filter_map(|v| match v {
            StateValue::Flag(f) if f.decisions.is_empty() => Some((f.id.entry, f.id.n, f.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        raised,
        [
            (26, 0, FlagKind::CahraTransit),
            (26, 1, FlagKind::MissingExportDocument),
            (37, 0, FlagKind::WeightVariance),
        ]
    );
    // Every flag kind, on a copy of one of them.
    let flag = values
        .iter()
        .find_map(|v| match v {
            StateValue::Flag(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    for kind in ALL_FLAG_KINDS {
        seen.extend(check(&StateValue::Flag(oretrail::model::Flag {
            kind,
            ..flag.clone()
        })));
    }
    let count = |ty: &str| seen.iter().filter(|(t, _)| *t == ty).count();
    assert_eq!(count("FlagKind"), ALL_FLAG_KINDS.len());
}

/// Offset of the first row of `layout` whose description starts with
/// `what`.
fn offset_of(layout: &Layout, what: &str) -> usize {
    let mut offset = 0;
    for row in &layout.rows {
        if row.what.starts_with(what) {
            return offset;
        }
        offset += row.bytes.len();
    }
    panic!("no field {what:?} in the layout")
}

/// Decoding refuses custody fields that section 2.3 says it refuses.
#[test]
fn decoding_refuses_invalid_custody_fields() {
    let w = World::new();
    let story = Story::new(&w);
    let refused = |bytes: &[u8]| codec::decode::<Event>(bytes).is_err();
    // Changes one byte of an entry's event at a field of its layout.
    let changed = |entry: u64, what: &str, byte: u8| {
        let step = story.step(entry);
        let mut bytes = step.signed.event.clone();
        assert!(!refused(&bytes));
        bytes[offset_of(&event_layout(&step.event), what)] = byte;
        bytes
    };
    let create = CREATE_LOT_ENTRY;
    assert!(
        refused(&changed(create, "LotCreation.lot =", b'-')),
        "a lot id starting with '-'"
    );
    assert!(
        refused(&changed(create, "LotCreation.lot =", b' ')),
        "a lot id with a space"
    );
    assert!(
        !refused(&changed(create, "LotCreation.lot =", b'k')),
        "lowercase is allowed"
    );
    assert!(
        refused(&changed(create, "LotCreation.site =", b'#')),
        "a site id with '#'"
    );
    assert!(
        refused(&changed(create, "LotCreation.kind", 8)),
        "an unknown lot kind"
    );
    assert!(
        refused(&changed(create, "LotCreation.assays[0].element", 12)),
        "an unknown element"
    );
    assert!(
        refused(&changed(4, "SiteRegistration.scale", 3)),
        "an unknown site scale"
    );

    // Parts per billion: at most 10^9 (0x3b9aca00).
    let step = story.step(create);
    let at = offset_of(&event_layout(&step.event), "LotCreation.moisture");
    for (value, ok) in [
        (BILLION as u32, true),
        (BILLION as u32 + 1, false),
        (u32::MAX, false),
    ] {
        let mut bytes = step.signed.event.clone();
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        assert_eq!(refused(&bytes), !ok, "moisture {value} ppb");
    }

    // Booleans are 00 or 01; option tags are 00 or 01.
    assert!(
        refused(&changed(9, "LotReceipt.accepted", 2)),
        "a boolean 02"
    );
    assert!(
        !refused(&changed(9, "LotReceipt.accepted", 0)),
        "a boolean 00"
    );
    assert!(
        refused(&changed(17, "AssayReport.moisture: some", 2)),
        "an option tag 02"
    );
    assert!(
        refused(&changed(17, "AssayReport.certificate.kind", 5)),
        "an unknown document kind"
    );
    assert!(
        refused(&changed(17, "AssayReport.stage", 3)),
        "an unknown assay stage"
    );
}
