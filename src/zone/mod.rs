//! Zone files in, checked records out.
//!
//! Files are RFC 1035 §5 master files read with `domain`'s zone-file
//! scanner (`$ORIGIN`, `$TTL`, relative names, `@`, blank owners,
//! parentheses, class and TTL in either order, quoted strings, RFC 3597
//! `\#` data). `$INCLUDE` is followed here, relative to the including file,
//! and each include starts with the includer's current origin (RFC 1035
//! §5.1). The records are grouped into RRsets by owner and type and checked
//! (RFC 1034 §4.2.1, RFC 2181 §5, §10.1), every problem reported with its
//! `file:line`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::name::{Name, ToName};
use domain::base::rdata::ComposeRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};
use hashbrown::HashTable;

use crate::diag::{Diagnostics, Loc};
use crate::name;

pub mod extra;
mod generate;

/// How deep `$INCLUDE` may nest by default before the loader gives up (a
/// guard against include loops).
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// Limits on what a zone may hold (`[limits]` in the configuration); each
/// one exceeded is an error that names it.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes in one zone file (or include).
    pub zone_file_size: u64,
    /// Records in one zone.
    pub zone_records: usize,
    /// `$INCLUDE` nesting.
    pub include_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            zone_file_size: 1 << 30,
            zone_records: 20_000_000,
            include_depth: MAX_INCLUDE_DEPTH,
        }
    }
}

/// Types whose RDATA holds domain names we may compress (RFC 3597 §4:
/// only the RFC 1035 types).
pub fn is_compressible(rtype: u16) -> bool {
    matches!(rtype, 2..=9 | 12 | 14 | 15)
}

/// Where the names are in the RDATA of a compressible type: the bytes
/// before the first, and how many follow one another.
pub fn rdata_names(rtype: u16) -> (usize, usize) {
    match rtype {
        15 => (2, 1),     // MX: preference, exchange
        6 | 14 => (0, 2), // SOA: mname, rname, ...; MINFO: two names
        _ => (0, 1),      // NS, MD, MF, CNAME, MB, MG, MR, PTR
    }
}

/// A record's place: an index into [`Zone::files`] and a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLoc {
    pub file: u32,
    pub line: u32,
}

/// "No item" in the loader's linked lists.
const NIL: u32 = u32::MAX;

/// A node as stored: its key and owner in [`Zone::names`], its RRsets a
/// run of [`Zone::sets`].
#[derive(Clone, Copy, Debug)]
struct NodeRec {
    key_at: u32,
    /// Equal to `key_at` when the owner is already lower case.
    owner_at: u32,
    len: u8,
    /// While loading: the first RRset of a linked list (or `NIL`).
    sets_at: u32,
    sets_len: u16,
}

/// An RRset as stored: its RDATA a run of [`Zone::spans`].
#[derive(Clone, Copy, Debug)]
struct SetRec {
    rtype: u16,
    ttl: u32,
    loc: RecordLoc,
    spans_at: u32,
    spans_len: u32,
}

/// A loaded and checked zone. Its records lie in a few flat arenas (names,
/// RRsets, RDATA) instead of one allocation each, so that a million-record
/// zone loads fast and takes little memory on its way to the snapshot.
pub struct Zone {
    /// The origin (apex) as an index key: lower-cased wire form.
    pub origin: Box<[u8]>,
    /// The files read, the zone file first, then its includes.
    pub files: Vec<Arc<Path>>,
    /// How many records were loaded, duplicates removed.
    pub record_count: usize,
    /// Node indexes by key. Empty non-terminals are absent.
    table: HashTable<u32>,
    hasher: ahash::RandomState,
    /// Nodes in the order their owners first appear.
    nodes: Vec<NodeRec>,
    /// Keys and owners, back to back.
    names: Vec<u8>,
    /// RRsets, each node's together and ordered by type.
    sets: Vec<SetRec>,
    /// Each record's RDATA (start in `data`, length), each RRset's together
    /// in file order.
    spans: Vec<(u32, u16)>,
    /// RDATA in uncompressed wire form.
    data: Vec<u8>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("origin", &name::to_text(&self.origin))
            .field("names", &self.nodes.len())
            .field("records", &self.record_count)
            .finish()
    }
}

/// Node `i`'s lookup key. A free function, so that it can rehash the
/// table while the table itself is borrowed for growing.
fn node_key<'a>(nodes: &[NodeRec], names: &'a [u8], i: u32) -> &'a [u8] {
    let n = &nodes[i as usize];
    &names[n.key_at as usize..n.key_at as usize + usize::from(n.len)]
}

impl Zone {
    fn empty(origin: Box<[u8]>) -> Zone {
        Zone {
            origin,
            files: Vec::new(),
            record_count: 0,
            table: HashTable::new(),
            hasher: ahash::RandomState::new(),
            nodes: Vec::new(),
            names: Vec::new(),
            sets: Vec::new(),
            spans: Vec::new(),
            data: Vec::new(),
        }
    }

    /// The place of a record, for messages.
    pub fn loc(&self, at: RecordLoc) -> Loc {
        Loc {
            file: self.files[at.file as usize].clone(),
            line: at.line as usize,
        }
    }

    /// The apex node (present in every zone that loaded without errors).
    pub fn apex(&self) -> Option<Node<'_>> {
        self.get(&self.origin)
    }

    /// Owner names with records.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// RRsets in the zone.
    pub fn rrset_count(&self) -> usize {
        self.sets.len()
    }

    /// Whether the zone has no records at all.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn key_of(&self, i: u32) -> &[u8] {
        node_key(&self.nodes, &self.names, i)
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&i| self.key_of(i) == key).copied()
    }

    /// The node of `key` (a lower-cased wire name), if it has records.
    pub fn get(&self, key: &[u8]) -> Option<Node<'_>> {
        self.find(key).map(|i| Node {
            zone: self,
            rec: &self.nodes[i as usize],
        })
    }

    /// Whether `key` has records.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// Every node, in the order its owner first appears in the files.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = Node<'_>> + '_ {
        self.nodes.iter().map(move |rec| Node { zone: self, rec })
    }
}

/// The RRsets of one owner name.
#[derive(Clone, Copy)]
pub struct Node<'z> {
    zone: &'z Zone,
    rec: &'z NodeRec,
}

impl<'z> Node<'z> {
    /// The owner as an index key (lower-cased wire form).
    pub fn key(&self) -> &'z [u8] {
        let at = self.rec.key_at as usize;
        &self.zone.names[at..at + usize::from(self.rec.len)]
    }

    /// The owner in wire form, with the letter case of its first record.
    pub fn owner(&self) -> &'z [u8] {
        let at = self.rec.owner_at as usize;
        &self.zone.names[at..at + usize::from(self.rec.len)]
    }

    /// The RRsets, ordered by type.
    pub fn rrsets(&self) -> impl ExactSizeIterator<Item = RRset<'z>> + Clone + use<'z> {
        let zone: &'z Zone = self.zone;
        let at = self.rec.sets_at as usize;
        zone.sets[at..at + usize::from(self.rec.sets_len)]
            .iter()
            .map(move |s| RRset::new(zone, s))
    }

    /// The RRset of `rtype`, if the node has one.
    pub fn rrset(&self, rtype: u16) -> Option<RRset<'z>> {
        self.rrsets().find(|r| r.rtype == rtype)
    }
}

/// All records of one owner and type (RFC 2181 §5).
#[derive(Clone, Copy)]
pub struct RRset<'z> {
    pub rtype: u16,
    /// The RRset's TTL: the lowest of its records' (RFC 2181 §5.2).
    pub ttl: u32,
    /// Where the first record was read.
    pub loc: RecordLoc,
    rdatas: Rdatas<'z>,
}

impl<'z> RRset<'z> {
    fn new(zone: &'z Zone, s: &'z SetRec) -> Self {
        let at = s.spans_at as usize;
        RRset {
            rtype: s.rtype,
            ttl: s.ttl,
            loc: s.loc,
            rdatas: Rdatas {
                data: &zone.data,
                spans: &zone.spans[at..at + s.spans_len as usize],
            },
        }
    }

    /// Each record's RDATA in uncompressed wire form, in file order.
    pub fn rdatas(&self) -> Rdatas<'z> {
        self.rdatas
    }
}

/// The RDATA of an RRset's records.
#[derive(Clone, Copy)]
pub struct Rdatas<'z> {
    data: &'z [u8],
    spans: &'z [(u32, u16)],
}

impl<'z> Rdatas<'z> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `i`th record's RDATA.
    pub fn get(&self, i: usize) -> Option<&'z [u8]> {
        let &(at, len) = self.spans.get(i)?;
        self.data.get(at as usize..at as usize + usize::from(len))
    }

    /// The first record's RDATA (every RRset has one).
    pub fn first(&self) -> &'z [u8] {
        self.get(0).unwrap_or_default()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'z [u8]> + Clone + use<'z> {
        let data: &'z [u8] = self.data;
        self.spans
            .iter()
            .map(move |&(at, len)| &data[at as usize..at as usize + usize::from(len)])
    }
}

/// One record as read, before grouping; the bytes borrow the scanner's
/// reusable buffers.
pub struct RawRecord<'a> {
    /// The owner in wire form, as written.
    pub owner: &'a [u8],
    pub rtype: u16,
    pub ttl: u32,
    /// The RDATA in uncompressed wire form.
    pub rdata: &'a [u8],
    pub loc: RecordLoc,
}

/// Keeps panics of `domain`'s zone-file scanner (turned into errors at
/// their entry by the loader) from printing a panic message; any other
/// panic reports as before. Call once at start.
pub fn quiet_scanner_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let from_scanner = info
                .location()
                .is_some_and(|l| l.file().contains("zonefile/inplace.rs"));
            if !from_scanner {
                previous(info);
            }
        }));
    });
}

/// Loads the zone `origin` from `path`, checks it, and returns it, or
/// `None` when it has errors (all of them recorded in `diags`).
pub fn load(origin: &Name<Bytes>, path: &Path, limits: &Limits, diags: &mut Diagnostics) -> Option<Zone> {
    load_source(origin, path, None, limits, diags)
}

/// Loads a zone from `src` as if read from `path` (includes are read from
/// files); for tests and fuzzing.
pub fn load_bytes(
    origin: &Name<Bytes>,
    path: &Path,
    src: &[u8],
    limits: &Limits,
    diags: &mut Diagnostics,
) -> Option<Zone> {
    load_source(origin, path, Some(src.to_vec()), limits, diags)
}

fn load_source(
    origin: &Name<Bytes>,
    path: &Path,
    src: Option<Vec<u8>>,
    limits: &Limits,
    diags: &mut Diagnostics,
) -> Option<Zone> {
    let mut assembler = Assembler::new(origin, limits);
    let found = scan(origin, path, src, limits, &mut assembler);
    assembler.finish(found, diags)
}

/// Where the scanner puts what it reads: the files as it opens them (the
/// zone file first, numbered from 0 in that order) and the records.
pub trait Sink {
    /// A file is opened; `size` is its length in bytes.
    fn file(&mut self, path: Arc<Path>, size: usize);
    /// A record, its bytes borrowed for the call.
    fn record(&mut self, rec: RawRecord<'_>);
    /// Whether to stop reading (the zone is over a limit).
    fn full(&self) -> bool;
}

/// Reads the zone file at `path` (or `src`, as if read from there) and its
/// includes into `sink`. Returns the problems found reading (syntax,
/// files, includes); those of the records themselves are the sink's.
pub fn scan(
    origin: &Name<Bytes>,
    path: &Path,
    src: Option<Vec<u8>>,
    limits: &Limits,
    sink: &mut impl Sink,
) -> Diagnostics {
    let mut scanner = Scanner {
        limits: *limits,
        files: 0,
        diags: Diagnostics::default(),
        owner: Vec::new(),
        rdata: Vec::new(),
    };
    let top = Reading {
        depth: 0,
        from: None,
        ttl: None,
        owner: None,
    };
    scanner.scan_file(sink, path, src, origin.clone(), top);
    scanner.diags
}

/// Builds a zone from what a scan finds.
pub struct Assembler {
    limits: Limits,
    /// The record limit was reached, or the arenas are full: take no more.
    full: bool,
    zone: Zone,
    pending: Pending,
    diags: Diagnostics,
}

impl Assembler {
    pub fn new(origin: &Name<Bytes>, limits: &Limits) -> Assembler {
        Assembler {
            limits: *limits,
            full: false,
            zone: Zone::empty(name::to_key(origin.as_slice()).into()),
            pending: Pending::default(),
            diags: Diagnostics::default(),
        }
    }

