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
//! its CNAME written, up to [`MAX_DNAMES`].

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
const NS: u16 = 2;
/// DNAMEs followed for one query, the first one included, and so CNAMEs
/// synthesised: five, where Knot DNS 3.2 stops too. (A chain that comes
/// back to a name it went through stops there, as in NSD.)
const MAX_DNAMES: usize = 5;

/// Answers a name below a DNAME: the DNAME, the CNAME it synthesises,
/// and the answer for the new name when it is served here. When the new
/// name is below a DNAME too, that DNAME and its CNAME follow, and so on
/// (RFC 6672 §3.2, as NSD and Knot do); a DNAME met twice is written
/// once, and a chain stops at a name it already went through, with the
/// CNAME to it. YXDOMAIN when a new name would be longer than 255 bytes (RFC
/// 6672 §2.2). `qkey` is the qname lower-cased, as looked up.
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
    if body.len() < RDATA_AT || head + body.len() + cname_len + opt_len(q.edns) > limit {
        return reply(out, [0, 0, 0], 0, authoritative, true, q.edns, 0);
    }
    copy_body(out, snap, answer, q.name_len, body.len());
    if long {
        return reply(out, [1, 0, 0], rcode::YXDOMAIN, authoritative, false, q.edns, 0);
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
                match redirect(out, snap, next, seen, &place, &mut name, limit, q.edns) {
                    Redirect::To(next_place, target_at, added) => {
                        written[dnames] = (next, target_at);
                        dnames += 1;
                        records += added;
                        place = next_place;
                    }
                    Redirect::TooLong(added) => {
                        let counts = [records + added, 0, 0];
                        return reply(out, counts, rcode::YXDOMAIN, authoritative, false, q.edns, 0);
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
    reply(out, [records, 0, 0], rcode, authoritative, truncated, q.edns, 0)
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
    edns: Option<super::Edns<'_>>,
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
        .checked_sub(place.body_at + opt_len(q.edns))
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
    let (take, records, counts, rcode, truncated) = match &sel {
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
    Ok(reply(
        out,
        [records_before + counts[0], counts[1], counts[2]],
        rcode,
        authoritative,
        truncated,
        q.edns,
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

/// Moves every compression pointer in the `records` records from
/// `place.body_at` on; `None` if one cannot be moved.
fn relocate(out: &mut [u8], place: &Place, records: usize) -> Option<()> {
    let end = out.len();
    let mut at = place.body_at;
    for _ in 0..records {
        at = relocate_name(out, at, end, place)?;
        let fixed = out.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdata_at = at + 10;
        let rdata_end = rdata_at + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        if rdata_end > end {
            return None;
        }
        if is_compressible(rtype) {
            let (skip, names) = rdata_names(rtype);
            let mut name_at = rdata_at + skip;
            for _ in 0..names {
                name_at = relocate_name(out, name_at, rdata_end, place)?;
            }
        }
        at = rdata_end;
    }
    (at == end).then_some(())
}

/// Moves the pointer that ends the name at `at`, if it has one; returns
/// where the name ends.
fn relocate_name(out: &mut [u8], mut at: usize, end: usize, place: &Place) -> Option<usize> {
    loop {
        let len = *out.get(at).filter(|_| at < end)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => at += 1 + usize::from(len),
            0xC0.. => {
                let low = *out.get(at + 1).filter(|_| at + 1 < end)?;
                let to = usize::from(len & 0x3F) << 8 | usize::from(low);
                let moved = place.pointer(to)? as u16 | 0xC000;
                out[at..at + 2].copy_from_slice(&moved.to_be_bytes());
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}
