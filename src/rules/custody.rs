//! Rules for sites and lots: who may create, test, move, divide, combine,
//! transform and sell material, and the mass and metal they must conserve.

use std::collections::HashSet;

use super::flags::Raised;
use super::{Context, RuleCode, RuleError, check_text, refuse, registered};
use crate::model::{
    Assay, AssayReport, AssayStage, Blend, CahraDetermination, CahraFinding, CountryCahraFinding,
    CountryRisk, Dispatch, DocumentKind, Element, Event, FlagKind, Grams, Lot, LotCreation, LotId,
    LotKind, LotReceipt, LotStatus, Origin, Participant, Ppb, Role, Sale, Site, SiteRegistration,
    SiteScale, Split, StateValue, StateView, Transformation, apportion, cahra_at, contained,
    dry_mass,
};

/// How far a receipt's weight may differ from the dispatched weight before
/// it is flagged: 0.5 %.
pub const WEIGHT_VARIANCE_TOLERANCE: Ppb = Ppb::from_const(5_000_000);

/// Production is counted in periods of 30 days; twelve make the year a
/// site's capacity is compared with.
const PERIOD_MS: u64 = 30 * 24 * 60 * 60 * 1000;
const PRODUCTION_PERIODS: u64 = 12;

/// The flags of all `lots`, once each, in order.
fn inherited_flags(lots: &[Lot]) -> Vec<crate::model::FlagId> {
    let mut flags = Vec::new();
    for l in lots {
        for f in &l.flags {
            if !flags.contains(f) {
                flags.push(*f);
            }
        }
    }
    flags
}

/// How much more of a metal a transformation's outputs may hold than its
/// inputs did, for assay uncertainty: 0.5 %.
pub const TRANSFORM_TOLERANCE: Ppb = Ppb::from_const(5_000_000);

pub(super) fn require_role(
    signer: &Participant,
    roles: &[Role],
    what: &str,
) -> Result<(), RuleError> {
    if roles.iter().any(|r| signer.has_role(*r)) {
        return Ok(());
    }
    refuse(
        RuleCode::NotAuthorized,
        format!("{} may not {what}: it needs the role {roles:?}", signer.id),
    )
}

fn positive(field: &str, mass: Grams) -> Result<(), RuleError> {
    if mass.0 == 0 {
        return refuse(
            RuleCode::InvalidQuantity,
            format!("{field} must be more than 0 g"),
        );
    }
    Ok(())
}

/// Grades must name each element once and include the payable metal.
fn check_assays(assays: &[Assay], metal: Element) -> Result<(), RuleError> {
    // A repeat shows among the first thirteen, there being twelve
    // elements, so a scan of those before each costs less than a set.
    for (i, a) in assays.iter().enumerate() {
        if assays[..i].iter().any(|b| b.element == a.element) {
            return refuse(
                RuleCode::InvalidField,
                format!("the assays name {:?} twice", a.element),
            );
        }
    }
    if !assays.iter().any(|a| a.element == metal) {
        return refuse(
            RuleCode::AssayMissingMetal,
            format!("the assays must include the payable metal {metal:?}"),
        );
    }
    let total: u64 = assays.iter().map(|a| u64::from(a.grade.get())).sum();
    if total > crate::model::BILLION {
        return refuse(
            RuleCode::InvalidQuantity,
            "the grades add up to more than the whole lot",
        );
    }
    Ok(())
}

fn site(state: &impl StateView, id: &crate::model::SiteId) -> Result<Site, RuleError> {
    match state.site(id)? {
        Some(s) => Ok(s),
        None => refuse(
            RuleCode::SiteUnknown,
            format!("site {id} is not registered"),
        ),
    }
}

pub(super) fn lot(state: &impl StateView, id: &LotId) -> Result<Lot, RuleError> {
    match state.lot(id)? {
        Some(l) => Ok(l),
        None => refuse(RuleCode::LotUnknown, format!("lot {id} does not exist")),
    }
}

/// A lot that exists and is not used up (it may be in transit).
fn live_lot(state: &impl StateView, id: &LotId) -> Result<Lot, RuleError> {
    let l = lot(state, id)?;
    not_consumed(&l)?;
    Ok(l)
}

/// Refuses a lot that a split, blend or transformation used up.
fn not_consumed(l: &Lot) -> Result<(), RuleError> {
    if let LotStatus::Consumed { in_entry } = l.status {
        return refuse(
            RuleCode::LotNotAvailable,
            format!("lot {} was used up in entry {in_entry}", l.id),
        );
    }
    Ok(())
}

