//! Sites and lots: where material comes from, and what the ledger knows
//! about each lot now (derived state, rebuilt from the entries).

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::compliance::{AttachedDocument, FlagId};
use super::ids::{CountryCode, IdError, ParticipantId, Timestamp};
use super::quantity::{Assay, AssayStage, BILLION, Element, Grams, Ppb, apportion};

/// An identifier of a site or lot: 1 to 64 characters of `A-Z a-z 0-9 . - _ /`,
/// starting with a letter or digit (for example `KAN-2026-0042`).
fn valid_code(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}

macro_rules! code_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                if valid_code(&id) {
                    Ok(Self(id))
                } else {
                    Err(IdError::Code { what: $what, id })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

code_id!(
    /// A mine, concentrator or recycling site.
    SiteId,
    "site"
);
code_id!(
    /// A lot of material.
    LotId,
    "lot"
);

/// How a site's material is produced, for origin reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum SiteScale {
    LargeScale,
    Artisanal,
    Recycling,
}

/// A dated finding on whether a site lies in a conflict-affected or
/// high-risk area, with its source (for example a named CAHRA list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CahraDetermination {
    pub cahra: bool,
    /// When the determination takes effect.
    pub effective: Timestamp,
    pub source: String,
    /// Who recorded it, and in which entry.
    pub by: ParticipantId,
    pub entry: u64,
}

/// A registered site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Site {
    pub id: SiteId,
    /// The participant that operates the site and creates its lots.
    pub operator: ParticipantId,
    pub name: String,
    pub country: CountryCode,
    /// WGS 84 latitude and longitude in millionths of a degree.
    pub latitude_micro: i32,
    pub longitude_micro: i32,
    pub scale: SiteScale,
    /// The payable metal the site produces.
    pub metal: Element,
    /// Yearly capacity in contained payable metal.
    pub annual_capacity: Grams,
    /// Every CAHRA determination, in entry order.
    pub cahra: Vec<CahraDetermination>,
    pub registered_in: u64,
    /// Declared production of the payable metal in the latest twelve
    /// 30-day periods (period number = end of production in ms / 30 days).
    pub production: Vec<(u64, Grams)>,
}

impl Site {
    /// Whether the latest determination in effect at `at` finds a CAHRA.
    pub fn cahra_at(&self, at: Timestamp) -> bool {
        cahra_at(&self.cahra, at)
    }
}

/// Whether the latest of `determinations` in effect at `at` finds a CAHRA.
pub fn cahra_at(determinations: &[CahraDetermination], at: Timestamp) -> bool {
    determinations
        .iter()
        .filter(|d| d.effective <= at)
        .max_by_key(|d| (d.effective, d.entry))
        .is_some_and(|d| d.cahra)
}

/// CAHRA determinations for a country, for routes through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountryRisk {
    pub country: CountryCode,
    pub cahra: Vec<CahraDetermination>,
}

/// The kinds of lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum LotKind {
    Concentrate,
    Blend,
    Matte,
    Anode,
    Slime,
    Cathode,
    Ingot,
    Scrap,
}

/// A site's share of a lot's payable metal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OriginShare {
    pub site: SiteId,
    pub share: Ppb,
}

/// Origin composition: shares by site, sorted by site id, none zero,
/// adding up to exactly one billion parts per billion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Origin(Vec<OriginShare>);

impl Origin {
    /// All of it from one site.
    pub fn single(site: SiteId) -> Self {
        Origin(vec![OriginShare {
            site,
            share: Ppb::ONE,
        }])
    }

    pub fn shares(&self) -> &[OriginShare] {
        &self.0
    }

