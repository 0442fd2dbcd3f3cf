//! The compiled, immutable policy: interned ids and indexed rules.
//!
//! A [`Policy`] is built only by the loader after every check has passed, and
//! never changes afterwards: a reload builds a new one. This module owns the
//! compiled representation and the read-only lookups the gateway needs
//! (principals, agency bindings, retention, digest). It does no I/O and never
//! decides anything itself (that is [`super::engine`]).
//!
//! One file of about 700 lines on purpose: it is the policy's vocabulary,
//! declarations and their lookups with no logic to speak of, and splitting
//! the types from the lookups that read their private fields would only
//! widen those fields' visibility.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::domain::item::{Header, Priority};
use crate::domain::principal::{Agency, PrincipalId};

/// The word for a priority in the policy files.
pub(crate) fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Flash => "FLASH",
        Priority::Urgent => "URGENT",
        Priority::Routine => "ROUTINE",
    }
}

/// A fast, deterministic hasher (FxHash) for the compiled policy's lookup
/// tables. The tables are built from the policy alone and never grow at
/// decision time: a sender can only look keys up, so a weak hash gives it no
/// way to degrade them, and lookups stay cheap on the hot path.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The map type of the compiled policy's lookup tables.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Index of a level in the scheme: higher is more sensitive.
pub(crate) type Rank = u8;

/// A small set of interned names (caveats, purposes), as a bit mask.
pub(crate) type Mask = u128;

/// The most caveats or purposes a policy may declare (bits in a mask).
pub const MAX_INTERNED: usize = 128;

/// A classification level of the scheme.
#[derive(Clone, Debug, Serialize)]
pub struct Level {
    /// Stable id used in the policy files (`secret`).
    pub id: String,
    /// Position in the scheme, 0 being the lowest.
    pub rank: u8,
    /// National names, French and Dutch (`SECRET`, `GEHEIM`).
    pub names: Vec<String>,
    /// Declared EU equivalents (`SECRET UE`, `EU SECRET`).
    pub eu: Vec<String>,
    /// Declared NATO equivalents (`NATO SECRET`).
    pub nato: Vec<String>,
    /// How long material at this level is kept, in days, when declared.
    pub retention_days: Option<u32>,
}

impl Level {
    /// The first national name, for messages.
    pub fn display_name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.id)
    }
}

/// An agency and the SPIFFE trust domain its certificates may name. The
/// CA that issues them is bound in the gateway configuration, which must
/// give the same trust domain (the gateway refuses one that does not).
#[derive(Clone, Debug, Serialize)]
pub struct AgencyBinding {
    /// The agency (`police`).
    pub agency: Agency,
    /// Display name.
    pub name: String,
    /// SPIFFE trust domain of the agency's certificates (`police.example`).
    pub trust_domain: String,
}

/// What kind of principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A station, e.g. a liaison post abroad.
    Station,
    /// A desk at headquarters.
    Desk,
    /// A named person.
    Person,
}

/// Which audit proofs a principal may read (`audit = "all" | "own"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditScope {
    /// Every entry of the log: oversight bodies.
    All,
    /// Only the entries that concern it (as sender, recipient or caller).
    Own,
}

impl AuditScope {
    /// The word used in the policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditScope::All => "all",
            AuditScope::Own => "own",
        }
    }
}

/// The role whose principals, unless the policy says otherwise, send
/// nothing and read every audit proof: oversight reads, it does not take
/// part in the exchange.
pub const AUDITOR_ROLE: &str = "auditor";

/// A principal as the policy describes it.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    pub(crate) id: PrincipalId,
    pub(crate) agency: Agency,
    pub(crate) kind: PrincipalKind,
    pub(crate) role: String,
    pub(crate) clearance_level: String,
    /// `None`: not a station, no station ceiling (`accreditation = "none"`).
    pub(crate) accreditation_level: Option<String>,
    pub(crate) caveats: Vec<String>,
    pub(crate) cases: Vec<String>,
    /// Assigned to every declared case (`cases = ["*"]`).
    pub(crate) all_cases: bool,
    pub(crate) may_send: bool,
    pub(crate) audit: AuditScope,
    #[serde(skip)]
    pub(crate) agency_idx: u16,
    #[serde(skip)]
    pub(crate) clearance: Rank,
    #[serde(skip)]
    pub(crate) accreditation: Option<Rank>,
    #[serde(skip)]
    pub(crate) caveat_mask: Mask,
    /// Interned case ids, sorted.
    #[serde(skip)]
    pub(crate) case_ids: Vec<u32>,
}

