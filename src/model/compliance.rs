//! Supplier compliance and red flags: what a buying organisation has found
//! about each supplier, and the red-flag register (OECD Annex II, LME
//! red-flag assessment), as derived state.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::event::DocumentRef;
use super::ids::{ParticipantId, Timestamp};
use super::lot::{LotId, SiteId};
use crate::crypto::Digest;

/// The twelve elements of the onboarding assessment, from the customer's
/// supplier policy: four environmental, four social, four governance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum EsgElement {
    EnvironmentalManagementSystem,
    EnergyAndCarbon,
    PollutionViolationsAndFines,
    ProductionEnvironment,
    EnvironmentalProtectionMeasures,
    PublicAffairsEngagement,
    LaborRightsPolicies,
    NegativePublicOpinion,
    ProductionSafety,
    ComplianceAndAntiCorruption,
    DisclosureAndTransparency,
    BusinessEthicsControversies,
}

impl EsgElement {
    pub const ALL: [EsgElement; 12] = [
        EsgElement::EnvironmentalManagementSystem,
        EsgElement::EnergyAndCarbon,
        EsgElement::PollutionViolationsAndFines,
        EsgElement::ProductionEnvironment,
        EsgElement::EnvironmentalProtectionMeasures,
        EsgElement::PublicAffairsEngagement,
        EsgElement::LaborRightsPolicies,
        EsgElement::NegativePublicOpinion,
        EsgElement::ProductionSafety,
        EsgElement::ComplianceAndAntiCorruption,
        EsgElement::DisclosureAndTransparency,
        EsgElement::BusinessEthicsControversies,
    ];
}

/// One element's score, 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsgScore {
    pub element: EsgElement,
    pub score: u8,
}

/// How often a supplier is reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ReviewCadence {
    Quarterly,
    Annual,
}

/// The seed's grounds for a sanction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SanctionReason {
    /// Serious violation of the contract (blacklisting).
    ContractViolation,
    /// Serious violation of the law (blacklisting).
    LegalViolation,
    /// Major quality problems (permanent ban).
    MajorQualityProblem,
    /// Significant safety or environmental risks (permanent ban).
    SafetyOrEnvironmentalRisk,
    /// Bribery (permanent ban).
    Bribery,
    /// Blacklisted by a government for poor safety records (permanent ban).
    GovernmentBlacklist,
}

/// Blacklisted until a date, or removed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SanctionKind {
    Blacklisted { until: Timestamp },
    PermanentBan,
}

/// A sanction in force or lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SanctionRecord {
    pub kind: SanctionKind,
    pub reason: SanctionReason,
    pub from: Timestamp,
    pub imposed_in: u64,
    /// When a reinstatement lifted it early.
    pub lifted: Option<(Timestamp, u64)>,
}

impl SanctionRecord {
    /// Whether the sanction applies at `at`.
    pub fn in_force(&self, at: Timestamp) -> bool {
        if at < self.from || self.lifted.is_some_and(|(t, _)| t <= at) {
            return false;
        }
        match self.kind {
            SanctionKind::Blacklisted { until } => at < until,
            SanctionKind::PermanentBan => true,
        }
    }
}

/// An ESG review result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewRecord {
    pub passed: bool,
    pub cadence: ReviewCadence,
    pub reviewed_at: Timestamp,
    pub valid_until: Timestamp,
    pub entry: u64,
}

/// An acknowledgement of a buyer's Supplier Code of Conduct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeAcknowledgement {
    pub policy_sha256: Digest,
    pub version: String,
    pub entry: u64,
}

/// What one buying organisation knows about one supplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SupplierFile {
    pub organisation: ParticipantId,
    pub supplier: ParticipantId,
    /// The latest onboarding assessment: scores, verdict and entry.
    pub onboarding: Option<(Vec<EsgScore>, bool, u64)>,
    pub reviews: Vec<ReviewRecord>,
    pub sanctions: Vec<SanctionRecord>,
    pub code_acknowledged: Option<CodeAcknowledgement>,
    /// Grievance reports about the supplier: content hash and outcome.
    pub grievances: Vec<(Digest, GrievanceOutcome, u64)>,
}

impl SupplierFile {
    pub fn new(organisation: ParticipantId, supplier: ParticipantId) -> Self {
        Self {
            organisation,
            supplier,
            onboarding: None,
            reviews: Vec::new(),
            sanctions: Vec::new(),
            code_acknowledged: None,
            grievances: Vec::new(),
        }
    }

    /// The sanction in force at `at`, if any.
    pub fn sanction_at(&self, at: Timestamp) -> Option<&SanctionRecord> {
        self.sanctions.iter().find(|s| s.in_force(at))
    }

    /// Whether the latest review at `at` passed and has not expired.
    pub fn review_current_at(&self, at: Timestamp) -> bool {
        self.reviews
            .iter()
            .filter(|r| r.reviewed_at <= at)
            .max_by_key(|r| (r.reviewed_at, r.entry))
            .is_some_and(|r| r.passed && at < r.valid_until)
    }
}

/// How an investigation of a grievance or whistleblower report ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum GrievanceOutcome {
    UnderInvestigation,
    Substantiated,
    Unsubstantiated,
}

/// What a receiving organisation does with a delivery from a supplier with
/// no passed, unexpired ESG review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum UnreviewedSupplierPolicy {
    Refuse,
    Flag,
}

/// Identifies a red flag: the entry that raised it and its number there.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub struct FlagId {
    pub entry: u64,
    pub n: u16,
}

/// The red flags the ledger raises when it captures an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum FlagKind {
    /// Material from a site determined to be in a CAHRA.
    CahraOrigin,
    /// Material from an artisanal site.
    ArtisanalOrigin,
    /// A dispatch whose route passes through a country determined a CAHRA.
    CahraTransit,
    /// A delivery from a supplier with no passed, unexpired ESG review.
    SupplierNotReviewed,
    /// A site's declared production above its capacity for the period.
    ProductionAboveCapacity,
    /// A receipt's weight differs from the dispatched weight beyond the
    /// tolerance.
    WeightVariance,
    /// A dispatch across a border without an export document.
    MissingExportDocument,
    /// A transformation whose outputs hold more metal than its inputs, within
    /// the assay tolerance.
    NearMetalTolerance,
}

/// A decision on a red flag (OECD step 3 risk management).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FlagDecisionKind {
    Continue,
    Mitigate { plan: String },
    Suspend,
    Disengage,
}

/// A red flag in the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Flag {
    pub id: FlagId,
    pub kind: FlagKind,
    /// The organisation whose register it is in (the one that must decide).
    pub organisation: ParticipantId,
    pub lot: Option<LotId>,
    pub site: Option<SiteId>,
    pub supplier: Option<ParticipantId>,
    pub raised_at: Timestamp,
    pub detail: String,
    /// Decisions, latest last; open while empty.
    pub decisions: Vec<FlagDecisionRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlagDecisionRecord {
    pub decision: FlagDecisionKind,
    pub by: ParticipantId,
    pub at: Timestamp,
    pub entry: u64,
    pub note: String,
}

/// A lot document, attached after the fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttachedDocument {
    pub document: DocumentRef,
    pub by: ParticipantId,
    pub entry: u64,
}
