//! Answers below a DNAME (RFC 6672).
//!
//! The snapshot holds the DNAME record rendered against its owner; the
//! CNAME it implies depends on the qname, so it is written here: owner
//! `0xC00C`, target the qname's leading labels as the client wrote them
//! and a pointer to the DNAME's target. When the new name is served here
//! too, its answer follows (RFC 6672 §3.2, as NSD and Knot do): its
//! template is copied behind the CNAME and each of its compression
//! pointers moved to where the same name lies in this message. When the
//! new name is below another DNAME, that DNAME is copied the same way and
//! its CNAME written, up to [`MAX_DNAMES`]. The new name's answer was
//! made ahead with that name as the qname, so a CNAME chain in it may
//! pass a DNAME or name this reply already holds: such a record is taken
//! out again ([`drop_repeats`]).

use super::{
    Answer, Client, IN, MAX_NAME_LEN, Outcome, Picker, Query, Snapshot, append_members, copy_body, fit, members_len,
    opt_len, pool_owner, rcode, reply, select_members, shuffle_answer,
};
use crate::lb::Selection;
use crate::snapshot::NONE;
use crate::zone::{is_compressible, rdata_names};

/// Where the DNAME's target starts in its template: after the owner (a
/// pointer to the qname's suffix), TYPE, CLASS, TTL and RDLENGTH.
const RDATA_AT: usize = 2 + 2 + 2 + 4 + 2;
const CNAME: u16 = 5;
const DNAME: u16 = 39;
const NS: u16 = 2;
/// DNAMEs followed for one query, the first one included, and so CNAMEs
/// synthesised: five, where Knot DNS 3.2 stops too. (A chain that comes
/// back to a name it went through stops there, as in NSD.)
const MAX_DNAMES: usize = 5;

/// Answers a name below a DNAME: the DNAME, the CNAME it synthesises,
/// and the answer for the new name when it is served here. When the new
/// name is below a DNAME too, that DNAME and its CNAME follow, and so on
/// (RFC 6672 §3.2, as NSD and Knot do); a DNAME met twice is written
/// once (also when the new name's CNAME chain comes back below it), and a
/// chain stops at a name it already went through, with the CNAME to it.
/// YXDOMAIN when a new name would be longer than 255 bytes (RFC 6672
/// §2.2). `qkey` is the qname lower-cased, as looked up.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_answer(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    answer: &Answer,
    q: &Query,
    query: &[u8],
    qkey: &[u8],
    limit: usize,
    picker: &mut Picker,
    client: &Client,
) -> Outcome {
    let body = snap.body(answer);
    let prefix_len = q.name_len.saturating_sub(usize::from(answer.base_qlen));
    let target_len = body.len().saturating_sub(RDATA_AT);
    let new_len = prefix_len + target_len;
    let head = out.len();
    let authoritative = answer.authoritative && q.qclass == IN;
    let long = new_len > MAX_NAME_LEN;
    let cname_len = if long { 0 } else { RDATA_AT + prefix_len + 2 };
    if body.len() < RDATA_AT || head + body.len() + cname_len + opt_len(q.edns.as_ref()) > limit {
        return reply(out, [0, 0, 0], 0, authoritative, true, q.edns.as_ref(), 0);
    }
    copy_body(out, snap, answer, q.name_len, body.len());
    if long {
        return reply(
            out,
            [1, 0, 0],
            rcode::YXDOMAIN,
            authoritative,
            false,
            q.edns.as_ref(),
            0,
        );
    }
    let target_at = head + RDATA_AT;
    let prefix = &query[12..12 + prefix_len];
    let mut place = synthesise(out, 12, prefix, target_at, &body[6..10], new_len);
    // The new name as the message spells it (the client's letter case,
    // then the DNAME's target), to look up lower-cased.
    let mut name = [0u8; MAX_NAME_LEN];
    name[..prefix_len].copy_from_slice(prefix);
    name[prefix_len..new_len].copy_from_slice(&body[RDATA_AT..]);
    // The DNAMEs written, and where each one's target lies.
    let mut written: [(*const Answer, usize); MAX_DNAMES] = [(std::ptr::null(), 0); MAX_DNAMES];
    written[0] = (answer, target_at);
    let mut dnames = 1;
    let mut records = 2;
    // Where each name the chain went through lies: the qname, then each
    // new name.
    let mut visited = [0usize; MAX_DNAMES + 1];
    visited[0] = 12;
    let mut truncated = false;
    let mut rcode = 0;
    loop {
        let mut key = name;
        key[..place.new_len].make_ascii_lowercase();
        let key = &key[..place.new_len];
        if visited[..dnames].iter().any(|&at| same_name(out, at, key)) {
            break;
        }
        visited[dnames] = place.name_at();
        // QTYPE CNAME asked for the CNAME, which is there.
        let next = (q.qtype != CNAME).then(|| snap.resolve(key, q.qtype)).flatten();
        match next {
            Some(next) if next.is_dname() => {
                if dnames == MAX_DNAMES {
                    break;
                }
                let seen = written[..dnames]
                    .iter()
                    .find(|(a, _)| std::ptr::eq(*a, next))
                    .map(|&(_, at)| at);
                match redirect(out, snap, next, seen, &place, &mut name, limit, q.edns.as_ref()) {
                    Redirect::To(next_place, target_at, added) => {
                        written[dnames] = (next, target_at);
                        dnames += 1;
                        records += added;
                        place = next_place;
                    }
                    Redirect::TooLong(added) => {
                        let counts = [records + added, 0, 0];
                        return reply(out, counts, rcode::YXDOMAIN, authoritative, false, q.edns.as_ref(), 0);
                    }
                    Redirect::Stop(why) => {
                        (truncated, rcode) = why.truncated();
                        break;
                    }
                }
            }
            Some(next) => match follow(
                out,
                snap,
                next,
                q,
                limit,
                picker,
                client,
                &place,
                authoritative,
                records,
                // A new name's answer in another zone than the first
                // DNAME's (the query's) comes without its optional
                // additional data (but an NS RRset's), as NSD answers and
                // as a CNAME chain does (snapshot/build.rs).
                q.qtype != NS && snap.zone_of(key) != snap.zone_of(&qkey[prefix_len..]),
            ) {
                Ok(outcome) => return outcome,
                Err(why) => {
                    (truncated, rcode) = why.truncated();
                    break;
                }
            },
            None => break,
        }
    }
    out.truncate(place.body_at);
    reply(
        out,
        [records, 0, 0],
        rcode,
        authoritative,
        truncated,
        q.edns.as_ref(),
        0,
    )
}