impl Principal {
    /// The principal's id.
    pub fn id(&self) -> &PrincipalId {
        &self.id
    }
    /// Its agency.
    pub fn agency(&self) -> &Agency {
        &self.agency
    }
    /// Station, desk or person.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }
    /// Its role (`liaison-officer`, `analyst`, `auditor`, …).
    pub fn role(&self) -> &str {
        &self.role
    }
    /// Level id of the personal clearance.
    pub fn clearance(&self) -> &str {
        &self.clearance_level
    }
    /// Level id of the station or premises accreditation; `None` for a
    /// principal that is not a station (`accreditation = "none"`): only its
    /// clearance bounds what it may hold.
    pub fn accreditation(&self) -> Option<&str> {
        self.accreditation_level.as_deref()
    }
    /// Caveats and compartments held.
    pub fn caveats(&self) -> &[String] {
        &self.caveats
    }
    /// Cases the principal is assigned to, as written (`["*"]` for every
    /// declared case: see [`Principal::all_cases`]).
    pub fn cases(&self) -> &[String] {
        &self.cases
    }
    /// Whether it is assigned to every case the policy declares
    /// (`cases = ["*"]`).
    pub fn all_cases(&self) -> bool {
        self.all_cases
    }
    /// Whether it may submit items (`may_send`; by default every role but
    /// [`AUDITOR_ROLE`]).
    pub fn may_send(&self) -> bool {
        self.may_send
    }
    /// Which audit proofs it may read (`audit`; by default `all` for
    /// [`AUDITOR_ROLE`], `own` for every other role).
    pub fn audit(&self) -> AuditScope {
        self.audit
    }
    /// Rank of the effective ceiling: the lower of clearance and accreditation.
    pub(crate) fn ceiling(&self) -> Rank {
        match self.accreditation {
            Some(a) => self.clearance.min(a),
            None => self.clearance,
        }
    }
    /// Whether it is assigned to the (known) case `case`.
    pub(crate) fn assigned_to(&self, case: u32) -> bool {
        self.all_cases || self.case_ids.binary_search(&case).is_ok()
    }
}

/// A third-party originator (a foreign partner service).
#[derive(Clone, Debug, Serialize)]
pub struct ThirdParty {
    /// Its id as it appears in labels (`partner/ma-dgst`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Country, when given.
    pub country: Option<String>,
}

/// A recorded consent of a third party to onward release.
#[derive(Clone, Debug, Serialize)]
pub struct Consent {
    /// The consent's id.
    pub id: String,
    /// The third party that consented.
    pub originator: String,
    /// The agency material may be released to.
    pub to_agency: Agency,
    /// Level id up to which (inclusive) the consent holds.
    pub max_level: String,
    /// Handling codes the released material must carry (one of them),
    /// as listed or as implied by `max_handling`.
    pub handling: Vec<String>,
    /// The highest handling code covered (`max_handling`), when the consent
    /// is written as a ceiling on the order H0 < H1 < H2 < H3.
    pub max_handling: Option<String>,
    /// Last second (Unix time, UTC) at which the consent holds.
    pub until_unix: i64,
    /// Reference of the consent record, when given.
    pub reference: Option<String>,
    #[serde(skip)]
    pub(crate) tp_idx: u16,
    #[serde(skip)]
    pub(crate) agency_idx: u16,
    #[serde(skip)]
    pub(crate) max_rank: Rank,
    #[serde(skip)]
    pub(crate) handling_mask: u8,
}

/// Grant or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleEffect {
    /// Grants the flow when it matches (subject to mandatory rules and denies).
    Grant,
    /// Denies the flow when it matches; deny wins over any grant.
    Deny,
}

/// Which case assignment a rule requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseAssignment {
    /// The item names at least one case and the recipient is assigned to all of them.
    Recipient,
    /// The item names at least one case and the sender is assigned to all of them.
    Sender,
    /// Both of the above.
    Both,
}

/// How a case assignment holds over the cases an item names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseMatch {
    /// Every case the item names (and the policy declares them all).
    All,
    /// At least one of the cases the item names.
    Any,
}

/// A purpose-bound marking (`[[marking]]`), such as Diffusion restreinte /
/// Beperkte verspreiding: not a level, a restriction on use.
#[derive(Clone, Debug, Serialize)]
pub struct Marking {
    /// Its id (`diffusion-restreinte`).
    pub id: String,
    /// The names it is written with.
    pub names: Vec<String>,
    /// The purposes marked material may be released for.
    pub purposes: Vec<String>,
    #[serde(skip)]
    pub(crate) purpose_mask: Mask,
}

