//! The frozen index every query is answered from.
//!
//! A [`Snapshot`] is compiled from checked zones once (at start and on
//! reload) and then only read, by every worker, without locks. It maps each
//! name to a node and each (node, qtype) to a pre-rendered [`Answer`], so
//! that answering is one hash lookup for names that exist and a walk up the
//! labels (closest encloser, RFC 1034 §4.3.2, RFC 4592 §3.3.1) for names
//! that do not, which a DNAME above them redirects (RFC 6672).
//!
//! Storage is a few flat arenas (names, type tables, bodies, fixups) rather
//! than one allocation per item, to keep a million-record zone small.

mod build;
pub mod render;

pub use build::build;

use std::sync::Arc;

use hashbrown::HashTable;

use crate::lb::{Live, Pools};

/// No node (for [`Node::below`]), no pool (for [`Answer::pool`]).
pub(crate) const NONE: u32 = u32::MAX;

/// Answer-table index of an answer.
pub type AnswerId = u32;

/// What a node is in its zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The apex, or a name with authoritative data, or an empty
    /// non-terminal.
    Authoritative,
    /// A zone cut (NS records below the apex): answered with a referral.
    Delegation,
    /// An authoritative name with a DNAME (RFC 6672): names below it that
    /// do not exist are redirected by [`Node::below`].
    Dname,
}

/// A name in the index.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    name_at: u32,
    name_len: u8,
    kind: NodeKind,
    zone: u32,
    types_at: u32,
    types_len: u16,
    /// The answer for types without an entry (NODATA, a CNAME chain, a
    /// referral).
    fallback: AnswerId,
    /// The answer to QTYPE ANY (RFC 8482: one RRset).
    any: AnswerId,
    /// What answers for names below this one that do not exist: the
    /// node `*.<this>` if the zone has one (`NONE` if not), or, for a
    /// [`NodeKind::Dname`] node (which can have no names below it), the
    /// DNAME answer.
    below: u32,
}

/// A pre-rendered reply body and what the answer path needs to send it.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub(crate) body_at: u32,
    pub(crate) body_len: u16,
    pub(crate) counts: [u16; 3],
    /// Where the body may be cut to fit a small message (see
    /// [`Snapshot::cuts`]).
    pub(crate) cuts_at: u32,
    pub(crate) cuts_len: u16,
    pub(crate) fixups_at: u32,
    pub(crate) fixups_len: u16,
    /// Wire length of the question name the template was rendered for.
    pub(crate) base_qlen: u8,
    pub(crate) rcode: u8,
    pub(crate) authoritative: bool,
    /// The pool whose members follow the body (`NONE`: a static answer;
    /// [`Answer::DNAME`]: a DNAME answer), and the owner pointer their
    /// records use.
    pub(crate) pool: u32,
    pub(crate) pool_owner: u16,
    /// [`Answer::POOL_V6`], [`Answer::OWNER_MOVES`]: one byte, so that
    /// the answer stays 44 bytes.
    pub(crate) flags: u8,
    /// The answer to send when the pool gives no address (NODATA).
    pub(crate) empty: AnswerId,
    /// A/AAAA records to send in random order: start, count, size.
    pub(crate) shuffle_at: u16,
    pub(crate) shuffle_count: u16,
    pub(crate) shuffle_size: u8,
}

impl Answer {
    /// The pool's members are AAAA records.
    pub(crate) const POOL_V6: u8 = 1;
    /// `pool_owner` moves with the qname length (see render.rs).
    pub(crate) const OWNER_MOVES: u8 = 2;
    /// [`Answer::pool`] of a DNAME redirection: the body is the DNAME
    /// record alone, rendered against its owner, and the answer path adds
    /// the CNAME it synthesises for the qname (RFC 6672 §3.1). A pool
    /// value, so that static answers pass one test (`pool == NONE`).
    pub(crate) const DNAME: u32 = u32::MAX - 1;

    #[inline]
    pub(crate) fn pool_v6(&self) -> bool {
        self.flags & Self::POOL_V6 != 0
    }

    #[inline]
    pub(crate) fn pool_owner_moves(&self) -> bool {
        self.flags & Self::OWNER_MOVES != 0
    }

    #[inline]
    pub(crate) fn is_dname(&self) -> bool {
        self.pool == Self::DNAME
    }
}