    /// Reserves room for the records a zone file of `size` bytes is likely
    /// to hold (about one per 24 bytes, as in the usual short A records),
    /// so that the arenas do not grow and copy many times over a large
    /// zone. Room reserved and not written costs no resident memory.
    fn reserve(&mut self, size: usize) {
        let records = (size / 24).min(self.limits.zone_records);
        let zone = &mut self.zone;
        zone.nodes.reserve(records);
        zone.names.reserve(records * 20);
        zone.data.reserve(records * 8);
        self.pending.sets.reserve(records);
        self.pending.recs.reserve(records);
        // The table's control bytes are written when it is allocated:
        // reserve it for fewer names.
        let Zone {
            table,
            hasher,
            nodes,
            names,
            ..
        } = zone;
        table.reserve(records / 2, |&j| hasher.hash_one(node_key(nodes, names, j)));
    }

    /// Checks the zone and returns it, or `None` when it has errors; the
    /// problems found reading (`found`) and assembling go to `diags` in
    /// file order.
    pub fn finish(self, mut found: Diagnostics, diags: &mut Diagnostics) -> Option<Zone> {
        let Assembler {
            mut zone,
            pending,
            diags: assembled,
            ..
        } = self;
        found.extend(assembled);
        pending.finish(&mut zone);
        zone.check(&mut found);
        // Report in file order, whatever order the checks ran in.
        found.items.sort_by(|a, b| {
            let key = |d: &crate::diag::Diagnostic| d.loc.as_ref().map(|l| (l.file.clone(), l.line));
            key(a).cmp(&key(b))
        });
        let ok = !found.has_errors();
        diags.extend(found);
        ok.then_some(zone)
    }
}

impl Sink for Assembler {
    fn file(&mut self, path: Arc<Path>, size: usize) {
        if self.zone.files.is_empty() {
            self.reserve(size);
        }
        self.zone.files.push(path);
    }

    fn record(&mut self, rec: RawRecord<'_>) {
        if self.full {
            return;
        }
        let loc = rec.loc;
        if !self.pending.add(&mut self.zone, rec, &mut self.diags) {
            self.full = true;
        } else if self.zone.record_count >= self.limits.zone_records {
            self.diags.error(
                Some(self.zone.loc(loc)),
                format!(
                    "the zone holds more records than limits.zone_records ({}); loading stopped",
                    self.limits.zone_records
                ),
            );
            self.full = true;
        }
    }

    fn full(&self) -> bool {
        self.full
    }
}

/// Records as read, a batch at a time, for a scan on one thread feeding an
/// [`Assembler`] on another ([`Assembler::take`]).
#[derive(Default)]
pub struct RecordBatch {
    files: Vec<(Arc<Path>, usize)>,
    /// Each record's owner, then its RDATA.
    bytes: Vec<u8>,
    records: Vec<BatchedRecord>,
}

struct BatchedRecord {
    rtype: u16,
    owner_len: u8,
    rdata_len: u16,
    ttl: u32,
    loc: RecordLoc,
}

impl RecordBatch {
    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.files.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.files.clear();
        self.bytes.clear();
        self.records.clear();
    }

    /// Takes a file into the batch (see [`Sink::file`]).
    pub fn file(&mut self, path: Arc<Path>, size: usize) {
        self.files.push((path, size));
    }

    /// Takes a record into the batch (see [`Sink::record`]).
    pub fn record(&mut self, rec: RawRecord<'_>) {
        self.bytes.extend_from_slice(rec.owner);
        self.bytes.extend_from_slice(rec.rdata);
        self.records.push(BatchedRecord {
            rtype: rec.rtype,
            owner_len: rec.owner.len() as u8,
            rdata_len: rec.rdata.len() as u16,
            ttl: rec.ttl,
            loc: rec.loc,
        });
    }
}

impl Assembler {
    /// Adds what `batch` holds, in the order it was read.
    pub fn take(&mut self, batch: &RecordBatch) {
        for (path, size) in &batch.files {
            self.file(path.clone(), *size);
        }
        let mut at = 0;
        for r in &batch.records {
            let owner_end = at + usize::from(r.owner_len);
            let end = owner_end + usize::from(r.rdata_len);
            self.record(RawRecord {
                owner: &batch.bytes[at..owner_end],
                rtype: r.rtype,
                ttl: r.ttl,
                rdata: &batch.bytes[owner_end..end],
                loc: r.loc,
            });
            at = end;
        }
    }
}

struct Scanner {
    limits: Limits,
    /// Files opened so far.
    files: u32,
    diags: Diagnostics,
    /// Reusable buffers for the record being read.
    owner: Vec<u8>,
    rdata: Vec<u8>,
}

/// Where a file is read from: the zone file itself, or an `$INCLUDE`.
struct Reading {
    /// How deep in includes (0: the zone file).
    depth: usize,
    /// The `$INCLUDE` line, for an include.
    from: Option<Loc>,
    /// The `$TTL` in force where the file was included, which the file
    /// starts with (as in NSD and Knot).
    ttl: Option<u32>,
    /// The includer's current owner, as text: a blank owner on the
    /// file's first record means it (RFC 1035 §5.1, as in NSD).
    owner: Option<String>,
}