/// The id of the marking that a label's `diffusion_restreinte` flag carries.
pub const DIFFUSION_RESTREINTE: &str = "diffusion-restreinte";

/// Whether the information a request asks for is directly accessible to
/// the requested service (Directive (EU) 2023/977, art. 5).
pub use crate::domain::item::Accessibility;

/// How long the recipient of a request has to answer it (`[[deadline]]`).
#[derive(Clone, Debug, Serialize)]
pub struct Deadline {
    /// The request's priority (`FLASH`, `URGENT`, `ROUTINE`).
    pub priority: String,
    /// Directly or indirectly accessible information; `None`: both.
    pub accessibility: Option<Accessibility>,
    /// The request's purposes it applies to; `None`: every purpose.
    pub purposes: Option<Vec<String>>,
    /// Seconds from acceptance of the request to its answer deadline.
    pub within_secs: i64,
    /// Where the entry comes from: the policy, or the built-in default.
    pub source: &'static str,
    #[serde(skip)]
    pub(crate) purpose_mask: Option<Mask>,
}

/// A selector as written, kept for the digest and for explanations.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Selector {
    /// Agencies (any of).
    pub agencies: Vec<String>,
    /// Roles (any of).
    pub roles: Vec<String>,
    /// Principal ids (any of).
    pub principals: Vec<String>,
}

/// A compiled flow rule.
#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    /// The rule id from the files.
    pub id: String,
    /// Grant or deny.
    pub effect: RuleEffect,
    /// What the rule is for, in the officer's words.
    pub description: Option<String>,
    /// Sender selector.
    pub from: Selector,
    /// Recipient selector.
    pub to: Selector,
    /// Purposes (any of), when restricted.
    pub purposes: Option<Vec<String>>,
    /// Priorities (any of), when restricted.
    pub priorities: Option<Vec<String>>,
    /// Handling codes of the portion (any of; `none` for no code), when restricted.
    pub handling: Option<Vec<String>>,
    /// Lowest portion level the rule applies to.
    pub min_level: Option<String>,
    /// Highest portion level the rule applies to.
    pub max_level: Option<String>,
    /// The rule applies to portions carrying any of these caveats.
    pub caveats_any: Option<Vec<String>>,
    /// The rule applies only to third-party (true) or own (false) material.
    pub third_party: Option<bool>,
    /// Required case assignment.
    pub case_assignment: Option<CaseAssignment>,
    /// Over which of the item's cases the assignment must hold.
    pub case_match: Option<CaseMatch>,
    /// The item must name one of these cases.
    pub cases: Option<Vec<String>>,
    /// The portion originates from one of these agencies or third parties.
    pub originators: Option<Vec<String>>,
    /// The portion's REL TO names one of these agencies (`none`: no REL TO).
    pub rel_to: Option<Vec<String>>,
    /// Only portions marked Diffusion restreinte (true) or not (false).
    pub diffusion_restreinte: Option<bool>,
    #[serde(skip)]
    pub(crate) c: CompiledRule,
}

/// The parts of a rule the engine evaluates, interned.
#[derive(Clone, Debug, Default)]
pub(crate) struct CompiledRule {
    pub purposes: Option<Mask>,
    /// Bits: 0 FLASH, 1 URGENT, 2 ROUTINE.
    pub priorities: Option<u8>,
    /// Bits: 0..=3 H0..H3, 4 no handling code.
    pub handling: Option<u8>,
    pub min_rank: Option<Rank>,
    pub max_rank: Option<Rank>,
    pub caveats_any: Option<Mask>,
    pub cases: Option<Vec<u32>>,
    /// Agency indices and third-party indices of `originators`.
    pub origin_agencies: Vec<u16>,
    pub origin_third_parties: Vec<u16>,
    /// `rel_to`: agency names, and whether `none` (no REL TO) is listed.
    pub rel_to: Option<(Vec<crate::domain::principal::Agency>, bool)>,
}

