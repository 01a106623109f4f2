//! Backward trace of one lot: the graph of lots it was made from, the
//! mines its payable metal came from (from the lot's exact origin shares,
//! which the rules carry through every split, blend and transformation),
//! and what a buyer reports from them: shares by country, CAHRA,
//! artisanal and recycled exposure, and the red flags behind the lot.
//! Pure: the caller reads the lot's state and picks the time statuses are
//! judged at.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CatalogError;
use super::tables::{FlagSummary, LinkView, Tables, UpstreamLot};
use crate::model::{
    CahraDetermination, CountryCode, Element, Lot, LotId, ParticipantId, Ppb, SiteId, SiteScale,
    Timestamp, cahra_at,
};

/// A mine (or concentrator, or recycling site) behind a lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Mine {
    pub site: SiteId,
    pub name: String,
    pub operator: ParticipantId,
    pub country: CountryCode,
    pub scale: SiteScale,
    /// Whether the determination in effect at the trace's `as_of` time
    /// finds the site in a CAHRA.
    pub cahra: bool,
    /// Every CAHRA determination on record, in entry order.
    pub determinations: Vec<CahraDetermination>,
    /// Share of the lot's payable metal from this site, parts per billion.
    pub share: Ppb,
}

/// A country's share of a lot's payable metal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CountryShare {
    pub country: CountryCode,
    pub share: Ppb,
}

/// What a buyer reports about a lot's origin. Shares are parts per
/// billion of the lot's payable metal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Aggregates {
    /// By country of the site, largest first (ties by country code).
    pub countries: Vec<CountryShare>,
    /// From sites in a CAHRA at `as_of`.
    pub cahra_share: Ppb,
    pub large_scale_share: Ppb,
    pub artisanal_share: Ppb,
    pub recycled_share: Ppb,
    /// Red flags raised on the lot or on the lots it was made from (before
    /// it was made from them), in the order raised.
    pub flags: Vec<FlagSummary>,
}

/// The backward graph of a lot to its mines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Provenance {
    pub lot: LotId,
    /// The payable metal the shares are counted in.
    pub metal: Element,
    /// The time CAHRA statuses are judged at.
    pub as_of: Timestamp,
    /// The lot first, then the lots it was made from, breadth first.
    pub nodes: Vec<UpstreamLot>,
    /// One per child and parent, with the share of the child's payable
    /// metal the parent brought.
    pub edges: Vec<LinkView>,
    /// Largest share first (ties by site id).
    pub mines: Vec<Mine>,
    pub aggregates: Aggregates,
}

/// The provenance of `lot` (its state now) over the catalog's graph.
/// `None` when the catalog does not know the lot yet.
pub fn provenance(
    tables: &Tables,
    lot: &Lot,
    as_of: Timestamp,
) -> Result<Option<Provenance>, CatalogError> {
    let Some(graph) = tables.upstream(&lot.id) else {
        return Ok(None);
    };
    let mut mines = Vec::with_capacity(lot.origin.shares().len());
    for share in lot.origin.shares() {
        let site = tables
            .site(&share.site)
            .ok_or_else(|| CatalogError::Inconsistent {
                index: tables.applied(),
                reason: format!("lot {} comes from unknown site {}", lot.id, share.site),
            })?;
        mines.push(Mine {
            cahra: cahra_at(&site.cahra, as_of),
            site: site.id,
            name: site.name,
            operator: site.operator,
            country: site.country,
            scale: site.scale,
            determinations: site.cahra,
            share: share.share,
        });
    }
    mines.sort_by(|a, b| b.share.cmp(&a.share).then_with(|| a.site.cmp(&b.site)));
    let aggregates = aggregate(
        &mines,
        lot.flags.iter().filter_map(|id| tables.flag(*id)).collect(),
    )?;
    Ok(Some(Provenance {
        lot: lot.id.clone(),
        metal: lot.metal,
        as_of,
        nodes: graph.nodes,
        edges: graph.edges,
        mines,
        aggregates,
    }))
}

fn aggregate(mines: &[Mine], flags: Vec<FlagSummary>) -> Result<Aggregates, CatalogError> {
    // Origin shares add up to exactly 10^9, so no sum of them overflows
    // a share.
    let sum = |pick: &dyn Fn(&Mine) -> bool| -> Result<Ppb, CatalogError> {
        let total: u64 = mines
            .iter()
            .filter(|m| pick(m))
            .map(|m| u64::from(m.share.get()))
            .sum();
        Ppb::new(total).map_err(|e| CatalogError::Inconsistent {
            index: 0,
            reason: format!("origin shares add up to more than one: {e}"),
        })
    };
    let mut by_country: BTreeMap<&CountryCode, u64> = BTreeMap::new();
    for m in mines {
        *by_country.entry(&m.country).or_default() += u64::from(m.share.get());
    }
    let mut countries = by_country
        .into_iter()
        .map(|(country, share)| {
            Ok(CountryShare {
                country: country.clone(),
                share: Ppb::new(share).map_err(|e| CatalogError::Inconsistent {
                    index: 0,
                    reason: e.to_string(),
                })?,
            })
        })
        .collect::<Result<Vec<_>, CatalogError>>()?;
    countries.sort_by(|a, b| {
        b.share
            .cmp(&a.share)
            .then_with(|| a.country.cmp(&b.country))
    });
    Ok(Aggregates {
        countries,
        cahra_share: sum(&|m| m.cahra)?,
        large_scale_share: sum(&|m| m.scale == SiteScale::LargeScale)?,
        artisanal_share: sum(&|m| m.scale == SiteScale::Artisanal)?,
        recycled_share: sum(&|m| m.scale == SiteScale::Recycling)?,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(site: &str, country: &str, scale: SiteScale, cahra: bool, share: u64) -> Mine {
        Mine {
            site: SiteId::new(site).unwrap(),
            name: site.into(),
            operator: ParticipantId::new("op").unwrap(),
            country: CountryCode::new(country).unwrap(),
            scale,
            cahra,
            determinations: Vec::new(),
            share: Ppb::new(share).unwrap(),
        }
    }

    #[test]
    fn aggregates_sum_shares_by_country_and_exposure() {
        let mines = [
            mine("A", "CD", SiteScale::Artisanal, true, 100_000_000),
            mine("B", "CD", SiteScale::LargeScale, true, 300_000_000),
            mine("C", "ZM", SiteScale::LargeScale, false, 450_000_000),
            mine("D", "FI", SiteScale::Recycling, false, 150_000_000),
        ];
        let a = aggregate(&mines, Vec::new()).unwrap();
        let countries: Vec<(&str, u32)> = a
            .countries
            .iter()
            .map(|c| (c.country.as_str(), c.share.get()))
            .collect();
        assert_eq!(
            countries,
            vec![
                ("ZM", 450_000_000),
                ("CD", 400_000_000),
                ("FI", 150_000_000)
            ]
        );
        assert_eq!(a.cahra_share.get(), 400_000_000);
        assert_eq!(a.artisanal_share.get(), 100_000_000);
        assert_eq!(a.large_scale_share.get(), 750_000_000);
        assert_eq!(a.recycled_share.get(), 150_000_000);
    }
}
