//! Compiling checked zones into a [`Snapshot`].
//!
//! Every answer a name can give is decided here, off the hot path:
//! positive answers with additional address records (RFC 1034 §4.3.2 step
//! 6), CNAME chains followed inside the zone (RFC 1034 §3.6.2, loops cut),
//! NODATA and NXDOMAIN with the SOA at the negative TTL (RFC 2308 §3, §5),
//! referrals with glue (RFC 1034 §4.3.2 step 3b, RFC 9471), DS at a cut
//! from the parent side (RFC 4035 §3.1.4.1), wildcard answers
//! (RFC 4592), and DNAME redirections (RFC 6672): the DNAME record is
//! rendered here, and the CNAME synthesised for each qname is added by the
//! answer path; a CNAME chain that runs below a DNAME is redirected here.
//! Names in a hosted child zone belong to the child; only DS at the
//! child's apex is answered from the parent.

use std::borrow::Cow;

use ahash::{AHashMap, AHashSet};
use hashbrown::HashTable;

use super::render::{Builder, Mode, Owner, Rendered, Section};
use super::{Answer, AnswerId, Arenas, Index, NONE, NameHasher, Node, NodeKind, ZoneInfo};
use crate::diag::Diagnostics;
use crate::lb::Pools;
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
const DNAME: u16 = 39;
const RRSIG: u16 = 46;
const NSEC: u16 = 47;
const NSEC3: u16 = 50;
/// Longest CNAME chain followed (RFC 1034 §3.6.2 asks only that loops end).
const MAX_CHAIN: usize = 16;

const NOERROR: u8 = 0;
const NXDOMAIN: u8 = 3;

/// Compiles `zones` into a snapshot. Problems that make an answer
/// impossible (an RRset too large for any message) are reported in
/// `diags` and that answer is left out.
pub fn build(zones: &[Zone], pools: &Pools, diags: &mut Diagnostics) -> Index {
    let mut out = Out::default();
    let origins: AHashMap<&[u8], usize> = zones.iter().enumerate().map(|(i, z)| (&z.origin[..], i)).collect();
    // Pool names, by the zone they fall in (the closest enclosing one).
    let mut pool_names: Vec<AHashMap<Box<[u8]>, u32>> = vec![AHashMap::new(); zones.len()];
    for (p, pool) in pools.pools.iter().enumerate() {
        for text in &pool.names {
            let key = match crate::config::parse_origin(text) {
                Ok(name) => name::to_key(name.as_slice()),
                Err(msg) => {
                    diags.error(pool.loc.clone(), format!("pool {}: {msg}", pool.name));
                    continue;
                }
            };
            let Some(z) = enclosing_zone(&origins, Some(&key)) else {
                diags.error(
                    pool.loc.clone(),
                    format!("pool {}: {} is in no zone served here", pool.name, name::to_text(&key)),
                );
                continue;
            };
            if let Some(node) = zones[z].get(&key) {
                for set in node
                    .rrsets()
                    .filter(|r| r.rtype == A || r.rtype == AAAA || r.rtype == CNAME)
                {
                    diags.error(
                        Some(zones[z].loc(set.loc)),
                        format!(
                            "{} {} records and pool {} both answer for this name; keep one",
                            name::to_text(&key),
                            domain::base::iana::Rtype::from_int(set.rtype),
                            pool.name
                        ),
                    );
                }
            }
            if let Some(other) = pool_names[z].insert(key.clone().into(), p as u32) {
                diags.error(
                    pool.loc.clone(),
                    format!(
                        "{} is in pools {} and {}",
                        name::to_text(&key),
                        pools.pools[other as usize].name,
                        pool.name
                    ),
                );
            }
        }
    }
    // Each hosted zone's hosted children, with no hosted zone between.
    let mut children: Vec<Vec<(&[u8], usize)>> = vec![Vec::new(); zones.len()];
    for (&child, &c) in origins.iter() {
        if let Some(parent) = enclosing_zone(&origins, name::parent(child)) {
            children[parent].push((child, c));
        }
    }
    // In name order, for warnings in the same order each run.
    children.iter_mut().for_each(|list| list.sort_unstable());
    // Every zone's view first: a CNAME chain may go on in another
    // hosted zone.
    let views: Vec<View<'_>> = zones
        .iter()
        .enumerate()
        .map(|(zidx, zone)| View::new(zone, zidx, &origins, &pool_names[zidx]))
        .collect();
    let hosted = Hosted {
        views: &views,
        origins: &origins,
    };
    for (zidx, (zone, view)) in zones.iter().zip(&views).enumerate() {
        for (key, &p) in view.pools.iter() {
            if view.get(key).is_some_and(|i| i.place != Place::Authoritative) {
                diags.error(
                    pools.pools[p as usize].loc.clone(),
                    format!(
                        "pool {}: {} is at or below a zone cut",
                        pools.pools[p as usize].name,
                        name::to_text(key)
                    ),
                );
            }
        }
        for (key, &p) in view.pools.iter() {
            if let Some(node) = zone.dname_above(key) {
                diags.error(
                    pools.pools[p as usize].loc.clone(),
                    format!(
                        "pool {}: {} is below the DNAME at {}, which redirects it",
                        pools.pools[p as usize].name,
                        name::to_text(key),
                        name::to_text(node.owner())
                    ),
                );
            }
        }
        out.reserve(view);
        let nxdomain = out.negative(view, NXDOMAIN, diags);
        out.a.zones.push(ZoneInfo {
            origin: zone.origin.clone(),
            records: zone.record_count,
            nxdomain,
        });
        let nodata = out.negative(view, NOERROR, diags);
        for (key, info) in view.names() {
            match info.place {
                Place::Occluded => {}
                // DS at the apex of a hosted child is the parent's to answer
                // (RFC 4035 §3.1.4.1); the rest of the child is the child's.
                Place::InChild if origins.contains_key(key) => {
                    let ds = match info.node.map(|n| (n, n.rrset(DS))) {
                        Some((_, Some(set))) => out.single(view, key, Mode::Exact, set, diags).unwrap_or(nodata),
                        // A CNAME of the parent's there (a child it does
                        // not delegate to): DS follows it, as in NSD and
                        // Knot.
                        Some((n, None)) if n.rrset(CNAME).is_some() => {
                            out.cname_ds(&hosted, view, key, n, diags).unwrap_or(nodata)
                        }
                        _ => nodata,
                    };
                    out.overrides.push((key.into(), DS, ds));
                }
                Place::InChild => {}
                Place::Delegation if name::is_wildcard(key) => {
                    out.authoritative(&hosted, view, key, info.node, nodata, true, diags)
                }
                Place::Delegation => out.delegation(view, key, info.node, nodata, diags),
                Place::Authoritative => out.authoritative(&hosted, view, key, info.node, nodata, false, diags),
            }
        }
        // A hosted child that this zone does not delegate to: resolvers
        // coming from the parent never reach it. DS at its apex is still
        // the parent's to answer; the name is not the parent's, so NODATA
        // with the parent's SOA, as NSD answers (not NXDOMAIN, which would
        // deny the whole child, RFC 8020).
        for &(child, c) in &children[zidx] {
            let info = view.get(child);
            if info.and_then(|i| i.node).and_then(|n| n.rrset(NS)).is_none() {
                diags.warning(
                    zones[c]
                        .apex()
                        .and_then(|a| a.rrset(SOA))
                        .map(|set| zones[c].loc(set.loc)),
                    format!(
                        "zone {} is served here, but {} has no NS records for it: resolvers coming \
                         from the parent will not find it",
                        name::to_text(child),
                        name::to_text(&zone.origin)
                    ),
                );
            }
            if info.is_none() {
                out.overrides.push((child.into(), DS, nodata));
            }
        }
    }
    out.finish()
}

