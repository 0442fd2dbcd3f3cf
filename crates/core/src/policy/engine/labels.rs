//! Labels under the scheme: resolving a label to ranks and masks, saying
//! which field of a label does not fit the scheme and what is allowed
//! there, and whether the item label dominates a portion label. It never
//! looks at a recipient.

use super::*;
use crate::domain::decision::ItemFacts;

impl Policy {
    /// Resolves a label under the scheme, or says why it is not well formed
    /// (the reason a decision gives).
    pub(super) fn label_ctx(&self, l: &SecurityLabel) -> Result<LabelCtx, String> {
        self.resolve_label(l).map_err(|f| match f {
            LabelFault::Shape(e) => e.to_string(),
            LabelFault::Level => format!(
                "level {:?} is not a level of the {} scheme",
                l.level, self.scheme_name
            ),
            LabelFault::Caveat(c) => format!("caveat {c:?} is not declared by the policy"),
            LabelFault::OriginAgency => format!(
                "originator agency {} is not an agency of this gateway",
                l.originator.agency
            ),
            LabelFault::Marking => {
                "it is marked Diffusion restreinte and the policy declares no such marking".into()
            }
        })
    }

    /// What a sender reads when a label does not fit the scheme: the field
    /// (relative to the label) and the values the scheme allows there.
    pub(super) fn label_field_error(&self, l: &SecurityLabel, fault: LabelFault<'_>) -> FieldError {
        // Allowed values are the policy's, so bounded by it; the list is cut
        // all the same, since it is written to the audit log with the refusal.
        const ALLOWED: usize = 600;
        match fault {
            LabelFault::Shape(e) => e,
            LabelFault::Level => FieldError::new(
                "level",
                format!(
                    "{:?} is not a level of the {} scheme; allowed (lowest first, any letter case): {}",
                    l.level,
                    self.scheme_name,
                    bounds::list(
                        self.levels.iter().flat_map(|v| {
                            v.names.iter().chain(&v.eu).chain(&v.nato).map(String::as_str)
                        }),
                        ALLOWED
                    )
                ),
            ),
            LabelFault::Caveat(c) => FieldError::new(
                "caveats",
                format!(
                    "{c:?} is not a caveat of the policy; allowed: {}",
                    if self.caveats.is_empty() {
                        "none".to_string()
                    } else {
                        bounds::list(self.caveats.iter().map(String::as_str), ALLOWED)
                    }
                ),
            ),
            LabelFault::OriginAgency => FieldError::new(
                "originator.agency",
                format!(
                    "{:?} is not an agency of this gateway; allowed: {}",
                    l.originator.agency.as_str(),
                    bounds::list(self.agencies.iter().map(|a| a.agency.as_str()), ALLOWED)
                ),
            ),
            LabelFault::Marking => FieldError::new(
                "diffusion_restreinte",
                "the policy in force declares no Diffusion restreinte marking; leave it out",
            ),
        }
    }

    /// Resolves a label under the scheme: its shape and bounds, its level,
    /// its caveats and its originating agency must be the scheme's. A
    /// third-party originator the policy does not know is well formed: the
    /// third-party rule then keeps the material inside its agency.
    pub(super) fn resolve_label<'l>(
        &self,
        l: &'l SecurityLabel,
    ) -> Result<LabelCtx, LabelFault<'l>> {
        l.check_shape().map_err(LabelFault::Shape)?;
        let rank = self.rank_of(&l.level).ok_or(LabelFault::Level)?;
        let mut caveats: Mask = 0;
        for c in &l.caveats {
            match self.caveat_by_name.get(c) {
                Some(&b) => caveats |= 1 << b,
                None => return Err(LabelFault::Caveat(c)),
            }
        }
        let origin_agency = *self
            .agency_by_name
            .get(l.originator.agency.as_str())
            .ok_or(LabelFault::OriginAgency)?;
        let handling = match l.handling {
            Some(HandlingCode::H0) => 1,
            Some(HandlingCode::H1) => 2,
            Some(HandlingCode::H2) => 4,
            Some(HandlingCode::H3) => 8,
            None => NO_HANDLING,
        };
        let third_party = l
            .originator
            .third_party
            .as_ref()
            .map(|t| self.third_party_by_id.get(t).copied());
        if l.diffusion_restreinte && self.diffusion_restreinte.is_none() {
            return Err(LabelFault::Marking);
        }
        Ok(LabelCtx {
            rank,
            caveats,
            handling,
            origin_agency,
            third_party,
            marked: l.diffusion_restreinte,
        })
    }

    /// Checks, for the sender, what the decision's first two mandatory rules
    /// check (`mandatory.label_well_formed`, `mandatory.label_consistency`):
    /// every label fits the scheme in force and the item label dominates
    /// every portion label. The error names the field and what is allowed.
    pub fn check_labels(&self, facts: &ItemFacts<'_>) -> Result<(), FieldError> {
        let item_label = &facts.manifest.label;
        let item = self
            .resolve_label(item_label)
            .map_err(|f| self.label_field_error(item_label, f).within("label"))?;
        for (i, l) in facts.portion_labels.iter().enumerate() {
            let at = format!("portions[{i}].label");
            let c = self
                .resolve_label(l)
                .map_err(|f| self.label_field_error(l, f).within(&at))?;
            if let Some(why) = Self::dominance(item_label, &item, l, &c) {
                return Err(FieldError::new(
                    at,
                    format!("the item label must dominate every portion label and does not dominate this one: {why}"),
                ));
            }
        }
        Ok(())
    }

    /// Why the item label does not dominate a portion label, if it does not.
    pub(super) fn dominance(
        item: &SecurityLabel,
        i: &LabelCtx,
        p: &SecurityLabel,
        pc: &LabelCtx,
    ) -> Option<String> {
        if pc.rank > i.rank {
            return Some("its level is above the item's level".into());
        }
        if pc.caveats & !i.caveats != 0 {
            return Some("it carries a caveat the item label does not".into());
        }
        if !p.rel_to.is_empty() && (item.rel_to.is_empty() || !item.rel_to.is_subset(&p.rel_to)) {
            return Some("its REL TO is narrower than the item's".into());
        }
        if p.handling.is_some() && item.handling.is_none() {
            return Some("it carries a handling code and the item label does not".into());
        }
        if p.diffusion_restreinte && !item.diffusion_restreinte {
            return Some("it is marked Diffusion restreinte and the item label is not".into());
        }
        // A purpose-bound marking travels with every portion: a portion
        // released on its own still says what it may be used for.
        if item.diffusion_restreinte && !p.diffusion_restreinte {
            return Some(
                "the item is marked Diffusion restreinte and this portion is not: the marking travels with every portion".into(),
            );
        }
        None
    }
}
