//! Rendering answers to wire bytes when the snapshot is built.
//!
//! A rendered answer is the answer, authority and additional sections of a
//! reply, laid out as if the question were at offset 12 (RFC 1035 §4.1),
//! with names compressed (§4.1.4) against the question and earlier names.
//! The question it assumes (the *virtual question*) is:
//!
//! - `Exact`: the owner the answer belongs to — the real qname.
//! - `Suffix`: a name the real qname ends with (a zone apex for negative
//!   answers, a cut for referrals).
//! - `Wildcard`: a wildcard owner `*.ce`; the real qname is `something.ce`.
//!
//! When the real qname is `delta` bytes longer than the virtual one, every
//! compression pointer moves by `delta`: pointers into the question land on
//! its suffix, which moved; pointers into the body moved with the body. The
//! positions of those pointers are kept as *fixups*, so the hot path patches
//! them instead of rendering. Owners equal to the real qname are written as
//! `0xC00C`, which never moves.

use crate::name;
use crate::zone::{is_compressible, rdata_names};

/// Where a template assumes the question is, relative to the real qname.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Exact,
    Suffix,
    Wildcard,
}

/// The owner of a rendered record.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// The real qname: always the pointer `0xC00C`.
    Qname,
    /// Another name, in wire form with its letter case.
    Name(&'a [u8]),
}

/// Reply sections, in message order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

/// Offset of the question in a message: right after the header.
const QUESTION_AT: usize = 12;
/// Compression pointers hold 14 bits.
const MAX_POINTER: usize = 0x3FFF;
/// The largest body a template may have: a TCP message is at most 65535
/// bytes, less the header, the largest question and an OPT record.
pub const MAX_BODY: usize = 65535 - 12 - 259 - 11;

/// A rendered answer, borrowed from the [`Builder`] until it is stored.
#[derive(Clone, Copy, Debug)]
pub struct Rendered<'a> {
    pub body: &'a [u8],
    pub fixups: &'a [u16],
    pub counts: [u16; 3],
    /// Where the message may end when the whole body does not fit:
    /// (body length, additional count), shortest first. The first keeps
    /// exactly what must be sent; each further one adds an optional
    /// additional RRset.
    pub cuts: &'a [(u16, u16)],
    /// The final A/AAAA RRset of the answer section, if it can be shuffled:
    /// (start, record count, record size).
    pub shuffle: Option<(usize, usize, usize)>,
    pub base_qlen: usize,
}

/// Renders answer templates; reused from one template to the next so that
/// compiling a large zone does not allocate per answer.
#[derive(Default)]
pub struct Builder {
    mode: Option<Mode>,
    /// Where the body starts in the message.
    base: usize,
    base_qlen: usize,
    body: Vec<u8>,
    fixups: Vec<u16>,
    counts: [u16; 3],
    required_len: usize,
    required_additional: u16,
    /// Ends of optional additional RRsets: (body length, additional count).
    optional_ends: Vec<(u16, u16)>,
    cuts: Vec<(u16, u16)>,
    /// Names that later names may point to: (start, length) in
    /// `target_keys` (lower-cased wire form), and their message offset.
    target_keys: Vec<u8>,
    targets: Vec<(u32, u16, u16)>,
    section: Option<Section>,
    additional_start: Option<usize>,
    last_rrset: Option<(usize, usize, u16)>,
    /// Message offset of the last name written in RDATA.
    last_name_at: usize,
}

/// Label starts of a name, without allocating.
fn starts_of(wire: &[u8], starts: &mut [usize; 128]) -> usize {
    let (mut n, mut pos) = (0, 0);
    while pos < wire.len() && wire[pos] != 0 && n < starts.len() {
        starts[n] = pos;
        n += 1;
        pos += 1 + usize::from(wire[pos]);
    }
    n
}

impl Builder {
    /// Starts a template whose virtual question is `qkey` (a lower-cased
    /// wire name).
    pub fn new(qkey: &[u8], mode: Mode) -> Self {
        let mut b = Builder::default();
        b.reset(qkey, mode);
        b
    }