/// Whether a node holds NSEC3 records (and their signatures) only: its
/// hashed name is not in the zone's namespace (RFC 5155 §7.2.8), so it is
/// answered as a name that does not exist, as NSD and Knot do.
fn nsec3_only(node: zone::Node<'_>) -> bool {
    node.rrset(NSEC3).is_some() && node.rrsets().all(|r| r.rtype == NSEC3 || r.rtype == RRSIG)
}

/// Whether the zone has a name `key` of its own namespace.
fn shown(zone: &Zone, key: &[u8]) -> bool {
    zone.get(key).is_some_and(|n| !nsec3_only(n))
}

/// The hosted zone a name is in: the one of the longest origin at or
/// above `key` (none for `None`).
fn enclosing_zone(origins: &AHashMap<&[u8], usize>, key: Option<&[u8]>) -> Option<usize> {
    let mut at = key;
    while let Some(k) = at {
        if let Some(&z) = origins.get(k) {
            return Some(z);
        }
        at = name::parent(k);
    }
    None
}

/// All the hosted zones' views, for chains that go from one to another.
struct Hosted<'a, 'z> {
    views: &'a [View<'z>],
    origins: &'a AHashMap<&'a [u8], usize>,
}

impl<'z> Hosted<'_, 'z> {
    /// The view of the zone a hosted zone whose apex is `key` is under,
    /// if that is hosted here too.
    fn parent_of_apex(&self, key: &[u8]) -> Option<&View<'z>> {
        if !self.origins.contains_key(key) {
            return None;
        }
        enclosing_zone(self.origins, name::parent(key)).map(|z| &self.views[z])
    }

    /// The view of the hosted zone `key` is in, if any.
    fn view_of(&self, key: &[u8]) -> Option<&View<'z>> {
        enclosing_zone(self.origins, Some(key)).map(|z| &self.views[z])
    }
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

#[derive(Clone, Copy)]
struct NameInfo<'z> {
    node: Option<zone::Node<'z>>,
    place: Place,
}

/// A zone with its empty non-terminals and cuts worked out. Only the
/// exceptions are stored: names are authoritative unless `places` says
/// otherwise, and owners come from the zone itself.
struct View<'z> {
    zone: &'z Zone,
    index: u32,
    /// Empty non-terminals: names with no records but with descendants.
    ents: AHashSet<Box<[u8]>>,
    /// Names that are not plain authoritative data.
    places: AHashMap<Box<[u8]>, Place>,
    /// Names answered (A/AAAA) from pools, and their pool.
    pools: &'z AHashMap<Box<[u8]>, u32>,
    apex_owner: &'z [u8],
    soa: RRset<'z>,
}

