//! Rules for supplier compliance (onboarding, ESG reviews, sanctions,
//! reinstatement, code-of-conduct acknowledgements, grievances), receipt
//! policies, documents, corrections and red-flag decisions; and the checks
//! a delivery must pass before the receiving organisation accepts it.

use super::custody::{lot, require_role};
use super::flags::Raised;
use super::{Context, RuleCode, RuleError, check_text, refuse, registered};
use crate::model::{
    Affiliation, AttachedDocument, CodeAcknowledgement, CodeOfConductAcknowledgement, Correction,
    DocumentAttachment, EsgElement, FlagDecision, FlagDecisionKind, FlagDecisionRecord, FlagId,
    FlagKind, GrievanceReport, Lot, OfficerAppointment, OnboardingAssessment, Participant,
    ParticipantId, ReceiptPolicy, ReviewCadence, ReviewRecord, Role, SanctionKind, SanctionReason,
    SanctionRecord, StateValue, StateView, SupplierFile, SupplierReinstatement, SupplierReview,
    SupplierSanction, UnreviewedSupplierPolicy,
};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The signer must hold the Compliance role and act for `organisation`.
fn officer_of(
    state: &impl StateView,
    signer: &Participant,
    organisation: &ParticipantId,
) -> Result<(), RuleError> {
    require_role(signer, &[Role::Compliance], "record compliance findings")?;
    registered(state, organisation)?;
    let acts_for = state.organisation_of(&signer.id)?;
    if acts_for != *organisation {
        return refuse(
            RuleCode::NotAuthorized,
            format!("{} acts for {acts_for}, not {organisation}", signer.id),
        );
    }
    Ok(())
}

fn file(
    state: &impl StateView,
    organisation: &ParticipantId,
    supplier: &ParticipantId,
) -> Result<SupplierFile, RuleError> {
    registered(state, supplier)?;
    Ok(state
        .supplier_file(organisation, supplier)?
        .unwrap_or_else(|| SupplierFile::new(organisation.clone(), supplier.clone())))
}

pub(super) fn appoint_officer(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    a: &OfficerAppointment,
) -> Result<Vec<StateValue>, RuleError> {
    if !signer.has_role(Role::Operator) && signer.id != a.organisation {
        return refuse(
            RuleCode::NotAuthorized,
            format!(
                "only the operator or {} itself may appoint its officers",
                a.organisation
            ),
        );
    }
    registered(state, &a.officer)?;
    registered(state, &a.organisation)?;
    if a.officer == a.organisation {
        return refuse(
            RuleCode::InvalidField,
            "an organisation is not its own officer",
        );
    }
    Ok(vec![StateValue::Affiliation(Affiliation {
        member: a.officer.clone(),
        organisation: a.organisation.clone(),
        entry: ctx.index,
    })])
}

pub(super) fn assess_onboarding(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    o: &OnboardingAssessment,
) -> Result<Vec<StateValue>, RuleError> {
    officer_of(state, signer, &o.organisation)?;
    let mut f = file(state, &o.organisation, &o.supplier)?;
    let complete = o.scores.len() == EsgElement::ALL.len()
        && EsgElement::ALL
            .iter()
            .all(|e| o.scores.iter().filter(|s| s.element == *e).count() == 1);
    if !complete || o.scores.iter().any(|s| s.score > 100) {
        return refuse(
            RuleCode::InvalidField,
            "an onboarding assessment scores each of the twelve ESG elements once, from 0 to 100",
        );
    }
    f.onboarding = Some((o.scores.clone(), o.passed, ctx.index));
    Ok(vec![StateValue::Supplier(f)])
}

pub(super) fn review_supplier(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    r: &SupplierReview,
) -> Result<Vec<StateValue>, RuleError> {
    officer_of(state, signer, &r.organisation)?;
    let mut f = file(state, &r.organisation, &r.supplier)?;
    let longest = match r.cadence {
        ReviewCadence::Quarterly => 92 * DAY_MS,
        ReviewCadence::Annual => 366 * DAY_MS,
    };
    let now = ctx.record_time.as_millis();
    let until = r.valid_until.as_millis();
    if until <= now || until - now > longest {
        return refuse(
            RuleCode::InvalidField,
            format!(
                "a {:?} review must be valid for a future date at most {} days ahead",
                r.cadence,
                longest / DAY_MS
            ),
        );
    }
    f.reviews.push(ReviewRecord {
        passed: r.passed,
        cadence: r.cadence,
        reviewed_at: ctx.record_time,
        valid_until: r.valid_until,
        entry: ctx.index,
    });
    Ok(vec![StateValue::Supplier(f)])
}