/// A lot the signer holds and may work on now.
fn held_by(state: &impl StateView, id: &LotId, signer: &Participant) -> Result<Lot, RuleError> {
    let l = lot(state, id)?;
    match &l.status {
        LotStatus::Held => {}
        LotStatus::InTransit { to, .. } => {
            return refuse(
                RuleCode::LotNotAvailable,
                format!("lot {id} is in transit to {to}"),
            );
        }
        LotStatus::Consumed { .. } => not_consumed(&l)?,
    }
    if l.custodian != signer.id {
        return refuse(
            RuleCode::NotCustodian,
            format!("lot {id} is held by {}, not {}", l.custodian, signer.id),
        );
    }
    Ok(l)
}

/// New lot ids must be unused, also within the event.
fn new_lots<'a>(
    state: &impl StateView,
    ids: impl IntoIterator<Item = &'a LotId>,
) -> Result<(), RuleError> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) || state.lot(id)?.is_some() {
            return refuse(RuleCode::LotExists, format!("lot {id} already exists"));
        }
    }
    Ok(())
}

pub(super) fn register_site(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    r: &SiteRegistration,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(
        signer,
        &[Role::Operator, Role::Compliance],
        "register sites",
    )?;
    if state.site(&r.site)?.is_some() {
        return refuse(
            RuleCode::SiteExists,
            format!("site {} is already registered", r.site),
        );
    }
    registered(state, &r.operator)?;
    check_text("name", &r.name)?;
    if !(-90_000_000..=90_000_000).contains(&r.latitude_micro)
        || !(-180_000_000..=180_000_000).contains(&r.longitude_micro)
    {
        return refuse(
            RuleCode::InvalidField,
            "coordinates must be a latitude within ±90° and a longitude within ±180°",
        );
    }
    positive("annual_capacity", r.annual_capacity)?;
    Ok(vec![StateValue::Site(Site {
        id: r.site.clone(),
        operator: r.operator.clone(),
        name: r.name.clone(),
        country: r.country.clone(),
        latitude_micro: r.latitude_micro,
        longitude_micro: r.longitude_micro,
        scale: r.scale,
        metal: r.metal,
        annual_capacity: r.annual_capacity,
        cahra: Vec::new(),
        registered_in: ctx.index,
        production: Vec::new(),
    })])
}

pub(super) fn determine_cahra(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    f: &CahraFinding,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Compliance], "record CAHRA determinations")?;
    let mut s = site(state, &f.site)?;
    check_text("source", &f.source)?;
    s.cahra.push(CahraDetermination {
        cahra: f.cahra,
        effective: f.effective,
        source: f.source.clone(),
        by: signer.id.clone(),
        entry: ctx.index,
    });
    Ok(vec![StateValue::Site(s)])
}

pub(super) fn determine_country_cahra(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    f: &CountryCahraFinding,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Compliance], "record CAHRA determinations")?;
    check_text("source", &f.source)?;
    let mut risk = state.country_risk(&f.country)?.unwrap_or(CountryRisk {
        country: f.country.clone(),
        cahra: Vec::new(),
    });
    risk.cahra.push(CahraDetermination {
        cahra: f.cahra,
        effective: f.effective,
        source: f.source.clone(),
        by: signer.id.clone(),
        entry: ctx.index,
    });
    Ok(vec![StateValue::CountryRisk(risk)])
}

