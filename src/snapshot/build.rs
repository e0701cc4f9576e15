//! Compiling checked zones into a [`Snapshot`].
//!
//! Every answer a name can give is decided here, off the hot path:
//! positive answers with additional address records (RFC 1034 §4.3.2 step
//! 6), CNAME chains followed inside the zone (RFC 1034 §3.6.2, loops cut),
//! NODATA and NXDOMAIN with the SOA at the negative TTL (RFC 2308 §3, §5),
//! referrals with glue (RFC 1034 §4.3.2 step 3b, RFC 9471), DS at a cut
//! from the parent side (RFC 4035 §3.1.4.1), and wildcard answers
//! (RFC 4592). Names in a hosted child zone belong to the child; only DS at
//! the child's apex is answered from the parent.

use ahash::{AHashMap, AHashSet};
use hashbrown::HashTable;

use super::render::{Builder, Mode, Owner, Rendered, Section};
use super::{Answer, AnswerId, NONE, Node, NodeKind, Snapshot, ZoneInfo};
use crate::diag::Diagnostics;
use crate::name;
use crate::zone::{self, RRset, Zone};

const NS: u16 = 2;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const MX: u16 = 15;
const A: u16 = 1;
const AAAA: u16 = 28;
const SRV: u16 = 33;
const DS: u16 = 43;
/// Longest CNAME chain followed (RFC 1034 §3.6.2 asks only that loops end).
const MAX_CHAIN: usize = 16;

const NOERROR: u8 = 0;
const NXDOMAIN: u8 = 3;

/// Compiles `zones` into a snapshot. Problems that make an answer
/// impossible (an RRset too large for any message) are reported in
/// `diags` and that answer is left out.
pub fn build(zones: &[Zone], diags: &mut Diagnostics) -> Snapshot {
    let mut out = Out::default();
    let origins: AHashMap<&[u8], usize> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| (&z.origin[..], i))
        .collect();
    for (zidx, zone) in zones.iter().enumerate() {
        let view = View::new(zone, zidx, &origins);
        let nxdomain = out.negative(&view, NXDOMAIN, diags);
        out.zones.push(ZoneInfo {
            origin: zone.origin.clone(),
            records: zone.record_count,
            nxdomain,
        });
        let nodata = out.negative(&view, NOERROR, diags);
        for key in view.names_in_order() {
            let info = &view.names[key];
            match info.place {
                Place::Occluded => {}
                // DS at the apex of a hosted child is the parent's to answer
                // (RFC 4035 §3.1.4.1); the rest of the child is the child's.
                Place::InChild if origins.contains_key(key) => {
                    let ds = match info.node.and_then(|n| n.rrset(DS)) {
                        Some(set) => out.single(&view, key, Mode::Exact, set, diags).unwrap_or(nodata),
                        None => nodata,
                    };
                    out.overrides.push((key.into(), DS, ds));
                }
                Place::InChild => {}
                Place::Delegation => out.delegation(&view, key, nodata, diags),
                Place::Authoritative => out.authoritative(&view, key, nodata, diags),
            }
        }
    }
    out.finish()
}

/// Where a name stands in its zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Authoritative,
    Delegation,
    /// Below a cut: glue or occluded data, not answered from this zone.
    Occluded,
    /// At or below the apex of a more specific zone that is also hosted.
    InChild,
}

struct NameInfo<'z> {
    node: Option<&'z zone::Node>,
    place: Place,
}

/// A zone with its empty non-terminals and cuts worked out.
struct View<'z> {
    zone: &'z Zone,
    index: u32,
    names: AHashMap<&'z [u8], NameInfo<'z>>,
    apex_owner: &'z [u8],
    soa: &'z RRset,
}