/// Appends the CNAME a DNAME synthesises: owned by the name at `owner`,
/// with the DNAME's `ttl`, its target `prefix` then a pointer to the
/// DNAME's target at `target_at`. Returns where the new name lies.
fn synthesise(out: &mut Vec<u8>, owner: usize, prefix: &[u8], target_at: usize, ttl: &[u8], new_len: usize) -> Place {
    out.extend_from_slice(&(0xC000 | owner as u16).to_be_bytes());
    out.extend_from_slice(&CNAME.to_be_bytes());
    out.extend_from_slice(&IN.to_be_bytes());
    out.extend_from_slice(ttl);
    out.extend_from_slice(&((prefix.len() + 2) as u16).to_be_bytes());
    let prefix_at = out.len();
    out.extend_from_slice(prefix);
    out.extend_from_slice(&(0xC000 | target_at as u16).to_be_bytes());
    Place {
        new_len,
        prefix_len: prefix.len(),
        prefix_at,
        target_at,
        body_at: out.len(),
    }
}

/// What following one more DNAME came to.
enum Redirect {
    /// The next new name's place, where this DNAME's target lies, and the
    /// records added (the CNAME, and the DNAME unless already there).
    To(Place, usize, u16),
    /// The new name would be too long; the DNAME was added unless already
    /// there (the count of records added).
    TooLong(u16),
    /// It does not fit, or cannot be written here: stop before it.
    Stop(Unfit),
}