pub(super) fn create_lot(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    event: &Event,
    c: &LotCreation,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Producer], "create lots")?;
    let s = site(state, &c.site)?;
    if s.operator != signer.id {
        return refuse(
            RuleCode::NotSiteOperator,
            format!(
                "site {} is operated by {}, not {}",
                s.id, s.operator, signer.id
            ),
        );
    }
    if !matches!(c.kind, LotKind::Concentrate | LotKind::Scrap) {
        return refuse(
            RuleCode::InvalidField,
            format!(
                "a lot created at a site is concentrate or scrap, not {:?}",
                c.kind
            ),
        );
    }
    new_lots(state, [&c.lot])?;
    positive("wet", c.wet)?;
    check_assays(&c.assays, s.metal)?;
    if c.produced_from > c.produced_until || c.produced_until > event.time {
        return refuse(
            RuleCode::InvalidField,
            "the production period must end after it starts and not after the event",
        );
    }
    let dry = dry_mass(c.wet, c.moisture);
    let contained = contained(dry, &c.assays);
    let metal_now = contained
        .iter()
        .find(|(e, _)| *e == s.metal)
        .map(|(_, g)| *g)
        .unwrap_or_default();
    // Declared production, in 30-day periods by the end of each lot's
    // production, over the last twelve periods up to this lot's: against
    // the site's yearly capacity (OECD Annex II: volumes that do not fit
    // the mine's known capacity). Only those twelve periods are kept, so a
    // site's record stays small however many lots it declares.
    let period = c.produced_until.as_millis() / PERIOD_MS;
    let latest = s.production.iter().map(|(p, _)| *p).max().unwrap_or(period);
    // Periods older than the kept window can no longer be checked, so a
    // lot declared that far back is refused rather than let through.
    if period + PRODUCTION_PERIODS <= latest {
        return refuse(
            RuleCode::InvalidField,
            format!(
                "the production period ends more than a year before the site's latest declared production ({} days)",
                (latest - period) * (PERIOD_MS / (24 * 60 * 60 * 1000))
            ),
        );
    }
    let mut s = s;
    let newest = latest.max(period);
    s.production
        .retain(|(p, _)| *p + PRODUCTION_PERIODS > newest);
    match s.production.iter_mut().find(|(p, _)| *p == period) {
        Some((_, g)) => g.0 = g.0.saturating_add(metal_now.0),
        None => s.production.push((period, metal_now)),
    }
    let mut raised = Raised::new(ctx);
    let year: u128 = s
        .production
        .iter()
        .filter(|(p, _)| *p <= period)
        .map(|(_, g)| u128::from(g.0))
        .sum();
    let mut flags = Vec::new();
    if year > u128::from(s.annual_capacity.0) {
        flags.push(raised.raise(
            FlagKind::ProductionAboveCapacity,
            state.organisation_of(&signer.id)?,
            Some(&c.lot),
            Some(&s.id),
            Some(&signer.id),
            format!(
                "site {} declared {year} g of {:?} in the twelve 30-day periods to {}, above its capacity of {}",
                s.id, s.metal, c.produced_until, s.annual_capacity
            ),
        ));
    }
    let mut values = raised.into_values();
    values.push(StateValue::Lot(Lot {
        id: c.lot.clone(),
        kind: c.kind,
        metal: s.metal,
        custodian: signer.id.clone(),
        owner: signer.id.clone(),
        status: LotStatus::Held,
        wet: c.wet,
        moisture: c.moisture,
        dry,
        assays: c.assays.clone(),
        assay_stage: AssayStage::Provisional,
        contained,
        origin: Origin::single(s.id.clone()),
        history: vec![ctx.index],
        seller: None,
        documents: Vec::new(),
        corrections: Vec::new(),
        flags,
    }));
    values.push(StateValue::Site(s));
    Ok(values)
}

pub(super) fn record_assay(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    a: &AssayReport,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Assayer], "record assays")?;
    let mut l = live_lot(state, &a.lot)?;
    if a.stage < l.assay_stage {
        return refuse(
            RuleCode::AssayStageRegressed,
            format!(
                "lot {} already has a {:?} assay; a {:?} one cannot replace it",
                l.id, l.assay_stage, a.stage
            ),
        );
    }
    check_assays(&a.assays, l.metal)?;
    if let Some(m) = a.moisture {
        l.moisture = m;
        l.dry = dry_mass(l.wet, m);
    }
    l.assays = a.assays.clone();
    l.assay_stage = a.stage;
    l.contained = contained(l.dry, &l.assays);
    l.history.push(ctx.index);
    Ok(vec![StateValue::Lot(l)])
}

