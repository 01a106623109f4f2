//! The GS1 EPCIS 2.0 vocabulary of our events (`schemas/EVENTS.md`): each
//! event type, its EPCIS event type and business step, the EPC URI of a
//! lot and the EPCIS `eventID` of an event. Pure functions, in one place,
//! so the query API's EPCIS-style filters and any EPCIS export agree.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, Serializer};

use crate::crypto::Digest;
use crate::model::{EventBody, LotId};

/// Every kind of event, by the name `EventBody::type_name` gives it. One
/// byte, so that the catalog's per-entry summaries stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    Genesis,
    RegisterParticipant,
    AddKey,
    RotateKey,
    RevokeKey,
    RegisterSite,
    DetermineCahra,
    CreateLot,
    RecordAssay,
    Dispatch,
    Receive,
    Split,
    Blend,
    Transform,
    Sell,
    AppointOfficer,
    AssessOnboarding,
    ReviewSupplier,
    SanctionSupplier,
    ReinstateSupplier,
    AcknowledgeCode,
    ReportGrievance,
    SetReceiptPolicy,
    AttachDocument,
    Correct,
    DecideFlag,
    DetermineCountryCahra,
}

impl EventType {
    pub const ALL: [EventType; 27] = [
        EventType::Genesis,
        EventType::RegisterParticipant,
        EventType::AddKey,
        EventType::RotateKey,
        EventType::RevokeKey,
        EventType::RegisterSite,
        EventType::DetermineCahra,
        EventType::CreateLot,
        EventType::RecordAssay,
        EventType::Dispatch,
        EventType::Receive,
        EventType::Split,
        EventType::Blend,
        EventType::Transform,
        EventType::Sell,
        EventType::AppointOfficer,
        EventType::AssessOnboarding,
        EventType::ReviewSupplier,
        EventType::SanctionSupplier,
        EventType::ReinstateSupplier,
        EventType::AcknowledgeCode,
        EventType::ReportGrievance,
        EventType::SetReceiptPolicy,
        EventType::AttachDocument,
        EventType::Correct,
        EventType::DecideFlag,
        EventType::DetermineCountryCahra,
    ];

    pub fn of(body: &EventBody) -> Self {
        match body {
            EventBody::Genesis(_) => EventType::Genesis,
            EventBody::RegisterParticipant(_) => EventType::RegisterParticipant,
            EventBody::AddKey(_) => EventType::AddKey,
            EventBody::RotateKey(_) => EventType::RotateKey,
            EventBody::RevokeKey(_) => EventType::RevokeKey,
            EventBody::RegisterSite(_) => EventType::RegisterSite,
            EventBody::DetermineCahra(_) => EventType::DetermineCahra,
            EventBody::CreateLot(_) => EventType::CreateLot,
            EventBody::RecordAssay(_) => EventType::RecordAssay,
            EventBody::Dispatch(_) => EventType::Dispatch,
            EventBody::Receive(_) => EventType::Receive,
            EventBody::Split(_) => EventType::Split,
            EventBody::Blend(_) => EventType::Blend,
            EventBody::Transform(_) => EventType::Transform,
            EventBody::Sell(_) => EventType::Sell,
            EventBody::AppointOfficer(_) => EventType::AppointOfficer,
            EventBody::AssessOnboarding(_) => EventType::AssessOnboarding,
            EventBody::ReviewSupplier(_) => EventType::ReviewSupplier,
            EventBody::SanctionSupplier(_) => EventType::SanctionSupplier,
            EventBody::ReinstateSupplier(_) => EventType::ReinstateSupplier,
            EventBody::AcknowledgeCode(_) => EventType::AcknowledgeCode,
            EventBody::ReportGrievance(_) => EventType::ReportGrievance,
            EventBody::SetReceiptPolicy(_) => EventType::SetReceiptPolicy,
            EventBody::AttachDocument(_) => EventType::AttachDocument,
            EventBody::Correct(_) => EventType::Correct,
            EventBody::DecideFlag(_) => EventType::DecideFlag,
            EventBody::DetermineCountryCahra(_) => EventType::DetermineCountryCahra,
        }
    }