/// Writes the DNAME `dname` the name at `place` is below (unless it is
/// already in the message, its target at `seen`) and the CNAME it
/// synthesises, and moves `name` on to the new name.
#[allow(clippy::too_many_arguments)]
fn redirect(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    dname: &Answer,
    seen: Option<usize>,
    place: &Place,
    name: &mut [u8; MAX_NAME_LEN],
    limit: usize,
    edns: Option<&super::Edns<'_>>,
) -> Redirect {
    let body = snap.body(dname);
    if body.len() < RDATA_AT {
        return Redirect::Stop(Unfit::Unplaceable);
    }
    let target = &body[RDATA_AT..];
    let prefix_len = place.new_len.saturating_sub(usize::from(dname.base_qlen));
    let new_len = prefix_len + target.len();
    let long = new_len > MAX_NAME_LEN;
    let dname_len = if seen.is_some() { 0 } else { body.len() };
    let cname_len = if long { 0 } else { RDATA_AT + prefix_len + 2 };
    if place.body_at + dname_len + cname_len + opt_len(edns) > limit {
        return Redirect::Stop(Unfit::NoRoom(0));
    }
    let target_at = match seen {
        Some(at) => at,
        None => {
            copy_body(out, snap, dname, place.new_len, body.len());
            if relocate(out, place, 1).is_none() {
                out.truncate(place.body_at);
                return Redirect::Stop(Unfit::Unplaceable);
            }
            place.body_at + RDATA_AT
        }
    };
    let added = u16::from(seen.is_none());
    if long {
        return Redirect::TooLong(added);
    }
    let owner = place.name_at();
    if owner > 0x3FFF || target_at > 0x3FFF {
        out.truncate(place.body_at);
        return Redirect::Stop(Unfit::Unplaceable);
    }
    let next = synthesise(out, owner, &name[..prefix_len], target_at, &body[6..10], new_len);
    name[prefix_len..new_len].copy_from_slice(target);
    Redirect::To(next, target_at, added + 1)
}

/// Where the new name and the answer for it lie in the message.
struct Place {
    new_len: usize,
    prefix_len: usize,
    /// The new name's leading labels (in the CNAME's RDATA).
    prefix_at: usize,
    /// The rest of the new name: the DNAME's target.
    target_at: usize,
    /// Where the next answer's body starts.
    body_at: usize,
}

impl Place {
    /// Where the new name lies as a whole: the CNAME's target (its
    /// prefix, then a pointer), or the DNAME's target when there is no
    /// prefix.
    fn name_at(&self) -> usize {
        if self.prefix_len > 0 {
            self.prefix_at
        } else {
            self.target_at
        }
    }

    /// Moves a compression pointer of a template laid out for the new name
    /// as the qname to where the same bytes lie in this message.
    fn pointer(&self, to: usize) -> Option<usize> {
        let question_end = 12 + self.new_len;
        let moved = match to {
            _ if to < 12 => return None,
            _ if to < 12 + self.prefix_len => self.prefix_at + (to - 12),
            _ if to < question_end => self.target_at + (to - 12 - self.prefix_len),
            _ if to >= question_end + 4 => self.body_at + (to - question_end - 4),
            _ => return None,
        };
        (moved <= 0x3FFF).then_some(moved)
    }
}

/// Why the chain stops short of an answer (nothing of it appended).
#[derive(Clone, Copy)]
enum Unfit {
    /// The message has no room for it: the reply gets TC, as from NSD and
    /// Knot, so that the client asks again over TCP, and this RCODE, the
    /// answer's that did not fit (NXDOMAIN at the end of the chain stays
    /// NXDOMAIN, as from NSD and as a CNAME chain's does).
    NoRoom(u16),
    /// It cannot be written here (a compression pointer out of reach, a
    /// template that does not read): the reply ends before it.
    Unplaceable,
}

impl Unfit {
    /// Whether the reply is truncated, and its RCODE.
    fn truncated(self) -> (bool, u16) {
        match self {
            Unfit::NoRoom(rcode) => (true, rcode),
            Unfit::Unplaceable => (false, 0),
        }
    }
}