impl<'z> View<'z> {
    fn new(zone: &'z Zone, index: usize, origins: &AHashMap<&[u8], usize>) -> Self {
        let apex = zone.apex().expect("checked zones have an apex");
        let soa = apex.rrset(SOA).expect("checked zones have an SOA");
        let mut names: AHashMap<&'z [u8], NameInfo<'z>> = AHashMap::with_capacity(zone.nodes.len());
        for (key, node) in &zone.nodes {
            names.insert(
                key,
                NameInfo {
                    node: Some(node),
                    place: Place::Authoritative,
                },
            );
            // Empty non-terminals: every ancestor up to the apex exists.
            let mut anc = name::parent(key);
            while let Some(a) = anc {
                if a.len() <= zone.origin.len() || names.contains_key(a) {
                    break;
                }
                names.insert(
                    a,
                    NameInfo {
                        node: None,
                        place: Place::Authoritative,
                    },
                );
                anc = name::parent(a);
            }
        }
        // Cuts, occlusion and hosted children, judged from the ancestors.
        let keys: Vec<&'z [u8]> = names.keys().copied().collect();
        for key in keys {
            let place = Self::place_of(zone, key, &names, origins);
            if let Some(info) = names.get_mut(key) {
                info.place = place;
            }
        }
        View {
            zone,
            index: index as u32,
            names,
            apex_owner: &apex.owner,
            soa,
        }
    }

    fn place_of(
        zone: &Zone,
        key: &[u8],
        names: &AHashMap<&[u8], NameInfo<'_>>,
        origins: &AHashMap<&[u8], usize>,
    ) -> Place {
        if &key[..] == &zone.origin[..] {
            return Place::Authoritative;
        }
        let is_cut = |k: &[u8]| {
            names
                .get(k)
                .and_then(|i| i.node)
                .is_some_and(|n| n.rrset(NS).is_some())
        };
        // From the apex down: the first hosted child or cut above the name
        // decides.
        let mut chain = Vec::new();
        let mut at = Some(key);
        while let Some(k) = at {
            if k.len() <= zone.origin.len() {
                break;
            }
            chain.push(k);
            at = name::parent(k);
        }
        for (depth, k) in chain.iter().rev().enumerate() {
            let is_self = depth == chain.len() - 1;
            if origins.contains_key(k) {
                return Place::InChild;
            }
            if is_cut(k) {
                return if is_self { Place::Delegation } else { Place::Occluded };
            }
        }
        Place::Authoritative
    }

    /// Keys in a stable order (sorted), so builds are reproducible.
    fn names_in_order(&self) -> Vec<&'z [u8]> {
        let mut keys: Vec<&'z [u8]> = self.names.keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// The negative TTL: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    fn negative_ttl(&self) -> u32 {
        let rdata = &self.soa.rdatas[0];
        let minimum = rdata
            .len()
            .checked_sub(4)
            .map(|at| u32::from_be_bytes([rdata[at], rdata[at + 1], rdata[at + 2], rdata[at + 3]]))
            .unwrap_or(0);
        self.soa.ttl.min(minimum)
    }

    /// Looks `key` up inside this zone, for CNAME chains and additional
    /// data: the node that answers for it, with wildcards applied.
    fn lookup(&self, key: &[u8]) -> Lookup<'z> {
        if !name::is_within(key, &self.zone.origin) {
            return Lookup::Outside;
        }
        if let Some((&found, info)) = self.names.get_key_value(key) {
            return match info.place {
                Place::Authoritative => Lookup::Found(info.node),
                Place::Delegation => Lookup::Delegated(found),
                Place::Occluded => match self.cut_above(key) {
                    Some(cut) => Lookup::Delegated(cut),
                    None => Lookup::Outside,
                },
                Place::InChild => Lookup::Outside,
            };
        }
        let mut at = name::parent(key);
        while let Some(k) = at {
            if let Some((&enc, info)) = self.names.get_key_value(k) {
                return match info.place {
                    Place::Authoritative => {
                        let mut wild = b"\x01*".to_vec();
                        wild.extend_from_slice(enc);
                        match self.names.get(wild.as_slice()) {
                            Some(w) if w.place == Place::Authoritative => Lookup::Found(w.node),
                            _ => Lookup::NxDomain,
                        }
                    }
                    Place::Delegation => Lookup::Delegated(enc),
                    Place::Occluded => match self.cut_above(k) {
                        Some(cut) => Lookup::Delegated(cut),
                        None => Lookup::Outside,
                    },
                    Place::InChild => Lookup::Outside,
                };
            }
            at = name::parent(k);
        }
        Lookup::NxDomain
    }

    /// The cut above an occluded name.
    fn cut_above(&self, key: &[u8]) -> Option<&'z [u8]> {
        let mut at = name::parent(key);
        while let Some(k) = at {
            if let Some((&cut, info)) = self.names.get_key_value(k) {
                if info.place == Place::Delegation {
                    return Some(cut);
                }
            }
            at = name::parent(k);
        }
        None
    }

    /// Address RRsets (A, AAAA) of `key` usable as additional data, and
    /// whether they are glue below `cut`.
    fn addresses(&self, key: &[u8]) -> Option<(&'z zone::Node, Vec<&'z RRset>)> {
        let info = self.names.get(key)?;
        if matches!(info.place, Place::InChild) {
            return None;
        }
        let node = info.node?;
        let sets: Vec<&RRset> = node.rrsets.iter().filter(|r| r.rtype == A || r.rtype == AAAA).collect();
        (!sets.is_empty()).then_some((node, sets))
    }
}