/// A zone as the snapshot knows it.
#[derive(Clone, Debug)]
pub struct ZoneInfo {
    /// The origin as a lower-cased wire name.
    pub origin: Box<[u8]>,
    /// Records loaded.
    pub records: usize,
    /// The zone's NXDOMAIN answer (SOA in authority, RFC 2308 §3).
    pub(crate) nxdomain: AnswerId,
}

/// The flat storage of a snapshot, filled by the compiler.
#[derive(Default)]
struct Arenas {
    nodes: Vec<Node>,
    /// Node names (keys), back to back.
    names: Vec<u8>,
    /// Per-node (qtype, answer) tables, back to back.
    types: Vec<(u16, AnswerId)>,
    answers: Vec<Answer>,
    bodies: Vec<u8>,
    fixups: Vec<u16>,
    cuts: Vec<(u16, u16)>,
    zones: Vec<ZoneInfo>,
}

/// The compiled zones: names to pre-rendered answers.
pub struct Index {
    table: HashTable<u32>,
    hasher: NameHasher,
    a: Arenas,
}

/// Hashes lower-cased wire names for the index: ahash over the name's
/// bytes alone. (`hash_one` would hash a length prefix first, one more
/// round per lookup; a wire name needs none, its root label ends it.)
pub(crate) struct NameHasher(ahash::RandomState);

impl NameHasher {
    /// A hasher with fresh random keys.
    pub(crate) fn new() -> Self {
        NameHasher(ahash::RandomState::new())
    }

    #[inline]
    pub(crate) fn hash(&self, name: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = self.0.build_hasher();
        hasher.write(name);
        hasher.finish()
    }
}

/// What every query is answered from: the zone index, the pools, and the
/// members' current health as a live view. Health changes make a new
/// snapshot that shares the index and pools and has a new live view.
#[derive(Clone)]
pub struct Snapshot {
    index: Arc<Index>,
    pools: Arc<Pools>,
    live: Arc<Live>,
    /// How the answer engine behaves beyond the data.
    pub settings: Settings,
}

/// Protocol settings from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Use and answer EDNS Client Subnet (RFC 7871).
    pub ecs: bool,
    /// Classify responses for rate limiting (RRL on).
    pub rrl: bool,
    /// The server cookie secret (RFC 9018), shared across a fleet.
    pub cookie_secret: [u8; 16],
    /// The name server identifier for clients that ask (RFC 5001).
    pub nsid: Option<Arc<[u8]>>,
    /// The TXT answers to `id.server.` and `version.server.` (and their
    /// `.bind.` forms) in class CH (RFC 4892); REFUSED when unset.
    pub identity: Option<Arc<str>>,
    pub version: Option<Arc<str>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ecs: true,
            rrl: false,
            cookie_secret: [0; 16],
            nsid: None,
            identity: None,
            version: None,
        }
    }
}

impl std::ops::Deref for Snapshot {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.index
    }
}

impl Snapshot {
    /// A snapshot of `index` and `pools` with the live view `live`.
    pub fn new(index: Index, pools: Pools, live: Live, settings: Settings) -> Snapshot {
        Snapshot {
            index: Arc::new(index),
            pools: Arc::new(pools),
            live: Arc::new(live),
            settings,
        }
    }

    /// The same zones and pools with another live view (a health change).
    pub fn with_live(&self, live: Live) -> Snapshot {
        self.with_live_arc(Arc::new(live))
    }

    /// As [`Snapshot::with_live`], with a shared view.
    pub fn with_live_arc(&self, live: Arc<Live>) -> Snapshot {
        Snapshot { live, ..self.clone() }
    }

    /// The pools, shared (a reload makes new ones).
    pub fn pools_arc(&self) -> &Arc<Pools> {
        &self.pools
    }

    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    pub fn live(&self) -> &Live {
        &self.live
    }
}

impl Index {
    /// The zones served.
    pub fn zones(&self) -> &[ZoneInfo] {
        &self.a.zones
    }