/// The compiled, validated, immutable policy.
///
/// Build one with [`crate::policy_files::load_dir`] or [`Policy::from_sources`]; decide with
/// [`Policy::decide`].
#[derive(Debug)]
pub struct Policy {
    pub(crate) scheme_name: String,
    pub(crate) digest: [u8; 32],
    pub(crate) digest_hex: String,
    pub(crate) levels: Vec<Level>,
    pub(crate) level_by_name: FastMap<String, Rank>,
    pub(crate) caveats: Vec<String>,
    pub(crate) caveat_by_name: FastMap<String, u8>,
    pub(crate) purposes: Vec<String>,
    pub(crate) purpose_by_name: FastMap<String, u8>,
    pub(crate) cases: Vec<String>,
    /// Keyed by [`normalize_case`] of the id.
    pub(crate) case_by_id: FastMap<String, u32>,
    pub(crate) markings: Vec<Marking>,
    /// Index in `markings` of [`DIFFUSION_RESTREINTE`], when declared.
    pub(crate) diffusion_restreinte: Option<usize>,
    /// The policy's deadlines, then the built-in defaults.
    pub(crate) deadlines: Vec<Deadline>,
    pub(crate) agencies: Vec<AgencyBinding>,
    pub(crate) agency_by_name: FastMap<String, u16>,
    pub(crate) principals: Vec<Principal>,
    pub(crate) principal_by_id: FastMap<String, u32>,
    pub(crate) third_parties: Vec<ThirdParty>,
    pub(crate) third_party_by_id: FastMap<String, u16>,
    pub(crate) consents: Vec<Consent>,
    /// Consent indices per third party.
    pub(crate) consents_by_tp: Vec<Vec<u32>>,
    pub(crate) rules: Vec<Rule>,
    /// Rule indices per recipient principal, deny rules first.
    pub(crate) rules_by_recipient: Vec<Vec<u32>>,
    /// Words per row of [`Policy::rules_by_sender`].
    pub(crate) rule_words: usize,
    /// One bit set over rules per sender principal (row-major): which rules
    /// select it as sender. A decision reads only its sender's row, which
    /// stays in cache however many rules it walks.
    pub(crate) rules_by_sender: Vec<u64>,
}