enum Lookup<'z> {
    /// The node (or matching wildcard node) answering for the name; `None`
    /// for an empty non-terminal.
    Found(Option<&'z zone::Node>),
    Delegated(&'z [u8]),
    NxDomain,
    Outside,
}

/// The snapshot being assembled.
#[derive(Default)]
struct Out {
    nodes: Vec<Node>,
    names: Vec<u8>,
    types: Vec<(u16, AnswerId)>,
    answers: Vec<Answer>,
    bodies: Vec<u8>,
    fixups: Vec<u16>,
    zones: Vec<ZoneInfo>,
    index: AHashMap<Box<[u8]>, u32>,
    /// DS entries for child apexes, applied at the end.
    overrides: Vec<(Box<[u8]>, u16, AnswerId)>,
}

impl Out {
    fn push(&mut self, r: Rendered, rcode: u8, authoritative: bool) -> AnswerId {
        let (shuffle_at, shuffle_count, shuffle_size) = r
            .shuffle
            .map_or((0, 0, 0), |(at, n, size)| (at as u16, n as u16, size as u8));
        let answer = Answer {
            body_at: self.bodies.len() as u32,
            body_len: r.body.len() as u16,
            required_len: r.required_len as u16,
            counts: r.counts,
            required_additional: r.required_additional,
            fixups_at: self.fixups.len() as u32,
            fixups_len: r.fixups.len() as u16,
            base_qlen: r.base_qlen as u8,
            rcode,
            authoritative,
            shuffle_at,
            shuffle_count,
            shuffle_size,
        };
        self.bodies.extend_from_slice(&r.body);
        self.fixups.extend_from_slice(&r.fixups);
        self.answers.push(answer);
        (self.answers.len() - 1) as AnswerId
    }

    /// Stores a finished template, reporting one that is too large.
    fn store(
        &mut self,
        view: &View<'_>,
        builder: Builder,
        rcode: u8,
        authoritative: bool,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        match builder.finish() {
            Some(r) => Some(self.push(r, rcode, authoritative)),
            None => {
                diags.error(
                    Some(view.zone.loc(view.soa.loc)).map(|mut l| {
                        l.line = 0;
                        l
                    }),
                    format!("the answer for {what} is larger than a DNS message can hold; it is left out"),
                );
                None
            }
        }
    }

    /// NXDOMAIN or NODATA for the zone: the SOA in authority, rendered
    /// against the apex so that any qname in the zone can use it.
    fn negative(&mut self, view: &View<'_>, rcode: u8, diags: &mut Diagnostics) -> AnswerId {
        let mut b = Builder::new(&view.zone.origin, Mode::Suffix);
        b.rrset(
            Section::Authority,
            Owner::Name(view.apex_owner),
            SOA,
            view.negative_ttl(),
            &view.soa.rdatas[..1],
            false,
        );
        self.store(view, b, rcode, true, "the SOA", diags)
            .expect("an SOA always fits")
    }

    /// One RRset as the whole answer.
    fn single(
        &mut self,
        view: &View<'_>,
        qkey: &[u8],
        mode: Mode,
        rrset: &RRset,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        let mut b = Builder::new(qkey, mode);
        b.rrset(Section::Answer, Owner::Qname, rrset.rtype, rrset.ttl, &rrset.rdatas, false);
        self.additional(view, &mut b, &[rrset], None);
        let what = format!("{} {}", name::to_text(qkey), domain::base::iana::Rtype::from_int(rrset.rtype));
        self.store(view, b, NOERROR, true, &what, diags)
    }

    /// Additional address records for the names in NS, MX and SRV RRsets
    /// (RFC 1034 §4.3.2 step 6; RFC 2782). Below `cut`, they are glue and
    /// required (RFC 9471).
    fn additional(&mut self, view: &View<'_>, b: &mut Builder, rrsets: &[&RRset], cut: Option<&[u8]>) {
        let mut seen = AHashSet::new();
        let mut wanted: Vec<(Vec<u8>, bool)> = Vec::new();
        for rrset in rrsets {
            for rdata in &rrset.rdatas {
                let at = match rrset.rtype {
                    NS => 0,
                    MX => 2,
                    SRV => 6,
                    _ => continue,
                };
                let Some(target) = rdata.get(at..) else { continue };
                let key = name::to_key(target);
                let required = cut.is_some_and(|c| name::is_within(&key, c));
                if seen.insert(key.clone()) {
                    wanted.push((key, required));
                }
            }
        }
        // Required glue first, so that optional data can be cut off the end.
        wanted.sort_by_key(|(_, required)| !required);
        for (key, required) in wanted {
            if let Some((node, sets)) = view.addresses(&key) {
                for set in sets {
                    b.rrset(Section::Additional, Owner::Name(&node.owner), set.rtype, set.ttl, &set.rdatas, required);
                }
            }
        }
    }

    /// A referral to the cut `cut` (RFC 1034 §4.3.2 step 3b): its NS in
    /// authority, glue in additional, AA clear.
    fn referral(&mut self, view: &View<'_>, cut: &[u8], diags: &mut Diagnostics) -> Option<AnswerId> {
        let node = view.names.get(cut)?.node?;
        let ns = node.rrset(NS)?;
        let mut b = Builder::new(cut, Mode::Suffix);
        b.rrset(Section::Authority, Owner::Name(&node.owner), NS, ns.ttl, &ns.rdatas, false);
        self.additional(view, &mut b, &[ns], Some(cut));
        self.store(view, b, NOERROR, false, &format!("the referral to {}", name::to_text(cut)), diags)
    }

    /// Adds a node to the index.
    fn node(&mut self, view: &View<'_>, key: &[u8], kind: NodeKind, types: Vec<(u16, AnswerId)>, fallback: AnswerId, any: AnswerId) {
        let node = Node {
            name_at: self.names.len() as u32,
            name_len: key.len() as u8,
            kind,
            zone: view.index,
            types_at: self.types.len() as u32,
            types_len: types.len() as u16,
            fallback,
            any,
            wildcard: NONE,
        };
        self.names.extend_from_slice(key);
        self.types.extend(types);
        self.index.insert(key.into(), self.nodes.len() as u32);
        self.nodes.push(node);
    }

    /// A zone cut: DS from this side (RFC 4035 §3.1.4.1), referral for the
    /// rest.
    fn delegation(&mut self, view: &View<'_>, key: &[u8], nodata: AnswerId, diags: &mut Diagnostics) {
        let Some(referral) = self.referral(view, key, diags) else { return };
        let node = view.names[key].node;
        let ds = match node.and_then(|n| n.rrset(DS)) {
            Some(set) => self.single(view, key, Mode::Exact, set, diags).unwrap_or(nodata),
            None => nodata,
        };
        self.node(view, key, NodeKind::Delegation, vec![(DS, ds)], referral, referral);
    }

    /// A name with authoritative data (or none: an empty non-terminal).
    fn authoritative(&mut self, view: &View<'_>, key: &[u8], nodata: AnswerId, diags: &mut Diagnostics) {
        let mode = if name::is_wildcard(key) { Mode::Wildcard } else { Mode::Exact };
        let node = view.names[key].node;
        let (types, fallback) = match node {
            Some(n) if n.rrset(CNAME).is_some() => self.cname_answers(view, key, mode, n, diags),
            Some(n) => {
                let mut types = Vec::with_capacity(n.rrsets.len());
                for set in &n.rrsets {
                    if let Some(id) = self.single(view, key, mode, set, diags) {
                        types.push((set.rtype, id));
                    }
                }
                (types, nodata)
            }
            None => (Vec::new(), nodata),
        };
        // RFC 8482 §4.2: answer ANY with one RRset (the CNAME, if any).
        let any = types
            .iter()
            .find(|(t, _)| *t == CNAME)
            .or(types.first())
            .map_or(fallback, |&(_, id)| id);
        self.node(view, key, NodeKind::Authoritative, types, fallback, any);
    }

    /// Answers at a CNAME owner: the CNAME alone for QTYPE CNAME, else the
    /// chain followed inside the zone and then the data found at its end.
    fn cname_answers(
        &mut self,
        view: &View<'_>,
        key: &[u8],
        mode: Mode,
        node: &zone::Node,
        diags: &mut Diagnostics,
    ) -> (Vec<(u16, AnswerId)>, AnswerId) {
        let cname = node.rrset(CNAME).expect("caller checked");
        let mut types = Vec::new();
        if let Some(id) = self.single(view, key, mode, cname, diags) {
            types.push((CNAME, id));
        }
        // Follow the chain: (owner, rrset) steps.
        let mut steps: Vec<(Option<&[u8]>, &RRset)> = vec![(None, cname)];
        let mut visited: AHashSet<Vec<u8>> = AHashSet::new();
        visited.insert(key.to_vec());
        let end = loop {
            let (_, last) = steps[steps.len() - 1];
            let target: &[u8] = &last.rdatas[0];
            let target_key = name::to_key(target);
            if !visited.insert(target_key.clone()) || steps.len() >= MAX_CHAIN {
                break End::Stop;
            }
            match view.lookup(&target_key) {
                Lookup::Found(Some(n)) => match n.rrset(CNAME) {
                    Some(next) => steps.push((Some(target), next)),
                    None => break End::Data(target, n),
                },
                Lookup::Found(None) => break End::NoData,
                Lookup::NxDomain => break End::NxDomain,
                Lookup::Delegated(cut) => break End::Referral(cut.to_vec()),
                Lookup::Outside => break End::Stop,
            }
        };
        let chain = |b: &mut Builder| {
            for (owner, set) in &steps {
                let owner = owner.map_or(Owner::Qname, Owner::Name);
                b.rrset(Section::Answer, owner, CNAME, set.ttl, &set.rdatas, false);
            }
        };
        let what = format!("the CNAME chain at {}", name::to_text(key));
        let fallback = match &end {
            End::Data(target, n) => {
                for set in &n.rrsets {
                    let mut b = Builder::new(key, mode);
                    chain(&mut b);
                    b.rrset(Section::Answer, Owner::Name(target), set.rtype, set.ttl, &set.rdatas, false);
                    self.additional(view, &mut b, &[set], None);
                    if let Some(id) = self.store(view, b, NOERROR, true, &what, diags) {
                        types.push((set.rtype, id));
                    }
                }
                self.chain_negative(view, key, mode, &chain, NOERROR, diags)
            }
            End::NoData => self.chain_negative(view, key, mode, &chain, NOERROR, diags),
            End::NxDomain => self.chain_negative(view, key, mode, &chain, NXDOMAIN, diags),
            End::Referral(cut) => {
                let mut b = Builder::new(key, mode);
                chain(&mut b);
                if let Some(ns_node) = view.names.get(&cut[..]).and_then(|i| i.node) {
                    if let Some(ns) = ns_node.rrset(NS) {
                        b.rrset(Section::Authority, Owner::Name(&ns_node.owner), NS, ns.ttl, &ns.rdatas, false);
                        self.additional(view, &mut b, &[ns], Some(cut));
                    }
                }
                self.store(view, b, NOERROR, true, &what, diags)
            }
            End::Stop => {
                let mut b = Builder::new(key, mode);
                chain(&mut b);
                self.store(view, b, NOERROR, true, &what, diags)
            }
        };
        let fallback = fallback.unwrap_or_else(|| types.first().map_or(0, |&(_, id)| id));
        (types, fallback)
    }

    /// A chain ending in NODATA or NXDOMAIN: the chain, then the SOA
    /// (RFC 2308 §2.1, §2.2; the RCODE of the last step, RFC 6604).
    fn chain_negative(
        &mut self,
        view: &View<'_>,
        key: &[u8],
        mode: Mode,
        chain: &dyn Fn(&mut Builder),
        rcode: u8,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        let mut b = Builder::new(key, mode);
        chain(&mut b);
        b.rrset(
            Section::Authority,
            Owner::Name(view.apex_owner),
            SOA,
            view.negative_ttl(),
            &view.soa.rdatas[..1],
            false,
        );
        self.store(view, b, rcode, true, &format!("the CNAME chain at {}", name::to_text(key)), diags)
    }

    /// Links wildcards to their parents, applies overrides and builds the
    /// hash table.
    fn finish(mut self) -> Snapshot {
        for (key, qtype, answer) in std::mem::take(&mut self.overrides) {
            let Some(&i) = self.index.get(&key) else { continue };
            let node = self.nodes[i as usize];
            let at = node.types_at as usize;
            let existing = self.types[at..at + usize::from(node.types_len)]
                .iter()
                .position(|(t, _)| *t == qtype);
            match existing {
                Some(pos) => self.types[at + pos].1 = answer,
                None => {
                    // Move the node's types to the end with the new entry.
                    let mut types = self.types[at..at + usize::from(node.types_len)].to_vec();
                    types.push((qtype, answer));
                    let node = &mut self.nodes[i as usize];
                    node.types_at = self.types.len() as u32;
                    node.types_len = types.len() as u16;
                    self.types.extend(types);
                }
            }
        }
        for i in 0..self.nodes.len() {
            let node = self.nodes[i];
            let at = node.name_at as usize;
            let key = &self.names[at..at + usize::from(node.name_len)];
            if name::is_wildcard(key) {
                if let Some(parent) = name::parent(key) {
                    if let Some(&p) = self.index.get(parent) {
                        if self.nodes[p as usize].zone == node.zone {
                            self.nodes[p as usize].wildcard = i as u32;
                        }
                    }
                }
            }
        }
        let hasher = ahash::RandomState::new();
        let mut table = HashTable::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let at = node.name_at as usize;
            let key = &self.names[at..at + usize::from(node.name_len)];
            let hash = hasher.hash_one(key);
            table.insert_unique(hash, i as u32, |&j| {
                let n = &self.nodes[j as usize];
                let at = n.name_at as usize;
                hasher.hash_one(&self.names[at..at + usize::from(n.name_len)])
            });
        }
        self.names.shrink_to_fit();
        self.types.shrink_to_fit();
        self.bodies.shrink_to_fit();
        self.fixups.shrink_to_fit();
        self.answers.shrink_to_fit();
        self.nodes.shrink_to_fit();
        Snapshot {
            table,
            hasher,
            nodes: self.nodes,
            names: self.names,
            types: self.types,
            answers: self.answers,
            bodies: self.bodies,
            fixups: self.fixups,
            zones: self.zones,
        }
    }
}

/// How a CNAME chain ends.
enum End<'a, 'z> {
    Data(&'a [u8], &'z zone::Node),
    NoData,
    NxDomain,
    Referral(Vec<u8>),
    Stop,
}