pub(super) fn dispatch(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    d: &Dispatch,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Custodian], "dispatch lots")?;
    let mut l = held_by(state, &d.lot, signer)?;
    let receiver = registered(state, &d.to)?;
    if receiver.id == signer.id {
        return refuse(
            RuleCode::InvalidField,
            "a lot cannot be dispatched to its custodian",
        );
    }
    if !receiver.has_role(Role::Custodian) {
        return refuse(
            RuleCode::NotAuthorized,
            format!(
                "{} cannot hold lots: it lacks the Custodian role",
                receiver.id
            ),
        );
    }
    if d.route.is_empty() {
        return refuse(
            RuleCode::InvalidField,
            "the route must name at least the country the lot leaves from",
        );
    }
    let mut raised = Raised::new(ctx);
    let organisation = state.organisation_of(&signer.id)?;
    let mut checked = Vec::new();
    for country in &d.route {
        if checked.contains(&country) {
            continue;
        }
        checked.push(country);
        if let Some(risk) = state.country_risk(country)?
            && cahra_at(&risk.cahra, ctx.record_time)
        {
            let id = raised.raise(
                FlagKind::CahraTransit,
                organisation.clone(),
                Some(&l.id),
                None,
                None,
                format!("lot {} passes through {country}, determined a CAHRA", l.id),
            );
            l.flags.push(id);
        }
    }
    let cross_border = d.route.windows(2).any(|w| w[0] != w[1]);
    if cross_border
        && !d
            .documents
            .iter()
            .any(|doc| doc.kind == DocumentKind::ExportPermit)
    {
        let id = raised.raise(
            FlagKind::MissingExportDocument,
            organisation,
            Some(&l.id),
            None,
            None,
            format!(
                "lot {} crosses a border ({}) without an export permit",
                l.id,
                d.route
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        );
        l.flags.push(id);
    }
    l.status = LotStatus::InTransit {
        to: d.to.clone(),
        dispatched_in: ctx.index,
    };
    l.history.push(ctx.index);
    let mut values = raised.into_values();
    values.push(StateValue::Lot(l));
    Ok(values)
}

pub(super) fn receive(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    r: &LotReceipt,
) -> Result<Vec<StateValue>, RuleError> {
    let mut l = lot(state, &r.lot)?;
    let LotStatus::InTransit { to, .. } = &l.status else {
        return refuse(
            RuleCode::LotNotInTransit,
            format!("lot {} is not in transit", l.id),
        );
    };
    if *to != signer.id {
        return refuse(
            RuleCode::NotReceiver,
            format!("lot {} was dispatched to {to}, not {}", l.id, signer.id),
        );
    }
    if r.accepted {
        positive("measured_wet", r.measured_wet)?;
    } else {
        check_text("note", &r.note)?;
    }
    let mut raised = Raised::new(ctx);
    if r.accepted {
        let supplier_flags =
            super::compliance::check_delivery(state, ctx, signer, &l, &mut raised)?;
        l.flags.extend(supplier_flags);
        let organisation = state.organisation_of(&signer.id)?;
        // Weight variance between dispatch and receipt, beyond tolerance.
        let diff = l.wet.0.abs_diff(r.measured_wet.0);
        if Ppb::ratio(Grams(diff), l.wet) > WEIGHT_VARIANCE_TOLERANCE {
            let id = raised.raise(
                FlagKind::WeightVariance,
                organisation.clone(),
                Some(&l.id),
                None,
                None,
                format!(
                    "lot {} weighed {} at receipt against {} dispatched (tolerance {WEIGHT_VARIANCE_TOLERANCE})",
                    l.id, r.measured_wet, l.wet
                ),
            );
            l.flags.push(id);
        }
        // Origin red flags for the receiving organisation's register.
        for share in l.origin.shares() {
            let Some(site) = state.site(&share.site)? else {
                continue;
            };
            let findings = [
                (
                    site.cahra_at(ctx.record_time),
                    FlagKind::CahraOrigin,
                    "determined a CAHRA",
                ),
                (
                    site.scale == SiteScale::Artisanal,
                    FlagKind::ArtisanalOrigin,
                    "an artisanal site",
                ),
            ];
            for (found, kind, what) in findings {
                if found {
                    let id = raised.raise(
                        kind,
                        organisation.clone(),
                        Some(&l.id),
                        Some(&site.id),
                        Some(&site.operator),
                        format!(
                            "{} of lot {} comes from site {}, {what}",
                            share.share, l.id, site.id
                        ),
                    );
                    l.flags.push(id);
                }
            }
        }
        // Custody moves; the receiver's weight becomes the lot's, and the
        // dry mass and contained metal follow it in proportion (scaled
        // from the lot's own dry mass, not recomputed from its rounded
        // moisture, so an unchanged weight changes nothing).
        let dry = Grams(scale(l.dry, r.measured_wet, l.wet)?);
        l.contained = scale_contained(&l.contained, dry, l.dry)?;
        l.wet = r.measured_wet;
        l.dry = dry;
        l.custodian = signer.id.clone();
    }
    l.status = LotStatus::Held;
    l.history.push(ctx.index);
    let mut values = raised.into_values();
    values.push(StateValue::Lot(l));
    Ok(values)
}

