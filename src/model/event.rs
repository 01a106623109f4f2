//! Events: the claims participants sign.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::compliance::{
    EsgScore, FlagDecisionKind, FlagId, GrievanceOutcome, ReviewCadence, SanctionKind,
    SanctionReason, UnreviewedSupplierPolicy,
};
use super::ids::{CountryCode, ParticipantId, Timestamp};
use super::lot::{LotId, LotKind, SiteId, SiteScale};
use super::participant::{ParticipantKind, Role};
use super::quantity::{Assay, AssayStage, Element, Grams, Ppb};
use crate::codec::{self, Canonical};
use crate::crypto::{Digest, PublicKey};

/// A claim signed by one participant. Its canonical encoding (see
/// `schemas/ENCODING.md`) is what the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Origin of the ledger this event is meant for, so an event signed for
    /// one ledger cannot be replayed into another.
    pub ledger: String,
    /// The participant making the claim.
    pub signer: ParticipantId,
    /// When the signer says the event happened.
    pub time: Timestamp,
    /// Chosen by the signer to tell apart otherwise identical events.
    pub nonce: u64,
    pub body: EventBody,
}

impl Canonical for Event {
    const TAG: [u8; 16] = codec::tag("oretrail.event");
    const VERSION: u16 = 1;
}

/// What the event claims. Variant numbers are part of the encoding: new
/// kinds of event are only ever added at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    Genesis(Genesis),
    RegisterParticipant(Registration),
    AddKey(KeyAdded),
    RotateKey(KeyRotated),
    RevokeKey(KeyRevoked),
    RegisterSite(SiteRegistration),
    DetermineCahra(CahraFinding),
    CreateLot(LotCreation),
    RecordAssay(AssayReport),
    Dispatch(Dispatch),
    Receive(LotReceipt),
    Split(Split),
    Blend(Blend),
    Transform(Transformation),
    Sell(Sale),
    AppointOfficer(OfficerAppointment),
    AssessOnboarding(OnboardingAssessment),
    ReviewSupplier(SupplierReview),
    SanctionSupplier(SupplierSanction),
    ReinstateSupplier(SupplierReinstatement),
    AcknowledgeCode(CodeOfConductAcknowledgement),
    ReportGrievance(GrievanceReport),
    SetReceiptPolicy(ReceiptPolicy),
    AttachDocument(DocumentAttachment),
    Correct(Correction),
    DecideFlag(FlagDecision),
    DetermineCountryCahra(CountryCahraFinding),
}

impl EventBody {
    /// The lots the event names, inputs before outputs (a split's source
    /// before its parts, a blend's inputs before its output).
    pub fn lots(&self) -> Vec<&LotId> {
        match self {
            EventBody::CreateLot(c) => vec![&c.lot],
            EventBody::RecordAssay(r) => vec![&r.lot],
            EventBody::Dispatch(d) => vec![&d.lot],
            EventBody::Receive(r) => vec![&r.lot],
            EventBody::Split(s) => std::iter::once(&s.lot)
                .chain(s.parts.iter().map(|p| &p.lot))
                .collect(),
            EventBody::Blend(b) => b.inputs.iter().chain(std::iter::once(&b.output)).collect(),
            EventBody::Transform(t) => t
                .inputs
                .iter()
                .map(|i| &i.lot)
                .chain(t.outputs.iter().map(|o| &o.lot))
                .collect(),
            EventBody::Sell(s) => vec![&s.lot],
            EventBody::AttachDocument(a) => vec![&a.lot],
            EventBody::Correct(c) => c.lot.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Stable name of the event type, as used in JSON and error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::Genesis(_) => "genesis",
            EventBody::RegisterParticipant(_) => "register_participant",
            EventBody::AddKey(_) => "add_key",
            EventBody::RotateKey(_) => "rotate_key",
            EventBody::RevokeKey(_) => "revoke_key",
            EventBody::RegisterSite(_) => "register_site",
            EventBody::DetermineCahra(_) => "determine_cahra",
            EventBody::CreateLot(_) => "create_lot",
            EventBody::RecordAssay(_) => "record_assay",
            EventBody::Dispatch(_) => "dispatch",
            EventBody::Receive(_) => "receive",
            EventBody::Split(_) => "split",
            EventBody::Blend(_) => "blend",
            EventBody::Transform(_) => "transform",
            EventBody::Sell(_) => "sell",
            EventBody::AppointOfficer(_) => "appoint_officer",
            EventBody::AssessOnboarding(_) => "assess_onboarding",
            EventBody::ReviewSupplier(_) => "review_supplier",
            EventBody::SanctionSupplier(_) => "sanction_supplier",
            EventBody::ReinstateSupplier(_) => "reinstate_supplier",
            EventBody::AcknowledgeCode(_) => "acknowledge_code",
            EventBody::ReportGrievance(_) => "report_grievance",
            EventBody::SetReceiptPolicy(_) => "set_receipt_policy",
            EventBody::AttachDocument(_) => "attach_document",
            EventBody::Correct(_) => "correct",
            EventBody::DecideFlag(_) => "decide_flag",
            EventBody::DetermineCountryCahra(_) => "determine_country_cahra",
        }
    }
}