impl Scanner {
    /// Reads one file (the zone file or an include) with `origin` as its
    /// initial origin. Returns the last `$TTL` the file set, if it set one.
    fn scan_file(
        &mut self,
        sink: &mut impl Sink,
        path: &Path,
        src: Option<Vec<u8>>,
        origin: Name<Bytes>,
        reading: Reading,
    ) -> Option<u32> {
        let Reading {
            depth,
            from,
            ttl,
            owner: inherited_owner,
        } = reading;
        // The owner of this file's last record, for an include to inherit.
        let mut last_owner: Vec<u8> = Vec::new();
        let file: Arc<Path> = Arc::from(path);
        let size = match &src {
            Some(src) => src.len() as u64,
            None => std::fs::metadata(path).map_or(0, |m| m.len()),
        };
        if size > self.limits.zone_file_size {
            let loc = from.clone().unwrap_or(Loc { file, line: 0 });
            self.diags.error(
                Some(loc),
                format!(
                    "{} is {size} bytes, over limits.zone_file_size ({})",
                    path.display(),
                    self.limits.zone_file_size
                ),
            );
            return None;
        }
        let src = match src.map_or_else(|| std::fs::read(path), Ok) {
            Ok(src) => src,
            Err(err) => {
                let what = if depth == 0 { "zone file" } else { "included file" };
                let msg = format!("cannot read {what} {}: {err}", path.display());
                match from {
                    Some(loc) => self.diags.error(Some(loc), msg),
                    None => self.diags.error(Some(Loc { file, line: 0 }), msg),
                }
                return None;
            }
        };
        let mut src = src;
        if src.starts_with(b"\xef\xbb\xbf") {
            // Some editors write one; it means nothing in a zone file.
            let loc = Loc {
                file: file.clone(),
                line: 1,
            };
            self.diags
                .warning(Some(loc), "ignored the UTF-8 byte-order mark that starts the file");
            src.drain(..3);
        }
        let file_idx = self.files;
        self.files += 1;
        sink.file(file.clone(), src.len());

        let EntryLines {
            mut lines,
            unclosed,
            rewrite: maybe_extra,
            ttls,
            bad_origins,
            bad_owners,
        } = entry_lines(&src);
        let owners = bad_owners.iter().map(|&line| (line, "the owner".to_string()));
        for (line, what) in owners.chain(
            bad_origins
                .into_iter()
                .map(|(line, name)| (line, format!("$ORIGIN {name}"))),
        ) {
            let loc = Loc {
                file: file.clone(),
                line: line as usize,
            };
            self.diags.error(
                Some(loc),
                format!("{what} has an empty label (two dots in a row, or a leading dot)"),
            );
        }
        if let Some((line, what)) = unclosed {
            // Caught here, with a clearer message than the scanner's (and
            // before `domain` 0.12.3's scanner can index past its buffer).
            self.diags.error(
                Some(Loc {
                    file: file.clone(),
                    line: line as usize,
                }),
                format!("the {what} opened here is not closed before the end of the file"),
            );
            return None;
        }
        if ttls.is_empty()
            && ttl.is_none()
            && let Some((line, count)) = extra::without_ttl(&src)
        {
            // RFC 2308 §4 gave zone files `$TTL` because servers differed.
            let loc = Loc {
                file: file.clone(),
                line: line as usize,
            };
            self.diags.warning(
                Some(loc),
                format!(
                    "{count} record(s) here and below give no TTL, and the file sets no $TTL: each takes \
                     the last TTL written before it (RFC 1035 §5.1), or 3600 before any; BIND would give \
                     them the SOA's minimum, and NSD 3600. Start the file with $TTL"
                ),
            );
        }
        // What the scanner cannot read (types it has no text form for,
        // TTLs with units, `@` in data) is rewritten first.
        let rewrite = if maybe_extra {
            let origin = origin.to_string();
            let origin = if origin.ends_with('.') { origin } else { origin + "." };
            extra::rewrite(
                &src,
                &origin,
                generate::Budget {
                    records: self.limits.zone_records,
                    bytes: usize::try_from(self.limits.zone_file_size).unwrap_or(usize::MAX),
                },
            )
        } else {
            None
        };
        if let Some(rw) = rewrite.as_ref().filter(|rw| !rw.generated.is_empty()) {
            lines = generated_lines(&lines, &rw.generated);
        }
        let fixes = rewrite.as_ref().map_or(&[][..], |rw| &rw.fixes[..]);
        for (line, msg) in rewrite.iter().flat_map(|rw| &rw.errors) {
            let loc = Loc {
                file: file.clone(),
                line: *line as usize,
            };
            self.diags.error(Some(loc), msg.clone());
        }
        let mut text: std::borrow::Cow<'_, [u8]> = rewrite.as_ref().map_or(&src, |rw| &rw.text).into();
        if let Some(owner) = &inherited_owner
            && let Some((at, false)) = extra::first_record(&text)
        {
            // Write the inherited owner in front of the blank one (same
            // line, so no line number moves).
            let mut with = Vec::with_capacity(text.len() + owner.len());
            with.extend_from_slice(&text[..at]);
            with.extend_from_slice(owner.as_bytes());
            with.extend_from_slice(&text[at..]);
            text = with.into();
        }
        // An include starts with the `$TTL` in force where it was included.
        // The scanner has no setter for that: the text gets a `$TTL` line
        // in front, and the scanner's line numbers count one line less.
        let (mut zonefile, shift) = match ttl {
            Some(ttl) => {
                let mut zonefile = Zonefile::from(format!("$TTL {ttl}\n").as_bytes());
                zonefile.extend_from_slice(&text);
                (zonefile, 1)
            }
            None => (Zonefile::from(&text[..]), 0),
        };
        if text.last().is_some_and(|&b| b != b'\n') {
            // A final line without its line feed trips up the scanner.
            zonefile.extend_from_slice(b"\n");
        }
        zonefile.set_origin(origin);
        zonefile.set_default_class(Class::IN);
        let mut entries = 0usize;
        while !sink.full() {
            // Where the next entry starts; past the last one, the end.
            let entry_line = lines.get(entries).map_or(usize::MAX, |&l| l as usize);
            // The scanner has panicked on some malformed input (an index
            // out of bounds in `domain` 0.12.3, found by fuzzing): turn that
            // into an error at the entry instead of taking the server down.
            let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zonefile.next_entry()));
            let Ok(scanned) = scanned else {
                let line = if entry_line == usize::MAX { 0 } else { entry_line };
                self.diags.error(
                    Some(Loc {
                        file: file.clone(),
                        line,
                    }),
                    "the zone-file scanner failed on this entry (malformed data)",
                );
                break;
            };
            let entry = match scanned {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(err) => {
                    // `domain` reports "line:col: message" where the scanner
                    // stopped, which may be past the end of the entry; the
                    // entry's first line is the place to look (or the
                    // reported one, if earlier: a bad directive). The scanner
                    // cannot go on after an error.
                    let err = err.to_string();
                    let (mut reported, mut col, msg) = split_position(&err);
                    if msg == "unexpected end of entry" && col == Some(1) && reported > 1 {
                        // Reported where the scanner stood, past the line
                        // feed: the entry that ended early is the line before
                        // (a directive with no argument).
                        reported -= 1;
                        col = None;
                    }
                    let reported = reported.saturating_sub(shift);
                    // A line of the rewritten text, back in the file as written.
                    let reported = match &rewrite {
                        Some(rw) if reported > 0 => rw.source_line(reported),
                        _ => reported,
                    };
                    let line = if reported == 0 {
                        entry_line
                    } else {
                        reported.min(entry_line)
                    };
                    let msg = plainer(msg);
                    // A record a `$GENERATE` made: which one, as it was
                    // written (the column is in that, not in the file).
                    let made = rewrite.as_ref().and_then(|rw| {
                        let first = lines.partition_point(|&l| (l as usize) < entry_line);
                        rw.generated_record(u32::try_from(entry_line).ok()?, entries.checked_sub(first)?)
                    });
                    let msg = match (line == reported, col, made) {
                        (_, _, Some(record)) => {
                            let record = String::from_utf8_lossy(record);
                            format!("{msg}, in the record this $GENERATE made: {}", record.trim())
                        }
                        (true, Some(col), None) => format!("{msg} (column {col})"),
                        _ => msg,
                    };
                    self.diags.error(
                        Some(Loc {
                            file: file.clone(),
                            line,
                        }),
                        msg,
                    );
                    break;
                }
            };
            entries += 1;
            let line = if entry_line == usize::MAX { 0 } else { entry_line };
            let here = Loc {
                file: file.clone(),
                line,
            };
            match entry {
                Entry::Record(record) => {
                    if bad_owners.binary_search(&(line as u32)).is_ok() {
                        continue; // reported above; the scanner cut its owner short
                    }
                    if record.class() != Class::IN {
                        self.diags.error(
                            Some(here),
                            format!("class {} is not supported (only IN)", record.class()),
                        );
                        continue;
                    }
                    self.rdata.clear();
                    if record.data().compose_rdata(&mut self.rdata).is_err() {
                        self.diags.error(Some(here), "record data too long");
                        continue;
                    }
                    self.owner.clear();
                    if record.owner().compose(&mut self.owner).is_err() {
                        self.diags.error(Some(here), "owner name too long");
                        continue;
                    }
                    let mut rtype = record.rtype().to_int();
                    if matches!(record.data(), domain::rdata::ZoneRecordData::Unknown(_))
                        && !reads_back(rtype, &self.rdata)
                    {
                        // RFC 3597 §5: data in generic form must be valid for
                        // a type known here (`A \# 3 c00002` is not).
                        self.diags.error(
                            Some(here),
                            format!("the \\# data is not valid {} data", Rtype::from_int(rtype)),
                        );
                        continue;
                    }
                    if let Err(msg) = check_data(rtype, &self.rdata) {
                        self.diags.error(Some(here), msg);
                        continue;
                    }
                    if let Ok(at) = fixes.binary_search_by_key(&(line as u32), |f| f.line) {
                        // Scanned as a look-alike type: put the real one back.
                        let kind = fixes[at].kind;
                        if let Err(msg) = kind.check(&self.rdata) {
                            self.diags.error(Some(here), msg);
                            continue;
                        }
                        rtype = kind.rtype;
                    }
                    if let Some(msg) = digest_length(rtype, &self.rdata) {
                        self.diags.warning(Some(here.clone()), msg);
                    }
                    last_owner.clear();
                    last_owner.extend_from_slice(&self.owner);
                    let raw = RawRecord {
                        owner: &self.owner,
                        rtype,
                        ttl: record.ttl().as_secs(),
                        rdata: &self.rdata,
                        loc: RecordLoc {
                            file: file_idx,
                            line: line as u32,
                        },
                    };
                    sink.record(raw);
                }
                Entry::Include {
                    path: inc,
                    origin: inc_origin,
                } => {
                    if depth + 1 > self.limits.include_depth {
                        self.diags.error(
                            Some(here),
                            format!(
                                "$INCLUDE nested deeper than limits.include_depth ({}) (a loop?)",
                                self.limits.include_depth
                            ),
                        );
                        continue;
                    }
                    let target = resolve_include(path, inc.as_str());
                    let origin = match inc_origin.map(Ok).unwrap_or_else(|| zonefile.origin()) {
                        Ok(origin) => origin,
                        Err(err) => {
                            self.diags.error(Some(here), format!("$INCLUDE: {err}"));
                            continue;
                        }
                    };
                    // The last `$TTL` before this line, or the one this
                    // file started with.
                    let ttl = ttls
                        .iter()
                        .rev()
                        .find(|&&(at, _)| (at as usize) < line)
                        .map(|&(_, ttl)| ttl)
                        .or(ttl);
                    let owner = if last_owner.is_empty() {
                        inherited_owner.clone()
                    } else {
                        Some(name::to_text(&last_owner))
                    };
                    let inner = Reading {
                        depth: depth + 1,
                        from: Some(here.clone()),
                        ttl,
                        owner,
                    };
                    let Some(set) = self
                        .scan_file(sink, &target, None, origin, inner)
                        .filter(|&set| Some(set) != ttl)
                    else {
                        continue;
                    };
                    // The include's `$TTL` stays in it. BIND and NSD keep it
                    // for the rest of this file: say so where that matters,
                    // for entries after the include and before this file's
                    // next `$TTL`.
                    let next_ttl = ttls.iter().map(|&(at, _)| at as usize).find(|&at| at > line);
                    let after = lines
                        .get(entries)
                        .map(|&l| l as usize)
                        .filter(|&l| next_ttl.is_none_or(|n| l < n));
                    // Where a line starts in the file (lines from 1).
                    let at_line = |l: usize| match l {
                        0 | 1 => 0,
                        l => memchr::memchr_iter(b'\n', &src).nth(l - 2).map_or(src.len(), |i| i + 1),
                    };
                    let follows = after.is_some_and(|from| {
                        let to = next_ttl.map_or(src.len(), at_line);
                        extra::without_ttl(&src[at_line(from)..to]).is_some()
                    });
                    if follows {
                        let keep = ttl.map_or("the last TTL written before them".to_string(), |t| t.to_string());
                        self.diags.warning(
                            Some(here),
                            format!(
                                "{} sets $TTL {set}, which holds only in it, as in Knot; the records after this \
                                 $INCLUDE with no TTL of their own get {keep}, where BIND and NSD would give them \
                                 {set}. Set $TTL after the $INCLUDE to say which",
                                inc.as_str()
                            ),
                        );
                    }
                }
            }
        }
        ttls.last().map(|&(_, ttl)| ttl)
    }
}

/// Checks what the scanner lets through and NSD, Knot or BIND refuse:
/// names with empty labels ([`has_names`]), an empty CAA tag (RFC
/// 8659 §4.1), SSHFP, TLSA or SMIMEA records without their fingerprint
/// or certificate data, a ZONEMD digest under 12 bytes (RFC 8976
/// §2.2.4), and any other data that does not read back as its type, as a
/// client reading the answer would parse it.
fn check_data(rtype: u16, rdata: &[u8]) -> Result<(), String> {
    // A and AAAA data is an address of its size: nothing to read back.
    let reads = matches!(rtype, 1 | 28) || reads_back(rtype, rdata);
    if has_names(rtype) && !reads {
        return Err(format!(
            "a name in the data is malformed: an empty label, as in `a..b` or `.a`? ({} data does not \
             read back)",
            Rtype::from_int(rtype)
        ));
    }
    match rtype {
        // The scanner checks a tag's characters, not that it has any.
        257 if rdata.get(1).is_none_or(|&len| len == 0) => Err("CAA: the tag is empty (RFC 8659 §4.1)".into()),
        44 if rdata.len() <= 2 => Err("SSHFP: no fingerprint".into()),
        52 if rdata.len() <= 3 => Err("TLSA: no certificate association data".into()),
        63 if rdata.len() < 6 + 12 => Err(format!(
            "ZONEMD: the digest is {} bytes; it must be at least 12 (RFC 8976 §2.2.4)",
            rdata.len().saturating_sub(6)
        )),
        _ if !reads => Err(format!(
            "the {0} data is not valid: it does not read back as {0}",
            Rtype::from_int(rtype)
        )),
        _ => Ok(()),
    }
}

/// A digest whose length is not its type's, in a DS (or CDS, TA, DLV),
/// an SSHFP, or a TLSA (or SMIMEA): no key or certificate will match it,
/// so validation fails. BIND refuses such a DS or SSHFP (not a TLSA);
/// NSD and Knot load them all. A warning here.
fn digest_length(rtype: u16, rdata: &[u8]) -> Option<String> {
    // Each family's digest types: number, name, length in bytes.
    const DS: &[(u8, &str, usize)] = &[
        (1, "SHA-1", 20),
        (2, "SHA-256", 32),
        (3, "GOST R 34.11-94", 32),
        (4, "SHA-384", 48),
    ];
    const SSHFP: &[(u8, &str, usize)] = &[(1, "SHA-1", 20), (2, "SHA-256", 32)];
    const TLSA: &[(u8, &str, usize)] = &[(1, "SHA-256", 32), (2, "SHA-512", 64)];
    // Where the digest type is, where the digest starts, and what it is.
    let (type_at, data_at, what, matches, types) = match rtype {
        43 | 59 | 32768 | 32769 => (3, 4, "a digest", "no key", DS),
        44 => (1, 2, "a fingerprint", "no key", SSHFP),
        52 | 53 => (2, 3, "association data", "no certificate", TLSA),
        _ => return None,
    };
    let kind = *rdata.get(type_at)?;
    let &(_, name, want) = types.iter().find(|&&(k, _, _)| k == kind)?;
    let has = rdata.len().checked_sub(data_at)?;
    (has != want).then(|| {
        format!(
            "{}: {what} of type {kind} ({name}) is {want} bytes, this one {has}: {matches} will match it",
            Rtype::from_int(rtype),
        )
    })
}

/// Whether a type's data has domain names in it. `domain`'s scanner
/// writes a name with an empty label (`a..b`, `.a`) as the labels before
/// it, a root label, and the rest: data no one reading the answer could
/// parse, which [`check_data`] reports as a malformed name.
fn has_names(rtype: u16) -> bool {
    // NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO, MX, RP, SRV, NAPTR,
    // DNAME, IPSECKEY, RRSIG, NSEC, SVCB, HTTPS (and the types read as
    // one of these: KX, RT, AFSDB, LP as MX; SIG as RRSIG; ...).
    matches!(rtype, 2..=9 | 12 | 14 | 15 | 17 | 33 | 35 | 39 | 45..=47 | 64 | 65)
}

/// Whether `rdata` reads as its type to the end, for a type whose data
/// `domain` knows (any data does for the others).
fn reads_back(rtype: u16, rdata: &[u8]) -> bool {
    use domain::base::name::ParsedName;
    use domain::base::rdata::ParseRecordData;
    use domain::rdata::AllRecordData;
    let mut parser = domain::dep::octseq::Parser::from_ref(rdata);
    let parsed = <AllRecordData<&[u8], ParsedName<&[u8]>> as ParseRecordData<'_, [u8]>>::parse_rdata(
        Rtype::from_int(rtype),
        &mut parser,
    );
    matches!(parsed, Ok(Some(_))) && parser.remaining() == 0
}

