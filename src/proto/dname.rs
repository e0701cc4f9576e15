//! Answers below a DNAME (RFC 6672).
//!
//! The snapshot holds the DNAME record rendered against its owner; the
//! CNAME it implies depends on the qname, so it is written here: owner
//! `0xC00C`, target the qname's leading labels as the client wrote them
//! and a pointer to the DNAME's target. When the new name is served here
//! too, its answer follows (RFC 6672 §3.2, as NSD and Knot do): its
//! template is copied behind the CNAME and each of its compression
//! pointers moved to where the same name lies in this message.

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

/// Answers a name below a DNAME: the DNAME, the CNAME it synthesises,
/// and the answer for the new name when it is served here. YXDOMAIN when
/// the new name would be longer than 255 bytes (RFC 6672 §2.2).
#[allow(clippy::too_many_arguments)]
pub(super) fn write_answer(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    answer: &Answer,
    q: &Query,
    query: &[u8],
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
    out.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1]);
    out.extend_from_slice(&body[6..10]); // the DNAME's TTL
    out.extend_from_slice(&((prefix_len + 2) as u16).to_be_bytes());
    let prefix_at = out.len();
    out.extend_from_slice(&query[12..12 + prefix_len]);
    let target_at = head + RDATA_AT;
    out.extend_from_slice(&(0xC000 | target_at as u16).to_be_bytes());
    // The new name, lower-cased, to look up.
    let mut key = [0u8; MAX_NAME_LEN];
    key[..prefix_len].copy_from_slice(&query[12..12 + prefix_len]);
    key[prefix_len..new_len].copy_from_slice(&body[RDATA_AT..]);
    key[..new_len].make_ascii_lowercase();
    let place = Place {
        new_len,
        prefix_len,
        prefix_at,
        target_at,
        body_at: out.len(),
    };
    // QTYPE CNAME asked for the CNAME, which is there.
    let next = (q.qtype != CNAME)
        .then(|| snap.resolve(&key[..new_len], q.qtype))
        .flatten()
        .filter(|next| !next.is_dname());
    if let Some(next) = next
        && let Some(outcome) = follow(out, snap, next, q, limit, picker, client, &place, authoritative)
    {
        return outcome;
    }
    out.truncate(place.body_at);
    reply(out, [2, 0, 0], 0, authoritative, false, q.edns, 0)
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

/// Appends the answer for the new name; `None` (and nothing appended)
/// when it does not fit or cannot be placed here.
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
) -> Option<Outcome> {
    let room = limit.checked_sub(place.body_at + opt_len(q.edns))?;
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
    let (take, records, counts, rcode) = match &sel {
        Some(sel) => {
            let body_len = usize::from(next.body_len);
            if body_len + members_len(snap, sel) > room {
                return None;
            }
            // A pool template holds answer records only (a CNAME chain).
            let chain = next.counts[0];
            (body_len, usize::from(chain), [chain + sel.count as u16, 0, 0], 0)
        }
        None => match fit(snap, next, room) {
            (_, _, true) => return None,
            (take, counts, false) => {
                let records = counts.iter().map(|&c| usize::from(c)).sum();
                (take, records, counts, u16::from(next.rcode))
            }
        },
    };
    copy_body(out, snap, next, place.new_len, take);
    if relocate(out, place, records).is_none() {
        out.truncate(place.body_at);
        return None;
    }
    if let Some(sel) = &sel {
        let Some(owner) = place.pointer(usize::from(pool_owner(next, place.new_len))) else {
            out.truncate(place.body_at);
            return None;
        };
        snap.pools()
            .count_selected(picker.row, sel.pool, &sel.members[..sel.count]);
        append_members(out, snap, sel, owner as u16);
    } else {
        shuffle_answer(out, place.body_at, next, take, picker);
    }
    Some(reply(
        out,
        [2 + counts[0], counts[1], counts[2]],
        rcode,
        authoritative,
        false,
        q.edns,
        scope,
    ))
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