    /// Forgets the previous template and starts a new one.
    pub fn reset(&mut self, qkey: &[u8], mode: Mode) {
        self.mode = Some(mode);
        self.base = QUESTION_AT + qkey.len() + 4;
        self.base_qlen = qkey.len();
        self.body.clear();
        self.fixups.clear();
        self.counts = [0; 3];
        self.required_len = 0;
        self.required_additional = 0;
        self.optional_ends.clear();
        self.cuts.clear();
        self.target_keys.clear();
        self.targets.clear();
        self.section = None;
        self.additional_start = None;
        self.last_rrset = None;
        let mut starts = [0; 128];
        let n = starts_of(qkey, &mut starts);
        self.target_keys.extend_from_slice(qkey);
        for &start in &starts[..n] {
            if mode == Mode::Wildcard && start == 0 {
                continue; // the '*' label is not in the real qname
            }
            self.targets
                .push((start as u32, (qkey.len() - start) as u16, (QUESTION_AT + start) as u16));
        }
    }

    /// Appends an RRset to `section` (sections must come in order).
    /// `required` matters in the additional section only: required records
    /// (in-bailiwick glue, RFC 9471) are never dropped to make room.
    pub fn rrset<'r>(
        &mut self,
        section: Section,
        owner: Owner<'_>,
        rtype: u16,
        ttl: u32,
        rdatas: impl ExactSizeIterator<Item = &'r [u8]>,
        required: bool,
    ) {
        debug_assert!(self.section.is_none_or(|s| section >= s), "sections out of order");
        self.section = Some(section);
        if section == Section::Additional && self.additional_start.is_none() {
            self.additional_start = Some(self.body.len());
        }
        let start = self.body.len();
        let count = rdatas.len();
        for rdata in rdatas {
            self.record(owner, rtype, ttl, rdata);
        }
        self.counts[section as usize] += count as u16;
        if section == Section::Answer {
            self.last_rrset = Some((start, count, rtype));
        }
        if section == Section::Additional {
            if required {
                self.required_len = self.body.len();
                self.required_additional = self.counts[2];
            } else {
                self.optional_ends.push((self.body.len() as u16, self.counts[2]));
            }
        }
    }

    fn record(&mut self, owner: Owner<'_>, rtype: u16, ttl: u32, rdata: &[u8]) {
        match owner {
            Owner::Qname => self.body.extend_from_slice(&[0xC0, QUESTION_AT as u8]),
            Owner::Name(wire) => self.name(wire),
        }
        self.body.extend_from_slice(&rtype.to_be_bytes());
        self.body.extend_from_slice(&1u16.to_be_bytes()); // class IN
        self.body.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.body.len();
        self.body.extend_from_slice(&[0, 0]);
        if is_compressible(rtype) {
            self.compressed_rdata(rtype, rdata);
        } else {
            self.body.extend_from_slice(rdata);
        }
        let rdlen = (self.body.len() - len_at - 2) as u16;
        self.body[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }

    /// Writes RDATA of the RFC 1035 types, compressing their names.
    fn compressed_rdata(&mut self, rtype: u16, rdata: &[u8]) {
        let (prefix, names) = rdata_names(rtype);
        let mut pos = prefix.min(rdata.len());
        self.body.extend_from_slice(&rdata[..pos]);
        for _ in 0..names {
            match name::wire_len(&rdata[pos..]) {
                Some(len) => {
                    self.last_name_at = self.base + self.body.len();
                    self.name(&rdata[pos..pos + len]);
                    pos += len;
                }
                None => break, // cannot happen for data `domain` composed
            }
        }
        self.body.extend_from_slice(&rdata[pos..]);
    }

    /// The message offset of a known name equal to `key`, if any.
    fn target(&self, key: &[u8]) -> Option<u16> {
        self.targets
            .iter()
            .find(|&&(at, len, _)| {
                usize::from(len) == key.len() && &self.target_keys[at as usize..at as usize + key.len()] == key
            })
            .map(|&(_, _, offset)| offset)
    }

    /// Writes a name, compressed against the question and earlier names.
    fn name(&mut self, wire: &[u8]) {
        let mut key_buf = [0u8; name::MAX_NAME_LEN];
        let key = &mut key_buf[..wire.len().min(name::MAX_NAME_LEN)];
        key.copy_from_slice(&wire[..key.len()]);
        key.make_ascii_lowercase();
        let mut starts = [0; 128];
        let n = starts_of(wire, &mut starts);
        for i in 0..n {
            if let Some(target) = self.target(&key[starts[i]..]) {
                self.labels(wire, key, &starts[..i]);
                let at = self.body.len();
                let pointer = 0xC000 | target;
                self.body.extend_from_slice(&pointer.to_be_bytes());
                if self.mode != Some(Mode::Exact) {
                    self.fixups.push(at as u16);
                }
                return;
            }
        }
        self.labels(wire, key, &starts[..n]);
        self.body.push(0);
    }

    /// Writes the labels starting at `starts`, remembering each suffix as a
    /// compression target.
    fn labels(&mut self, wire: &[u8], key: &[u8], starts: &[usize]) {
        for &start in starts {
            let at = self.base + self.body.len();
            // Outside exact templates, pointers move by up to a name's length.
            let slack = if self.mode == Some(Mode::Exact) {
                0
            } else {
                name::MAX_NAME_LEN
            };
            if at + slack <= MAX_POINTER {
                let key_at = self.target_keys.len() as u32;
                self.target_keys.extend_from_slice(&key[start..]);
                self.targets.push((key_at, (key.len() - start) as u16, at as u16));
            }
            let len = usize::from(wire[start]);
            self.body.extend_from_slice(&wire[start..start + 1 + len]);
        }
    }

    /// The message offset of the last name written in RDATA (as the
    /// template lays it out): a CNAME target, for the records that follow.
    pub fn last_name_at(&self) -> u16 {
        self.last_name_at as u16
    }

    /// Finishes the template; `None` if it is too large for any message.
    pub fn finish(&mut self) -> Option<Rendered<'_>> {
        if self.body.len() > MAX_BODY {
            return None;
        }
        let additional_start = self.additional_start.unwrap_or(self.body.len());
        let required_len = self.required_len.max(additional_start);
        self.cuts.clear();
        self.cuts.push((required_len as u16, self.required_additional));
        self.cuts.extend(
            self.optional_ends
                .iter()
                .filter(|&&(len, _)| usize::from(len) > required_len),
        );
        let mut shuffle = None;
        if let Some((start, count, rtype)) = self.last_rrset {
            let size = match rtype {
                1 => 16,
                28 => 28,
                _ => 0,
            };
            // Only records whose owners are pointers have one size and
            // nothing pointing into them: those may be reordered.
            let movable = size > 0
                && count > 1
                && (0..count).all(|k| {
                    let at = start + k * size;
                    at + size <= self.body.len() && self.body[at] & 0xC0 == 0xC0
                });
            if movable {
                shuffle = Some((start, count, size));
            }
        }
        Some(Rendered {
            body: &self.body,
            fixups: &self.fixups,
            counts: self.counts,
            cuts: &self.cuts,
            shuffle,
            base_qlen: self.base_qlen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WWW: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn owner_is_the_question_pointer() {
        let mut b = Builder::new(WWW, Mode::Exact);
        let rdatas: Vec<Box<[u8]>> = vec![Box::new([192, 0, 2, 1]), Box::new([192, 0, 2, 2])];
        b.rrset(
            Section::Answer,
            Owner::Qname,
            1,
            300,
            rdatas.iter().map(|r| &r[..]),
            false,
        );
        let r = b.finish().unwrap();
        assert_eq!(r.counts, [2, 0, 0]);
        assert_eq!(&r.body[..12], &[0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4]);
        assert_eq!(r.shuffle, Some((0, 2, 16)));
        assert!(r.fixups.is_empty());
    }

    #[test]
    fn rdata_names_compress_against_question_suffixes() {
        // CNAME www.example.com. -> web.example.com.: "web" + pointer to
        // "example.com." in the question at 12 + 4.
        let mut b = Builder::new(WWW, Mode::Suffix);
        let target: Box<[u8]> = b"\x03web\x07example\x03com\x00".to_vec().into();
        b.rrset(
            Section::Answer,
            Owner::Name(WWW),
            5,
            60,
            [&target[..]].into_iter(),
            false,
        );
        let r = b.finish().unwrap();
        assert_eq!(&r.body[..2], &[0xC0, 12]);
        assert_eq!(&r.body[12..], b"\x03web\xC0\x10");
        assert_eq!(r.fixups, &[0, 16]);
    }
}