/// Contained metal carried from dry mass `from` to dry mass `to`:
/// `floor(contained × to / from)` (all zero when `from` is zero).
fn scale_contained(
    contained: &[(Element, Grams)],
    to: Grams,
    from: Grams,
) -> Result<Vec<(Element, Grams)>, RuleError> {
    contained
        .iter()
        .map(|(e, g)| Ok((*e, Grams(scale(*g, to, from)?))))
        .collect()
}

/// Divides `total` among parts in proportion to `weights` (grams).
fn divide(total: Grams, weights: &[Grams]) -> Result<Vec<Grams>, RuleError> {
    let w: Vec<u128> = weights.iter().map(|g| u128::from(g.0)).collect();
    match apportion(total.0, &w) {
        Some(parts) => Ok(parts.into_iter().map(Grams).collect()),
        None => refuse(RuleCode::InvalidQuantity, "quantities overflow"),
    }
}

pub(super) fn split(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    s: &Split,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Processor], "split lots")?;
    let mut parent = held_by(state, &s.lot, signer)?;
    if s.parts.len() < 2 {
        return refuse(RuleCode::InvalidField, "a split needs at least two parts");
    }
    new_lots(state, s.parts.iter().map(|p| &p.lot))?;
    for p in &s.parts {
        positive("part wet", p.wet)?;
    }
    let wets: Vec<Grams> = s.parts.iter().map(|p| p.wet).collect();
    if Grams::sum(wets.iter().copied()) != Some(parent.wet) {
        return refuse(
            RuleCode::MassNotConserved,
            format!("the parts must add up to the lot's {} exactly", parent.wet),
        );
    }
    let drys = divide(parent.dry, &wets)?;
    let mut per_element = Vec::new();
    for (e, g) in &parent.contained {
        per_element.push((*e, divide(*g, &wets)?));
    }
    let mut out = Vec::with_capacity(s.parts.len() + 1);
    for (i, p) in s.parts.iter().enumerate() {
        out.push(StateValue::Lot(Lot {
            id: p.lot.clone(),
            kind: parent.kind,
            metal: parent.metal,
            custodian: parent.custodian.clone(),
            owner: parent.owner.clone(),
            status: LotStatus::Held,
            wet: p.wet,
            moisture: parent.moisture,
            dry: drys[i],
            assays: parent.assays.clone(),
            assay_stage: parent.assay_stage,
            contained: per_element
                .iter()
                .map(|(e, parts)| (*e, parts[i]))
                .collect(),
            origin: parent.origin.clone(),
            history: vec![ctx.index],
            seller: None,
            documents: Vec::new(),
            corrections: Vec::new(),
            flags: parent.flags.clone(),
        }));
    }
    parent.status = LotStatus::Consumed {
        in_entry: ctx.index,
    };
    parent.history.push(ctx.index);
    out.push(StateValue::Lot(parent));
    Ok(out)
}

/// Inputs of a blend or transformation: distinct, held by the signer, of
/// one owner.
fn inputs<'a>(
    state: &impl StateView,
    signer: &Participant,
    ids: impl IntoIterator<Item = &'a LotId>,
) -> Result<Vec<Lot>, RuleError> {
    let mut seen = HashSet::new();
    let mut lots: Vec<Lot> = Vec::new();
    for id in ids {
        if !seen.insert(id) {
            return refuse(RuleCode::InvalidField, format!("lot {id} is named twice"));
        }
        let l = held_by(state, id, signer)?;
        if let Some(first) = lots.first()
            && first.owner != l.owner
        {
            return refuse(
                RuleCode::InvalidField,
                format!(
                    "inputs belong to different owners ({} and {})",
                    first.owner, l.owner
                ),
            );
        }
        lots.push(l);
    }
    Ok(lots)
}

fn add_contained(into: &mut Vec<(Element, Grams)>, e: Element, g: Grams) -> Result<(), RuleError> {
    match into.iter_mut().find(|(x, _)| *x == e) {
        Some((_, total)) => {
            *total = match total.checked_add(g) {
                Some(t) => t,
                None => return refuse(RuleCode::InvalidQuantity, "contained metal overflows"),
            }
        }
        None => into.push((e, g)),
    }
    Ok(())
}