/// The first entry: names the ledger, its log key and its operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Genesis {
    pub origin: String,
    pub log_key: PublicKey,
    pub operator: ParticipantId,
    pub operator_name: String,
    pub operator_country: CountryCode,
    /// The operator's first signing key; the genesis event is signed by it.
    pub operator_key: PublicKey,
}

/// The operator registers a participant with its first keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Registration {
    pub participant: ParticipantId,
    pub legal_name: String,
    pub country: CountryCode,
    pub kinds: Vec<ParticipantKind>,
    pub roles: Vec<Role>,
    pub keys: Vec<PublicKey>,
}

/// A further key for a participant, valid from the entry's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyAdded {
    pub participant: ParticipantId,
    pub key: PublicKey,
}

/// Replaces a key: `old` stops and `new` starts at the entry's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotated {
    pub participant: ParticipantId,
    pub old: PublicKey,
    pub new: PublicKey,
}

/// Ends a key at the entry's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRevoked {
    pub participant: ParticipantId,
    pub key: PublicKey,
    pub reason: String,
}

/// A compliance or operator role registers a mine, concentrator or
/// recycling site, operated by a registered participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteRegistration {
    pub site: SiteId,
    pub operator: ParticipantId,
    pub name: String,
    pub country: CountryCode,
    pub latitude_micro: i32,
    pub longitude_micro: i32,
    pub scale: SiteScale,
    pub metal: Element,
    /// Yearly capacity in contained payable metal.
    pub annual_capacity: Grams,
}

/// A compliance role records whether a site is in a conflict-affected or
/// high-risk area from a date, and on what source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CahraFinding {
    pub site: SiteId,
    pub cahra: bool,
    pub effective: Timestamp,
    pub source: String,
}

/// What a document is; the document itself stays off the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum DocumentKind {
    BillOfLading,
    ExportPermit,
    WeightCertificate,
    AssayCertificate,
    Other,
}

/// A document referenced by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentRef {
    pub kind: DocumentKind,
    pub sha256: Digest,
}

/// A site's operator creates a lot of newly produced material there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotCreation {
    pub lot: LotId,
    pub site: SiteId,
    /// `Concentrate` or `Scrap`: other kinds come from processing.
    pub kind: LotKind,
    pub wet: Grams,
    pub moisture: Ppb,
    /// Provisional grades (dry basis); must include the site's metal.
    pub assays: Vec<Assay>,
    pub produced_from: Timestamp,
    pub produced_until: Timestamp,
}

/// An assay lab reports grades for a lot it examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssayReport {
    pub lot: LotId,
    pub stage: AssayStage,
    pub assays: Vec<Assay>,
    /// A moisture determination, when the lab made one.
    pub moisture: Option<Ppb>,
    pub certificate: Option<DocumentRef>,
}

/// The custodian sends a lot to a named receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dispatch {
    pub lot: LotId,
    pub to: ParticipantId,
    /// Countries the lot passes through, in order, from the country it
    /// leaves to the country it arrives in.
    pub route: Vec<CountryCode>,
    pub documents: Vec<DocumentRef>,
}

/// The named receiver takes (or refuses) a dispatched lot after weighing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotReceipt {
    pub lot: LotId,
    pub measured_wet: Grams,
    pub accepted: bool,
    /// Why, when refused; may be empty when accepted.
    pub note: String,
    pub documents: Vec<DocumentRef>,
}