/// `$INCLUDE` paths are relative to the directory of the including file.
fn resolve_include(includer: &Path, target: &str) -> PathBuf {
    let target = Path::new(target);
    if target.is_absolute() {
        target.to_path_buf()
    } else {
        includer.parent().unwrap_or(Path::new(".")).join(target)
    }
}

/// The entries' lines once each `$GENERATE` entry (one line in
/// `lines`) stands for the records it made.
fn generated_lines(lines: &[u32], generated: &[extra::Generated]) -> Vec<u32> {
    let made: usize = generated.iter().map(|g| g.records as usize).sum();
    let mut out = Vec::with_capacity(lines.len() + made);
    let mut generated = generated.iter().peekable();
    for &line in lines {
        match generated.next_if(|g| g.line == line) {
            Some(g) => out.extend(std::iter::repeat_n(line, g.records as usize)),
            None => out.push(line),
        }
    }
    out
}

/// Some of the scanner's messages in words a user can act on.
fn plainer(msg: String) -> String {
    match msg.as_str() {
        "unknown record type with concrete data" => "no text form is known here for this record type: \
                                                     write its data in RFC 3597 form, e.g. TYPE65280 \\# 2 abcd"
            .to_string(),
        "bad charstr" => "a character-string is longer than 255 bytes: split it into several \
                          quoted strings (\"...\" \"...\")"
            .to_string(),
        "missing last owner" => "this record has no owner (its line starts with a blank) and no \
                                 record before it has one"
            .to_string(),
        _ if msg.starts_with("unknown control") => {
            format!("{msg}: the directives read here are $ORIGIN, $TTL, $INCLUDE and BIND's $GENERATE")
        }
        _ if msg.starts_with("different class") => format!("{msg}: only class IN is served"),
        _ => msg,
    }
}

/// Splits `domain`'s "line:col: message" into its parts.
fn split_position(msg: &str) -> (usize, Option<usize>, String) {
    let mut parts = msg.splitn(3, ':');
    if let (Some(line), Some(col), Some(rest)) = (parts.next(), parts.next(), parts.next())
        && let (Ok(line), Ok(col)) = (line.parse::<usize>(), col.parse::<usize>())
    {
        return (line, Some(col), rest.trim_start().to_string());
    }
    (0, None, msg.to_string())
}