impl<'z> View<'z> {
    fn new(
        zone: &'z Zone,
        index: usize,
        origins: &AHashMap<&[u8], usize>,
        pools: &'z AHashMap<Box<[u8]>, u32>,
    ) -> Self {
        let apex = zone.apex().expect("checked zones have an apex");
        let soa = apex.rrset(SOA).expect("checked zones have an SOA");
        let mut ents: AHashSet<Box<[u8]>> = AHashSet::new();
        // Empty non-terminals: every ancestor of a name up to the apex
        // exists.
        let mut add_ents = |key: &[u8]| {
            let mut anc = name::parent(key);
            while let Some(a) = anc {
                if a.len() <= zone.origin.len() || shown(zone, a) || ents.contains(a) || pools.contains_key(a) {
                    break;
                }
                ents.insert(a.into());
                anc = name::parent(a);
            }
        };
        // Cuts, and hosted zones below this one: where places change.
        let mut marks: AHashMap<&[u8], Place> = AHashMap::new();
        for node in zone.nodes().filter(|&n| !nsec3_only(n)) {
            let key = node.key();
            add_ents(key);
            if *key != *zone.origin && node.rrset(NS).is_some() {
                marks.insert(key, Place::Delegation);
            }
        }
        for key in pools.keys().filter(|k| !zone.contains(k)) {
            add_ents(key);
        }
        for (origin, _) in origins.iter() {
            if origin.len() > zone.origin.len() && name::is_within(origin, &zone.origin) {
                marks.insert(origin, Place::InChild);
            }
        }
        let mut places = AHashMap::new();
        if !marks.is_empty() {
            let all = zone
                .nodes()
                .map(|n| n.key())
                .chain(ents.iter().map(|k| &k[..]))
                .chain(pools.keys().map(|k| &k[..]).filter(|k| !zone.contains(k)));
            for key in all {
                // The highest cut or child at or above the name decides.
                let mut highest = None;
                let mut at = Some(key);
                while let Some(k) = at {
                    if k.len() <= zone.origin.len() {
                        break;
                    }
                    if let Some(&mark) = marks.get(k) {
                        highest = Some((k, mark));
                    }
                    at = name::parent(k);
                }
                let place = match highest {
                    Some((_, Place::InChild)) => Place::InChild,
                    Some((cut, _)) if cut == key => Place::Delegation,
                    Some(_) => Place::Occluded,
                    None => continue,
                };
                places.insert(key.into(), place);
            }
        }
        View {
            zone,
            index: index as u32,
            ents,
            places,
            pools,
            apex_owner: apex.owner(),
            soa,
        }
    }

    /// How many names the zone has, empty non-terminals included.
    fn len(&self) -> usize {
        self.zone.len() + self.ents.len() + self.pools.len()
    }

    /// The pool answering A/AAAA at `key`, if any.
    fn pool_of(&self, key: &[u8]) -> Option<u32> {
        self.pools.get(key).copied()
    }

    /// What the zone has at `key`, if the name exists.
    fn get(&self, key: &[u8]) -> Option<NameInfo<'z>> {
        let node = match self.zone.get(key).filter(|&n| !nsec3_only(n)) {
            Some(node) => Some(node),
            None if self.ents.contains(key) || self.pools.contains_key(key) => None,
            None => return None,
        };
        let place = self.places.get(key).copied().unwrap_or(Place::Authoritative);
        Some(NameInfo { node, place })
    }

    /// Every name, with what it holds.
    fn names(&self) -> impl Iterator<Item = (&[u8], NameInfo<'z>)> + '_ {
        let place = |key: &[u8]| self.places.get(key).copied().unwrap_or(Place::Authoritative);
        let zone: &'z Zone = self.zone;
        zone.nodes()
            .filter(|&n| !nsec3_only(n))
            .map(move |n| {
                (
                    n.key(),
                    NameInfo {
                        node: Some(n),
                        place: place(n.key()),
                    },
                )
            })
            .chain(self.ents.iter().map(move |k| {
                (
                    &k[..],
                    NameInfo {
                        node: None,
                        place: place(k),
                    },
                )
            }))
            .chain(self.pools.keys().filter(|k| !zone.contains(k)).map(move |k| {
                (
                    &k[..],
                    NameInfo {
                        node: None,
                        place: place(k),
                    },
                )
            }))
    }

    /// The negative TTL: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    fn negative_ttl(&self) -> u32 {
        let rdata = self.soa.rdatas().first();
        let minimum = rdata
            .len()
            .checked_sub(4)
            .map(|at| u32::from_be_bytes([rdata[at], rdata[at + 1], rdata[at + 2], rdata[at + 3]]))
            .unwrap_or(0);
        self.soa.ttl.min(minimum)
    }

    /// Looks `key` up inside this zone, for CNAME chains: the node that
    /// answers for it, with wildcards applied.
    fn lookup(&self, key: &[u8]) -> Lookup<'z> {
        if !name::is_within(key, &self.zone.origin) {
            return Lookup::Outside;
        }
        let mut at = Some(key);
        while let Some(k) = at {
            if k.len() < self.zone.origin.len() {
                break;
            }
            if let Some(info) = self.get(k) {
                let exact = k.len() == key.len();
                return match info.place {
                    Place::Authoritative if exact => Lookup::Found(info.node),
                    Place::Authoritative => {
                        // Below a DNAME (not at a wildcard, where it is only
                        // data): redirected. Otherwise a wildcard, if any.
                        let dname = info
                            .node
                            .filter(|_| !name::is_wildcard(k))
                            .and_then(|n| Some((n, n.rrset(DNAME)?)));
                        let mut wild = b"\x01*".to_vec();
                        wild.extend_from_slice(k);
                        // NS at a wildcard is data for the names it stands
                        // in for (Out::authoritative).
                        match (dname, self.get(&wild)) {
                            (Some((node, set)), _) => Lookup::Redirected(node, set),
                            (None, Some(w)) if matches!(w.place, Place::Authoritative | Place::Delegation) => {
                                Lookup::Found(w.node)
                            }
                            _ => Lookup::NxDomain,
                        }
                    }
                    Place::Delegation => Lookup::Delegated(self.stored_key(k)),
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

    /// `key` as stored in the zone (for a borrow that outlives `key`).
    fn stored_key(&self, key: &[u8]) -> &'z [u8] {
        let zone: &'z Zone = self.zone;
        zone.get(key).map_or(&[], |n| n.key())
    }

    /// The cut above an occluded name.
    fn cut_above(&self, key: &[u8]) -> Option<&'z [u8]> {
        let mut at = name::parent(key);
        while let Some(k) = at {
            if self.places.get(k) == Some(&Place::Delegation) {
                return Some(self.stored_key(k));
            }
            at = name::parent(k);
        }
        None
    }

    /// Address RRsets (A, AAAA) of `key` usable as additional data, and
    /// their owner: the name's own, or `None` when a wildcard supplies
    /// them (the records are then owned by `key` itself, as Knot does;
    /// NSD does so for glue only).
    fn addresses(&self, key: &[u8]) -> Option<(Option<&'z [u8]>, Vec<RRset<'z>>)> {
        let (owner, node) = match self.get(key) {
            Some(info) if matches!(info.place, Place::InChild) => return None,
            Some(info) => {
                let node = info.node?;
                (Some(node.owner()), node)
            }
            None => match self.lookup(key) {
                Lookup::Found(Some(node)) => (None, node),
                _ => return None,
            },
        };
        let sets: Vec<RRset<'z>> = node.rrsets().filter(|r| r.rtype == A || r.rtype == AAAA).collect();
        (!sets.is_empty()).then_some((owner, sets))
    }
}