/// The custodian divides a lot into new lots by wet mass; the parts must
/// add up to the whole exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Split {
    pub lot: LotId,
    pub parts: Vec<SplitPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SplitPart {
    pub lot: LotId,
    pub wet: Grams,
}

/// The custodian of every input blends them, whole, into a new lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Blend {
    pub inputs: Vec<LotId>,
    pub output: LotId,
}

/// Smelting or refining: inputs (wholly or partly consumed) become new
/// lots whose metal may not exceed what the inputs contained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transformation {
    pub process: String,
    pub inputs: Vec<TransformInput>,
    pub outputs: Vec<TransformOutput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransformInput {
    pub lot: LotId,
    /// Wet mass taken from the lot; all of it consumes the lot.
    pub consumed_wet: Grams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransformOutput {
    pub lot: LotId,
    pub kind: LotKind,
    pub metal: Element,
    pub wet: Grams,
    pub moisture: Ppb,
    pub assays: Vec<Assay>,
}

/// The owner sells a lot; ownership passes to the buyer, custody does not
/// move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sale {
    pub lot: LotId,
    pub buyer: ParticipantId,
    pub documents: Vec<DocumentRef>,
}

/// The operator, or the organisation itself, appoints a participant (for
/// example a compliance officer) to act for an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfficerAppointment {
    pub officer: ParticipantId,
    pub organisation: ParticipantId,
}

/// A buying organisation's compliance role records a supplier's onboarding
/// assessment on the twelve ESG elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OnboardingAssessment {
    pub organisation: ParticipantId,
    pub supplier: ParticipantId,
    /// One score per element, all twelve.
    pub scores: Vec<EsgScore>,
    pub passed: bool,
    pub report: Option<DocumentRef>,
}

/// A periodic ESG review of a supplier, valid until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SupplierReview {
    pub organisation: ParticipantId,
    pub supplier: ParticipantId,
    pub passed: bool,
    pub cadence: ReviewCadence,
    pub valid_until: Timestamp,
    pub report: Option<DocumentRef>,
}

/// A supplier blacklisted (1 to 3 years) or permanently banned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SupplierSanction {
    pub organisation: ParticipantId,
    pub supplier: ParticipantId,
    pub kind: SanctionKind,
    pub reason: SanctionReason,
    pub note: String,
}

/// A sanction lifted before it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SupplierReinstatement {
    pub organisation: ParticipantId,
    pub supplier: ParticipantId,
    pub note: String,
}

/// The supplier's own signed acknowledgement of a buyer's Supplier Code of
/// Conduct, naming the policy document by hash and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeOfConductAcknowledgement {
    pub organisation: ParticipantId,
    pub policy_sha256: Digest,
    pub version: String,
}

/// A grievance or whistleblower report about a participant and the
/// outcome of its investigation. The content stays off the ledger (only its
/// hash is here) and the reporter is never named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrievanceReport {
    pub organisation: ParticipantId,
    pub subject: ParticipantId,
    pub report_sha256: Digest,
    pub outcome: GrievanceOutcome,
}

/// An organisation's rule for deliveries from unreviewed suppliers. Once
/// set, its supplier checks (code acknowledgement, review) apply to every
/// delivery it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptPolicy {
    pub organisation: ParticipantId,
    pub unreviewed_supplier: UnreviewedSupplierPolicy,
}

/// A document attached to a lot after the fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentAttachment {
    pub lot: LotId,
    pub document: DocumentRef,
}

/// A correction: a new event that names an earlier entry and says what
/// was wrong. Nothing is edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Correction {
    pub entry: u64,
    pub lot: Option<LotId>,
    pub reason: String,
}

/// A compliance role decides on a red flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlagDecision {
    pub flag: FlagId,
    pub decision: FlagDecisionKind,
    pub note: String,
}

/// A compliance role records whether a whole country (or the part a route
/// crosses) is a conflict-affected or high-risk area from a date, so that
/// transit through it is flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountryCahraFinding {
    pub country: CountryCode,
    pub cahra: bool,
    pub effective: Timestamp,
    pub source: String,
}
