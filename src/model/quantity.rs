//! Quantities without floats: masses in integer grams, grades and shares
//! in integer parts per billion, with documented integer rounding.
//!
//! Rounding rules (also in `schemas/ENCODING.md`):
//! - dry mass = wet − floor(wet × moisture / 10^9);
//! - contained metal = floor(dry × grade / 10^9);
//! - a quantity divided among parts in proportion to weights gives each
//!   part floor(total × weight / Σ weights) and hands the grams left over,
//!   one each, to the parts with the largest remainders (ties to the
//!   earlier part), so the parts always add up to the total exactly.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One billion: the denominator of [`Ppb`].
pub const BILLION: u64 = 1_000_000_000;

/// A mass in grams.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
)]
pub struct Grams(pub u64);

impl Grams {
    pub fn checked_add(self, other: Grams) -> Option<Grams> {
        self.0.checked_add(other.0).map(Grams)
    }
    pub fn checked_sub(self, other: Grams) -> Option<Grams> {
        self.0.checked_sub(other.0).map(Grams)
    }
    /// Sum of many masses, `None` on overflow.
    pub fn sum(masses: impl IntoIterator<Item = Grams>) -> Option<Grams> {
        masses
            .into_iter()
            .try_fold(Grams(0), |acc, m| acc.checked_add(m))
    }
}

impl fmt::Display for Grams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} g", self.0)
    }
}

/// A fraction in parts per billion, from 0 to 10^9 inclusive: grades
/// (25.5 % Cu is 255,000,000; 3.21 g/t Au is 3,210), moisture and shares.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Ppb(u32);

/// A fraction above one billion parts per billion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} parts per billion is more than the whole (1,000,000,000)")]
pub struct PpbError(pub u64);

impl Ppb {
    pub const ZERO: Ppb = Ppb(0);
    pub const ONE: Ppb = Ppb(BILLION as u32);

    /// A constant fraction; `ppb` above one billion is a compile error
    /// where used in a constant.
    pub const fn from_const(ppb: u32) -> Self {
        assert!(ppb as u64 <= BILLION, "more than one billion ppb");
        Self(ppb)
    }

    pub fn new(ppb: u64) -> Result<Self, PpbError> {
        if ppb <= BILLION {
            Ok(Self(ppb as u32))
        } else {
            Err(PpbError(ppb))
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
    /// `floor(mass × self / 10^9)`.
    pub fn of(self, mass: Grams) -> Grams {
        Grams(((mass.0 as u128 * self.0 as u128) / BILLION as u128) as u64)
    }
    /// `floor(part / whole × 10^9)`, or zero when `whole` is zero.
    pub fn ratio(part: Grams, whole: Grams) -> Ppb {
        if whole.0 == 0 {
            return Ppb::ZERO;
        }
        let r = (part.0.min(whole.0) as u128 * BILLION as u128) / whole.0 as u128;
        Ppb(r as u32)
    }
}

impl TryFrom<u32> for Ppb {
    type Error = PpbError;
    fn try_from(v: u32) -> Result<Self, PpbError> {
        Ppb::new(u64::from(v))
    }
}

impl From<Ppb> for u32 {
    fn from(p: Ppb) -> u32 {
        p.0
    }
}

impl fmt::Display for Ppb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ppb", self.0)
    }
}

/// Dry mass: `wet − floor(wet × moisture / 10^9)`.
pub fn dry_mass(wet: Grams, moisture: Ppb) -> Grams {
    Grams(wet.0 - moisture.of(wet).0)
}

/// Divides `total` among parts in proportion to `weights`, exactly: the
/// parts add up to `total` (largest-remainder rounding, ties to the earlier
/// part). All parts are zero when the weights are all zero. `None` when
/// `total × weight` or the sum of weights would not fit in 128 bits.
pub fn apportion(total: u64, weights: &[u128]) -> Option<Vec<u64>> {
    let sum = weights
        .iter()
        .try_fold(0u128, |acc, w| acc.checked_add(*w))?;
    if sum == 0 {
        return Some(vec![0; weights.len()]);
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (i, w) in weights.iter().enumerate() {
        let product = u128::from(total).checked_mul(*w)?;
        let (q, r) = (product / sum, product % sum);
        given += q;
        parts.push(q as u64);
        remainders.push((r, i));
    }
    let mut left = u128::from(total) - given;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    Some(parts)
}

/// Chemical elements that assays report: the payable metals and the
/// penalty elements smelters price in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Element {
    Cu,
    Zn,
    Pb,
    Au,
    Ag,
    As,
    Bi,
    Sb,
    Cd,
    Hg,
    F,
    Cl,
}

/// One element's grade in a lot (dry basis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Assay {
    pub element: Element,
    pub grade: Ppb,
}

/// How far an assay result is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum AssayStage {
    Provisional,
    Final,
    Umpire,
}

/// Contained metal per element: `floor(dry × grade / 10^9)` for each assay.
pub fn contained(dry: Grams, assays: &[Assay]) -> Vec<(Element, Grams)> {
    assays
        .iter()
        .map(|a| (a.element, a.grade.of(dry)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grades_are_exact_and_rounding_is_down() {
        // 25.5 % Cu of 1,000,000 g dry is exactly 255,000 g.
        let cu = Ppb::new(255_000_000).unwrap();
        assert_eq!(cu.of(Grams(1_000_000)), Grams(255_000));
        // 3.21 g/t Au of 1 t is 3.21 g: floor to 3 g.
        assert_eq!(Ppb::new(3_210).unwrap().of(Grams(1_000_000)), Grams(3));
        assert_eq!(
            dry_mass(Grams(1_000_001), Ppb::new(80_000_000).unwrap()),
            Grams(920_001)
        );
        assert!(Ppb::new(BILLION + 1).is_err());
    }

    #[test]
    fn apportion_hands_out_remainders_to_the_largest() {
        assert_eq!(apportion(10, &[1, 1, 1]), Some(vec![4, 3, 3]));
        assert_eq!(apportion(10, &[0, 0]), Some(vec![0, 0]));
        assert_eq!(apportion(7, &[2, 5]), Some(vec![2, 5]));
        assert_eq!(
            apportion(BILLION, &[1, 2]),
            Some(vec![333_333_333, 666_666_667])
        );
        assert_eq!(apportion(u64::MAX, &[u128::MAX / 2, 1]), None);
    }

    proptest! {
        #[test]
        fn apportion_always_sums_to_the_total(
            total in any::<u64>(),
            weights in proptest::collection::vec(any::<u64>(), 1..12),
        ) {
            let weights: Vec<u128> = weights.into_iter().map(u128::from).collect();
            let parts = apportion(total, &weights).unwrap();
            let sum: u128 = parts.iter().map(|p| u128::from(*p)).sum();
            if weights.iter().all(|w| *w == 0) {
                prop_assert_eq!(sum, 0);
            } else {
                prop_assert_eq!(sum, u128::from(total));
            }
        }
    }
}