/// Appends the answer for the new name; nothing appended when it does
/// not fit or cannot be placed here.
#[allow(clippy::too_many_arguments)]
fn follow(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    next: &Answer,
    q: &Query,
    limit: usize,
    picker: &mut Picker,
    client: &Client,
    place: &Place,
    authoritative: bool,
    records_before: u16,
    bare: bool,
) -> Result<Outcome, Unfit> {
    let room = limit
        .checked_sub(place.body_at + opt_len(q.edns.as_ref()))
        .ok_or(Unfit::NoRoom(u16::from(next.rcode)))?;
    // A pool's pick, or when it has none to give, its NODATA answer; the
    // client subnet scope is the selection's either way.
    let (next, sel, scope) = if next.pool != NONE {
        let mut sel = Selection::default();
        select_members(snap, next, q, picker, client, &mut sel);
        if sel.count == 0 {
            (snap.answer(next.empty), None, sel.scope)
        } else {
            let scope = sel.scope;
            (next, Some(sel), scope)
        }
    } else {
        (next, None, 0)
    };
    // What to copy, how many records that is, and the reply's counts.
    let (take, records, mut counts, rcode, truncated) = match &sel {
        Some(sel) => {
            let body_len = usize::from(next.body_len);
            if body_len + members_len(snap, sel) > room {
                return Err(Unfit::NoRoom(0));
            }
            // A pool template holds answer records only (a CNAME chain).
            let chain = next.counts[0];
            (body_len, usize::from(chain), [chain + sel.count as u16, 0, 0], 0, false)
        }
        // Too big: the whole RRsets of it that fit (a CNAME chain's), and TC.
        None => match fit(snap, next, room) {
            (0, _, true) => return Err(Unfit::NoRoom(u16::from(next.rcode))),
            (mut take, mut counts, truncated) => {
                // `bare`: without the optional additional RRsets.
                if let Some(&(len, additional)) = snap.cuts(next).first().filter(|_| bare && !truncated) {
                    take = take.min(usize::from(len));
                    counts[2] = counts[2].min(additional);
                }
                let records = counts.iter().map(|&c| usize::from(c)).sum();
                (take, records, counts, u16::from(next.rcode), truncated)
            }
        },
    };
    copy_body(out, snap, next, place.new_len, take);
    if relocate(out, place, records).is_none() {
        out.truncate(place.body_at);
        return Err(Unfit::Unplaceable);
    }
    if let Some(sel) = &sel {
        let Some(owner) = place.pointer(usize::from(pool_owner(next, place.new_len))) else {
            out.truncate(place.body_at);
            return Err(Unfit::Unplaceable);
        };
        snap.pools()
            .count_selected(picker.row, sel.pool, &sel.members[..sel.count]);
        append_members(out, snap, sel, owner as u16);
    } else {
        shuffle_answer(out, place.body_at, next, take, picker);
    }
    let total = counts.iter().map(|&c| usize::from(c)).sum();
    let answers = usize::from(counts[0]);
    let first = 12 + q.name_len + 4;
    counts[0] -= drop_repeats(out, first, usize::from(records_before), place.body_at, answers, total) as u16;
    Ok(reply(
        out,
        [records_before + counts[0], counts[1], counts[2]],
        rcode,
        authoritative,
        truncated,
        q.edns.as_ref(),
        scope,
    ))
}

/// Whether the name at `at` in the message, its pointers followed, is
/// `key` (lower case) but for letter case.
fn same_name(out: &[u8], mut at: usize, key: &[u8]) -> bool {
    let mut i = 0;
    // Enough for any name: pointers only lead backwards to names written
    // before, and a name has at most 127 labels.
    for _ in 0..256 {
        let Some(&len) = out.get(at) else { return false };
        match len {
            0 => return i + 1 == key.len() && key[i] == 0,
            1..=63 => {
                let end = at + 1 + usize::from(len);
                let (Some(label), Some(want)) = (out.get(at..end), key.get(i..i + 1 + usize::from(len))) else {
                    return false;
                };
                if !label.eq_ignore_ascii_case(want) {
                    return false;
                }
                i += label.len();
                at = end;
            }
            0xC0.. => {
                let Some(&low) = out.get(at + 1) else { return false };
                at = usize::from(len & 0x3F) << 8 | usize::from(low);
            }
            _ => return false,
        }
    }
    false
}

