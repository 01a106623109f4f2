//! The masses and contained metal of live lots, followed entry by entry
//! with the published rounding rules (`schemas/EVENTS.md`, "Quantities and
//! rounding"), so the catalog knows how much payable metal each input of a
//! blend or transformation brought to each output: the weights the rules
//! mixed the output's origin by. The rules do not record those weights,
//! and the lots' state in the index holds only their latest values.
//!
//! Only entries that the rules accepted are followed, so the arithmetic
//! cannot fail on a sound log; where it would (an overflow, a lot taken
//! beyond its mass), the functions return `None` and the catalog reports
//! the entry instead of guessing.

use crate::model::{Assay, Element, Grams, Ppb, apportion, contained, dry_mass};

/// A live lot's quantities, as the rules hold them after each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantities {
    pub wet: Grams,
    pub dry: Grams,
    /// Contained grams per element, in the rules' order.
    pub contained: Vec<(Element, Grams)>,
}

impl Quantities {
    /// A lot created at a site, or an output of a transformation.
    pub fn assayed(wet: Grams, moisture: Ppb, assays: &[Assay]) -> Self {
        let dry = dry_mass(wet, moisture);
        Self {
            wet,
            dry,
            contained: contained(dry, assays),
        }
    }

    pub fn contained_of(&self, element: Element) -> Grams {
        self.contained
            .iter()
            .find(|(e, _)| *e == element)
            .map(|(_, g)| *g)
            .unwrap_or_default()
    }

    /// An assay replaces the grades, and a moisture determination the dry
    /// mass; contained metal follows from both.
    pub fn reassay(&mut self, moisture: Option<Ppb>, assays: &[Assay]) {
        if let Some(m) = moisture {
            self.dry = dry_mass(self.wet, m);
        }
        self.contained = contained(self.dry, assays);
    }

    /// An accepted receipt: the measured wet mass becomes the lot's, dry
    /// mass and contained metal scale with it.
    pub fn receive(&mut self, measured: Grams) -> Option<()> {
        let dry = scale(self.dry, measured, self.wet)?;
        for (_, g) in self.contained.iter_mut() {
            *g = scale(*g, dry, self.dry)?;
        }
        self.wet = measured;
        self.dry = dry;
        Some(())
    }

    /// The parts of a split, by wet mass (exact apportioning).
    pub fn split(&self, wets: &[Grams]) -> Option<Vec<Quantities>> {
        let weights: Vec<u128> = wets.iter().map(|g| u128::from(g.0)).collect();
        let drys = apportion(self.dry.0, &weights)?;
        let mut per_element = Vec::with_capacity(self.contained.len());
        for (e, g) in &self.contained {
            per_element.push((*e, apportion(g.0, &weights)?));
        }
        Some(
            wets.iter()
                .enumerate()
                .map(|(i, wet)| Quantities {
                    wet: *wet,
                    dry: Grams(drys[i]),
                    contained: per_element
                        .iter()
                        .map(|(e, parts)| (*e, Grams(parts[i])))
                        .collect(),
                })
                .collect(),
        )
    }

    /// A blend: the sums of the inputs, contained metal in first-seen order.
    pub fn blend<'a>(inputs: impl IntoIterator<Item = &'a Quantities>) -> Option<Quantities> {
        let mut out = Quantities {
            wet: Grams(0),
            dry: Grams(0),
            contained: Vec::new(),
        };
        for q in inputs {
            out.wet = out.wet.checked_add(q.wet)?;
            out.dry = out.dry.checked_add(q.dry)?;
            for (e, g) in &q.contained {
                add(&mut out.contained, *e, *g)?;
            }
        }
        Some(out)
    }

    /// Takes `consumed_wet` of the lot into a transformation: returns the
    /// contained metal taken, per element, and leaves the rest.
    pub fn take(&mut self, consumed_wet: Grams) -> Option<Vec<(Element, Grams)>> {
        if consumed_wet > self.wet {
            return None;
        }
        let consumed_dry = scale(self.dry, consumed_wet, self.wet)?;
        let mut taken = Vec::with_capacity(self.contained.len());
        for (e, g) in self.contained.iter_mut() {
            let part = scale(*g, consumed_wet, self.wet)?;
            *g = g.checked_sub(part)?;
            taken.push((*e, part));
        }
        self.wet = self.wet.checked_sub(consumed_wet)?;
        self.dry = self.dry.checked_sub(consumed_dry)?;
        Some(taken)
    }
}