pub(super) fn blend(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    b: &Blend,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Processor], "blend lots")?;
    if b.inputs.len() < 2 {
        return refuse(RuleCode::InvalidField, "a blend needs at least two inputs");
    }
    let lots = inputs(state, signer, &b.inputs)?;
    new_lots(state, [&b.output])?;
    let metal = lots[0].metal;
    if lots.iter().any(|l| l.metal != metal) {
        return refuse(
            RuleCode::InvalidField,
            "blended lots must have the same payable metal",
        );
    }
    let overflow = || refuse(RuleCode::InvalidQuantity, "masses overflow");
    let Some(wet) = Grams::sum(lots.iter().map(|l| l.wet)) else {
        return overflow();
    };
    let Some(dry) = Grams::sum(lots.iter().map(|l| l.dry)) else {
        return overflow();
    };
    let mut total = Vec::new();
    for l in &lots {
        for (e, g) in &l.contained {
            add_contained(&mut total, *e, *g)?;
        }
    }
    let origin_parts: Vec<(&Origin, Grams)> = lots
        .iter()
        .map(|l| (&l.origin, l.contained_of(metal)))
        .collect();
    let Some(origin) = Origin::mix(&origin_parts) else {
        return refuse(
            RuleCode::InvalidQuantity,
            format!("the inputs contain no {metal:?} to trace"),
        );
    };
    let assays = total
        .iter()
        .map(|(e, g)| Assay {
            element: *e,
            grade: Ppb::ratio(*g, dry),
        })
        .collect();
    let stage = lots
        .iter()
        .map(|l| l.assay_stage)
        .min()
        .unwrap_or(AssayStage::Provisional);
    let output = Lot {
        id: b.output.clone(),
        kind: LotKind::Blend,
        metal,
        custodian: signer.id.clone(),
        owner: lots[0].owner.clone(),
        status: LotStatus::Held,
        wet,
        moisture: Ppb::ratio(Grams(wet.0 - dry.0), wet),
        dry,
        assays,
        assay_stage: stage,
        contained: total,
        origin,
        history: vec![ctx.index],
        seller: None,
        documents: Vec::new(),
        corrections: Vec::new(),
        flags: inherited_flags(&lots),
    };
    let mut out: Vec<StateValue> = lots
        .into_iter()
        .map(|mut l| {
            l.status = LotStatus::Consumed {
                in_entry: ctx.index,
            };
            l.history.push(ctx.index);
            StateValue::Lot(l)
        })
        .collect();
    out.push(StateValue::Lot(output));
    Ok(out)
}