pub(super) fn sanction_supplier(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    s: &SupplierSanction,
) -> Result<Vec<StateValue>, RuleError> {
    officer_of(state, signer, &s.organisation)?;
    check_text("note", &s.note)?;
    let mut f = file(state, &s.organisation, &s.supplier)?;
    // The seed's policy: serious violations of contract or law blacklist a
    // supplier for 1 to 3 years; the other grounds ban it for good.
    let blacklisting = matches!(
        s.reason,
        SanctionReason::ContractViolation | SanctionReason::LegalViolation
    );
    match s.kind {
        SanctionKind::Blacklisted { until } => {
            let days = until
                .as_millis()
                .saturating_sub(ctx.record_time.as_millis())
                / DAY_MS;
            if !blacklisting || !(365..=3 * 366).contains(&days) {
                return refuse(
                    RuleCode::InvalidField,
                    "blacklisting is for contract or legal violations, for 1 to 3 years",
                );
            }
        }
        SanctionKind::PermanentBan => {
            if blacklisting {
                return refuse(
                    RuleCode::InvalidField,
                    "a permanent ban is for quality, safety or environmental risks, bribery or a government blacklist",
                );
            }
        }
    }
    f.sanctions.push(SanctionRecord {
        kind: s.kind,
        reason: s.reason,
        from: ctx.record_time,
        imposed_in: ctx.index,
        lifted: None,
    });
    Ok(vec![StateValue::Supplier(f)])
}

pub(super) fn reinstate_supplier(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    r: &SupplierReinstatement,
) -> Result<Vec<StateValue>, RuleError> {
    officer_of(state, signer, &r.organisation)?;
    check_text("note", &r.note)?;
    let mut f = file(state, &r.organisation, &r.supplier)?;
    let Some(sanction) = f.sanctions.iter_mut().find(|s| s.in_force(ctx.record_time)) else {
        return refuse(
            RuleCode::NoSanctionInForce,
            format!("{} has no sanction in force to lift", r.supplier),
        );
    };
    if sanction.kind == SanctionKind::PermanentBan {
        return refuse(
            RuleCode::NotAuthorized,
            format!("{} is permanently banned", r.supplier),
        );
    }
    sanction.lifted = Some((ctx.record_time, ctx.index));
    Ok(vec![StateValue::Supplier(f)])
}

pub(super) fn acknowledge_code(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    a: &CodeOfConductAcknowledgement,
) -> Result<Vec<StateValue>, RuleError> {
    registered(state, &a.organisation)?;
    check_text("version", &a.version)?;
    let mut f = file(state, &a.organisation, &signer.id)?;
    f.code_acknowledged = Some(CodeAcknowledgement {
        policy_sha256: a.policy_sha256,
        version: a.version.clone(),
        entry: ctx.index,
    });
    Ok(vec![StateValue::Supplier(f)])
}

pub(super) fn report_grievance(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    g: &GrievanceReport,
) -> Result<Vec<StateValue>, RuleError> {
    officer_of(state, signer, &g.organisation)?;
    let mut f = file(state, &g.organisation, &g.subject)?;
    f.grievances.push((g.report_sha256, g.outcome, ctx.index));
    Ok(vec![StateValue::Supplier(f)])
}

pub(super) fn set_receipt_policy(
    state: &impl StateView,
    signer: &Participant,
    p: &ReceiptPolicy,
) -> Result<Vec<StateValue>, RuleError> {
    officer_of(state, signer, &p.organisation)?;
    Ok(vec![StateValue::ReceiptPolicy(p.clone())])
}

/// The custodian or the owner of a lot (or someone acting for either).
fn custodian_or_owner(
    state: &impl StateView,
    signer: &Participant,
    l: &Lot,
) -> Result<(), RuleError> {
    let org = state.organisation_of(&signer.id)?;
    for party in [&l.custodian, &l.owner] {
        if *party == signer.id || state.organisation_of(party)? == org {
            return Ok(());
        }
    }
    refuse(
        RuleCode::NotAuthorized,
        format!(
            "only the custodian ({}) or the owner ({}) of lot {} may do this",
            l.custodian, l.owner, l.id
        ),
    )
}

pub(super) fn attach_document(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    a: &DocumentAttachment,
) -> Result<Vec<StateValue>, RuleError> {
    let mut l = lot(state, &a.lot)?;
    custodian_or_owner(state, signer, &l)?;
    l.documents.push(AttachedDocument {
        document: a.document.clone(),
        by: signer.id.clone(),
        entry: ctx.index,
    });
    l.history.push(ctx.index);
    Ok(vec![StateValue::Lot(l)])
}