impl Policy {
    /// SHA-256 over the canonical policy content.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
    /// The digest in lowercase hex, as written in decisions and the audit log.
    pub fn digest_hex(&self) -> &str {
        &self.digest_hex
    }
    /// The classification scheme's name.
    pub fn scheme_name(&self) -> &str {
        &self.scheme_name
    }
    /// A principal by id, or `None` when the policy does not know it (the
    /// gateway refuses such a recipient).
    pub fn principal(&self, id: &PrincipalId) -> Option<&Principal> {
        self.principal_by_id
            .get(id.as_str())
            .and_then(|&i| self.principals.get(i as usize))
    }
    /// All principals, sorted by id.
    pub fn principals(&self) -> &[Principal] {
        &self.principals
    }
    /// The agencies and the CA and trust domain each is bound to.
    pub fn agency_bindings(&self) -> &[AgencyBinding] {
        &self.agencies
    }
    /// The binding of one agency.
    pub fn agency_binding(&self, agency: &Agency) -> Option<&AgencyBinding> {
        self.agency_by_name
            .get(agency.as_str())
            .and_then(|&i| self.agencies.get(i as usize))
    }
    /// The agency whose certificates carry this SPIFFE trust domain.
    pub fn agency_for_trust_domain(&self, trust_domain: &str) -> Option<&AgencyBinding> {
        self.agencies
            .iter()
            .find(|a| a.trust_domain == trust_domain)
    }
    /// The principal a SPIFFE id (`spiffe://police.example/lo/rabat`, the URI
    /// SAN of a client certificate) stands for: the trust domain names the
    /// agency, the path the principal inside it. `None` when the trust domain
    /// is not bound to an agency or the principal is unknown. The caller must
    /// still check that the certificate chains to *that* agency's CA (bound
    /// in the gateway configuration).
    pub fn principal_for_spiffe(&self, uri: &str) -> Option<&Principal> {
        let rest = uri.strip_prefix("spiffe://")?;
        let (td, path) = rest.split_once('/')?;
        let binding = self.agency_for_trust_domain(td)?;
        let id = PrincipalId::in_agency(&binding.agency, path).ok()?;
        self.principal(&id)
    }
    /// A flow rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules
            .binary_search_by(|r| r.id.as_str().cmp(id))
            .ok()
            .and_then(|i| self.rules.get(i))
    }
    /// The levels of the scheme, lowest first.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }
    /// The level a name (national, EU or NATO, any case) stands for.
    pub fn level(&self, name: &str) -> Option<&Level> {
        self.rank_of(name).and_then(|r| self.levels.get(r as usize))
    }
    /// Retention in days for material labelled `level`, when declared.
    pub fn retention_days(&self, level: &str) -> Option<u32> {
        self.level(level).and_then(|l| l.retention_days)
    }
    /// The flow rules, sorted by id.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    /// The recorded third-party consents.
    pub fn consents(&self) -> &[Consent] {
        &self.consents
    }
    /// The declared caveats and compartments.
    pub fn caveats(&self) -> &[String] {
        &self.caveats
    }
    /// The declared purposes.
    pub fn purposes(&self) -> &[String] {
        &self.purposes
    }
    /// The declared case references.
    pub fn cases(&self) -> &[String] {
        &self.cases
    }
    /// The declared case a reference stands for (any letter case), when
    /// the policy declares it.
    pub fn case(&self, reference: &str) -> Option<&str> {
        self.case_index(reference)
            .and_then(|i| self.cases.get(i as usize))
            .map(String::as_str)
    }
    /// The declared purpose-bound markings.
    pub fn markings(&self) -> &[Marking] {
        &self.markings
    }
    /// The answer deadlines: the policy's `[[deadline]]`s, then the
    /// built-in defaults of Directive (EU) 2023/977.
    pub fn deadlines(&self) -> &[Deadline] {
        &self.deadlines
    }

    /// The deadline that applies to a request of this priority and purpose
    /// on information of this accessibility: among the policy's
    /// `[[deadline]]`s that match, the shortest; when none matches, the
    /// built-in default (Directive (EU) 2023/977 art. 5, FLASH within the
    /// hour). Pure: the gateway adds [`Deadline::within_secs`] to the time
    /// it accepted the request (see [`Policy::answer_due`]).
    pub fn deadline_for(
        &self,
        priority: Priority,
        purpose: &str,
        accessibility: Accessibility,
    ) -> Option<&Deadline> {
        let prio = priority_name(priority);
        let purpose = self.purpose_by_name.get(purpose).copied();
        let matches = |d: &&Deadline| {
            d.priority == prio
                && d.accessibility.map_or(true, |a| a == accessibility)
                && d.purpose_mask
                    .map_or(true, |m| purpose.is_some_and(|p| m & (1 << p) != 0))
        };
        let policy = self
            .deadlines
            .iter()
            .filter(|d| d.source == "policy")
            .filter(matches)
            .min_by_key(|d| d.within_secs);
        policy.or_else(|| {
            self.deadlines
                .iter()
                .filter(|d| d.source != "policy")
                .find(matches)
        })
    }

    /// When the answer to a request is due (Unix seconds, UTC): the time
    /// the gateway accepted it plus the deadline for its priority, purpose
    /// and accessibility. `None` when the item is not a request. Pure: the
    /// caller passes the acceptance time.
    pub fn answer_due(&self, header: &Header, accepted_at: i64) -> Option<i64> {
        let request = header.request?;
        let d = self.deadline_for(header.priority, &header.purpose, request.accessibility)?;
        Some(accepted_at.saturating_add(d.within_secs))
    }

    /// Interned index of a case reference (exact spelling first).
    pub(crate) fn case_index(&self, reference: &str) -> Option<u32> {
        if let Some(&i) = self.case_by_id.get(reference) {
            return Some(i);
        }
        self.case_by_id.get(&normalize_case(reference)).copied()
    }
    /// Consents that have expired at `now` (Unix seconds, UTC), for
    /// `policy check` to warn about: they no longer release anything.
    pub fn expired_consents(&self, now_unix_secs: i64) -> impl Iterator<Item = &Consent> {
        self.consents
            .iter()
            .filter(move |c| c.until_unix < now_unix_secs)
    }
    /// The declared third-party originators.
    pub fn third_parties(&self) -> &[ThirdParty] {
        &self.third_parties
    }

    /// Rank of a level name, trying the exact spelling first (no allocation).
    pub(crate) fn rank_of(&self, name: &str) -> Option<Rank> {
        if let Some(&r) = self.level_by_name.get(name) {
            return Some(r);
        }
        self.level_by_name.get(&normalize_level(name)).copied()
    }

    /// The row of rules that select `sender` as sender.
    pub(crate) fn sender_row(&self, sender: u32) -> &[u64] {
        let start = sender as usize * self.rule_words;
        self.rules_by_sender
            .get(start..start + self.rule_words)
            .unwrap_or(&[])
    }

    pub(crate) fn level_name(&self, rank: Rank) -> &str {
        self.levels
            .get(rank as usize)
            .map(Level::display_name)
            .unwrap_or("?")
    }
}

/// How case references are compared: trimmed, ASCII upper case (like
/// level names, `ct-2026-014` is `CT-2026-014`).
pub(crate) fn normalize_case(id: &str) -> String {
    id.trim().to_ascii_uppercase()
}

/// How level names are compared: trimmed, inner blanks collapsed, upper case.
pub(crate) fn normalize_level(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Tests a bit in a principal bit set.
pub(crate) fn bit(set: &[u64], i: u32) -> bool {
    set.get((i / 64) as usize)
        .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
}