/// Drops from the records appended at `from` (`answers` of them in the
/// answer section, `total` in all) each CNAME or DNAME that one of the
/// `before` answer records from `first` already is: a new name's answer,
/// made ahead for that name as the qname, may pass a DNAME the chain came
/// through, or come back to a name the chain went through, and no record
/// goes out twice (RFC 2181 §5.5, as NSD and Knot answer). Pointers into a
/// dropped record move to the same name in the record it repeats, and
/// pointers past one move back with the bytes. Returns how many records
/// were dropped: none when a pointer could not be moved.
fn drop_repeats(out: &mut Vec<u8>, first: usize, before: usize, from: usize, answers: usize, total: usize) -> usize {
    const CAP: usize = 4 * MAX_DNAMES;
    let end = out.len();
    let chained = |rtype| rtype == CNAME || rtype == DNAME;
    // The CNAMEs and DNAMEs written before.
    let mut chain = [Record::default(); CAP];
    let mut links = 0;
    let mut at = first;
    for _ in 0..before {
        let Some(record) = record_at(out, at, from) else {
            return 0;
        };
        if chained(record.rtype) {
            let Some(slot) = chain.get_mut(links) else { return 0 };
            *slot = record;
            links += 1;
        }
        at = record.end;
    }
    // The records to drop, each with the one it repeats, in message order.
    let mut drops = [(Record::default(), Record::default()); CAP];
    let mut dropped = 0;
    let mut at = from;
    for _ in 0..answers {
        let Some(record) = record_at(out, at, end) else {
            return 0;
        };
        // Only CNAMEs and DNAMEs were kept in `chain`, so the type match
        // is enough to skip every other record.
        let repeats = chain[..links]
            .iter()
            .find(|e| e.rtype == record.rtype && names_equal(out, e.at, record.at));
        if let Some(&earlier) = repeats {
            let Some(slot) = drops.get_mut(dropped) else { return 0 };
            *slot = (record, earlier);
            dropped += 1;
        }
        at = record.end;
    }
    if dropped == 0 {
        return 0;
    }
    let drops = &drops[..dropped];
    let inside = |at: usize| drops.iter().any(|(d, _)| (d.at..d.end).contains(&at));
    // Where a pointer to `to` goes once the records are dropped.
    let moved = |out: &[u8], to: usize| -> Option<usize> {
        if to < from {
            return Some(to);
        }
        if let Some((gone, earlier)) = drops.iter().find(|(d, _)| (d.at..d.end).contains(&to)) {
            // The same name in the record it repeats: the owner, or the
            // RDATA, which is one name for a CNAME or a DNAME.
            let (name, same) = if to < gone.rdata_at {
                (gone.at, earlier.at)
            } else {
                (gone.rdata_at, earlier.rdata_at)
            };
            return locate(out, same, offset_in(out, name, to)?);
        }
        let gone: usize = drops
            .iter()
            .filter(|(d, _)| d.end <= to)
            .map(|(d, _)| d.end - d.at)
            .sum();
        Some(to - gone)
    };
    // Every pointer that stays must move; the names read to move one lie
    // before `from` or in dropped records, which are not written to.
    let check = |out: &mut [u8], p: usize| {
        if !inside(p) {
            moved(out, read_pointer(out, p))?;
        }
        Some(())
    };
    if each_pointer(out, from, end, total, check) != Some(end) {
        return 0;
    }
    let rewrite = |out: &mut [u8], p: usize| {
        if !inside(p) {
            let to = moved(out, read_pointer(out, p))? as u16 | 0xC000;
            out[p..p + 2].copy_from_slice(&to.to_be_bytes());
        }
        Some(())
    };
    each_pointer(out, from, end, total, rewrite);
    let mut write = drops[0].0.at;
    let mut read = drops[0].0.end;
    for (gone, _) in &drops[1..] {
        out.copy_within(read..gone.at, write);
        write += gone.at - read;
        read = gone.end;
    }
    out.copy_within(read..end, write);
    out.truncate(write + end - read);
    dropped
}

/// Whether the names at `a` and `b` in the message, their pointers
/// followed, are the same but for letter case.
fn names_equal(out: &[u8], mut a: usize, mut b: usize) -> bool {
    for _ in 0..128 {
        let (Some(x), Some(y)) = (label(out, a), label(out, b)) else {
            return false;
        };
        let len = usize::from(out[x]);
        if len != usize::from(out[y]) {
            return false;
        }
        if len == 0 {
            return true;
        }
        let (Some(one), Some(other)) = (out.get(x + 1..x + 1 + len), out.get(y + 1..y + 1 + len)) else {
            return false;
        };
        if !one.eq_ignore_ascii_case(other) {
            return false;
        }
        (a, b) = (x + 1 + len, y + 1 + len);
    }
    false
}