pub(super) fn transform(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    t: &Transformation,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Processor], "transform lots")?;
    check_text("process", &t.process)?;
    if t.inputs.is_empty() || t.outputs.is_empty() {
        return refuse(
            RuleCode::InvalidField,
            "a transformation needs inputs and outputs",
        );
    }
    let mut lots = inputs(state, signer, t.inputs.iter().map(|i| &i.lot))?;
    new_lots(state, t.outputs.iter().map(|o| &o.lot))?;
    // What each input gives up: its consumed share of dry mass and metal.
    let mut consumed_metal: Vec<(Element, Grams)> = Vec::new();
    let mut taken: Vec<Vec<(Element, Grams)>> = Vec::with_capacity(lots.len());
    for (l, input) in lots.iter_mut().zip(&t.inputs) {
        positive("consumed_wet", input.consumed_wet)?;
        if input.consumed_wet > l.wet {
            return refuse(
                RuleCode::MassNotConserved,
                format!(
                    "{} taken from lot {}, which holds only {}",
                    input.consumed_wet, l.id, l.wet
                ),
            );
        }
        let consumed_dry = Grams(scale(l.dry, input.consumed_wet, l.wet)?);
        let mut from_this = Vec::new();
        for (e, g) in &l.contained {
            let part = Grams(scale(*g, input.consumed_wet, l.wet)?);
            add_contained(&mut consumed_metal, *e, part)?;
            from_this.push((*e, part));
        }
        // What is left stays in the lot; all of it taken consumes the lot.
        l.wet = Grams(l.wet.0 - input.consumed_wet.0);
        l.dry = Grams(l.dry.0 - consumed_dry.0);
        for (e, g) in l.contained.iter_mut() {
            let part = from_this
                .iter()
                .find(|(x, _)| x == e)
                .map(|(_, p)| *p)
                .unwrap_or_default();
            *g = Grams(g.0 - part.0);
        }
        if l.wet.0 == 0 {
            l.status = LotStatus::Consumed {
                in_entry: ctx.index,
            };
        }
        l.history.push(ctx.index);
        taken.push(from_this);
    }
    let mut outputs = Vec::with_capacity(t.outputs.len());
    let mut produced: Vec<(Element, Grams)> = Vec::new();
    for o in &t.outputs {
        positive("output wet", o.wet)?;
        check_assays(&o.assays, o.metal)?;
        let dry = dry_mass(o.wet, o.moisture);
        let c = contained(dry, &o.assays);
        for (e, g) in &c {
            add_contained(&mut produced, *e, *g)?;
        }
        let parts: Vec<(&Origin, Grams)> = lots
            .iter()
            .zip(&taken)
            .map(|(l, from)| {
                let g = from
                    .iter()
                    .find(|(e, _)| *e == o.metal)
                    .map(|(_, g)| *g)
                    .unwrap_or_default();
                (&l.origin, g)
            })
            .collect();
        let Some(origin) = Origin::mix(&parts) else {
            return refuse(
                RuleCode::MetalExceedsInputs,
                format!(
                    "output {} holds {:?} that no input contained",
                    o.lot, o.metal
                ),
            );
        };
        outputs.push(Lot {
            id: o.lot.clone(),
            kind: o.kind,
            metal: o.metal,
            custodian: signer.id.clone(),
            owner: lots[0].owner.clone(),
            status: LotStatus::Held,
            wet: o.wet,
            moisture: o.moisture,
            dry,
            assays: o.assays.clone(),
            assay_stage: AssayStage::Provisional,
            contained: c,
            origin,
            history: vec![ctx.index],
            seller: None,
            documents: Vec::new(),
            corrections: Vec::new(),
            flags: inherited_flags(&lots),
        });
    }
    let mut raised = Raised::new(ctx);
    for (e, out) in &produced {
        let input = consumed_metal
            .iter()
            .find(|(x, _)| x == e)
            .map(|(_, g)| *g)
            .unwrap_or_default();
        let limit = input.0.saturating_add(TRANSFORM_TOLERANCE.of(input).0);
        if out.0 > limit {
            return refuse(
                RuleCode::MetalExceedsInputs,
                format!(
                    "outputs contain {out} of {e:?}, inputs only {input} (tolerance {TRANSFORM_TOLERANCE})"
                ),
            );
        }
        if out.0 > input.0 {
            let id = raised.raise(
                FlagKind::NearMetalTolerance,
                state.organisation_of(&signer.id)?,
                None,
                None,
                None,
                format!(
                    "{}: outputs contain {out} of {e:?}, inputs {input}: within the assay tolerance only",
                    t.process
                ),
            );
            for o in outputs.iter_mut() {
                o.flags.push(id);
            }
        }
    }
    let mut values = raised.into_values();
    values.extend(lots.into_iter().map(StateValue::Lot));
    values.extend(outputs.into_iter().map(StateValue::Lot));
    Ok(values)
}

/// `floor(value × part / whole)`, zero when `whole` is zero.
fn scale(value: Grams, part: Grams, whole: Grams) -> Result<u64, RuleError> {
    if whole.0 == 0 {
        return Ok(0);
    }
    let v = u128::from(value.0) * u128::from(part.0) / u128::from(whole.0);
    u64::try_from(v).or_else(|_| refuse(RuleCode::InvalidQuantity, "quantities overflow"))
}

pub(super) fn sell(
    state: &impl StateView,
    ctx: Context,
    signer: &Participant,
    s: &Sale,
) -> Result<Vec<StateValue>, RuleError> {
    require_role(signer, &[Role::Seller], "sell lots")?;
    let mut l = live_lot(state, &s.lot)?;
    if l.owner != signer.id {
        return refuse(
            RuleCode::NotOwner,
            format!("lot {} is owned by {}, not {}", l.id, l.owner, signer.id),
        );
    }
    let buyer = registered(state, &s.buyer)?;
    if buyer.id == signer.id || !buyer.has_role(Role::Purchaser) {
        return refuse(
            RuleCode::NotAuthorized,
            format!(
                "{} cannot buy this lot: it needs the Purchaser role and must not be the seller",
                buyer.id
            ),
        );
    }
    l.seller = Some(std::mem::replace(&mut l.owner, buyer.id));
    l.history.push(ctx.index);
    Ok(vec![StateValue::Lot(l)])
}