enum Lookup<'z> {
    /// The node (or matching wildcard node) answering for the name; `None`
    /// for an empty non-terminal.
    Found(Option<zone::Node<'z>>),
    Delegated(&'z [u8]),
    /// Below the owner of this DNAME RRset (RFC 6672).
    Redirected(zone::Node<'z>, RRset<'z>),
    NxDomain,
    Outside,
}

/// The snapshot being assembled: its arenas, and what the compiler needs
/// on the side.
#[derive(Default)]
struct Out {
    a: Arenas,
    /// DS entries for child apexes, applied at the end.
    overrides: Vec<(Box<[u8]>, u16, AnswerId)>,
    /// Wildcard nodes that answer only for the names they stand in for:
    /// the owner asked for itself has a node of its own, the next one.
    synth_only: Vec<u32>,
    /// The template being rendered (reused).
    b: Builder,
}

/// Additional address records for the names in NS, MX and SRV RRsets
/// (RFC 1034 §4.3.2 step 6; RFC 2782). Below `cut`, they are glue and
/// required (RFC 9471).
fn additional(view: &View<'_>, b: &mut Builder, rrset: RRset<'_>, cut: Option<&[u8]>) {
    let at = match rrset.rtype {
        NS => 0,
        MX => 2,
        SRV => 6,
        _ => return,
    };
    let mut wanted: Vec<(Vec<u8>, &[u8], bool)> = Vec::new();
    for rdata in rrset.rdatas().iter() {
        let Some(target) = rdata.get(at..) else { continue };
        let key = name::to_key(target);
        if !wanted.iter().any(|(k, _, _)| *k == key) {
            let required = cut.is_some_and(|c| name::is_within(&key, c));
            wanted.push((key, target, required));
        }
    }
    // Required glue first, so that optional data can be cut off the end.
    wanted.sort_by_key(|&(_, _, required)| !required);
    for (key, target, required) in wanted {
        if let Some((owner, sets)) = view.addresses(&key) {
            for set in sets {
                b.rrset(
                    Section::Additional,
                    Owner::Name(owner.unwrap_or(target)),
                    set.rtype,
                    set.ttl,
                    set.rdatas().iter(),
                    required,
                );
            }
        }
    }
}

impl Out {
    /// Reserves room for a zone's nodes and answers, so that the arenas do
    /// not grow over a large zone: each growth copies an arena, and the
    /// allocator holds the old block for a while. The room is generous:
    /// what is reserved and never written costs address space, not memory.
    fn reserve(&mut self, view: &View<'_>) {
        let names = view.len();
        let sets = view.zone.rrset_count() + 2 * view.pools.len();
        let answers = 2 * sets + names / 2;
        self.a.nodes.reserve(names);
        self.a.names.reserve(names * 32);
        self.a.types.reserve(2 * sets);
        self.a.answers.reserve(answers);
        self.a.cuts.reserve(answers);
        self.a.bodies.reserve((view.zone.record_count + names) * 48);
    }

    /// Stores the finished template in the arenas; reports one that is too
    /// large and returns `None` for it.
    fn store(
        &mut self,
        view: &View<'_>,
        rcode: u8,
        authoritative: bool,
        what: impl FnOnce() -> String,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        let Some(r): Option<Rendered<'_>> = self.b.finish() else {
            let loc = view.zone.loc(view.soa.loc);
            diags.error(
                Some(crate::diag::Loc { line: 0, ..loc }),
                format!(
                    "the answer for {} is larger than a DNS message can hold; it is left out",
                    what()
                ),
            );
            return None;
        };
        let (shuffle_at, shuffle_count, shuffle_size) = r
            .shuffle
            .map_or((0, 0, 0), |(at, n, size)| (at as u16, n as u16, size as u8));
        self.a.answers.push(Answer {
            body_at: self.a.bodies.len() as u32,
            body_len: r.body.len() as u16,
            counts: r.counts,
            cuts_at: self.a.cuts.len() as u32,
            cuts_len: r.cuts.len() as u16,
            fixups_at: self.a.fixups.len() as u32,
            fixups_len: r.fixups.len() as u16,
            base_qlen: r.base_qlen as u8,
            rcode,
            authoritative,
            shuffle_at,
            shuffle_count,
            shuffle_size,
            pool: NONE,
            pool_owner: 0,
            flags: 0,
            empty: 0,
        });
        self.a.bodies.extend_from_slice(r.body);
        self.a.fixups.extend_from_slice(r.fixups);
        self.a.cuts.extend_from_slice(r.cuts);
        Some((self.a.answers.len() - 1) as AnswerId)
    }

    /// Stores the template in the builder as the static part of a pool
    /// answer: members of pool `p` follow it, owned by `owner` (a pointer
    /// offset, and whether it moves with the qname); `empty` is sent when
    /// the pool gives no address.
    #[allow(clippy::too_many_arguments)]
    fn store_pool(
        &mut self,
        view: &View<'_>,
        p: u32,
        v6: bool,
        owner: (u16, bool),
        empty: AnswerId,
        what: impl FnOnce() -> String,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        let id = self.store(view, NOERROR, true, what, diags)?;
        let answer = &mut self.a.answers[id as usize];
        answer.pool = p;
        let (at, moves) = owner;
        answer.pool_owner = at;
        answer.flags |= if v6 { Answer::POOL_V6 } else { 0 } | if moves { Answer::OWNER_MOVES } else { 0 };
        answer.empty = empty;
        Some(id)
    }

    /// NXDOMAIN or NODATA for the zone: the SOA in authority, rendered
    /// against the apex so that any qname in the zone can use it.
    fn negative(&mut self, view: &View<'_>, rcode: u8, diags: &mut Diagnostics) -> AnswerId {
        self.b.reset(&view.zone.origin, Mode::Suffix);
        self.soa_authority(view);
        self.store(view, rcode, true, || "the SOA".into(), diags)
            .expect("an SOA always fits")
    }

    /// The zone's SOA in authority, at the negative TTL (RFC 2308 §3).
    fn soa_authority(&mut self, view: &View<'_>) {
        self.b.rrset(
            Section::Authority,
            Owner::Name(view.apex_owner),
            SOA,
            view.negative_ttl(),
            view.soa.rdatas().iter().take(1),
            false,
        );
    }

    /// One RRset as the whole answer, with its additional data.
    fn single(
        &mut self,
        view: &View<'_>,
        qkey: &[u8],
        mode: Mode,
        rrset: RRset<'_>,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        self.b.reset(qkey, mode);
        self.b.rrset(
            Section::Answer,
            Owner::Qname,
            rrset.rtype,
            rrset.ttl,
            rrset.rdatas().iter(),
            false,
        );
        additional(view, &mut self.b, rrset, None);
        let what = || {
            format!(
                "{} {}",
                name::to_text(qkey),
                domain::base::iana::Rtype::from_int(rrset.rtype)
            )
        };
        self.store(view, NOERROR, true, what, diags)
    }

    /// A referral to the cut `cut` (RFC 1034 §4.3.2 step 3b): its NS in
    /// authority, glue in additional, AA clear.
    fn referral(&mut self, view: &View<'_>, cut: &[u8], diags: &mut Diagnostics) -> Option<AnswerId> {
        self.b.reset(cut, Mode::Suffix);
        if !self.cut_ns(view, cut) {
            return None;
        }
        self.store(
            view,
            NOERROR,
            false,
            || format!("the referral to {}", name::to_text(cut)),
            diags,
        )
    }

    /// Writes the NS RRset of `cut` to authority and its glue to
    /// additional; false if the cut has no NS.
    fn cut_ns(&mut self, view: &View<'_>, cut: &[u8]) -> bool {
        let Some(node) = view.get(cut).and_then(|i| i.node) else {
            return false;
        };
        let Some(ns) = node.rrset(NS) else { return false };
        self.b.rrset(
            Section::Authority,
            Owner::Name(node.owner()),
            NS,
            ns.ttl,
            ns.rdatas().iter(),
            false,
        );
        additional(view, &mut self.b, ns, Some(cut));
        true
    }

    /// Adds a node to the index; its types are the last `types` entries
    /// from `types_at` on.
    fn node(
        &mut self,
        view: &View<'_>,
        key: &[u8],
        kind: NodeKind,
        types_at: usize,
        fallback: AnswerId,
        any: AnswerId,
    ) {
        self.a.nodes.push(Node {
            name_at: self.a.names.len() as u32,
            name_len: key.len() as u8,
            kind,
            zone: view.index,
            types_at: types_at as u32,
            types_len: (self.a.types.len() - types_at) as u16,
            fallback,
            any,
            below: NONE,
        });
        self.a.names.extend_from_slice(key);
    }

    /// A zone cut: DS from this side (RFC 4035 §3.1.4.1), referral for the
    /// rest.
    fn delegation(
        &mut self,
        view: &View<'_>,
        key: &[u8],
        node: Option<zone::Node<'_>>,
        nodata: AnswerId,
        diags: &mut Diagnostics,
    ) {
        let Some(referral) = self.referral(view, key, diags) else {
            return;
        };
        let ds = match node.and_then(|n| n.rrset(DS)) {
            Some(set) => self.single(view, key, Mode::Exact, set, diags).unwrap_or(nodata),
            None => nodata,
        };
        let types_at = self.a.types.len();
        self.a.types.push((DS, ds));
        self.node(view, key, NodeKind::Delegation, types_at, referral, referral);
    }

    /// A name with authoritative data (or none: an empty non-terminal), or
    /// a wildcard that is also a cut (`cut`: it owns NS).
    ///
    /// NS at a wildcard, whose meaning RFC 4592 §4.2 leaves open, is data
    /// for the names it stands in for (QTYPE NS gets the RRset as an
    /// answer, other types NODATA), as RFC 1034 §4.3.2 step 3c reads and
    /// as NSD answers; Knot refers them to the wildcard's own name. The
    /// owner itself is a cut like any other.
    #[allow(clippy::too_many_arguments)]
    fn authoritative<'z>(
        &mut self,
        hosted: &Hosted<'_, 'z>,
        view: &View<'z>,
        key: &[u8],
        node: Option<zone::Node<'z>>,
        nodata: AnswerId,
        cut: bool,
        diags: &mut Diagnostics,
    ) {
        if !name::is_wildcard(key) {
            self.authoritative_as(hosted, view, key, node, nodata, Mode::Exact, diags);
            return;
        }
        // A wildcard's node answers for the names it stands in for, and
        // for its owner too unless the owner needs one of its own, added
        // next (see `finish`): a cut, or a wildcard whose CNAME chain comes
        // back to its own owner (`*.w CNAME *.w`), which goes there once
        // for the names it stands in for, as NSD and Knot do, while the
        // owner asked for itself would get that CNAME twice.
        let at = self.a.nodes.len() as u32;
        let through_owner = self.authoritative_as(hosted, view, key, node, nodata, Mode::Wildcard, diags);
        if cut {
            self.delegation(view, key, node, nodata, diags);
        } else if through_owner {
            self.authoritative_as(hosted, view, key, node, nodata, Mode::Exact, diags);
        }
        if self.a.nodes.len() as u32 == at + 2 {
            self.synth_only.push(at);
        }
    }

    /// Adds the node for `key`, its answers rendered in `mode`; returns
    /// whether its CNAME chain went through `key` itself.
    #[allow(clippy::too_many_arguments)]
    fn authoritative_as<'z>(
        &mut self,
        hosted: &Hosted<'_, 'z>,
        view: &View<'z>,
        key: &[u8],
        node: Option<zone::Node<'z>>,
        nodata: AnswerId,
        mode: Mode,
        diags: &mut Diagnostics,
    ) -> bool {
        let types_at = self.a.types.len();
        let mut through_owner = false;
        let fallback = match node {
            Some(n) if n.rrset(CNAME).is_some() => {
                // RRSIG and NSEC may sit beside a CNAME (RFC 2181 §10.1,
                // RFC 4035 §2): asked for, they are the owner's own, its
                // RRset or NODATA, not the chain's (as Knot answers).
                for rtype in [RRSIG, NSEC] {
                    let id = match n.rrset(rtype) {
                        Some(set) => self.single(view, key, mode, set, diags),
                        None => Some(nodata),
                    };
                    if let Some(id) = id {
                        self.a.types.push((rtype, id));
                    }
                }
                let (other, through) = self.cname_answers(hosted, view, key, mode, n, diags);
                through_owner = through;
                other
            }
            Some(n) => {
                for set in n.rrsets() {
                    if let Some(id) = self.single(view, key, mode, set, diags) {
                        self.a.types.push((set.rtype, id));
                    }
                }
                Some(nodata)
            }
            None => Some(nodata),
        };
        if let Some(p) = view.pool_of(key) {
            for (rtype, v6) in [(A, false), (AAAA, true)] {
                self.b.reset(key, mode);
                let what = || format!("{} (pool)", name::to_text(key));
                if let Some(id) = self.store_pool(view, p, v6, (12, false), nodata, what, diags) {
                    self.a.types.push((rtype, id));
                }
            }
        }
        let types = &self.a.types[types_at..];
        let fallback = fallback.or(types.first().map(|&(_, id)| id)).unwrap_or(nodata);
        // RFC 8482 §4.2: answer ANY with one RRset (the CNAME, if any).
        let any = types
            .iter()
            .find(|(t, _)| *t == CNAME)
            .or(types.first())
            .map_or(fallback, |&(_, id)| id);
        // A DNAME redirects the names below its owner, not the owner itself
        // (RFC 6672 §2.3); at a wildcard it is only data (the zone check
        // warns).
        let dname = match node.and_then(|n| Some((n, n.rrset(DNAME)?))) {
            Some((n, set)) if mode == Mode::Exact => self.dname(view, key, n.owner(), set, diags),
            _ => None,
        };
        match dname {
            Some(id) => {
                self.node(view, key, NodeKind::Dname, types_at, fallback, any);
                if let Some(n) = self.a.nodes.last_mut() {
                    n.below = id;
                }
            }
            None => self.node(view, key, NodeKind::Authoritative, types_at, fallback, any),
        }
        through_owner
    }

    /// The answer for DS at the CNAME owner `key`: the chain with what is
    /// at its end. The other answers of the chain are left unused.
    fn cname_ds<'z>(
        &mut self,
        hosted: &Hosted<'_, 'z>,
        view: &View<'z>,
        key: &[u8],
        node: zone::Node<'z>,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        let types_at = self.a.types.len();
        let (other, _) = self.cname_answers(hosted, view, key, Mode::Exact, node, diags);
        let ds = self.a.types[types_at..]
            .iter()
            .find(|(t, _)| *t == DS)
            .map(|&(_, id)| id);
        self.a.types.truncate(types_at);
        ds.or(other)
    }

    /// The answer for the names below a DNAME owner: the DNAME record,
    /// rendered against its owner (the qname's suffix), its target
    /// uncompressed (RFC 6672 §2.5); the answer path appends the CNAME.
    fn dname(
        &mut self,
        view: &View<'_>,
        key: &[u8],
        owner: &[u8],
        set: RRset<'_>,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        self.b.reset(key, Mode::Suffix);
        self.b.rrset(
            Section::Answer,
            Owner::Name(owner),
            DNAME,
            set.ttl,
            set.rdatas().iter().take(1),
            false,
        );
        let what = || format!("the DNAME at {}", name::to_text(key));
        let id = self.store(view, NOERROR, true, what, diags)?;
        self.a.answers[id as usize].pool = Answer::DNAME;
        Some(id)
    }

    /// Answers at a CNAME owner, pushed to `types`: the CNAME alone for
    /// QTYPE CNAME, the chain followed through the zones hosted here plus
    /// the data at its end for the types found there. Returns the answer
    /// for other types, and whether the chain went through `key` itself
    /// (a wildcard's, for the names it stands in for).
    fn cname_answers<'z>(
        &mut self,
        hosted: &Hosted<'_, 'z>,
        view: &View<'z>,
        key: &[u8],
        mode: Mode,
        node: zone::Node<'z>,
        diags: &mut Diagnostics,
    ) -> (Option<AnswerId>, bool) {
        let cname = node.rrset(CNAME).expect("caller checked");
        if let Some(id) = self.single(view, key, mode, cname, diags) {
            self.a.types.push((CNAME, id));
        }
        // Follow the chain, step by step: a CNAME found in the zone, or a
        // DNAME above the target and the CNAME it synthesises (RFC 6672
        // §3.2, as a server follows a chain).
        let first = cname.rdatas().first();
        let mut steps = vec![Step {
            owner: None,
            rtype: CNAME,
            ttl: cname.ttl,
            rdata: Cow::Borrowed(first),
        }];
        let mut target: Cow<'z, [u8]> = Cow::Borrowed(first);
        let mut visited: AHashSet<Vec<u8>> = AHashSet::new();
        // A wildcard's template answers for other names than its owner:
        // a chain that leads to the owner itself (`* CNAME *`) goes there
        // once, as in NSD and Knot.
        if mode != Mode::Wildcard {
            visited.insert(key.to_vec());
        }
        // The DNAMEs the chain went through (their owners' keys).
        let mut applied: Vec<&[u8]> = Vec::new();
        // The zone the chain is in: a name in another zone hosted here
        // (a child's, the parent's) is looked up there, as RFC 1034 §4.3.2
        // step 3a goes back to step 1 and as NSD does, and as the DNAMEs of
        // the answer path do. Knot DNS stays in the zone.
        let mut at: &View<'z> = view;
        let mut through_owner = false;
        let end = loop {
            let target_key = name::to_key(&target);
            if !visited.insert(target_key.clone()) || steps.len() >= MAX_CHAIN {
                break End::Stop;
            }
            through_owner |= target_key == key;
            at = hosted.view_of(&target_key).unwrap_or(at);
            if let Some(p) = at.pool_of(&target_key) {
                break End::Pool(p, at.get(&target_key).and_then(|i| i.node));
            }
            match at.lookup(&target_key) {
                Lookup::Found(Some(n)) => match n.rrset(CNAME) {
                    Some(next) => {
                        let rdata = next.rdatas().first();
                        steps.push(Step {
                            owner: Some(target),
                            rtype: CNAME,
                            ttl: next.ttl,
                            rdata: Cow::Borrowed(rdata),
                        });
                        target = Cow::Borrowed(rdata);
                    }
                    None => break End::Data(n),
                },
                Lookup::Found(None) => break End::NoData,
                Lookup::NxDomain => break End::NxDomain,
                Lookup::Delegated(cut) => break End::Referral(cut),
                Lookup::Redirected(owner, dname) => {
                    // A DNAME met a second time redirects into itself: the
                    // chain stops there, as NSD's does, and no record is
                    // written twice.
                    if applied.contains(&owner.key()) {
                        break End::Stop;
                    }
                    applied.push(owner.key());
                    // The target's labels above the DNAME owner, then the
                    // DNAME's target (letter case as written).
                    let prefix = &target[..target.len().saturating_sub(owner.key().len())];
                    let redirected = [prefix, dname.rdatas().first()].concat();
                    if redirected.len() > name::MAX_NAME_LEN {
                        break End::Stop;
                    }
                    steps.push(Step {
                        owner: Some(Cow::Borrowed(owner.owner())),
                        rtype: DNAME,
                        ttl: dname.ttl,
                        rdata: Cow::Borrowed(dname.rdatas().first()),
                    });
                    steps.push(Step {
                        owner: Some(target),
                        rtype: CNAME,
                        ttl: dname.ttl,
                        rdata: Cow::Owned(redirected.clone()),
                    });
                    target = Cow::Owned(redirected);
                }
                Lookup::Outside => break End::Stop,
            }
        };
        let what = || format!("the CNAME chain at {}", name::to_text(key));
        let chain = |b: &mut Builder| {
            b.reset(key, mode);
            for step in &steps {
                let owner = step.owner.as_deref().map_or(Owner::Qname, Owner::Name);
                b.rrset(
                    Section::Answer,
                    owner,
                    step.rtype,
                    step.ttl,
                    [&step.rdata[..]].into_iter(),
                    false,
                );
            }
        };
        let target = &target[..];
        // So is DS at the apex of a zone hosted here under another.
        if let Some(parent) = hosted.parent_of_apex(&name::to_key(target)) {
            self.chain_ds(view, parent, &chain, target, what, diags);
        }
        let other = match end {
            End::Data(n) => self.chain_to(view, at, &chain, target, n.rrsets(), what, diags),
            End::Pool(p, node) => {
                let negative = self.chain_to(
                    view,
                    at,
                    &chain,
                    target,
                    node.into_iter().flat_map(|n| n.rrsets()),
                    what,
                    diags,
                );
                for (rtype, v6) in [(A, false), (AAAA, true)] {
                    chain(&mut self.b);
                    let owner = (self.b.last_name_at(), mode != Mode::Exact);
                    let empty = negative.unwrap_or(0);
                    if let Some(id) = self.store_pool(view, p, v6, owner, empty, what, diags) {
                        self.a.types.push((rtype, id));
                    }
                }
                negative
            }
            // The RCODE of the last step (RFC 6604), the SOA for negatives
            // (RFC 2308 §2.1, §2.2).
            End::NoData | End::NxDomain => {
                chain(&mut self.b);
                self.soa_authority(at);
                let rcode = if matches!(end, End::NxDomain) {
                    NXDOMAIN
                } else {
                    NOERROR
                };
                self.store(view, rcode, true, what, diags)
            }
            End::Referral(cut) => {
                // DS at the cut itself is the parent's to answer (RFC 4035
                // §3.1.4.1): its DS RRset, or NODATA; other types get the
                // referral.
                if name::to_key(target) == cut {
                    self.chain_ds(view, at, &chain, target, what, diags);
                }
                chain(&mut self.b);
                self.cut_ns(at, cut);
                self.store(view, NOERROR, true, what, diags)
            }
            End::Stop => {
                chain(&mut self.b);
                self.store(view, NOERROR, true, what, diags)
            }
        };
        (other, through_owner)
    }

    /// The answer for DS at the end of a chain, pushed as a type: the
    /// chain, then the DS RRset at `target` in the parent's zone
    /// (`parent`), or its NODATA.
    fn chain_ds(
        &mut self,
        view: &View<'_>,
        parent: &View<'_>,
        chain: &dyn Fn(&mut Builder),
        target: &[u8],
        what: impl Fn() -> String + Copy,
        diags: &mut Diagnostics,
    ) {
        chain(&mut self.b);
        let key = name::to_key(target);
        match parent.get(&key).and_then(|i| i.node).and_then(|n| n.rrset(DS)) {
            Some(ds) => self.b.rrset(
                Section::Answer,
                Owner::Name(target),
                DS,
                ds.ttl,
                ds.rdatas().iter(),
                false,
            ),
            None => self.soa_authority(parent),
        }
        if let Some(id) = self.store(view, NOERROR, true, what, diags) {
            self.a.types.push((DS, id));
        }
    }

    /// The chain, then each RRset at its end (pushed as types); returns
    /// the chain with the SOA of the zone it ends in (`at`), for the other
    /// types (NODATA).
    #[allow(clippy::too_many_arguments)]
    fn chain_to<'z>(
        &mut self,
        view: &View<'_>,
        at: &View<'_>,
        chain: &dyn Fn(&mut Builder),
        target: &[u8],
        rrsets: impl Iterator<Item = RRset<'z>>,
        what: impl Fn() -> String + Copy,
        diags: &mut Diagnostics,
    ) -> Option<AnswerId> {
        for set in rrsets {
            chain(&mut self.b);
            self.b.rrset(
                Section::Answer,
                Owner::Name(target),
                set.rtype,
                set.ttl,
                set.rdatas().iter(),
                false,
            );
            // Additional data as NSD adds it at the end of a chain into
            // another zone: the addresses of an NS RRset's names from its
            // own zone, those of the others' names from the zone the
            // query is in (so none from the other zone).
            let from = if set.rtype == NS { at } else { view };
            additional(from, &mut self.b, set, None);
            if let Some(id) = self.store(view, NOERROR, true, what, diags) {
                self.a.types.push((set.rtype, id));
            }
        }
        chain(&mut self.b);
        self.soa_authority(at);
        self.store(view, NOERROR, true, what, diags)
    }

    /// Builds the hash table, then links wildcards to their parents and
    /// applies the overrides.
    fn finish(mut self) -> Index {
        let hasher = NameHasher::new();
        let name_of = |nodes: &[Node], i: u32| -> std::ops::Range<usize> {
            let n = &nodes[i as usize];
            n.name_at as usize..n.name_at as usize + usize::from(n.name_len)
        };
        let mut table = HashTable::with_capacity(self.a.nodes.len());
        // A wildcard's node for the names it stands in for is reached
        // through its parent only; its twin, next, answers the owner.
        let synth_only: AHashSet<u32> = std::mem::take(&mut self.synth_only).into_iter().collect();
        for i in 0..self.a.nodes.len() as u32 {
            if synth_only.contains(&i) {
                continue;
            }
            let hash = hasher.hash(&self.a.names[name_of(&self.a.nodes, i)]);
            table.insert_unique(hash, i, |&j| hasher.hash(&self.a.names[name_of(&self.a.nodes, j)]));
        }
        let find = |nodes: &[Node], names: &[u8], key: &[u8]| -> Option<u32> {
            table
                .find(hasher.hash(key), |&j| &names[name_of(nodes, j)] == key)
                .copied()
        };
        for (key, qtype, answer) in std::mem::take(&mut self.overrides) {
            let Some(i) = find(&self.a.nodes, &self.a.names, &key) else {
                continue;
            };
            let node = self.a.nodes[i as usize];
            let at = node.types_at as usize;
            let mut types = self.a.types[at..at + usize::from(node.types_len)].to_vec();
            match types.iter().position(|(t, _)| *t == qtype) {
                Some(pos) => types[pos].1 = answer,
                None => types.push((qtype, answer)),
            }
            let node = &mut self.a.nodes[i as usize];
            node.types_at = self.a.types.len() as u32;
            node.types_len = types.len() as u16;
            self.a.types.extend(types);
        }
        for i in 0..self.a.nodes.len() {
            let key = &self.a.names[name_of(&self.a.nodes, i as u32)];
            if !name::is_wildcard(key) || (i > 0 && synth_only.contains(&(i as u32 - 1))) {
                continue;
            }
            let Some(parent) = name::parent(key) else { continue };
            if let Some(p) = find(&self.a.nodes, &self.a.names, parent)
                && self.a.nodes[p as usize].zone == self.a.nodes[i].zone
            {
                self.a.nodes[p as usize].below = i as u32;
            }
        }
        // No shrink_to_fit: it would copy each arena (and hold both copies
        // for a while), while the room reserved past the end was never
        // written and costs no memory.
        Index {
            table,
            hasher,
            a: self.a,
        }
    }
}

/// One record of a CNAME chain: its owner (`None`: the qname), type, TTL
/// and RDATA (synthesised for a CNAME from a DNAME).
struct Step<'z> {
    owner: Option<Cow<'z, [u8]>>,
    rtype: u16,
    ttl: u32,
    rdata: Cow<'z, [u8]>,
}

/// How a CNAME chain ends (at the chain's last target).
enum End<'z> {
    Data(zone::Node<'z>),
    /// A pool name, with the zone's other data there, if any.
    Pool(u32, Option<zone::Node<'z>>),
    NoData,
    NxDomain,
    Referral(&'z [u8]),
    Stop,
}