/// Where the label at `at` lies once pointers are followed.
fn label(out: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        match *out.get(at)? {
            0..=63 => return Some(at),
            0xC0.. if at + 1 < out.len() => at = read_pointer(out, at),
            _ => return None,
        }
    }
    None
}

/// How many bytes into the name at `name` the label at `to` starts, when
/// it is one of the labels written there (before any pointer).
fn offset_in(out: &[u8], name: usize, to: usize) -> Option<usize> {
    let mut at = name;
    while at < to {
        let len = *out.get(at)?;
        if !(1..=63).contains(&len) {
            return None;
        }
        at += 1 + usize::from(len);
    }
    (at == to).then_some(to - name)
}

/// Where the name at `at`, less its first `skip` bytes of labels, lies
/// in the message, pointers followed; `None` when that is not a label's
/// start or is out of a pointer's reach.
fn locate(out: &[u8], mut at: usize, mut skip: usize) -> Option<usize> {
    for _ in 0..128 {
        let x = label(out, at)?;
        if skip == 0 {
            return (x <= 0x3FFF).then_some(x);
        }
        let len = usize::from(out[x]);
        if len == 0 {
            return None;
        }
        skip = skip.checked_sub(1 + len)?;
        at = x + 1 + len;
    }
    None
}

/// Moves every compression pointer in the `records` records from
/// `place.body_at` on; `None` if one cannot be moved.
fn relocate(out: &mut [u8], place: &Place, records: usize) -> Option<()> {
    let end = out.len();
    let stop = each_pointer(out, place.body_at, end, records, |out, at| {
        let to = read_pointer(out, at);
        let moved = place.pointer(to)? as u16 | 0xC000;
        out[at..at + 2].copy_from_slice(&moved.to_be_bytes());
        Some(())
    })?;
    (stop == end).then_some(())
}

/// Where a record lies: its owner from `at`, its RDATA from `rdata_at`.
#[derive(Clone, Copy, Default)]
struct Record {
    at: usize,
    rtype: u16,
    rdata_at: usize,
    end: usize,
}

/// Reads the bounds of the record at `at`, which must end by `end`.
fn record_at(out: &[u8], at: usize, end: usize) -> Option<Record> {
    let (owner_end, _) = name_pointer(out, at, end)?;
    let fixed = out.get(owner_end..owner_end + 10)?;
    let rdata_at = owner_end + 10;
    let rdata_end = rdata_at + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    (rdata_end <= end).then_some(Record {
        at,
        rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        rdata_at,
        end: rdata_end,
    })
}

/// Calls `f` with where each compression pointer lies in the `records`
/// records from `at` (their owners and the names in their RDATA, where
/// its type may be compressed); returns where the records end. `None`
/// when one does not read, or when `f` fails.
fn each_pointer(
    out: &mut [u8],
    mut at: usize,
    end: usize,
    records: usize,
    mut f: impl FnMut(&mut [u8], usize) -> Option<()>,
) -> Option<usize> {
    for _ in 0..records {
        let record = record_at(out, at, end)?;
        if let (_, Some(p)) = name_pointer(out, record.at, record.end)? {
            f(out, p)?;
        }
        if is_compressible(record.rtype) {
            let (skip, names) = rdata_names(record.rtype);
            let mut name_at = record.rdata_at + skip;
            for _ in 0..names {
                let (name_end, pointer) = name_pointer(out, name_at, record.end)?;
                if let Some(p) = pointer {
                    f(out, p)?;
                }
                name_at = name_end;
            }
        }
        at = record.end;
    }
    Some(at)
}

/// Where the name at `at` ends (before `end`), and where its compression
/// pointer lies, if it has one.
fn name_pointer(out: &[u8], mut at: usize, end: usize) -> Option<(usize, Option<usize>)> {
    loop {
        let len = *out.get(at).filter(|_| at < end)?;
        match len {
            0 => return Some((at + 1, None)),
            1..=63 => at += 1 + usize::from(len),
            0xC0.. => return (at + 2 <= end).then_some((at + 2, Some(at))),
            _ => return None,
        }
    }
}

fn read_pointer(out: &[u8], at: usize) -> usize {
    usize::from(out[at] & 0x3F) << 8 | usize::from(out[at + 1])
}