pub(super) fn correct(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    c: &Correction,
) -> Result<Vec<StateValue>, RuleError> {
    check_text("reason", &c.reason)?;
    if c.entry == 0 || c.entry >= ctx.index {
        return refuse(
            RuleCode::InvalidField,
            format!(
                "a correction names an earlier entry (1 to {}), not {}",
                ctx.index.saturating_sub(1),
                c.entry
            ),
        );
    }
    let Some(id) = &c.lot else {
        // A correction of a record that concerns no lot (a compliance
        // finding, a site) is for those who keep such records.
        require_role(
            signer,
            &[Role::Compliance, Role::Operator],
            "correct records that concern no lot",
        )?;
        return Ok(Vec::new());
    };
    let mut l = lot(state, id)?;
    custodian_or_owner(state, signer, &l)?;
    if !l.history.contains(&c.entry) {
        return refuse(
            RuleCode::InvalidField,
            format!("entry {} does not concern lot {}", c.entry, l.id),
        );
    }
    l.corrections.push((ctx.index, c.entry, c.reason.clone()));
    l.history.push(ctx.index);
    Ok(vec![StateValue::Lot(l)])
}

pub(super) fn decide_flag(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    d: &FlagDecision,
) -> Result<Vec<StateValue>, RuleError> {
    let Some(mut flag) = state.flag(d.flag)? else {
        return refuse(
            RuleCode::FlagUnknown,
            format!("no red flag {} of entry {}", d.flag.n, d.flag.entry),
        );
    };
    officer_of(state, signer, &flag.organisation)?;
    if let FlagDecisionKind::Mitigate { plan } = &d.decision {
        check_text("plan", plan)?;
    }
    flag.decisions.push(FlagDecisionRecord {
        decision: d.decision.clone(),
        by: signer.id.clone(),
        at: ctx.record_time,
        entry: ctx.index,
        note: d.note.clone(),
    });
    Ok(vec![StateValue::Flag(flag)])
}

/// What a delivery of `l` to `receiver` must pass before it is accepted,
/// judged at the record time by the receiving organisation's own files:
/// no party behind the lot (its direct supplier and the operators of its
/// origin sites) may be sanctioned; and once the organisation has set a
/// receipt policy, the direct supplier must have acknowledged its code of
/// conduct and hold a passed, unexpired review (or, if the policy says so,
/// the delivery is flagged instead). Returns the flags raised.
pub(super) fn check_delivery(
    state: &impl StateView,
    ctx: Context,
    receiver: &Participant,
    l: &Lot,
    raised: &mut Raised,
) -> Result<Vec<FlagId>, RuleError> {
    let org = state.organisation_of(&receiver.id)?;
    let direct = if state.organisation_of(&l.owner)? != org {
        Some(l.owner.clone())
    } else {
        l.seller.clone()
    };
    let mut parties: Vec<ParticipantId> = direct.iter().cloned().collect();
    for share in l.origin.shares() {
        if let Some(site) = state.site(&share.site)?
            && !parties.contains(&site.operator)
        {
            parties.push(site.operator);
        }
    }
    for party in &parties {
        if let Some(f) = state.supplier_file(&org, party)?
            && let Some(s) = f.sanction_at(ctx.record_time)
        {
            return refuse(
                RuleCode::SupplierSanctioned,
                format!(
                    "{org} has sanctioned {party} ({:?}, {:?}) since {}: lot {} is refused",
                    s.kind, s.reason, s.from, l.id
                ),
            );
        }
    }
    let mut flags = Vec::new();
    let (Some(policy), Some(supplier)) = (state.receipt_policy(&org)?, direct) else {
        return Ok(flags);
    };
    let f = state.supplier_file(&org, &supplier)?;
    if f.as_ref()
        .and_then(|f| f.code_acknowledged.as_ref())
        .is_none()
    {
        return refuse(
            RuleCode::CodeNotAcknowledged,
            format!("{supplier} has not acknowledged {org}'s Supplier Code of Conduct"),
        );
    }
    if !f.is_some_and(|f| f.review_current_at(ctx.record_time)) {
        match policy.unreviewed_supplier {
            UnreviewedSupplierPolicy::Refuse => {
                return refuse(
                    RuleCode::SupplierNotReviewed,
                    format!("{supplier} has no passed, unexpired ESG review by {org}"),
                );
            }
            UnreviewedSupplierPolicy::Flag => flags.push(raised.raise(
                FlagKind::SupplierNotReviewed,
                org.clone(),
                Some(&l.id),
                None,
                Some(&supplier),
                format!("{supplier} has no passed, unexpired ESG review by {org}"),
            )),
        }
    }
    Ok(flags)
}