    /// Mixes origins in proportion to the payable metal each part brings
    /// (`weight`, in grams), exactly: the result's shares add up to one
    /// (largest-remainder rounding, see `model::quantity`). `None` when
    /// every weight is zero or the arithmetic would overflow.
    pub fn mix(parts: &[(&Origin, Grams)]) -> Option<Origin> {
        let mut by_site: std::collections::BTreeMap<&SiteId, u128> =
            std::collections::BTreeMap::new();
        for (origin, weight) in parts {
            for s in &origin.0 {
                let w = u128::from(s.share.get()).checked_mul(u128::from(weight.0))?;
                let slot = by_site.entry(&s.site).or_insert(0);
                *slot = slot.checked_add(w)?;
            }
        }
        let weights: Vec<u128> = by_site.values().copied().collect();
        if weights.iter().all(|w| *w == 0) {
            return None;
        }
        let shares = apportion(BILLION, &weights)?;
        Some(Origin(
            by_site
                .into_keys()
                .zip(shares)
                .filter(|(_, s)| *s > 0)
                .map(|(site, s)| {
                    Some(OriginShare {
                        site: site.clone(),
                        share: Ppb::new(s).ok()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        ))
    }

    /// Whether the shares are sorted, non-zero and add up to one.
    pub fn is_whole(&self) -> bool {
        let sum: u64 = self.0.iter().map(|s| u64::from(s.share.get())).sum();
        sum == BILLION
            && self.0.iter().all(|s| s.share.get() > 0)
            && self.0.windows(2).all(|w| w[0].site < w[1].site)
    }
}

/// Where a lot is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum LotStatus {
    /// With its custodian, available for dispatch, processing or sale.
    Held,
    /// Dispatched to `to`, awaiting receipt.
    InTransit {
        to: ParticipantId,
        dispatched_in: u64,
    },
    /// Used up by a split, blend or transformation.
    Consumed { in_entry: u64 },
}

/// A lot as the ledger knows it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lot {
    pub id: LotId,
    pub kind: LotKind,
    /// The payable metal its origin shares are counted in.
    pub metal: Element,
    /// Who holds it physically.
    pub custodian: ParticipantId,
    /// Who owns it.
    pub owner: ParticipantId,
    pub status: LotStatus,
    pub wet: Grams,
    pub moisture: Ppb,
    pub dry: Grams,
    /// Latest grades (dry basis) and how settled they are.
    pub assays: Vec<Assay>,
    pub assay_stage: AssayStage,
    /// Contained metal per element; the payable metal's figure is the one
    /// mass balances use. Carried exactly through splits and blends.
    pub contained: Vec<(Element, Grams)>,
    pub origin: Origin,
    /// Entries that concern the lot, in order (creation first).
    pub history: Vec<u64>,
    /// The owner before the latest sale.
    pub seller: Option<ParticipantId>,
    /// Documents attached after the fact (those carried by dispatches,
    /// receipts and sales stay in their events).
    pub documents: Vec<AttachedDocument>,
    /// Corrections naming the lot: (correcting entry, corrected entry, reason).
    pub corrections: Vec<(u64, u64, String)>,
    /// Red flags raised on this lot or on the lots it was made from.
    pub flags: Vec<FlagId>,
}

impl Lot {
    /// Contained grams of `element`, zero when not assayed.
    pub fn contained_of(&self, element: Element) -> Grams {
        self.contained
            .iter()
            .find(|(e, _)| *e == element)
            .map(|(_, g)| *g)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(s: &str) -> SiteId {
        SiteId::new(s).unwrap()
    }

    #[test]
    fn ids_are_checked() {
        assert!(LotId::new("KAN-2026/0042").is_ok());
        assert!(LotId::new("").is_err());
        assert!(LotId::new("-x").is_err());
        assert!(SiteId::new("a b").is_err());
    }

    #[test]
    fn mixing_origins_weights_by_metal_and_stays_whole() {
        let a = Origin::single(site("A"));
        let b = Origin::single(site("B"));
        let ab = Origin::mix(&[(&a, Grams(1)), (&b, Grams(2))]).unwrap();
        assert_eq!(
            ab.shares()
                .iter()
                .map(|s| s.share.get())
                .collect::<Vec<_>>(),
            vec![333_333_333, 666_666_667]
        );
        assert!(ab.is_whole());
        let abc = Origin::mix(&[(&ab, Grams(3)), (&Origin::single(site("C")), Grams(1))]).unwrap();
        assert!(abc.is_whole());
        assert_eq!(abc.shares().len(), 3);
        assert_eq!(Origin::mix(&[(&a, Grams(0))]), None);
    }

    #[test]
    fn cahra_status_follows_the_latest_determination_in_effect() {
        let mut s = Site {
            id: site("M"),
            operator: ParticipantId::new("mine").unwrap(),
            name: "M".into(),
            country: CountryCode::new("CD").unwrap(),
            latitude_micro: 0,
            longitude_micro: 0,
            scale: SiteScale::LargeScale,
            metal: Element::Cu,
            annual_capacity: Grams(1),
            cahra: vec![],
            registered_in: 1,
            production: vec![],
        };
        let det = |cahra, ms, entry| CahraDetermination {
            cahra,
            effective: Timestamp::from_millis(ms),
            source: "list".into(),
            by: ParticipantId::new("c").unwrap(),
            entry,
        };
        assert!(!s.cahra_at(Timestamp::from_millis(10)));
        s.cahra.push(det(true, 5, 2));
        s.cahra.push(det(false, 20, 3));
        assert!(!s.cahra_at(Timestamp::from_millis(4)));
        assert!(s.cahra_at(Timestamp::from_millis(10)));
        assert!(!s.cahra_at(Timestamp::from_millis(25)));
    }
}