/// What the loader's first pass over a file finds ([`entry_lines`]).
#[derive(Debug, PartialEq)]
struct EntryLines {
    /// The line each entry starts on.
    lines: Vec<u32>,
    /// A quote or parenthesis left open: its line, and which.
    unclosed: Option<(u32, &'static str)>,
    /// Whether [`extra`] must rewrite the file (a type the scanner lacks,
    /// a TTL with units, `@` in data, an algorithm mnemonic).
    rewrite: bool,
    /// Each `$TTL` directive's line and seconds.
    ttls: Vec<(u32, u32)>,
    /// `$ORIGIN` directives whose name has an empty label: line and name.
    bad_origins: Vec<(u32, String)>,
    /// The lines of records whose owner has an empty label.
    bad_owners: Vec<u32>,
}

/// The line each entry (record or `$INCLUDE`) of a zone file starts on,
/// in order: the scanner does not report where a record was, so the file
/// is lexed here just enough to find logical lines (RFC 1035 §5.1:
/// parentheses join lines, `;` starts a comment, quotes and `\\` escape).
/// `$ORIGIN` and `$TTL` lines are directives the scanner keeps to itself.
fn entry_lines(src: &[u8]) -> EntryLines {
    /// The bytes that make a line more than words: comments, parentheses,
    /// quotes, escapes, and bytes the scanner takes only escaped
    /// ([`extra::is_raw`]).
    const SPECIAL: [bool; 256] = {
        let mut t = [false; 256];
        t[b';' as usize] = true;
        t[b'(' as usize] = true;
        t[b')' as usize] = true;
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        let mut b = 0;
        while b < 256 {
            if extra::is_raw(b as u8) && b != b'\t' as usize && b != b'\r' as usize {
                t[b] = true;
            }
            b += 1;
        }
        t
    };
    let directive = |word: &[u8]| word.eq_ignore_ascii_case(b"$ORIGIN") || word.eq_ignore_ascii_case(b"$TTL");
    let mut found = EntryLines {
        lines: Vec::with_capacity(src.len() / 24),
        unclosed: None,
        rewrite: false,
        ttls: Vec::new(),
        bad_origins: Vec::new(),
        bad_owners: Vec::new(),
    };
    // `i` is always at the start of a line outside parentheses.
    let (mut i, mut line) = (0, 1u32);
    while i < src.len() {
        let end = memchr::memchr(b'\n', &src[i..]).map_or(src.len(), |n| i + n);
        let text = &src[i..end];
        if text.get(..4).is_some_and(|d| d.eq_ignore_ascii_case(b"$TTL"))
            && let Some(ttl) = extra::directive_ttl(&src[i..])
        {
            found.ttls.push((line, ttl));
        }
        if text.get(..7).is_some_and(|d| d.eq_ignore_ascii_case(b"$ORIGIN"))
            && let Some(name) = extra::bad_origin(&src[i..])
        {
            found.bad_origins.push((line, name));
        }
        if !text.iter().any(|&b| SPECIAL[usize::from(b)]) {
            // Most lines hold no comment, parenthesis, quote or escape:
            // their words are all there is to know.
            // A directive starts its line; indented, the scanner takes
            // the word for a type.
            let indented = matches!(text.first(), Some(b' ' | b'\t' | b'\r'));
            if let Some(word) = text
                .split(|&b| matches!(b, b' ' | b'\t' | b'\r'))
                .find(|w| !w.is_empty())
                && (indented || !directive(word))
            {
                found.lines.push(line);
                if !indented && extra::has_empty_label(word) {
                    found.bad_owners.push(line);
                }
            }
            found.rewrite = found.rewrite || extra::line_needs(text);
            i = end + 1;
            line += 1;
            continue;
        }
        // The others are lexed to the end of their entry, once.
        let look = extra::look(&src[i..]);
        if let Some((from, counts)) = look.start
            && counts
        {
            found.lines.push(line + from);
            if look.bad_owner {
                found.bad_owners.push(line + from);
            }
        }
        found.rewrite = found.rewrite || look.needs;
        if let Some((from, what)) = look.unclosed {
            found.unclosed = Some((line + from, what));
            break;
        }
        i += look.end + 1;
        line += look.lines;
    }
    found
}

/// RRsets and records while a zone loads: linked lists, since the records
/// of one owner may lie anywhere in the files. [`Pending::finish`] lays
/// them out in the zone's arenas.
#[derive(Default)]
struct Pending {
    sets: Vec<PendingSet>,
    recs: Vec<PendingRec>,
}

struct PendingSet {
    rtype: u16,
    ttl: u32,
    loc: RecordLoc,
    /// The node's next RRset.
    next: u32,
    first: u32,
    last: u32,
}

struct PendingRec {
    at: u32,
    len: u16,
    next: u32,
}

/// Appends `bytes` to an arena addressed with `u32` offsets; `None` when
/// the arena would outgrow them.
fn append(arena: &mut Vec<u8>, bytes: &[u8]) -> Option<u32> {
    let at = u32::try_from(arena.len()).ok()?;
    u32::try_from(arena.len() + bytes.len()).ok()?;
    arena.extend_from_slice(bytes);
    Some(at)
}

impl Pending {
    /// Adds a record to its RRset, dropping (and reporting) records outside
    /// the origin and duplicates. False when the zone's arenas are full
    /// (reported).
    fn add(&mut self, zone: &mut Zone, rec: RawRecord<'_>, diags: &mut Diagnostics) -> bool {
        let mut key_buf = [0u8; name::MAX_NAME_LEN];
        let key = &mut key_buf[..rec.owner.len()];
        key.copy_from_slice(rec.owner);
        key.make_ascii_lowercase();
        let key = &key[..];
        if !name::is_within(key, &zone.origin) {
            diags.error(
                Some(zone.loc(rec.loc)),
                format!(
                    "owner {} is outside the zone {}",
                    name::to_text(rec.owner),
                    name::to_text(&zone.origin)
                ),
            );
            return true;
        }
        if rec.ttl > i32::MAX as u32 {
            diags.warning(
                Some(zone.loc(rec.loc)),
                format!(
                    "TTL {} has its top bit set: resolvers take it as 0 (RFC 2181 §8); the most is {}",
                    rec.ttl,
                    i32::MAX
                ),
            );
        }
        let too_large = |zone: &Zone, diags: &mut Diagnostics| {
            diags.error(
                Some(zone.loc(rec.loc)),
                "the zone's data outgrows 4 GiB; loading stopped",
            );
            false
        };
        let hash = zone.hasher.hash_one(key);
        let node = match zone.table.find(hash, |&i| zone.key_of(i) == key) {
            Some(&i) => i,
            None => {
                let Some(key_at) = append(&mut zone.names, key) else {
                    return too_large(zone, diags);
                };
                let owner_at = if rec.owner == key {
                    key_at
                } else {
                    match append(&mut zone.names, rec.owner) {
                        Some(at) => at,
                        None => return too_large(zone, diags),
                    }
                };
                let i = zone.nodes.len() as u32;
                zone.nodes.push(NodeRec {
                    key_at,
                    owner_at,
                    len: key.len() as u8,
                    sets_at: NIL,
                    sets_len: 0,
                });
                let Zone {
                    table,
                    hasher,
                    nodes,
                    names,
                    ..
                } = zone;
                table.insert_unique(hash, i, |&j| hasher.hash_one(node_key(nodes, names, j)));
                i
            }
        };
        let mut s = zone.nodes[node as usize].sets_at;
        let mut last = NIL;
        while s != NIL && self.sets[s as usize].rtype != rec.rtype {
            last = s;
            s = self.sets[s as usize].next;
        }
        if s == NIL {
            s = self.sets.len() as u32;
            self.sets.push(PendingSet {
                rtype: rec.rtype,
                ttl: rec.ttl,
                loc: rec.loc,
                next: NIL,
                first: NIL,
                last: NIL,
            });
            if last == NIL {
                zone.nodes[node as usize].sets_at = s;
            } else {
                self.sets[last as usize].next = s;
            }
            zone.nodes[node as usize].sets_len += 1;
        }
        let compressible = is_compressible(rec.rtype);
        let same = |a: &[u8], b: &[u8]| {
            if compressible {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let set = &self.sets[s as usize];
        let mut r = set.first;
        while r != NIL {
            let PendingRec { at, len, next } = self.recs[r as usize];
            if same(&zone.data[at as usize..at as usize + usize::from(len)], rec.rdata) {
                diags.warning(
                    Some(zone.loc(rec.loc)),
                    format!(
                        "duplicate {} record for {} ignored (first at line {})",
                        Rtype::from_int(rec.rtype),
                        name::to_text(rec.owner),
                        set.loc.line
                    ),
                );
                return true;
            }
            r = next;
        }
        if rec.ttl != set.ttl {
            diags.warning(
                Some(zone.loc(rec.loc)),
                format!(
                    "TTL {} differs from the {} RRset's TTL {}; serving the lowest (RFC 2181 §5.2)",
                    rec.ttl,
                    Rtype::from_int(rec.rtype),
                    set.ttl
                ),
            );
        }
        let Some(at) = append(&mut zone.data, rec.rdata) else {
            return too_large(zone, diags);
        };
        let r = self.recs.len() as u32;
        self.recs.push(PendingRec {
            at,
            len: rec.rdata.len() as u16,
            next: NIL,
        });
        let set = &mut self.sets[s as usize];
        set.ttl = set.ttl.min(rec.ttl);
        if set.last == NIL {
            set.first = r;
        } else {
            self.recs[set.last as usize].next = r;
        }
        set.last = r;
        zone.record_count += 1;
        true
    }

    /// Lays the RRsets out in `zone`: each node's together, ordered by
    /// type, each RRset's RDATA together in file order.
    fn finish(self, zone: &mut Zone) {
        let mut sets = Vec::with_capacity(self.sets.len());
        let mut spans = Vec::with_capacity(self.recs.len());
        let mut order: Vec<(u16, u32)> = Vec::new();
        for node in &mut zone.nodes {
            order.clear();
            let mut s = node.sets_at;
            while s != NIL {
                order.push((self.sets[s as usize].rtype, s));
                s = self.sets[s as usize].next;
            }
            order.sort_unstable();
            node.sets_at = sets.len() as u32;
            for &(_, s) in &order {
                let set = &self.sets[s as usize];
                let spans_at = spans.len() as u32;
                let mut r = set.first;
                while r != NIL {
                    let rec = &self.recs[r as usize];
                    spans.push((rec.at, rec.len));
                    r = rec.next;
                }
                sets.push(SetRec {
                    rtype: set.rtype,
                    ttl: set.ttl,
                    loc: set.loc,
                    spans_at,
                    spans_len: spans.len() as u32 - spans_at,
                });
            }
        }
        zone.sets = sets;
        zone.spans = spans;
        zone.names.shrink_to_fit();
        zone.data.shrink_to_fit();
        zone.nodes.shrink_to_fit();
    }
}

impl Zone {
    /// The checks of RFC 1035 §5.2, RFC 1034 §4.2.1 and RFC 2181 §10.1.
    /// The closest name above `key` in this zone that owns a DNAME which
    /// redirects it (not one at a wildcard, which is only data).
    pub fn dname_above(&self, key: &[u8]) -> Option<Node<'_>> {
        let dname = u16::from(Rtype::DNAME);
        let mut at = name::parent(key);
        while let Some(k) = at.filter(|k| k.len() >= self.origin.len()) {
            if let Some(node) = self
                .get(k)
                .filter(|n| !name::is_wildcard(k) && n.rrset(dname).is_some())
            {
                return Some(node);
            }
            at = name::parent(k);
        }
        None
    }

    /// Warns of DNAMEs that redirect names back below themselves, alone
    /// (a target at or below its own owner) or through others in the zone:
    /// such names are redirected over and over until the reply stops
    /// following (after five DNAMEs) or the name grows past 255 bytes.
    /// Each loop is reported once, at its first owner in key order.
    fn dname_loops(&self, diags: &mut Diagnostics) {
        let dname = u16::from(Rtype::DNAME);
        // The DNAME whose redirection applies to the names below `target`.
        let next = |target: &[u8]| {
            self.get(target)
                .filter(|n| !name::is_wildcard(target) && n.rrset(dname).is_some())
                .or_else(|| self.dname_above(target))
        };
        let dnames: Vec<Node<'_>> = self
            .nodes()
            .filter(|n| !name::is_wildcard(n.key()) && n.rrset(dname).is_some())
            .collect();
        for start in &dnames {
            let mut path = vec![*start];
            let mut at = *start;
            let looped = loop {
                let Some(set) = at.rrset(dname) else { break false };
                let target = name::to_key(set.rdatas().first());
                let Some(node) = next(&target) else { break false };
                if node.key() == start.key() {
                    break true;
                }
                if path.iter().any(|n| n.key() == node.key()) || path.len() > dnames.len() {
                    break false; // a loop that does not pass through `start`
                }
                path.push(node);
                at = node;
            };
            if !looped || path.iter().any(|n| n.key() < start.key()) {
                continue;
            }
            let Some(set) = start.rrset(dname) else { continue };
            let message = if path.len() == 1 {
                format!(
                    "the DNAME at {} points at or below itself ({}): names below it are redirected \
                     below it again, until a reply stops following (after five DNAMEs, or where a \
                     name comes back) or the name passes 255 bytes",
                    name::to_text(start.owner()),
                    name::to_text(set.rdatas().first())
                )
            } else {
                let owners: Vec<String> = path.iter().map(|n| name::to_text(n.owner())).collect();
                format!(
                    "the DNAMEs at {} redirect into each other: names below them loop, and a \
                     reply stops where its name comes back",
                    owners.join(", ")
                )
            };
            diags.warning(Some(self.loc(set.loc)), message);
        }
    }

    /// Reports an RRset of a type that may hold one record only; `rule`
    /// (the RFC that says so) ends the message.
    fn only_one(&self, node: Node<'_>, set: RRset<'_>, rtype: &str, rule: &str, diags: &mut Diagnostics) {
        if set.rdatas().len() > 1 {
            diags.error(
                Some(self.loc(set.loc)),
                format!(
                    "{} has {} {rtype} records; only one is allowed{rule}",
                    name::to_text(node.owner()),
                    set.rdatas().len()
                ),
            );
        }
    }

    fn check(&self, diags: &mut Diagnostics) {
        let origin_text = name::to_text(&self.origin);
        let zone_loc = Loc {
            file: self.files.first().cloned().unwrap_or_else(|| Arc::from(Path::new(""))),
            line: 0,
        };
        if self.files.is_empty() {
            return; // the file could not be read; already reported
        }
        let soa = u16::from(Rtype::SOA);
        let ns = u16::from(Rtype::NS);
        let cname = u16::from(Rtype::CNAME);
        match self.apex().and_then(|apex| apex.rrset(soa)) {
            None => diags.error(
                Some(zone_loc.clone()),
                format!("no SOA record at the apex {origin_text}"),
            ),
            Some(set) if set.rdatas().len() > 1 => diags.error(
                Some(self.loc(set.loc)),
                format!("{} SOA records at the apex; exactly one is allowed", set.rdatas().len()),
            ),
            Some(_) => {}
        }
        if self.apex().and_then(|apex| apex.rrset(ns)).is_none() {
            diags.error(Some(zone_loc), format!("no NS records at the apex {origin_text}"));
        }
        // A signed zone: lbdns serves its records as data, but adds no
        // signatures or denial proofs to answers.
        if let Some(set) = self.apex().and_then(|apex| apex.rrset(u16::from(Rtype::DNSKEY))) {
            diags.warning(
                Some(self.loc(set.loc)),
                format!(
                    "{origin_text} is signed (DNSKEY at the apex), but lbdns does not serve DNSSEC: \
                     answers to queries with the DO bit get no RRSIG, NSEC or NSEC3, so validating \
                     resolvers will find them bogus while the parent holds a DS for the zone"
                ),
            );
        }
        let dname = u16::from(Rtype::DNAME);
        let mut delegations = Vec::new();
        let mut has_dname = false;
        for node in self.nodes() {
            let key = node.key();
            let is_apex = *key == *self.origin;
            if let Some(set) = node.rrset(soa)
                && !is_apex
            {
                diags.error(
                    Some(self.loc(set.loc)),
                    format!("SOA record for {} outside the apex", name::to_text(node.owner())),
                );
            }
            if let Some(set) = node.rrset(cname) {
                self.only_one(node, set, "CNAME", "", diags);
                // RFC 2181 §10.1: no other data beside a CNAME (DNSSEC types aside).
                let others: Vec<String> = node
                    .rrsets()
                    .filter(|r| !matches!(r.rtype, 5 | 46 | 47))
                    .map(|r| Rtype::from_int(r.rtype).to_string())
                    .collect();
                if !others.is_empty() {
                    diags.error(
                        Some(self.loc(set.loc)),
                        format!(
                            "CNAME at {} beside other data ({})",
                            name::to_text(node.owner()),
                            others.join(", ")
                        ),
                    );
                }
            }
            if let Some(set) = node.rrset(dname) {
                self.only_one(node, set, "DNAME", " (RFC 6672 §2.4)", diags);
                if name::is_wildcard(key) {
                    diags.warning(
                        Some(self.loc(set.loc)),
                        format!(
                            "DNAME at the wildcard {} is served as data only: names below it are not \
                             redirected (RFC 4592 §4.4)",
                            name::to_text(node.owner())
                        ),
                    );
                } else {
                    has_dname = true;
                }
            }
            if let Some(set) = node.rrset(ns).filter(|_| !is_apex) {
                if name::is_wildcard(key) {
                    diags.warning(
                        Some(self.loc(set.loc)),
                        format!(
                            "NS at the wildcard {}: the names it stands in for get these records as \
                             data, NODATA for other types, and no referral (as NSD answers; Knot \
                             refers them to the wildcard's name). RFC 4592 §4.2 leaves this open; \
                             delegate each name instead",
                            name::to_text(node.owner())
                        ),
                    );
                }
                delegations.push(node);
            }
        }
        // RFC 6672 §2.4: no data below a DNAME; it would never be answered.
        // (Most zones have no DNAME: then no name is looked at twice.)
        if has_dname {
            for node in self.nodes() {
                if let Some(owner) = self.dname_above(node.key()) {
                    diags.error(
                        node.rrsets().next().map(|set| self.loc(set.loc)),
                        format!(
                            "{} is below the DNAME at {}; a DNAME owner can have no names below it \
                             (RFC 6672 §2.4)",
                            name::to_text(node.owner()),
                            name::to_text(owner.owner())
                        ),
                    );
                }
            }
        }
        if has_dname {
            self.dname_loops(diags);
        }
        // In-zone delegations whose name servers lie below the cut need glue.
        for node in delegations {
            let cut = node.key();
            let Some(set) = node.rrset(ns) else { continue };
            for rdata in set.rdatas().iter() {
                let target = name::to_key(rdata);
                if !name::is_within(&target, cut) {
                    continue;
                }
                let has_address = self
                    .get(target.as_slice())
                    .is_some_and(|n| n.rrset(1).is_some() || n.rrset(28).is_some());
                if !has_address {
                    diags.warning(
                        Some(self.loc(set.loc)),
                        format!(
                            "delegation {} has name server {} below the cut without glue (A/AAAA)",
                            name::to_text(node.owner()),
                            name::to_text(rdata)
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;
    use std::str::FromStr;

    fn load_text(text: &str) -> (Option<Zone>, Diagnostics) {
        let dir = std::env::temp_dir().join(format!("lbdns-zone-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.zone");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let mut diags = Diagnostics::default();
        let zone = load(
            &Name::from_str("example.com.").unwrap(),
            &path,
            &Limits::default(),
            &mut diags,
        );
        let _ = std::fs::remove_dir_all(&dir);
        (zone, diags)
    }

    const HEAD: &str = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\nns A 192.0.2.1\n";

    #[test]
    fn every_type_extra_knows_loads_with_its_own_number() {
        // One record of each type `extra` handles, as NSD, Knot or the
        // type's RFC writes it, and each with the wire data it must have.
        let records: &[(&str, &str, &str)] = &[
            ("wks", "WKS 192.0.2.9 tcp 25", "c00002090600000040"),
            ("afsdb", "AFSDB 1 afs", "0001 03616673 076578616d706c6503636f6d00"),
            ("x25", "X25 \"311061700956\"", "0c 333131303631373030393536"),
            ("isdn", "ISDN \"15086\" \"004\"", "05 3135303836 03 303034"),
            (
                "rt",
                "RT 20 relay.example.net.",
                "0014 0572656c6179076578616d706c65036e657400",
            ),
            ("nsap", "NSAP 0x47.0005", "470005"),
            ("nsap-ptr", "NSAP-PTR ns", "026e73076578616d706c6503636f6d00"),
            (
                "sig",
                "SIG A 8 2 300 20300101000000 20250101000000 1 example.com. AAEC",
                "0001 08 02 0000012c 70dbd880 677485800001 076578616d706c6503636f6d00 000102",
            ),
            ("key", "KEY 256 3 8 AAEC", "0100 03 08 000102"),
            (
                "gpos",
                "GPOS \"-32.6\" \"116.8\" \"10.0\"",
                "052d33322e36 053131362e38 0431302e30",
            ),
            (
                "loc",
                "LOC 42 21 54 N 71 06 18 W -24m 30m",
                "0033161389172dd070be15f000988d20",
            ),
            ("kx", "KX 10 ns", "000a 026e73076578616d706c6503636f6d00"),
            ("cert", "CERT PGP 0 0 AAECAwQF", "0003 0000 00 000102030405"),
            ("apl", "APL 1:192.168.32.0/21", "0001 15 03 c0a820"),
            ("dhcid", "DHCID AAIB", "000201"),
            ("smimea", "SMIMEA 3 1 1 2bb1", "03 01 01 2bb1"),
            (
                "hip",
                "HIP 2 200100107B1A74DF365639CC39F1D578 AAEC rvs",
                "10 02 0003 200100107b1a74df365639cc39f1d578 000102 03727673076578616d706c6503636f6d00",
            ),
            ("ninfo", "NINFO \"x\"", "0178"),
            ("talink", "TALINK a. b.", "016100 016200"),
            ("csync", "CSYNC 66 3 A NS AAAA", "00000042 0003 0004 60000008"),
            ("spf", "SPF \"v=spf1 -all\"", "0b763d73706631202d616c6c"),
            ("nid", "NID 10 14:4fff:ff20:ee64", "000a 00144fffff20ee64"),
            ("l32", "L32 10 10.1.2.0", "000a 0a010200"),
            ("l64", "L64 10 2001:db8:1140:1000", "000a 20010db811401000"),
            (
                "lp",
                "LP 10 l64.example.net.",
                "000a 036c3634076578616d706c65036e657400",
            ),
            ("eui48", "EUI48 00-00-5e-00-53-2a", "00005e00532a"),
            ("eui64", "EUI64 00-00-5e-ef-10-00-00-2a", "00005eef1000002a"),
            ("uri", "URI 10 1 \"ftp://a/\"", "000a 0001 6674703a2f2f612f"),
            ("avc", "AVC \"app\"", "03617070"),
            ("doa", "DOA 0 1 2 \"\" aHR0", "00000000 00000001 02 00 687474"),
            (
                "amtrelay",
                "AMTRELAY 10 1 3 relay",
                "0a 83 0572656c6179076578616d706c6503636f6d00",
            ),
            ("resinfo", "RESINFO qnamemin", "08716e616d656d696e"),
            ("wallet", "WALLET \"BTC\" \"bc1q\"", "03425443 0462633171"),
            ("ta", "TA 60485 5 1 2BB1", "ec45 05 01 2bb1"),
            ("dlv", "DLV 60485 5 1 2BB1", "ec45 05 01 2bb1"),
        ];
        let mut text = String::from(HEAD);
        for (owner, record, _) in records {
            text.push_str(&format!("{owner} {record}\n"));
        }
        let (zone, diags) = load_text(&text);
        let zone = zone.unwrap_or_else(|| panic!("{diags}"));
        assert_eq!(extra::KINDS.len(), records.len(), "a record for every type");
        for ((owner, _, wire), kind) in records.iter().zip(extra::KINDS) {
            let key = name::to_key(
                &Name::<Vec<u8>>::from_str(&format!("{owner}.example.com."))
                    .unwrap()
                    .into_octets(),
            );
            let node = zone.get(&key).unwrap();
            let set = node
                .rrset(kind.rtype)
                .unwrap_or_else(|| panic!("no {} at {owner}", kind.name));
            let hex: String = set.rdatas().first().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, wire.replace(' ', ""), "{}", kind.name);
            assert_eq!(node.rrsets().len(), 1, "{owner}: only the {} record", kind.name);
        }
    }

    /// Loads `files` (name, text; the first is the zone file) from a
    /// fresh directory.
    fn load_files(files: &[(&str, &str)]) -> (Option<Zone>, Diagnostics) {
        let dir = std::env::temp_dir().join(format!("lbdns-zone-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let mut diags = Diagnostics::default();
        let origin = Name::from_str("example.com.").unwrap();
        let zone = load(&origin, &dir.join(files[0].0), &Limits::default(), &mut diags);
        let _ = std::fs::remove_dir_all(&dir);
        (zone, diags)
    }

    #[test]
    fn an_include_starts_with_the_ttl_in_force_where_it_is_included() {
        let parent = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\nns A 192.0.2.1\n\
                      $INCLUDE one.inc\n$TTL 2m\n$INCLUDE two.inc\nafter A 192.0.2.9\n";
        let one = "x A 192.0.2.7\ny 30 A 192.0.2.8\n";
        let two = "z A 192.0.2.10\n$TTL 5\nw A 192.0.2.11\n";
        let (zone, diags) = load_files(&[("z.zone", parent), ("one.inc", one), ("two.inc", two)]);
        let zone = zone.unwrap_or_else(|| panic!("{diags}"));
        let ttl = |owner: &str| {
            let key = name::to_key(&Name::<Vec<u8>>::from_str(owner).unwrap().into_octets());
            zone.get(&key).and_then(|n| n.rrset(1)).map(|set| set.ttl)
        };
        assert_eq!(ttl("x.example.com."), Some(60), "the includer's $TTL");
        assert_eq!(ttl("y.example.com."), Some(30), "a record's own TTL");
        assert_eq!(
            ttl("z.example.com."),
            Some(120),
            "the $TTL in force at the second include"
        );
        assert_eq!(ttl("w.example.com."), Some(5), "the include's own $TTL");
        assert_eq!(ttl("after.example.com."), Some(120), "an include's $TTL stays in it");
        // Where BIND and NSD would differ (they keep the include's $TTL),
        // a warning says so at the $INCLUDE.
        let text = diags.to_string();
        assert!(
            text.contains("z.zone:7: warning: ") && text.contains("two.inc sets $TTL 5, which holds only in it"),
            "{text}"
        );
        assert!(
            text.contains("after this $INCLUDE with no TTL of their own get 120"),
            "{text}"
        );
        assert_eq!(diags.items.len(), 1, "{text}");
        // Not when this file sets $TTL again first, nor when nothing
        // follows, nor when what follows has TTLs of its own.
        for parent in [
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\n$INCLUDE two.inc\n$TTL 60\nafter A 192.0.2.9\n",
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\nns A 192.0.2.1\n$INCLUDE two.inc\n",
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\n$INCLUDE two.inc\na 60 A 192.0.2.9\nb IN 1h A 192.0.2.8\n",
        ] {
            let (zone, diags) = load_files(&[("z.zone", parent), ("two.inc", two)]);
            assert!(zone.is_some() && diags.items.is_empty(), "{parent}: {diags}");
        }
        // A blank owner first in an include is the includer's last owner;
        // after the include, the includer's blank owner is its own again.
        let parent_owned = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n  NS ns\nns A 192.0.2.1\nown A 192.0.2.3\n\
                            $INCLUDE one.inc\n  AAAA ::1\n";
        let blank = "; a comment first\n$ORIGIN sub.example.com.\n  TXT \"mine\"\nx A 192.0.2.4\n";
        let (zone, diags) = load_files(&[("z.zone", parent_owned), ("one.inc", blank)]);
        let zone = zone.unwrap_or_else(|| panic!("{diags}"));
        let own = zone
            .get(&name::to_key(
                &Name::<Vec<u8>>::from_str("own.example.com.").unwrap().into_octets(),
            ))
            .unwrap();
        assert!(own.rrset(16).is_some(), "TXT at the includer's last owner");
        assert!(
            own.rrset(28).is_some(),
            "AAAA after the include: the includer's own owner"
        );
        assert!(
            zone.get(&name::to_key(
                &Name::<Vec<u8>>::from_str("x.sub.example.com.").unwrap().into_octets()
            ))
            .is_some()
        );
        // The `$TTL` line put in front of an include moves no line number.
        let two = "z A 192.0.2.10\nbad A 300.1.1.1\n";
        let (zone, diags) = load_files(&[("z.zone", parent), ("one.inc", one), ("two.inc", two)]);
        assert!(zone.is_none());
        assert!(
            diags.to_string().contains("two.inc:2: error: expected IPv4 address"),
            "{diags}"
        );
    }

    #[test]
    fn lines_are_found_for_records() {
        let text = format!("{HEAD}; comment\n\n$TTL 30\nwww A 192.0.2.2\nwww CNAME x\n");
        let (zone, diags) = load_text(&text);
        assert!(zone.is_none());
        let msgs = diags.to_string();
        assert!(
            msgs.contains("z.zone:9: error: CNAME at www.example.com. beside other data (A)"),
            "{msgs}"
        );
    }

    #[test]
    fn multi_line_records_report_their_first_line() {
        let text = "$TTL 60\n@ SOA ns hm (\n 1 2 3\n 4 5 )\n@ NS ns\nns A 192.0.2.1\nbad.example.org. A 192.0.2.3\n";
        let (_, diags) = load_text(text);
        assert!(
            diags
                .to_string()
                .contains("z.zone:7: error: owner bad.example.org. is outside"),
            "{diags}"
        );
    }

    #[test]
    fn ns_at_a_wildcard_is_a_warning() {
        let (zone, diags) = load_text(&format!("{HEAD}*.w NS ns.example.net.\n"));
        assert!(zone.is_some(), "{diags}");
        assert!(
            diags
                .to_string()
                .contains("z.zone:5: warning: NS at the wildcard *.w.example.com.: the names it stands in for"),
            "{diags}"
        );
    }

    #[test]
    fn a_signed_zone_is_a_warning() {
        let soa = "@ 300 IN SOA ns1 host 1 2 3 4 5\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n";
        let key = "@ 300 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n";
        let (zone, diags) = load_text(&format!("{soa}{key}"));
        assert!(zone.is_some(), "{diags}");
        let text = diags.to_string();
        assert!(
            text.contains(
                "z.zone:4: warning: example.com. is signed (DNSKEY at the apex), but lbdns does not serve DNSSEC"
            ),
            "{text}"
        );
        // A DNSKEY below the apex is only data.
        let (zone, diags) = load_text(&format!("{soa}key {}", &key[2..]));
        assert!(zone.is_some(), "{diags}");
        assert!(!diags.to_string().contains("signed"), "{diags}");
    }

    #[test]
    fn a_byte_order_mark_is_ignored_with_a_warning() {
        let (zone, diags) = load_text(&format!("\u{feff}{HEAD}www A 192.0.2.9\n"));
        assert!(zone.is_some(), "{diags}");
        assert!(
            diags
                .to_string()
                .contains("z.zone:1: warning: ignored the UTF-8 byte-order mark"),
            "{diags}"
        );
        // Lines still count from the file's first.
        let (_, diags) = load_text(&format!("\u{feff}{HEAD}www A 300.1.1.1\n"));
        assert!(diags.to_string().contains("z.zone:5: error:"), "{diags}");
    }

    #[test]
    fn records_without_a_ttl_in_a_file_without_ttl_are_a_warning() {
        let text = "@ SOA ns hm 1 2 3 4 555\n@ NS ns\nns 100 A 192.0.2.1\nx A 192.0.2.2\n\
                    $GENERATE 1-3 g$ IN A 192.0.2.$\n$GENERATE 1-3 h$ 60 A 192.0.2.$\ny IN 1h A 192.0.2.9\n";
        let (zone, diags) = load_text(text);
        let (records, _) = records(&zone.unwrap());
        let ttl = |owner: &str| records.iter().find(|r| r.0 == owner).unwrap().2;
        // The last TTL written before, or 3600 before any.
        assert_eq!(ttl("example.com."), 3600);
        assert_eq!(ttl("x.example.com."), 100);
        assert_eq!(ttl("g1.example.com."), 100);
        assert_eq!(ttl("y.example.com."), 3600);
        assert_eq!(diags.items.len(), 1, "{diags}");
        assert!(
            diags
                .to_string()
                .contains("z.zone:1: warning: 4 record(s) here and below give no TTL, and the file sets no $TTL"),
            "{diags}"
        );
        // Not where every record has a TTL, nor with $TTL anywhere.
        for text in [
            "@ 60 SOA ns hm 1 2 3 4 555\n@ IN 60 NS ns\nns 1h IN A 192.0.2.1\n",
            "@ 60 SOA ns hm 1 2 3 4 555\n@ NS ns\n$TTL 60\nns A 192.0.2.1\n",
        ] {
            let (zone, diags) = load_text(text);
            assert!(zone.is_some() && diags.items.is_empty(), "{text}: {diags}");
        }
    }

    #[test]
    fn utf8_and_tabs_in_data_load_as_the_bytes_written() {
        let text = format!("{HEAD}t TXT \"h\u{e9}llo\" \"a\tb\"\nd\u{e9}j\u{e0} A 192.0.2.9\n");
        let (zone, diags) = load_text(&text);
        assert!(diags.items.is_empty(), "{diags}");
        let (records, lines) = records(&zone.unwrap());
        let txt = records.iter().find(|r| r.0 == "t.example.com.").unwrap();
        assert_eq!(txt.3, b"\x06h\xc3\xa9llo\x03a\tb");
        assert!(records.iter().any(|r| r.0 == "d\\195\\169j\\195\\160.example.com."));
        assert_eq!(lines[&("t.example.com.".into(), 16)], 5);
    }

    #[test]
    fn a_name_with_an_empty_label_in_data_is_an_error() {
        for (text, line) in [
            ("x PTR a..b\n", 5),
            ("ok CNAME a.b\nx CNAME a..example.com.\n", 6),
            ("x MX 10 b..\n", 5),
            ("x NS c...\n", 5),
            ("x SRV 0 0 80 t..x\n", 5),
            ("x SOA a..b hm 1 2 3 4 5\n", 5),
            ("x KX 10 k..x\n", 5),
        ] {
            let (zone, diags) = load_text(&format!("{HEAD}{text}"));
            assert!(zone.is_none(), "{text}");
            let want = format!("z.zone:{line}: error: a name in the data is malformed: an empty label");
            assert!(diags.to_string().contains(&want), "{text}: {diags}");
        }
        // The root and absolute names are fine.
        let (zone, diags) = load_text(&format!("{HEAD}x MX 0 .\ny CNAME a.b.\nz NS .\n"));
        assert!(zone.is_some(), "{diags}");
        // So is an owner with one (which the scanner cut short to `a.`),
        // once, at its line.
        for owner in ["a..example.com.", "x..y"] {
            let (zone, diags) = load_text(&format!("{HEAD}{owner} A 192.0.2.1\n{owner} TXT \"(x)\"\n"));
            assert!(zone.is_none(), "{owner}");
            let text = diags.to_string();
            assert!(
                text.contains("z.zone:5: error: the owner has an empty label")
                    && text.contains("z.zone:6: error: the owner has an empty label"),
                "{owner}: {text}"
            );
            assert_eq!(diags.items.len(), 2, "{owner}: {text}");
        }
        // A leading dot the scanner refuses itself, after this message.
        let (_, diags) = load_text(&format!("{HEAD}.z A 192.0.2.1\n"));
        assert!(
            diags
                .to_string()
                .contains("z.zone:5: error: the owner has an empty label"),
            "{diags}"
        );
        // An $ORIGIN with one is named at its own line.
        let (zone, diags) = load_text(&format!("{HEAD}$ORIGIN a..example.com.\nx A 192.0.2.1\n"));
        assert!(zone.is_none());
        assert!(
            diags
                .to_string()
                .contains("z.zone:5: error: $ORIGIN a..example.com. has an empty label"),
            "{diags}"
        );
    }

    #[test]
    fn data_nsd_and_knot_refuse_is_an_error() {
        for (text, want) in [
            ("x CAA 0 \"\" \"ca.example\"", "CAA: the tag is empty"),
            ("x SSHFP 1 1", "SSHFP: no fingerprint"),
            ("x TLSA 3 1 1", "TLSA: no certificate association data"),
            ("x SMIMEA 3 1 1", "TLSA: no certificate association data"),
            ("x A \\# 3 c00002", "the \\# data is not valid A data"),
            ("x MX \\# 2 000a", "the \\# data is not valid MX data"),
            (
                "x ZONEMD 8 1 1 0011",
                "ZONEMD: the digest is 2 bytes; it must be at least 12",
            ),
            ("x TYPE63 8 2 0", "ZONEMD: the digest is 0 bytes"),
        ] {
            let (zone, diags) = load_text(&format!("{HEAD}{text}\n"));
            assert!(zone.is_none(), "{text}");
            assert!(
                diags.to_string().contains(&format!("z.zone:5: error: {want}")),
                "{text}: {diags}"
            );
        }
        let ok = "a CAA 128 Issue1 \"ca.example\"\nb SSHFP 1 1 ab\nc TLSA 3 1 1 ab\nd A \\# 4 c0000201\n\
                  e TYPE65280 \\# 3 abcdef\nf ZONEMD 1 1 1 000102030405060708090a0b\n";
        let (zone, diags) = load_text(&format!("{HEAD}{ok}"));
        assert!(zone.is_some(), "{diags}");
    }

    #[test]
    fn data_that_does_not_read_back_is_an_error() {
        // A DS shorter than its fixed fields: the scanner never writes
        // one, but a client would fail to parse any answer holding it.
        assert_eq!(
            check_data(43, &[0, 1, 13]),
            Err("the DS data is not valid: it does not read back as DS".into())
        );
        assert_eq!(check_data(43, &[0, 1, 13, 2, 0xab]), Ok(()));
        // Unknown types are taken as they are.
        assert_eq!(check_data(65280, &[1]), Ok(()));
    }

    #[test]
    fn dnames_that_loop_are_a_warning_once_each() {
        let text = format!(
            "{HEAD}grow DNAME a.grow.example.com.\nself DNAME self.example.com.\n\
             one DNAME two.example.com.\ntwo DNAME x.three.example.com.\nthree DNAME one.example.com.\n\
             chain DNAME apexward.example.com.\napexward DNAME example.com.\nout DNAME example.net.\n\
             *.w DNAME a.b.w.example.com.\n"
        );
        let (zone, diags) = load_text(&text);
        assert!(zone.is_some(), "{diags}");
        let text = diags.to_string();
        assert!(
            text.contains("z.zone:5: warning: the DNAME at grow.example.com. points at or below itself"),
            "{text}"
        );
        assert!(text.contains("z.zone:6: warning: the DNAME at self.example.com. points at or below itself"));
        // A loop through three, reported once, at its first owner.
        assert!(
            text.contains(
                "z.zone:7: warning: the DNAMEs at one.example.com., two.example.com., \
                 three.example.com. redirect into each other"
            ),
            "{text}"
        );
        assert_eq!(text.matches("redirect into each other").count(), 1, "{text}");
        // A chain that ends (at the apex, or out of the zone) is no loop;
        // a DNAME at a wildcard redirects nothing (already warned of).
        assert_eq!(diags.items.len(), 4, "{text}");
    }

    #[test]
    fn a_ds_digest_of_the_wrong_length_is_a_warning() {
        let sha256 = "49FD46E6C4B45C55D4AC69CBD3CD34409D6DEB8C8C5A41F4A5A8E5A23F2E2C1A";
        let text = format!(
            "{HEAD}d DS 1 8 2 abcd\nd DS 2 8 2 {sha256}\nd DS 3 8 1 {sha256}\nd DS 4 8 9 abcd\nc CDS 5 8 4 ab\n"
        );
        let (zone, diags) = load_text(&text);
        assert!(zone.is_some(), "{diags}");
        let text = diags.to_string();
        assert!(
            text.contains("z.zone:5: warning: DS: a digest of type 2 (SHA-256) is 32 bytes, this one 2"),
            "{text}"
        );
        assert!(text.contains("z.zone:7: warning: DS: a digest of type 1 (SHA-1) is 20 bytes, this one 32"));
        assert!(text.contains("z.zone:9: warning: CDS: a digest of type 4 (SHA-384) is 48 bytes, this one 1"));
        // Right lengths, and digest types not known here, pass.
        assert_eq!(diags.items.len(), 3, "{text}");
    }

    #[test]
    fn an_sshfp_or_tlsa_digest_of_the_wrong_length_is_a_warning() {
        let sha1 = "dbbbe5ce7f8fbeebef7a58f99d96fb2a06311873";
        let sha256 = "49FD46E6C4B45C55D4AC69CBD3CD34409D6DEB8C8C5A41F4A5A8E5A23F2E2C1A";
        let text = format!(
            "{HEAD}s SSHFP 4 2 {sha1}\ns SSHFP 4 1 {sha1}\nt TLSA 3 1 1 abcd\nt TLSA 3 1 1 {sha256}\n\
             _m SMIMEA 3 0 2 {sha256}\nt TLSA 3 0 0 abcd\ns SSHFP 1 9 ab\n"
        );
        let (zone, diags) = load_text(&text);
        assert!(zone.is_some(), "{diags}");
        let text = diags.to_string();
        for want in [
            "z.zone:5: warning: SSHFP: a fingerprint of type 2 (SHA-256) is 32 bytes, this one 20: no key will match it",
            "z.zone:7: warning: TLSA: association data of type 1 (SHA-256) is 32 bytes, this one 2: no certificate",
            "z.zone:9: warning: SMIMEA: association data of type 2 (SHA-512) is 64 bytes, this one 32",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // Right lengths, full data (type 0) and types not known here pass.
        assert_eq!(diags.items.len(), 3, "{text}");
    }

    #[test]
    fn a_ttl_with_its_top_bit_set_is_a_warning() {
        let (zone, diags) = load_text(&format!(
            "{HEAD}big 2147483648 A 192.0.2.3\nok 2147483647 A 192.0.2.4\n"
        ));
        assert!(zone.is_some(), "{diags}");
        let text = diags.to_string();
        assert!(
            text.contains("z.zone:5: warning: TTL 2147483648 has its top bit set"),
            "{text}"
        );
        assert!(!text.contains("z.zone:6:"), "{text}");
    }

    #[test]
    fn duplicates_and_ttl_mismatch_are_warnings() {
        let text = format!("{HEAD}a 10 A 192.0.2.5\na 20 A 192.0.2.6\na 10 A 192.0.2.5\n");
        let (zone, diags) = load_text(&text);
        let zone = zone.expect("warnings do not stop a load");
        let set = zone.get(b"\x01a\x07example\x03com\x00").unwrap().rrset(1).unwrap();
        assert_eq!(set.rdatas().len(), 2);
        assert_eq!(set.ttl, 10);
        let msgs = diags.to_string();
        assert!(msgs.contains("z.zone:7: warning: duplicate A record"), "{msgs}");
        assert!(msgs.contains("z.zone:6: warning: TTL 20 differs"), "{msgs}");
    }

    #[test]
    fn records_of_an_owner_group_wherever_they_are_in_the_file() {
        let text = format!(
            "{HEAD}Mix A 192.0.2.7\nother TXT \"x\"\nmix TXT \"t\"\nMIX A 192.0.2.8\nother A 192.0.2.9\nmix 30 A 192.0.2.10\n"
        );
        let (zone, diags) = load_text(&text);
        let zone = zone.expect("loads");
        let node = zone.get(b"\x03mix\x07example\x03com\x00").expect("mix");
        assert_eq!(node.owner(), b"\x03Mix\x07example\x03com\x00", "first record's case");
        let types: Vec<u16> = node.rrsets().map(|r| r.rtype).collect();
        assert_eq!(types, [1, 16], "ordered by type");
        let a = node.rrset(1).unwrap();
        let rdatas: Vec<&[u8]> = a.rdatas().iter().collect();
        assert_eq!(
            rdatas,
            [&[192, 0, 2, 7][..], &[192, 0, 2, 8], &[192, 0, 2, 10]],
            "file order"
        );
        assert_eq!(a.ttl, 30, "the lowest TTL");
        assert_eq!(a.loc.line, 5);
        assert_eq!(zone.record_count, 9);
        assert_eq!(zone.len(), 4);
        assert_eq!(zone.rrset_count(), 7);
        assert!(!zone.contains(b"\x07missing\x07example\x03com\x00"));
        let keys: Vec<String> = zone.nodes().map(|n| name::to_text(n.key())).collect();
        assert_eq!(
            keys,
            [
                "example.com.",
                "ns.example.com.",
                "mix.example.com.",
                "other.example.com."
            ],
            "first appearance"
        );
        assert!(
            diags.to_string().contains("z.zone:10: warning: TTL 30 differs"),
            "{diags}"
        );
    }

    #[test]
    fn apex_requirements() {
        let (zone, diags) = load_text("www 60 A 192.0.2.1\nsub 60 SOA a b 1 2 3 4 5\n");
        assert!(zone.is_none());
        let msgs = diags.to_string();
        assert!(msgs.contains("no SOA record at the apex example.com."), "{msgs}");
        assert!(msgs.contains("no NS records at the apex"), "{msgs}");
        assert!(
            msgs.contains("z.zone:2: error: SOA record for sub.example.com. outside the apex"),
            "{msgs}"
        );
    }

    /// A record as (owner, type, TTL, data).
    type Record = (String, u16, u32, Vec<u8>);

    /// Each record of a zone, sorted, and the line where the RRset of
    /// each owner and type was read.
    fn records(zone: &Zone) -> (Vec<Record>, HashMap<(String, u16), u32>) {
        let (mut all, mut lines) = (Vec::new(), HashMap::new());
        for node in zone.nodes() {
            let owner = name::to_text(node.owner()).to_ascii_lowercase();
            for set in node.rrsets() {
                lines.insert((owner.clone(), set.rtype), set.loc.line);
                all.extend(
                    set.rdatas()
                        .iter()
                        .map(|d| (owner.clone(), set.rtype, set.ttl, d.to_vec())),
                );
            }
        }
        all.sort();
        (all, lines)
    }

    #[test]
    fn generate_makes_the_records_bind_makes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/generate");
        let origin = Name::from_str("example.com.").unwrap();
        let load_file = |file: &str| {
            let mut diags = Diagnostics::default();
            let zone = load(&origin, &dir.join(file), &Limits::default(), &mut diags);
            assert!(diags.items.is_empty(), "{file}: {diags}");
            records(&zone.unwrap())
        };
        let (ours, lines) = load_file("generate.zone");
        let (bind, _) = load_file("generate.bind");
        let only = |a: &[Record], b: &[Record]| a.iter().filter(|r| !b.contains(r)).cloned().collect::<Vec<_>>();
        assert_eq!(only(&ours, &bind), [], "only lbdns has these");
        assert_eq!(only(&bind, &ours), [], "only BIND has these");
        assert_eq!(ours.len(), 30);
        // Records a `$GENERATE` made are found at its line; the lines
        // after it keep their own.
        assert_eq!(lines[&("host-2.example.com.".into(), 1)], 10);
        assert_eq!(lines[&("s2.sub.example.com.".into(), 1)], 29);
        assert_eq!(lines[&("after.example.com.".into(), 1)], 26);
        assert_eq!(lines[&("last.example.com.".into(), 16)], 31);
    }

    #[test]
    fn generate_split_over_lines_keeps_the_lines_after_it() {
        let text = format!("{HEAD}$GENERATE 1-3 ( g$\n  A\n  10.0.0.$ )\nafter A 10.0.0.9\nbad A 10.0.0.300\n");
        let (zone, diags) = load_text(&format!(
            "{HEAD}$GENERATE 1-3 ( g$\n  A\n  10.0.0.$ )\nafter A 10.0.0.9\n"
        ));
        let (all, lines) = records(&zone.unwrap());
        assert!(diags.items.is_empty(), "{diags}");
        assert_eq!(all.iter().filter(|r| r.0.starts_with('g')).count(), 3);
        assert_eq!(lines[&("g3.example.com.".into(), 1)], 5);
        assert_eq!(lines[&("after.example.com.".into(), 1)], 8);
        // The scanner's own lines (of the rewritten text) come back too.
        let (zone, diags) = load_text(&text);
        assert!(zone.is_none());
        assert!(diags.to_string().contains("z.zone:9: error:"), "{diags}");
        // A directive with no argument is reported at its own line.
        for directive in ["$ORIGIN", "$TTL"] {
            let (_, diags) = load_text(&format!(
                "{HEAD}$GENERATE 1-3 g$ A 10.0.0.1\n{directive}\nx A 10.0.0.2\n"
            ));
            assert!(
                diags.to_string().contains("z.zone:6: error: unexpected end of entry\n"),
                "{directive}: {diags}"
            );
        }
        let (_, diags) = load_text(&format!("{HEAD}$GENERATE 1-300 g$ A 10.0.0.1\n$TTL abc\n"));
        assert!(
            diags
                .to_string()
                .contains("z.zone:6: error: expected decimal number (column 7)"),
            "{diags}"
        );
    }

    #[test]
    fn generate_errors_say_what_and_where() {
        for (text, want) in [
            (
                "$GENERATE 5-1 h$ A 10.0.0.$",
                "z.zone:5: error: $GENERATE: bad range \"5-1\"",
            ),
            ("$GENERATE 1-2/0 h$ A 10.0.0.$", "bad range \"1-2/0\""),
            ("$GENERATE 1-4294967295 h$ A 10.0.0.$", "bad range"),
            (
                "$GENERATE 1-9 h${1,x} A 10.0.0.$",
                "z.zone:5: error: $GENERATE: bad ${1,x}",
            ),
            ("$GENERATE 1-9 h${1 A 10.0.0.$", "a `${` without its `}`"),
            ("$GENERATE 1-9 h${-5,0,n} A 10.0.0.$", "-4 has no nibble form"),
            (
                "$GENERATE 1-2 h$ MX 10 mail$",
                "no type, or more than one word of data: write `$GENERATE",
            ),
            ("$GENERATE 1-2 h$ IN 60 MX 10 mail$", "7 words after the directive"),
            ("$GENERATE 1-2 h$", "2 words after the directive"),
            (
                "$GENERATE 1-3 h$ A 10.0.0.${-2}",
                "z.zone:5: error: expected IPv4 address, in the record this $GENERATE made: h1 A 10.0.0.-1",
            ),
            (
                "$GENERATE 1-3 h$ A 10.0.0.${253}",
                "z.zone:5: error: expected IPv4 address, in the record this $GENERATE made: h3 A 10.0.0.256",
            ),
            ("$GENERATE 1-2 \"h$\" A 10.0.0.$", "the owner is in quotes"),
            (
                "$GENERATE 1-2 h$ TXT \"a\nb\"",
                "the record made for 1 does not fit on one line",
            ),
            (
                "$GENERATE 1-2 h$ A 10.0.0.$$",
                "z.zone:5: error: expected IPv4 address, in the record this $GENERATE made: h1 A 10.0.0.$",
            ),
        ] {
            let (zone, diags) = load_text(&format!("{HEAD}{text}\nafter A 192.0.2.9\n"));
            assert!(zone.is_none(), "{text}");
            assert!(diags.to_string().contains(want), "{text}: {diags}");
        }
        // As many records as the limits allow, over all of a file's
        // `$GENERATE`s, and as many bytes as a file may have: a small file
        // cannot make a huge one.
        let dir = std::env::temp_dir().join(format!("lbdns-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.zone");
        let cases = [
            (
                "$GENERATE 1-6 a$ A 10.0.0.$\n$GENERATE 1-5 b$ A 10.0.0.$\n".to_string(),
                Limits {
                    zone_records: 10,
                    ..Limits::default()
                },
                "z.zone:6: error: $GENERATE: the range 1-5 makes 5 records, over limits.zone_records (4 left)",
            ),
            (
                format!("$GENERATE 1-100 a$ TXT \"{}\"\n", "x".repeat(40)),
                Limits {
                    zone_file_size: 1000,
                    ..Limits::default()
                },
                "z.zone:5: error: $GENERATE: its records come to more bytes than limits.zone_file_size allows \
                 (1000 left), by the one for 21",
            ),
        ];
        for (text, limits, want) in cases {
            std::fs::write(&path, format!("{HEAD}{text}")).unwrap();
            let mut diags = Diagnostics::default();
            assert!(load(&Name::from_str("example.com.").unwrap(), &path, &limits, &mut diags).is_none());
            assert!(diags.to_string().contains(want), "{diags}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let (zone, diags) = load_text(&format!("{HEAD}www A 300.1.1.1\n"));
        assert!(zone.is_none());
        assert!(diags.to_string().contains("z.zone:5: error:"), "{diags}");
        for (text, want) in [
            (
                "$FOO 1-9 h$ A 10.0.0.$\n",
                "z.zone:5: error: unknown control: $FOO: the directives read here are $ORIGIN, $TTL, \
                 $INCLUDE and BIND's $GENERATE",
            ),
            ("x CH TXT \"a\"\n", "z.zone:5: error: different class: CH != IN"),
        ] {
            let (zone, diags) = load_text(&format!("{HEAD}{text}"));
            assert!(zone.is_none());
            assert!(diags.to_string().contains(want), "{diags}");
        }
        let (_, diags) = load_text(&format!("  A 192.0.2.1\n{HEAD}"));
        assert!(
            diags.to_string().contains("z.zone:1: error: this record has no owner"),
            "{diags}"
        );
        let long = "x".repeat(256);
        let (zone, diags) = load_text(&format!("{HEAD}t TXT \"ok\"\nt TXT \"{long}\"\n"));
        assert!(zone.is_none());
        assert!(
            diags
                .to_string()
                .contains("z.zone:6: error: a character-string is longer than 255 bytes"),
            "{diags}"
        );
    }

    #[test]
    fn entry_lines_follow_logical_lines() {
        let src = b"$TTL 60\n@ SOA ns hm (\n 1 2 ; c\n 3 4 5 )\n\n  NS ns ; x\n$ORIGIN a.\nb TXT \"x\\\" (\" y\nc\\ d A 1.2.3.4\n$INCLUDE f\n";
        let found = entry_lines(src);
        assert_eq!((found.lines, found.unclosed), (vec![2, 6, 8, 9, 10], None));
        assert_eq!(found.ttls, [(1, 60)]);
        assert!(!entry_lines(b"c\\ d A 1.2.3.4\n").rewrite);
        // An indented `$TTL` is a record to the scanner (a bad one).
        assert_eq!(entry_lines(b"a A 1.2.3.4\n  $TTL 60\n").lines, [1, 2]);
        // TTLs with units, in a directive, before a type, in SOA timers.
        assert!(entry_lines(b"$TTL 1h\n").rewrite);
        assert!(entry_lines(b"a 1D IN A 1.2.3.4\n").rewrite);
        assert!(entry_lines(b"@ SOA ns hm ( 1 ; serial\n 2h 3 4 5 )\n").rewrite);
        assert!(!entry_lines(b"@ SOA ns hm ( 1 ; serial\n 2 3 4 5 )\n").rewrite);
        // A type `extra` rewrites, on a plain line or one with a comment.
        assert!(entry_lines(b"a A 1.2.3.4\nl LOC 1 N 2 E 0\n").rewrite);
        assert!(entry_lines(b"a A 1.2.3.4\n  60 SPF \"v=spf1\" ; x\n").rewrite);
        assert!(!entry_lines(b"a TXT \"LOC\"\n; LOC\n").rewrite);
        assert_eq!(
            entry_lines(b"a A 1.2.3.4\nb TXT ( \"x\"\n").unclosed,
            Some((2, "parenthesis"))
        );
        assert_eq!(entry_lines(b"a TXT \"x\n\n").unclosed, Some((1, "quote")));
    }

    #[test]
    fn glue_missing_is_a_warning() {
        let (zone, diags) = load_text(&format!("{HEAD}sub NS ns.sub\n"));
        assert!(zone.is_some());
        assert!(
            diags.to_string().contains(
                "warning: delegation sub.example.com. has name server ns.sub.example.com. below the cut without glue"
            ),
            "{diags}"
        );
    }
}