    /// The stable name, the same as `EventBody::type_name`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Genesis => "genesis",
            EventType::RegisterParticipant => "register_participant",
            EventType::AddKey => "add_key",
            EventType::RotateKey => "rotate_key",
            EventType::RevokeKey => "revoke_key",
            EventType::RegisterSite => "register_site",
            EventType::DetermineCahra => "determine_cahra",
            EventType::CreateLot => "create_lot",
            EventType::RecordAssay => "record_assay",
            EventType::Dispatch => "dispatch",
            EventType::Receive => "receive",
            EventType::Split => "split",
            EventType::Blend => "blend",
            EventType::Transform => "transform",
            EventType::Sell => "sell",
            EventType::AppointOfficer => "appoint_officer",
            EventType::AssessOnboarding => "assess_onboarding",
            EventType::ReviewSupplier => "review_supplier",
            EventType::SanctionSupplier => "sanction_supplier",
            EventType::ReinstateSupplier => "reinstate_supplier",
            EventType::AcknowledgeCode => "acknowledge_code",
            EventType::ReportGrievance => "report_grievance",
            EventType::SetReceiptPolicy => "set_receipt_policy",
            EventType::AttachDocument => "attach_document",
            EventType::Correct => "correct",
            EventType::DecideFlag => "decide_flag",
            EventType::DetermineCountryCahra => "determine_country_cahra",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether capturing an event of this type can raise red flags
    /// (`schemas/EVENTS.md`, "Red flags").
    pub fn may_raise_flags(self) -> bool {
        matches!(
            self,
            EventType::CreateLot | EventType::Dispatch | EventType::Receive | EventType::Transform
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The GS1 EPCIS 2.0 event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum EpcisType {
    ObjectEvent,
    AggregationEvent,
    TransactionEvent,
    TransformationEvent,
}

impl EpcisType {
    pub const ALL: [EpcisType; 4] = [
        EpcisType::ObjectEvent,
        EpcisType::AggregationEvent,
        EpcisType::TransactionEvent,
        EpcisType::TransformationEvent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EpcisType::ObjectEvent => "ObjectEvent",
            EpcisType::AggregationEvent => "AggregationEvent",
            EpcisType::TransactionEvent => "TransactionEvent",
            EpcisType::TransformationEvent => "TransformationEvent",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The CBV 2.0 business steps our events use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BizStep {
    Commissioning,
    Inspecting,
    Shipping,
    Receiving,
    Accepting,
    Repackaging,
    Other,
}

/// Prefixes under which a CBV business step may be written: the CBV 2.0
/// web URI, the older URN, and the bare name that EPCIS 2.0 JSON uses.
const BIZSTEP_PREFIXES: [&str; 2] = [
    "https://ref.gs1.org/cbv/BizStep-",
    "urn:epcglobal:cbv:bizstep:",
];

impl BizStep {
    pub const ALL: [BizStep; 7] = [
        BizStep::Commissioning,
        BizStep::Inspecting,
        BizStep::Shipping,
        BizStep::Receiving,
        BizStep::Accepting,
        BizStep::Repackaging,
        BizStep::Other,
    ];

    /// The bare CBV name, as EPCIS 2.0 JSON-LD writes it.
    pub fn name(self) -> &'static str {
        match self {
            BizStep::Commissioning => "commissioning",
            BizStep::Inspecting => "inspecting",
            BizStep::Shipping => "shipping",
            BizStep::Receiving => "receiving",
            BizStep::Accepting => "accepting",
            BizStep::Repackaging => "repackaging",
            BizStep::Other => "other",
        }
    }

    /// A business step written as a bare CBV name or as a CBV URI. `None`
    /// for a step none of our events uses (a valid CBV step such as
    /// `loading` included): a filter on it matches nothing.
    pub fn parse(text: &str) -> Option<Self> {
        let name = BIZSTEP_PREFIXES
            .iter()
            .find_map(|p| text.strip_prefix(p))
            .unwrap_or(text);
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl Serialize for BizStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// An event's EPCIS 2.0 mapping (`schemas/EVENTS.md`, "Lots"); `None` for
/// the identity, site and compliance events, which are master data or
/// records rather than physical observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EpcisMapping {
    #[serde(rename = "eventType")]
    pub event_type: EpcisType,
    #[serde(rename = "bizStep")]
    #[schema(value_type = String)]
    pub biz_step: BizStep,
}

/// The mapping of an event of type `kind`; `refused` tells a turned-away
/// receipt (`accepting`) from an accepted one (`receiving`).
pub fn mapping(kind: EventType, refused: bool) -> Option<EpcisMapping> {
    use BizStep as B;
    use EpcisType as T;
    let (event_type, biz_step) = match kind {
        EventType::CreateLot => (T::ObjectEvent, B::Commissioning),
        EventType::RecordAssay => (T::ObjectEvent, B::Inspecting),
        EventType::Dispatch => (T::ObjectEvent, B::Shipping),
        EventType::Receive if refused => (T::ObjectEvent, B::Accepting),
        EventType::Receive => (T::ObjectEvent, B::Receiving),
        EventType::Split => (T::TransformationEvent, B::Repackaging),
        EventType::Blend | EventType::Transform => (T::TransformationEvent, B::Commissioning),
        EventType::Sell => (T::TransactionEvent, B::Other),
        EventType::AttachDocument | EventType::Correct => (T::ObjectEvent, B::Other),
        _ => return None,
    };
    Some(EpcisMapping {
        event_type,
        biz_step,
    })
}

/// Whether `body` is a receipt that turned the lot away.
pub fn is_refused_receipt(body: &EventBody) -> bool {
    matches!(body, EventBody::Receive(r) if !r.accepted)
}

/// The EPC of a lot: a class-level identifier (lots are quantities of
/// material, not serialised items), as a URN in the `oretrail` namespace
/// whose last part is the lot id. Lot ids use only characters allowed in
/// a URN, so none is escaped.
pub const LOT_EPC_PREFIX: &str = "urn:oretrail:lot:";

pub fn lot_epc(lot: &LotId) -> String {
    format!("{LOT_EPC_PREFIX}{lot}")
}

/// The lot an EPC names, from its URI or from a plain lot id. `None` when
/// it is neither.
pub fn parse_lot_epc(text: &str) -> Option<LotId> {
    LotId::new(text.strip_prefix(LOT_EPC_PREFIX).unwrap_or(text)).ok()
}

/// The EPCIS `eventID` of an event: `ni:///sha-256;<base64url id>` (RFC
/// 6920 named information, as `schemas/EVENTS.md` says), where the id is
/// SHA-256 of the canonical event bytes. No `?ver=CBV2.0`: that query names
/// the CBV 2.0 hash of the EPCIS JSON, which this is not.
pub fn event_id_uri(event_id: &Digest) -> String {
    format!(
        "ni:///sha-256;{}",
        URL_SAFE_NO_PAD.encode(event_id.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
        }
        assert_eq!(EventType::parse("Dispatch"), None);
    }

    #[test]
    fn business_steps_parse_from_names_and_cbv_uris() {
        for s in BizStep::ALL {
            assert_eq!(BizStep::parse(s.name()), Some(s));
            assert_eq!(
                BizStep::parse(&format!("urn:epcglobal:cbv:bizstep:{}", s.name())),
                Some(s)
            );
            assert_eq!(
                BizStep::parse(&format!("https://ref.gs1.org/cbv/BizStep-{}", s.name())),
                Some(s)
            );
        }
        assert_eq!(BizStep::parse("loading"), None);
    }

    #[test]
    fn receipts_map_by_outcome_and_compliance_events_do_not_map() {
        let accepted = mapping(EventType::Receive, false).unwrap();
        let refused = mapping(EventType::Receive, true).unwrap();
        assert_eq!(accepted.biz_step, BizStep::Receiving);
        assert_eq!(refused.biz_step, BizStep::Accepting);
        assert_eq!(
            mapping(EventType::Transform, false).unwrap().event_type,
            EpcisType::TransformationEvent
        );
        assert_eq!(
            mapping(EventType::Sell, false).unwrap().event_type,
            EpcisType::TransactionEvent
        );
        assert_eq!(mapping(EventType::SanctionSupplier, false), None);
        assert_eq!(mapping(EventType::RegisterSite, false), None);
    }

    #[test]
    fn lot_epcs_round_trip_and_plain_ids_are_accepted() {
        let lot = LotId::new("KAN-2026/0042").unwrap();
        let epc = lot_epc(&lot);
        assert_eq!(epc, "urn:oretrail:lot:KAN-2026/0042");
        assert_eq!(parse_lot_epc(&epc), Some(lot.clone()));
        assert_eq!(parse_lot_epc("KAN-2026/0042"), Some(lot));
        assert_eq!(parse_lot_epc("urn:oretrail:lot:"), None);
        assert_eq!(parse_lot_epc("not a lot"), None);
    }

    #[test]
    fn event_ids_are_named_information_uris() {
        let id = Digest::from_bytes([0xfb; 32]);
        let uri = event_id_uri(&id);
        assert!(uri.starts_with("ni:///sha-256;-_v7"), "{uri}");
        assert!(!uri.contains('?'), "{uri}");
    }
}