/// `floor(value × part / whole)`, zero when `whole` is zero (the rules'
/// `scale`).
fn scale(value: Grams, part: Grams, whole: Grams) -> Option<Grams> {
    if whole.0 == 0 {
        return Some(Grams(0));
    }
    let v = u128::from(value.0) * u128::from(part.0) / u128::from(whole.0);
    u64::try_from(v).ok().map(Grams)
}

fn add(into: &mut Vec<(Element, Grams)>, e: Element, g: Grams) -> Option<()> {
    match into.iter_mut().find(|(x, _)| *x == e) {
        Some((_, total)) => *total = total.checked_add(g)?,
        None => into.push((e, g)),
    }
    Some(())
}

/// Each part's share of the whole, in parts per billion, adding up to
/// exactly one (largest-remainder rounding); all zero when every part is.
pub(super) fn shares(parts: &[Grams]) -> Option<Vec<Ppb>> {
    let weights: Vec<u128> = parts.iter().map(|g| u128::from(g.0)).collect();
    apportion(crate::model::BILLION, &weights)?
        .into_iter()
        .map(|s| Ppb::new(s).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assays(cu_ppb: u64) -> Vec<Assay> {
        vec![Assay {
            element: Element::Cu,
            grade: Ppb::new(cu_ppb).unwrap(),
        }]
    }

    #[test]
    fn creation_and_reassay_follow_the_published_rounding() {
        // 1,000,001 g wet at 8 % moisture: dry = 1,000,001 - 80,000 = 920,001
        // (floor of 80,000.08); 25 % Cu of it is floor(230,000.25) g.
        let mut q = Quantities::assayed(
            Grams(1_000_001),
            Ppb::new(80_000_000).unwrap(),
            &assays(250_000_000),
        );
        assert_eq!((q.wet, q.dry), (Grams(1_000_001), Grams(920_001)));
        assert_eq!(q.contained_of(Element::Cu), Grams(230_000));
        q.reassay(None, &assays(200_000_000));
        assert_eq!(q.contained_of(Element::Cu), Grams(184_000));
        q.reassay(Some(Ppb::new(100_000_000).unwrap()), &assays(200_000_000));
        assert_eq!(q.dry, Grams(900_001));
        assert_eq!(q.contained_of(Element::Cu), Grams(180_000));
    }

    #[test]
    fn a_receipt_scales_dry_mass_and_metal_with_the_measured_weight() {
        let mut q = Quantities {
            wet: Grams(1000),
            dry: Grams(900),
            contained: vec![(Element::Cu, Grams(300))],
        };
        q.receive(Grams(990)).unwrap();
        // dry = floor(900 × 990 / 1000) = 891; Cu = floor(300 × 891 / 900) = 297.
        assert_eq!(
            (q.wet, q.dry, q.contained_of(Element::Cu)),
            (Grams(990), Grams(891), Grams(297))
        );
    }

    #[test]
    fn splits_blends_and_takes_conserve_exactly() {
        let q = Quantities {
            wet: Grams(10),
            dry: Grams(7),
            contained: vec![(Element::Cu, Grams(5)), (Element::Au, Grams(1))],
        };
        let parts = q.split(&[Grams(3), Grams(3), Grams(4)]).unwrap();
        let back = Quantities::blend(&parts).unwrap();
        assert_eq!(back.wet, q.wet);
        assert_eq!(back.dry, q.dry);
        assert_eq!(back.contained, q.contained);

        let mut whole = q.clone();
        let taken = whole.take(Grams(4)).unwrap();
        // floor(5 × 4 / 10) = 2 Cu and floor(1 × 4 / 10) = 0 Au taken.
        assert_eq!(
            taken,
            vec![(Element::Cu, Grams(2)), (Element::Au, Grams(0))]
        );
        assert_eq!(whole.wet, Grams(6));
        assert_eq!(whole.contained_of(Element::Cu), Grams(3));
        assert_eq!(whole.take(Grams(7)), None, "more than the lot holds");
    }

    #[test]
    fn shares_add_up_to_one_exactly() {
        let s = shares(&[Grams(1), Grams(2)]).unwrap();
        assert_eq!(
            s,
            vec![
                Ppb::new(333_333_333).unwrap(),
                Ppb::new(666_666_667).unwrap()
            ]
        );
        assert_eq!(
            shares(&[Grams(0), Grams(0)]).unwrap(),
            vec![Ppb::ZERO, Ppb::ZERO]
        );
    }
}