    /// Bytes the index and its arenas use (not counting allocator overhead,
    /// nor arena room reserved and never written, which is not resident).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.table.capacity() * (size_of::<u32>() + 1)
            + self.a.nodes.len() * size_of::<Node>()
            + self.a.names.len()
            + self.a.types.len() * size_of::<(u16, AnswerId)>()
            + self.a.answers.len() * size_of::<Answer>()
            + self.a.bodies.len()
            + self.a.fixups.len() * size_of::<u16>()
            + self.a.cuts.len() * size_of::<(u16, u16)>()
    }

    /// Names in the index (owners, empty non-terminals and cuts).
    pub fn node_count(&self) -> usize {
        self.a.nodes.len()
    }

    fn node_name(&self, node: &Node) -> &[u8] {
        let at = node.name_at as usize;
        &self.a.names[at..at + usize::from(node.name_len)]
    }

    // Inlined into `resolve`: a call's register saves and restores cost
    // about what the probe does (callgrind).
    #[inline(always)]
    fn find(&self, key: &[u8]) -> Option<&Node> {
        let hash = self.hasher.hash(key);
        self.table
            .find(hash, |&i| self.node_name(&self.a.nodes[i as usize]) == key)
            .map(|&i| &self.a.nodes[i as usize])
    }

    #[inline]
    fn answer_for(&self, node: &Node, qtype: u16) -> AnswerId {
        if qtype == 255 {
            return node.any;
        }
        let at = node.types_at as usize;
        let types = &self.a.types[at..at + usize::from(node.types_len)];
        types
            .iter()
            .find(|(t, _)| *t == qtype)
            .map_or(node.fallback, |&(_, id)| id)
    }

    /// Finds the answer for `key` (a lower-cased wire name) and `qtype`
    /// (RFC 1034 §4.3.2 steps 2–3, with RFC 4592 wildcards). `None` means
    /// no zone here is authoritative for the name (REFUSED).
    #[inline]
    pub fn resolve(&self, key: &[u8], qtype: u16) -> Option<&Answer> {
        if let Some(node) = self.find(key) {
            return Some(&self.a.answers[self.answer_for(node, qtype) as usize]);
        }
        // The closest encloser: the longest existing ancestor, found by
        // dropping labels from the left, the root tried last.
        let mut at = 0;
        let encloser = loop {
            let len = usize::from(*key.get(at)?);
            if len == 0 {
                return None;
            }
            at += 1 + len;
            if let Some(node) = self.find(key.get(at..)?) {
                break node;
            }
        };
        let id = match encloser.kind {
            NodeKind::Delegation => encloser.fallback,
            NodeKind::Dname => encloser.below,
            NodeKind::Authoritative if encloser.below != NONE => {
                self.answer_for(&self.a.nodes[encloser.below as usize], qtype)
            }
            NodeKind::Authoritative => self.a.zones[encloser.zone as usize].nxdomain,
        };
        Some(&self.a.answers[id as usize])
    }

    /// The zone hosted here that answers for `key` (a lower-cased wire
    /// name): the one of the name or of its closest encloser.
    pub fn zone_of(&self, key: &[u8]) -> Option<u32> {
        let mut at = 0;
        loop {
            if let Some(node) = self.find(key.get(at..)?) {
                return Some(node.zone);
            }
            let len = usize::from(*key.get(at)?);
            if len == 0 {
                return None;
            }
            at += 1 + len;
        }
    }

    /// An answer by id.
    #[inline]
    pub(crate) fn answer(&self, id: AnswerId) -> &Answer {
        &self.a.answers[id as usize]
    }

    /// The body bytes of an answer.
    #[inline]
    pub fn body(&self, answer: &Answer) -> &[u8] {
        let at = answer.body_at as usize;
        &self.a.bodies[at..at + usize::from(answer.body_len)]
    }

    /// Where an answer's body may end when all of it does not fit: (body
    /// length, additional count), shortest first. The first keeps what
    /// must be sent (answer, authority, required glue); each further one
    /// adds an optional additional RRset.
    #[inline]
    pub fn cuts(&self, answer: &Answer) -> &[(u16, u16)] {
        let at = answer.cuts_at as usize;
        &self.a.cuts[at..at + usize::from(answer.cuts_len)]
    }

    /// Positions of the compression pointers that move with the qname.
    #[inline]
    pub fn fixups(&self, answer: &Answer) -> &[u16] {
        let at = answer.fixups_at as usize;
        &self.a.fixups[at..at + usize::from(answer.fixups_len)]
    }
}

#[cfg(test)]
mod tests {
    /// A million-record zone holds millions of these; a field that adds
    /// padding costs megabytes (README, Performance: memory).
    #[test]
    fn index_entries_stay_small() {
        assert_eq!(std::mem::size_of::<super::Answer>(), 44);
        assert_eq!(std::mem::size_of::<super::Node>(), 28);
    }
}
