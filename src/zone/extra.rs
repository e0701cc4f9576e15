//! Record types whose text form `domain`'s zone-file scanner does not
//! know, so that zones written for NSD, Knot or BIND load here too: SPF,
//! LOC, URI, CERT, KX, SMIMEA, EUI48 and the rest of [`lookup`]'s list.
//!
//! The scanner stops at the first such record and cannot go on, so a file
//! that holds one is rewritten before it is scanned:
//!
//! - a type whose data reads like a type the scanner knows (SPF like TXT,
//!   KX like MX, SMIMEA like TLSA, ...) is scanned as that type, and the
//!   loader puts the real type back ([`Fix`]);
//! - the others are converted here to wire form and handed on in RFC 3597
//!   generic form, `TYPE29 \# 16 00...`.
//!
//! Three things BIND, NSD and Knot all read and the scanner does not are
//! fixed in the same pass: TTLs written with units (`$TTL 1h`, `www 1D IN
//! A ...`, SOA timers `2h 30m 1w`) become seconds; `@` in a name of a
//! record's data (`www CNAME @`) becomes the origin, which the scanner
//! took for a label `\@`; and a DNSSEC algorithm mnemonic in DNSKEY,
//! CDNSKEY or RRSIG (`RSASHA256`) becomes its number.
//!
//! BIND's `$GENERATE`, which the scanner does not read either, is expanded
//! in the same pass into the records it makes (`zone/generate.rs`,
//! [`Generated`]).
//!
//! The rewrite keeps every line break but those of a `$GENERATE`, whose
//! records it maps back to the directive's line, so lines reported by the
//! scanner and by the loader still point into the file as written. [`line_needs`]
//! and [`look`] let the loader's first pass over a file tell
//! cheaply whether a file needs this at all; most do not, and pay nothing
//! more.

use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use domain::base::iana::{Rtype, SecurityAlgorithm};

use super::generate;

/// Reads a type's data words into wire form; relative names in them are
/// under the origin given (as text, absolute).
pub type Convert = fn(&[Token<'_>], &[u8]) -> Result<Vec<u8>, String>;

/// Writes a type's wire data back as text (`None` when it is malformed).
pub type Show = fn(&[u8]) -> Option<String>;

/// How a type's text becomes wire data.
#[derive(Debug)]
pub enum Form {
    /// Read as this type, which the scanner knows and whose wire form is
    /// the same; a TXT-like type may bound its number of strings.
    Like(&'static str, Option<(usize, usize)>),
    /// Converted here, and printed back for `lbdns explain`.
    Own(Convert, Show),
}

/// A record type handled here.
#[derive(Debug)]
pub struct Kind {
    pub rtype: u16,
    pub name: &'static str,
    pub form: Form,
}

impl Kind {
    /// Checks data the scanner read for a [`Form::Like`] type against what
    /// this type allows beyond it (how many strings).
    pub fn check(&self, rdata: &[u8]) -> Result<(), String> {
        let Form::Like(_, Some((least, most))) = self.form else {
            return Ok(());
        };
        let mut count = 0;
        let mut at = 0;
        while at < rdata.len() {
            at += 1 + usize::from(rdata[at]);
            count += 1;
        }
        if at != rdata.len() {
            return Err(format!("{}: malformed character-strings", self.name));
        }
        if count < least || count > most {
            let want = if least == most {
                format!("{least}")
            } else {
                format!("{least} to {most}")
            };
            return Err(format!("{} takes {want} character-string(s), found {count}", self.name));
        }
        Ok(())
    }
}

macro_rules! kinds {
    ($($id:ident = $rtype:literal, $name:literal, $form:expr;)*) => {
        $(const $id: Kind = Kind { rtype: $rtype, name: $name, form: $form };)*
        /// Every type handled here.
        pub static KINDS: &[Kind] = &[$($id),*];

        /// The type handled here of this mnemonic (upper case).
        fn by_mnemonic(upper: &str) -> Option<&'static Kind> {
            match upper {
                $($name => Some(&$id),)*
                _ => None,
            }
        }
    };
}

kinds! {
    WKS = 11, "WKS", Form::Own(wks, show_wks);
    AFSDB = 18, "AFSDB", Form::Like("MX", None);
    X25 = 19, "X25", Form::Like("TXT", Some((1, 1)));
    ISDN = 20, "ISDN", Form::Like("TXT", Some((1, 2)));
    RT = 21, "RT", Form::Like("MX", None);
    NSAP = 22, "NSAP", Form::Own(nsap, show_nsap);
    NSAP_PTR = 23, "NSAP-PTR", Form::Like("PTR", None);
    SIG = 24, "SIG", Form::Like("RRSIG", None);
    KEY = 25, "KEY", Form::Like("DNSKEY", None);
    GPOS = 27, "GPOS", Form::Like("TXT", Some((3, 3)));
    LOC = 29, "LOC", Form::Own(loc, show_loc);
    KX = 36, "KX", Form::Like("MX", None);
    CERT = 37, "CERT", Form::Own(cert, show_cert);
    APL = 42, "APL", Form::Own(apl, show_apl);
    DHCID = 49, "DHCID", Form::Own(dhcid, show_dhcid);
    SMIMEA = 53, "SMIMEA", Form::Like("TLSA", None);
    HIP = 55, "HIP", Form::Own(hip, show_hip);
    NINFO = 56, "NINFO", Form::Like("TXT", None);
    TALINK = 58, "TALINK", Form::Like("RP", None);
    CSYNC = 62, "CSYNC", Form::Own(csync, show_csync);
    SPF = 99, "SPF", Form::Like("TXT", None);
    NID = 104, "NID", Form::Own(nid, show_nid);
    L32 = 105, "L32", Form::Own(l32, show_l32);
    L64 = 106, "L64", Form::Own(l64, show_l64);
    LP = 107, "LP", Form::Like("MX", None);
    EUI48 = 108, "EUI48", Form::Own(eui48, show_eui48);
    EUI64 = 109, "EUI64", Form::Own(eui64, show_eui64);
    URI = 256, "URI", Form::Own(uri, show_uri);
    AVC = 258, "AVC", Form::Like("TXT", None);
    DOA = 259, "DOA", Form::Own(doa, show_doa);
    AMTRELAY = 260, "AMTRELAY", Form::Own(amtrelay, show_amtrelay);
    RESINFO = 261, "RESINFO", Form::Like("TXT", None);
    WALLET = 262, "WALLET", Form::Like("TXT", None);
    TA = 32768, "TA", Form::Like("DS", None);
    DLV = 32769, "DLV", Form::Like("DS", None);
}

/// The type handled here that a type word names (a mnemonic or
/// `TYPEnnn`, in any case), if any. Called for every record line of every
/// zone file, so it rejects the common types after a length check or two.
pub fn lookup(word: &[u8]) -> Option<&'static Kind> {
    if !(2..=9).contains(&word.len()) {
        return None;
    }
    let mut buf = [0u8; 9];
    let upper = &mut buf[..word.len()];
    upper.copy_from_slice(word);
    upper.make_ascii_uppercase();
    if let [b'T', b'Y', b'P', b'E', digits @ ..] = &*upper {
        let n: u16 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        return KINDS.iter().find(|k| k.rtype == n);
    }
    by_mnemonic(std::str::from_utf8(upper).ok()?)
}

/// A type's number from its mnemonic or `TYPEnnn`, counting the ones
/// handled here that `domain` has no mnemonic for (NSAP-PTR).
pub fn rtype_of(name: &str) -> Option<u16> {
    Rtype::from_str(name)
        .map(Rtype::to_int)
        .ok()
        .or_else(|| lookup(name.as_bytes()).map(|k| k.rtype))
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// A byte the scanner refuses in a word ("bad symbol") unless escaped,
/// where BIND, NSD and Knot take it as itself: one outside printable
/// ASCII, such as UTF-8 text in a TXT record or a tab inside quotes. A
/// line feed is left alone: it ends the entry or the file's line.
pub const fn is_raw(b: u8) -> bool {
    b >= 0x7f || (b < 0x20 && b != b'\n')
}

fn has_raw(word: &[u8]) -> bool {
    word.iter().any(|&b| is_raw(b))
}

/// Writes `word` with each raw byte ([`is_raw`]), escaped or not, as
/// `\DDD`, which the scanner reads as that byte.
fn escape_raw(word: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = word.get(i) {
        let (byte, len) = match (b, word.get(i + 1)) {
            (b'\\', Some(&next)) if is_raw(next) => (Some(next), 2),
            (b'\\', Some(_)) => (None, 2),
            (b, _) if is_raw(b) => (Some(b), 1),
            _ => (None, 1),
        };
        match byte {
            Some(byte) => {
                let _ = write!(out, "\\{byte:03}");
            }
            None => out.extend_from_slice(&word[i..i + len]),
        }
        i += len;
    }
}

/// A TTL as the scanner reads one before the type: decimal seconds.
pub(super) fn is_ttl(word: &[u8]) -> bool {
    !word.is_empty() && word.len() <= 10 && word.iter().all(u8::is_ascii_digit)
}

pub(super) fn is_class(word: &[u8]) -> bool {
    if word.len() == 2 {
        return [b"IN", b"CH", b"CS", b"HS"]
            .iter()
            .any(|c| word.eq_ignore_ascii_case(*c));
    }
    word.len() > 5 && word[..5].eq_ignore_ascii_case(b"CLASS") && word[5..].iter().all(u8::is_ascii_digit)
}

/// A TTL written with units, as BIND, NSD and Knot read them (`1h30m`,
/// `2D`, `1w`): its seconds. `None` for plain digits (the scanner reads
/// those) and for anything else; an error when it overflows.
pub(super) fn units_ttl(word: &[u8]) -> Option<Result<u32, String>> {
    if !word.first()?.is_ascii_digit() || word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for &b in word {
        if b.is_ascii_digit() {
            let n = number.unwrap_or(0) * 10 + u64::from(b - b'0');
            if n > u64::from(u32::MAX) {
                return Some(Err("TTL over 4294967295 seconds".into()));
            }
            number = Some(n);
            continue;
        }
        let unit = match b.to_ascii_lowercase() {
            b'w' => 604_800,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        total += number.take()? * unit;
    }
    if number.is_some() {
        return None; // digits after the last unit: not a TTL
    }
    Some(u32::try_from(total).map_err(|_| "TTL over 4294967295 seconds".to_string()))
}

/// What an entry needs rewritten, a bit per word for its first 32 words:
/// TTLs with units, and `@` standing for the origin in a name field; and
/// its type, when handled here, with the word it is.
#[derive(Clone, Copy, Default)]
struct Plan {
    ttls: u32,
    origins: u32,
    /// DNSSEC algorithm mnemonics, which the scanner reads only as numbers.
    algorithms: u32,
    kind: Option<(usize, &'static Kind)>,
    /// A `$GENERATE` directive, expanded here.
    generate: bool,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.ttls == 0 && self.origins == 0 && self.algorithms == 0 && self.kind.is_none() && !self.generate
    }
}

/// Which word of a type's data is a DNSSEC algorithm, which RFC 4034
/// (§2.2, §3.2) lets a zone file write as a mnemonic (`RSASHA256`).
fn algorithm_word(rtype: &[u8]) -> Option<usize> {
    if rtype.eq_ignore_ascii_case(b"DNSKEY") || rtype.eq_ignore_ascii_case(b"CDNSKEY") {
        Some(2)
    } else if rtype.eq_ignore_ascii_case(b"RRSIG") {
        Some(1)
    } else {
        None
    }
}

/// A DNSSEC algorithm mnemonic's number; `None` for a number (the
/// scanner's own) or an unknown word.
fn algorithm_number(word: &[u8]) -> Option<u8> {
    if word.first().is_none_or(u8::is_ascii_digit) {
        return None;
    }
    SecurityAlgorithm::from_mnemonic(&word.to_ascii_uppercase()).map(SecurityAlgorithm::to_int)
}

/// Which words of a type's data are domain names (from 0), where `@`
/// means the origin (RFC 1035 §5.1). The scanner reads `@` only as an
/// owner; in data it took it for a label.
fn name_words(rtype: &[u8]) -> &'static [usize] {
    if rtype.len() > 6 {
        return &[];
    }
    let mut buf = [0u8; 6];
    let upper = &mut buf[..rtype.len()];
    upper.copy_from_slice(rtype);
    upper.make_ascii_uppercase();
    match &*upper {
        b"NS" | b"CNAME" | b"DNAME" | b"PTR" | b"MB" | b"MD" | b"MF" | b"MG" | b"MR" | b"NSEC" => &[0],
        b"MX" | b"SVCB" | b"HTTPS" => &[1],
        b"SRV" => &[3],
        b"SOA" | b"RP" | b"MINFO" => &[0, 1],
        b"NAPTR" => &[5],
        b"RRSIG" => &[7],
        _ => &[],
    }
}

/// Plans an entry from its words (`owner`: whether the first word starts
/// a line: an owner or a directive). Takes no more words than it must: the
/// loader plans every line of every zone file.
/// `ats` says whether the entry may hold an `@` in its data at all; it is
/// asked only of types with names in their data.
fn plan<'a>(mut words: impl Iterator<Item = Token<'a>>, owner: bool, ats: impl FnOnce() -> bool) -> Plan {
    let mut plan = Plan::default();
    let plain = |w: Option<Token<'a>>| w.filter(|w| !w.quoted).map(|w| w.text);
    let mut at = 0;
    if owner {
        let Some(first) = words.next() else {
            return plan;
        };
        at = 1;
        if !first.quoted && first.text.starts_with(b"$") {
            if first.text.eq_ignore_ascii_case(b"$TTL") && plain(words.next()).and_then(units_ttl).is_some() {
                plan.ttls |= 1 << 1;
            }
            plan.generate = first.text.eq_ignore_ascii_case(b"$GENERATE");
            return plan;
        }
    }
    // [TTL] [class] type, in either order, as the scanner reads them.
    let mut type_word = None;
    for _ in 0..3 {
        let Some(word) = plain(words.next()) else {
            return plan;
        };
        if units_ttl(word).is_some() {
            plan.ttls |= 1 << at;
        } else if !is_ttl(word) && !is_class(word) {
            type_word = Some(word);
            break;
        }
        at += 1;
    }
    let Some(word) = type_word else {
        return plan;
    };
    let kind = lookup(word);
    plan.kind = kind.map(|kind| (at, kind));
    let (names, algorithm) = match kind.map(|k| &k.form) {
        Some(Form::Like(like, _)) => (name_words(like.as_bytes()), algorithm_word(like.as_bytes())),
        Some(Form::Own(..)) => (&[][..], None),
        None => (name_words(word), algorithm_word(word)),
    };
    // An SOA's timers (its data words 3 to 6) may have units.
    let soa = kind.is_none() && word.eq_ignore_ascii_case(b"SOA");
    let ats = !names.is_empty() && ats();
    let last = match (soa, names.last()) {
        (true, _) => 7,
        (false, Some(&n)) if ats => n + 1,
        _ => 0,
    }
    .max(algorithm.map_or(0, |a| a + 1));
    for (i, data) in words.enumerate().take(last) {
        let bit = 1 << (at + 1 + i);
        if ats && names.contains(&i) && !data.quoted && data.text == b"@" {
            plan.origins |= bit;
        }
        if soa && i >= 3 && plain(Some(data)).and_then(units_ttl).is_some() {
            plan.ttls |= bit;
        }
        if algorithm == Some(i) && plain(Some(data)).and_then(algorithm_number).is_some() {
            plan.algorithms |= bit;
        }
    }
    plan
}

/// Whether a line that is a whole entry (no comment, parenthesis, quote
/// or escape) needs rewriting.
pub fn line_needs(line: &[u8]) -> bool {
    let owner = line.first().is_some_and(|&b| !is_blank(b));
    let mut at = 0;
    let words = std::iter::from_fn(|| {
        while line.get(at).is_some_and(|&b| is_blank(b)) {
            at += 1;
        }
        let start = at;
        while line.get(at).is_some_and(|&b| !is_blank(b)) {
            at += 1;
        }
        (at > start).then(|| Token {
            text: &line[start..at],
            quoted: false,
        })
    });
    let ats = || line.len() > 1 && memchr::memchr(b'@', &line[1..]).is_some();
    !plan(words, owner, ats).is_empty()
}

/// The loader's first look at an entry that is not a simple line (it has
/// a comment, parenthesis, quote or escape), lexed once.
#[derive(Debug, PartialEq)]
pub struct Look {
    /// The line it starts on (from 0, in `src`), and whether it is a
    /// record or `$INCLUDE` (not `$ORIGIN` or `$TTL`); `None` for a line of
    /// only blanks and comments.
    pub start: Option<(u32, bool)>,
    /// Whether the file must be rewritten for it.
    pub needs: bool,
    /// Where the entry ends: its final line feed, or the end of `src`.
    pub end: usize,
    /// The line feeds up to and with that one.
    pub lines: u32,
    /// A quote or parenthesis left open at the end of `src`: its line
    /// (from 0) and which.
    pub unclosed: Option<(u32, &'static str)>,
    /// Whether it is a record whose owner has an empty label.
    pub bad_owner: bool,
}

/// Looks at the entry that starts `src` (at a line start, outside
/// parentheses); for the lines [`line_needs`] does not take.
pub fn look(src: &[u8]) -> Look {
    let mut lexer = Lexer::new(src);
    let mut words = [Token {
        text: &[],
        quoted: false,
    }; 12];
    let (mut count, mut owner, mut start) = (0, false, None);
    let mut raw = false;
    let end = loop {
        match lexer.next() {
            Lex::Word {
                word,
                line,
                starts_line,
            } => {
                raw = raw || has_raw(&src[word.start..word.end]);
                if count == 0 {
                    owner = starts_line;
                    start.get_or_insert(line);
                }
                if let Some(slot) = words.get_mut(count) {
                    *slot = Token {
                        text: &src[word.start..word.end],
                        quoted: word.quoted,
                    };
                }
                count += 1;
            }
            Lex::Paren { line } => {
                start.get_or_insert(line);
            }
            Lex::End { at } => break at,
            Lex::Eof => break src.len(),
        }
    };
    let words = &words[..count.min(words.len())];
    let directive = owner
        && words.first().is_some_and(|w| {
            !w.quoted && (w.text.eq_ignore_ascii_case(b"$ORIGIN") || w.text.eq_ignore_ascii_case(b"$TTL"))
        });
    let unclosed = match (lexer.open_quote, lexer.depth) {
        (Some(line), _) => Some((line - 1, "quote")),
        (None, 0) => None,
        (None, _) => Some((lexer.opened_at - 1, "parenthesis")),
    };
    let bad_owner = owner && !directive && words.first().is_some_and(|w| !w.quoted && has_empty_label(w.text));
    Look {
        bad_owner,
        start: start.map(|line| (line - 1, !directive)),
        needs: raw || !plan(words.iter().copied(), owner, || true).is_empty(),
        end,
        lines: lexer.line - 1,
        unclosed,
    }
}

/// Where the first record (not a directive) of `src` starts its line,
/// and whether it names its owner: a record with a blank owner first in
/// an included file is owned by the includer's current name.
pub fn first_record(src: &[u8]) -> Option<(usize, bool)> {
    let mut lexer = Lexer::new(src);
    // Whether the next word starts an entry.
    let mut first = true;
    loop {
        match lexer.next() {
            Lex::Word { word, starts_line, .. } if first => {
                first = false;
                let start = word.start - usize::from(word.quoted);
                if starts_line && src[start] == b'$' {
                    continue; // a directive: on to the next entry
                }
                let line_start = memchr::memrchr(b'\n', &src[..start]).map_or(0, |n| n + 1);
                return Some((line_start, starts_line));
            }
            Lex::Word { .. } | Lex::Paren { .. } => {}
            Lex::End { .. } => first = true,
            Lex::Eof => return None,
        }
    }
}

/// The argument of the directive `name` at the start of `src`, if `src`
/// starts with it.
fn directive_arg<'a>(src: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut lexer = Lexer::new(src);
    let mut words = std::iter::from_fn(|| match lexer.next() {
        Lex::Word { word, .. } if !word.quoted => Some(&src[word.start..word.end]),
        _ => None,
    });
    if !words.next()?.eq_ignore_ascii_case(name) {
        return None;
    }
    words.next()
}

/// The seconds a `$TTL` directive at the start of `src` sets (plain or
/// with units), for the loader to carry into `$INCLUDE`d files.
pub fn directive_ttl(src: &[u8]) -> Option<u32> {
    let value = directive_arg(src, b"$TTL")?;
    if is_ttl(value) {
        return std::str::from_utf8(value).ok()?.parse().ok();
    }
    units_ttl(value)?.ok()
}

/// The name of an `$ORIGIN` directive at the start of `src`, when it has
/// an empty label (`a..b`, `.a`): the scanner takes such a name as the
/// labels before the empty one, without a word.
pub fn bad_origin(src: &[u8]) -> Option<String> {
    let name = directive_arg(src, b"$ORIGIN")?;
    has_empty_label(name).then(|| String::from_utf8_lossy(name).into_owned())
}

/// Whether a name as written has an empty label: two dots in a row, or a
/// leading dot (the root, `.`, has none). Escaped dots do not count.
pub fn has_empty_label(name: &[u8]) -> bool {
    if name == b"." {
        return false;
    }
    // Whether the last byte was a label's end (or the name's start).
    let mut at_end = true;
    let mut i = 0;
    while let Some(&b) = name.get(i) {
        match b {
            b'\\' => {
                let digits = name.get(i + 1..i + 4).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
                i += if digits { 4 } else { 2 };
                at_end = false;
                continue;
            }
            b'.' if at_end => return true,
            b'.' => at_end = true,
            _ => at_end = false,
        }
        i += 1;
    }
    false
}

/// The records of `src` that give no TTL of their own (a `$GENERATE`
/// counts as one): the first one's line, and how many there are. Where a
/// file sets no `$TTL`, servers disagree on the TTL these get.
pub fn without_ttl(src: &[u8]) -> Option<(u32, usize)> {
    let (mut first, mut count) = (None, 0);
    entries(src, |entry| {
        let word = |i: usize| entry.words.get(i).filter(|w| !w.quoted).map(|w| &src[w.start..w.end]);
        let mut skip = usize::from(entry.owner);
        if entry.owner && word(0).is_some_and(|w| w.starts_with(b"$")) {
            if !word(0).is_some_and(|w| w.eq_ignore_ascii_case(b"$GENERATE")) {
                return; // $ORIGIN, $TTL, $INCLUDE
            }
            skip = 3; // the directive, its range and owner
        }
        // [TTL] [class] type, in either order.
        let has_ttl = (skip..skip + 2)
            .map_while(word)
            .take_while(|w| is_ttl(w) || units_ttl(w).is_some() || is_class(w))
            .any(|w| !is_class(w));
        if !has_ttl {
            count += 1;
            first.get_or_insert(entry.line);
        }
    });
    first.map(|line| (line, count))
}

/// One word of a record's data: its text, without the quotes if it was
/// quoted. Escapes are left as written.
#[derive(Clone, Copy, Debug)]
pub struct Token<'a> {
    pub text: &'a [u8],
    pub quoted: bool,
}

/// A word as lexed: where its text lies, and the parenthesis depth at it.
#[derive(Clone, Copy, Debug)]
struct Lexed {
    start: usize,
    end: usize,
    quoted: bool,
    depth: u32,
}

/// What the lexer found next.
enum Lex {
    Word {
        word: Lexed,
        line: u32,
        starts_line: bool,
    },
    Paren {
        line: u32,
    },
    /// A line feed outside parentheses, at this offset: the entry ends.
    End {
        at: usize,
    },
    Eof,
}

/// Zone-file text lexed as RFC 1035 §5.1 says: parentheses join lines,
/// `;` starts a comment, quotes and `\` escape.
struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: u32,
    depth: u32,
    /// The line of the outermost parenthesis open now.
    opened_at: u32,
    /// The line of a quote the text ended inside, if it did.
    open_quote: Option<u32>,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            i: 0,
            line: 1,
            depth: 0,
            opened_at: 0,
            open_quote: None,
        }
    }

    fn next(&mut self) -> Lex {
        let src = self.src;
        let delimiter = |b: u8| is_blank(b) || matches!(b, b'\n' | b';' | b'(' | b')' | b'"');
        loop {
            let Some(&b) = src.get(self.i) else {
                return Lex::Eof;
            };
            match b {
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    if self.depth == 0 {
                        return Lex::End { at: self.i - 1 };
                    }
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                b';' => self.i = memchr::memchr(b'\n', &src[self.i..]).map_or(src.len(), |n| self.i + n),
                b'(' | b')' => {
                    if b == b'(' && self.depth == 0 {
                        self.opened_at = self.line;
                    }
                    self.depth = if b == b'(' {
                        self.depth + 1
                    } else {
                        self.depth.saturating_sub(1)
                    };
                    self.i += 1;
                    return Lex::Paren { line: self.line };
                }
                _ => {
                    let starts_line = self.i == 0 || src[self.i - 1] == b'\n';
                    let line = self.line;
                    let quoted = b == b'"';
                    let start = self.i + usize::from(quoted);
                    let mut i = start;
                    while let Some(&c) = src.get(i) {
                        if if quoted { c == b'"' } else { delimiter(c) } {
                            break;
                        }
                        match c {
                            b'\\' => i += 1,
                            b'\n' => self.line += 1,
                            _ => {}
                        }
                        i += 1;
                    }
                    if quoted && i >= src.len() {
                        self.open_quote = Some(line);
                    }
                    let end = i.min(src.len());
                    self.i = end + usize::from(quoted);
                    let word = Lexed {
                        start,
                        end,
                        quoted,
                        depth: self.depth,
                    };
                    return Lex::Word {
                        word,
                        line,
                        starts_line,
                    };
                }
            }
        }
    }
}

/// One entry (logical line) of a file.
struct Entry<'t> {
    line: u32,
    /// Whether its first word starts a line (an owner or a directive).
    owner: bool,
    words: &'t [Lexed],
    /// Where it ends: its final line feed, or the end of the file.
    end: usize,
}

/// Calls `each` with every entry of `src` that has a word.
fn entries(src: &[u8], mut each: impl FnMut(&Entry<'_>)) {
    let mut lexer = Lexer::new(src);
    let mut words: Vec<Lexed> = Vec::new();
    let mut first: Option<(u32, bool)> = None;
    loop {
        let end = match lexer.next() {
            Lex::Word {
                word,
                line,
                starts_line,
            } => {
                first.get_or_insert((line, starts_line));
                words.push(word);
                continue;
            }
            Lex::Paren { line } => {
                first.get_or_insert((line, false));
                continue;
            }
            Lex::End { at } => at,
            Lex::Eof => src.len(),
        };
        if let Some((line, owner)) = first.take().filter(|_| !words.is_empty()) {
            each(&Entry {
                line,
                owner,
                words: &words,
                end,
            });
        }
        words.clear();
        if end == src.len() {
            return;
        }
    }
}

/// A record whose type the loader must put back after the scan: it was
/// scanned as the type its [`Form::Like`] names.
#[derive(Debug)]
pub struct Fix {
    pub line: u32,
    pub kind: &'static Kind,
}

/// A file rewritten for the scanner.
#[derive(Debug, Default)]
pub struct Rewrite {
    pub text: Vec<u8>,
    /// In file order, one line each.
    pub fixes: Vec<Fix>,
    /// Data this module could not read: the line, and why.
    pub errors: Vec<(u32, String)>,
    /// The `$GENERATE` entries expanded, in file order: the only places
    /// where the rewritten text's lines differ from the file's.
    pub generated: Vec<Generated>,
}

/// A `$GENERATE` entry (BIND's) that the rewrite expanded into records.
#[derive(Debug, PartialEq)]
pub struct Generated {
    /// The line it starts on in the file as written.
    pub line: u32,
    /// The lines it spans there.
    pub lines: u32,
    /// The records it made, one line each in the rewritten text, which
    /// holds one blank line instead when it made none.
    pub records: u32,
}

impl Rewrite {
    /// The line in the file as written of `line` in the rewritten text.
    pub fn source_line(&self, line: usize) -> usize {
        // How many more lines the rewritten text has than the file, so far.
        let mut extra: isize = 0;
        for g in &self.generated {
            let start = (g.line as isize + extra) as usize;
            if line < start {
                break;
            }
            let out_lines = g.records.max(1) as usize;
            if line < start + out_lines {
                return g.line as usize;
            }
            extra += out_lines as isize - g.lines as isize;
        }
        (line as isize - extra).max(0) as usize
    }

    /// The text of the `index`th record (from 0) made by the `$GENERATE`
    /// on `line` of the file as written.
    pub fn generated_record(&self, line: u32, index: usize) -> Option<&[u8]> {
        let mut extra: isize = 0;
        for g in &self.generated {
            if g.line == line {
                if index >= g.records as usize {
                    return None;
                }
                // Lines from 1; the record's line has this many before it.
                let before = (g.line as isize + extra) as usize - 1 + index;
                let start = match before {
                    0 => 0,
                    n => memchr::memchr_iter(b'\n', &self.text).nth(n - 1)? + 1,
                };
                let end = memchr::memchr(b'\n', &self.text[start..]).map_or(self.text.len(), |e| start + e);
                return Some(&self.text[start..end]);
            }
            extra += g.records.max(1) as isize - g.lines as isize;
        }
        None
    }
}

/// Rewrites TTLs with units, `@` in data, the records of types handled
/// here, and `$GENERATE` (making at most what `budget` allows in all);
/// `None` when `src` holds none of them. `origin` is the file's first
/// origin, as text.
pub fn rewrite(src: &[u8], origin: &str, budget: generate::Budget) -> Option<Rewrite> {
    let mut out = Rewrite {
        text: Vec::with_capacity(src.len() + src.len() / 16),
        ..Rewrite::default()
    };
    let mut origin = origin.as_bytes().to_vec();
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let mut copied = 0;
    let mut changed = false;
    let mut budget = budget;
    entries(src, |entry| {
        let text = |w: &Lexed| &src[w.start..w.end];
        let words = entry.words;
        if entry.owner
            && text(&words[0]).eq_ignore_ascii_case(b"$ORIGIN")
            && let Some(arg) = words.get(1).map(text)
        {
            origin = follow_origin(arg, &origin);
        }
        if entry.owner && !words[0].quoted && text(&words[0]).eq_ignore_ascii_case(b"$GENERATE") {
            changed = true;
            out.text.extend_from_slice(&src[copied..words[0].start]);
            copied = entry.end;
            tokens.clear();
            tokens.extend(words.iter().map(|w| Token {
                text: text(w),
                quoted: w.quoted,
            }));
            let records = match generate::expand(&tokens[1..], &mut budget) {
                Ok(block) => {
                    let records = block.records;
                    // Its records may need what other records need (a TTL
                    // with units, `@` in data); they hold no `$GENERATE`.
                    let none = generate::Budget { records: 0, bytes: 0 };
                    match rewrite(&block.text, &String::from_utf8_lossy(&origin), none) {
                        Some(inner) => {
                            out.text.extend_from_slice(&inner.text);
                            out.fixes
                                .extend(inner.fixes.into_iter().map(|f| Fix { line: entry.line, ..f }));
                            out.errors
                                .extend(inner.errors.into_iter().map(|(_, why)| (entry.line, why)));
                        }
                        None => out.text.extend_from_slice(&block.text),
                    }
                    records
                }
                Err(why) => {
                    out.errors.push((entry.line, format!("$GENERATE: {why}")));
                    0
                }
            };
            let spans = memchr::memchr_iter(b'\n', &src[words[0].start..entry.end]).count() as u32;
            out.generated.push(Generated {
                line: entry.line,
                lines: spans + 1,
                records,
            });
            return;
        }
        tokens.clear();
        tokens.extend(words.iter().map(|w| Token {
            text: text(w),
            quoted: w.quoted,
        }));
        let plan = plan(tokens.iter().copied(), entry.owner, || true);
        // $ORIGIN, $TTL and $INCLUDE keep their words as written.
        let directive = entry.owner && !words[0].quoted && text(&words[0]).starts_with(b"$");
        let raw = !directive && tokens.iter().any(|t| has_raw(t.text));
        if plan.is_empty() && !raw {
            return;
        }
        changed = true;
        for (i, word) in words.iter().enumerate() {
            let bit = if i < 32 { 1u32 << i } else { 0 };
            if let Some((_, kind)) = plan.kind.filter(|&(at, _)| at == i) {
                out.text.extend_from_slice(&src[copied..word.start]);
                copied = word.end;
                if rewrite_type(&mut out, kind, entry, &tokens[i + 1..], word, (src, &origin)) {
                    copied = entry.end;
                    break;
                }
            } else if plan.ttls & bit != 0 {
                out.text.extend_from_slice(&src[copied..word.start]);
                copied = word.end;
                match units_ttl(text(word)) {
                    Some(Ok(seconds)) => {
                        let _ = write!(out.text, "{seconds}");
                    }
                    Some(Err(why)) => {
                        out.errors.push((entry.line, why));
                        out.text.push(b'0');
                    }
                    None => out.text.extend_from_slice(text(word)),
                }
            } else if plan.origins & bit != 0 {
                out.text.extend_from_slice(&src[copied..word.start]);
                copied = word.end;
                out.text.extend_from_slice(&origin);
            } else if let Some(number) = algorithm_number(text(word)).filter(|_| plan.algorithms & bit != 0) {
                out.text.extend_from_slice(&src[copied..word.start]);
                copied = word.end;
                let _ = write!(out.text, "{number}");
            } else if raw && has_raw(text(word)) {
                out.text.extend_from_slice(&src[copied..word.start]);
                copied = word.end;
                escape_raw(text(word), &mut out.text);
            }
        }
    });
    if !changed {
        return None;
    }
    out.text.extend_from_slice(&src[copied..]);
    Some(out)
}

/// The origin after `$ORIGIN arg`: `arg` if absolute, else `arg` under
/// the origin before.
fn follow_origin(arg: &[u8], before: &[u8]) -> Vec<u8> {
    let escapes = arg.iter().rev().skip(1).take_while(|&&b| b == b'\\').count();
    if arg.ends_with(b".") && escapes % 2 == 0 {
        return arg.to_vec();
    }
    let mut origin = arg.to_vec();
    if before != b"." {
        origin.push(b'.');
    }
    origin.extend_from_slice(before);
    origin
}

/// Writes the type word (and, for a type converted here, the data) of a
/// record whose type is handled here. True when it wrote the rest of the
/// entry.
fn rewrite_type(
    out: &mut Rewrite,
    kind: &'static Kind,
    entry: &Entry<'_>,
    data: &[Token<'_>],
    word: &Lexed,
    (src, origin): (&[u8], &[u8]),
) -> bool {
    let generic = data.first().is_some_and(|d| !d.quoted && d.text == b"\\#");
    match kind.form {
        _ if generic => {
            let _ = write!(out.text, "TYPE{}", kind.rtype);
            false
        }
        Form::Like(like, _) => {
            out.text.extend_from_slice(like.as_bytes());
            out.fixes.push(Fix { line: entry.line, kind });
            false
        }
        Form::Own(convert, _) => {
            let wire = match convert(data, origin) {
                Ok(wire) if wire.len() <= usize::from(u16::MAX) => wire,
                Ok(_) => {
                    out.errors
                        .push((entry.line, format!("{}: record data too long", kind.name)));
                    Vec::new()
                }
                Err(why) => {
                    out.errors.push((entry.line, format!("{}: {why}", kind.name)));
                    Vec::new()
                }
            };
            let _ = write!(out.text, "TYPE{} \\# {}", kind.rtype, wire.len());
            if !wire.is_empty() {
                out.text.push(b' ');
                for b in &wire {
                    let _ = write!(out.text, "{b:02x}");
                }
            }
            // Keep the entry's line breaks (inside parentheses of our
            // own), and close what it opened before its type.
            let breaks = memchr::memchr_iter(b'\n', &src[word.start..entry.end]).count();
            if breaks > 0 || word.depth > 0 {
                out.text.extend_from_slice(b" (");
                out.text.extend(std::iter::repeat_n(b'\n', breaks));
                out.text.push(b')');
                out.text.extend(std::iter::repeat_n(b')', word.depth as usize));
            }
            true
        }
    }
}

// ---- reading the data ----

fn utf8<'a>(t: &Token<'a>) -> Result<&'a str, String> {
    std::str::from_utf8(t.text).map_err(|_| "not ASCII text".to_string())
}

fn int<T: FromStr>(t: Option<&Token<'_>>, what: &str) -> Result<T, String> {
    let t = t.ok_or_else(|| format!("no {what}"))?;
    utf8(t)?
        .parse()
        .map_err(|_| format!("bad {what} {:?}", String::from_utf8_lossy(t.text)))
}

/// Takes exactly `n` words.
fn exactly<'t, 'a>(data: &'t [Token<'a>], n: usize) -> Result<&'t [Token<'a>], String> {
    match data.len() {
        len if len < n => Err(format!("{n} fields expected, found {len}")),
        len if len > n => Err(format!(
            "{n} fields expected; extra data {:?}",
            String::from_utf8_lossy(data[n].text)
        )),
        _ => Ok(data),
    }
}

/// The words joined and read as base64.
fn base64(words: &[Token<'_>]) -> Result<Vec<u8>, String> {
    if words.is_empty() {
        return Err("no base64 data".into());
    }
    let mut joined = String::new();
    for w in words {
        joined.push_str(utf8(w)?);
    }
    domain::utils::base64::decode::<Vec<u8>>(&joined).map_err(|e| format!("bad base64: {e}"))
}

fn hex_nibble(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Exactly two hex digits.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => Some(hex_nibble(*hi)? << 4 | hex_nibble(*lo)?),
        _ => None,
    }
}

/// RFC 1035 §5.1 escapes in a string: `\DDD` and `\X`.
fn unescape(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'\\' {
            out.push(text[i]);
            i += 1;
            continue;
        }
        match text.get(i + 1..i + 4) {
            Some(d) if d.iter().all(u8::is_ascii_digit) => {
                let v = u32::from(d[0] - b'0') * 100 + u32::from(d[1] - b'0') * 10 + u32::from(d[2] - b'0');
                out.push(u8::try_from(v).map_err(|_| format!("escape \\{v} is over 255"))?);
                i += 4;
            }
            _ => {
                let c = *text.get(i + 1).ok_or("a lone backslash at the end")?;
                if c.is_ascii_digit() {
                    return Err("an escape \\DDD needs three digits".into());
                }
                out.push(c);
                i += 2;
            }
        }
    }
    Ok(out)
}

/// A type bitmap (RFC 4034 §4.1.2) of the types named.
fn type_bitmap(words: &[Token<'_>]) -> Result<Vec<u8>, String> {
    let mut types = Vec::with_capacity(words.len());
    for w in words {
        let name = utf8(w)?;
        let rtype = rtype_of(name).ok_or_else(|| format!("unknown type {name:?}"))?;
        types.push(rtype);
    }
    types.sort_unstable();
    types.dedup();
    let mut out = Vec::new();
    for window in types.chunk_by(|a, b| a >> 8 == b >> 8) {
        let last = window[window.len() - 1];
        let len = usize::from(last & 0xff) / 8 + 1;
        out.push((last >> 8) as u8);
        out.push(len as u8);
        let at = out.len();
        out.resize(at + len, 0);
        for t in window {
            out[at + usize::from(t & 0xff) / 8] |= 0x80 >> (t % 8);
        }
    }
    Ok(out)
}

// ---- the types converted here ----

/// WKS (RFC 1035 §3.4.2): address, protocol, ports as numbers.
fn wks(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let addr: Ipv4Addr = int(data.first(), "address")?;
    let proto_word = data.get(1).ok_or("no protocol")?;
    let proto: u8 = match proto_word.text.to_ascii_lowercase().as_slice() {
        b"tcp" => 6,
        b"udp" => 17,
        _ => int(Some(proto_word), "protocol")?,
    };
    let mut out = addr.octets().to_vec();
    out.push(proto);
    let mut bitmap: Vec<u8> = Vec::new();
    for w in &data[2..] {
        let port: u16 = utf8(w)?.parse().map_err(|_| {
            format!(
                "bad port {:?} (service names are not looked up here: write the number)",
                String::from_utf8_lossy(w.text)
            )
        })?;
        let byte = usize::from(port / 8);
        if bitmap.len() <= byte {
            bitmap.resize(byte + 1, 0);
        }
        bitmap[byte] |= 0x80 >> (port % 8);
    }
    out.extend_from_slice(&bitmap);
    Ok(out)
}

/// NSAP (RFC 1706 §5): `0x` and hex digits, dots allowed between.
fn nsap(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let word = &exactly(data, 1)?[0];
    let digits: Vec<u8> = match word.text {
        [b'0', b'x' | b'X', rest @ ..] => rest.iter().copied().filter(|&b| b != b'.').collect(),
        _ => return Err("the address must start with 0x".into()),
    };
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err("an even number of hex digits expected".into());
    }
    digits
        .chunks(2)
        .map(|pair| hex_byte(pair).ok_or_else(|| "bad hex digit".to_string()))
        .collect()
}

/// LOC (RFC 1876 §3): `d [m [s]] N|S d [m [s]] E|W alt[m] [size[m] [hp[m]
/// [vp[m]]]]`.
fn loc(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let mut words = data.iter();
    let lat = coordinate(&mut words, [b'N', b'S'], 90, "latitude")?;
    let lon = coordinate(&mut words, [b'E', b'W'], 180, "longitude")?;
    let alt = centimetres(words.next().ok_or("no altitude")?, true)?;
    if !(-10_000_000..=4_284_967_295).contains(&alt) {
        return Err("altitude out of range (-100000.00 to 42849672.95 m)".into());
    }
    let mut precision = [0x12, 0x16, 0x13]; // 1 m, 10 km, 10 m
    for (slot, what) in precision
        .iter_mut()
        .zip(["size", "horizontal precision", "vertical precision"])
    {
        if let Some(w) = words.next() {
            let cm = centimetres(w, false).map_err(|e| format!("{what}: {e}"))?;
            if cm > 9_000_000_000 {
                return Err(format!("{what} over 90000000.00 m"));
            }
            *slot = precision_byte(cm as u64);
        }
    }
    if let Some(extra) = words.next() {
        return Err(format!("extra data {:?}", String::from_utf8_lossy(extra.text)));
    }
    let mut out = vec![0, precision[0], precision[1], precision[2]];
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    out.extend_from_slice(&((alt + 10_000_000) as u32).to_be_bytes());
    Ok(out)
}

/// Degrees, optional minutes and seconds, and a hemisphere: thousandths of
/// an arc second from 2^31.
fn coordinate<'t, 'a: 't>(
    words: &mut impl Iterator<Item = &'t Token<'a>>,
    [plus, minus]: [u8; 2],
    max: u32,
    what: &str,
) -> Result<u32, String> {
    let hemisphere = |w: &Token<'_>| match w.text {
        [c] if c.eq_ignore_ascii_case(&plus) => Some(true),
        [c] if c.eq_ignore_ascii_case(&minus) => Some(false),
        _ => None,
    };
    let degrees: u32 = int(words.next(), &format!("{what} degrees"))?;
    let mut parts = [0u32; 2]; // minutes, thousandths of seconds
    let mut north_east = None;
    for (i, part) in parts.iter_mut().enumerate() {
        let w = words.next().ok_or_else(|| format!("no {what} hemisphere"))?;
        if let Some(h) = hemisphere(w) {
            north_east = Some(h);
            break;
        }
        *part = if i == 0 {
            int(Some(w), &format!("{what} minutes"))?
        } else {
            thousandths(w).ok_or_else(|| format!("bad {what} seconds {:?}", String::from_utf8_lossy(w.text)))?
        };
    }
    let north_east = match north_east {
        Some(h) => h,
        None => {
            let w = words.next().ok_or_else(|| format!("no {what} hemisphere"))?;
            hemisphere(w).ok_or_else(|| format!("{what} hemisphere must be {} or {}", plus as char, minus as char))?
        }
    };
    let [minutes, seconds] = parts;
    if degrees > max || minutes >= 60 || seconds >= 60_000 || (degrees == max && (minutes | seconds) != 0) {
        return Err(format!("{what} out of range"));
    }
    let offset = (degrees * 3600 + minutes * 60) * 1000 + seconds;
    Ok(if north_east {
        (1 << 31) + offset
    } else {
        (1 << 31) - offset
    })
}

/// Seconds with up to three decimals, in thousandths.
fn thousandths(w: &Token<'_>) -> Option<u32> {
    let (whole, frac) = match w.text.iter().position(|&b| b == b'.') {
        Some(dot) => (&w.text[..dot], &w.text[dot + 1..]),
        None => (w.text, &[][..]),
    };
    if whole.is_empty() || whole.len() > 2 || frac.len() > 3 || !whole.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let mut value = whole.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    for i in 0..3 {
        value = value * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(value)
}

/// Metres with up to two decimals and an optional `m`, in centimetres.
fn centimetres(w: &Token<'_>, signed: bool) -> Result<i64, String> {
    let bad = || format!("bad distance {:?}", String::from_utf8_lossy(w.text));
    let mut text = w
        .text
        .strip_suffix(b"m")
        .or_else(|| w.text.strip_suffix(b"M"))
        .unwrap_or(w.text);
    let negative = signed && text.first() == Some(&b'-');
    if negative {
        text = &text[1..];
    }
    let (whole, frac) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    if whole.is_empty() || whole.len() > 10 || frac.len() > 2 || !whole.iter().chain(frac).all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let mut cm = whole.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
    for i in 0..2 {
        cm = cm * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Ok(if negative { -cm } else { cm })
}

/// A size or precision as LOC stores it: a digit and a power of ten (of
/// centimetres), cut down as BIND, NSD and Knot do.
fn precision_byte(cm: u64) -> u8 {
    let mut exponent = 0u32;
    while exponent < 9 && cm >= 10u64.pow(exponent + 1) {
        exponent += 1;
    }
    let mantissa = (cm / 10u64.pow(exponent)).min(9) as u8;
    mantissa << 4 | exponent as u8
}

/// CERT (RFC 4398 §2.2): type, key tag, algorithm, base64.
fn cert(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 4 {
        return Err(format!("4 or more fields expected, found {}", data.len()));
    }
    const TYPES: [(&str, u16); 10] = [
        ("PKIX", 1),
        ("SPKI", 2),
        ("PGP", 3),
        ("IPKIX", 4),
        ("ISPKI", 5),
        ("IPGP", 6),
        ("ACPKIX", 7),
        ("IACPKIX", 8),
        ("URI", 253),
        ("OID", 254),
    ];
    let cert_type = match TYPES
        .iter()
        .find(|(m, _)| data[0].text.eq_ignore_ascii_case(m.as_bytes()))
    {
        Some(&(_, n)) => n,
        None => int(data.first(), "certificate type")?,
    };
    let tag: u16 = int(data.get(1), "key tag")?;
    let algorithm = match SecurityAlgorithm::from_mnemonic(&data[2].text.to_ascii_uppercase()) {
        Some(alg) => alg.to_int(),
        None => int(data.get(2), "algorithm")?,
    };
    let mut out = Vec::new();
    out.extend_from_slice(&cert_type.to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.push(algorithm);
    out.extend(base64(&data[3..])?);
    Ok(out)
}

/// APL (RFC 3123 §4): `[!]afi:address/prefix`, any number.
fn apl(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for w in data {
        let item = utf8(w)?;
        let bad = || format!("bad item {item:?} (want [!]1:IPv4/len or [!]2:IPv6/len)");
        let (negated, item_body) = match item.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        let (family, rest) = item_body.split_once(':').ok_or_else(bad)?;
        let (addr, prefix) = rest.rsplit_once('/').ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let (family, bytes, max): (u16, Vec<u8>, u8) = match family {
            "1" => (1, Ipv4Addr::from_str(addr).map_err(|_| bad())?.octets().to_vec(), 32),
            "2" => (2, Ipv6Addr::from_str(addr).map_err(|_| bad())?.octets().to_vec(), 128),
            _ => return Err(bad()),
        };
        if prefix > max {
            return Err(format!("prefix /{prefix} is longer than the address in {item:?}"));
        }
        let len = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        out.extend_from_slice(&family.to_be_bytes());
        out.push(prefix);
        out.push(u8::from(negated) << 7 | len as u8);
        out.extend_from_slice(&bytes[..len]);
    }
    Ok(out)
}

/// DHCID (RFC 4701 §3.4): base64.
fn dhcid(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    base64(data)
}

/// CSYNC (RFC 7477 §2.1): serial, flags, types.
fn csync(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let serial: u32 = int(data.first(), "serial")?;
    let flags: u16 = int(data.get(1), "flags")?;
    let mut out = serial.to_be_bytes().to_vec();
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend(type_bitmap(data.get(2..).unwrap_or_default())?);
    Ok(out)
}

/// Four groups of up to four hex digits, colon-separated (RFC 6742).
fn sixty_four(w: &Token<'_>) -> Result<[u8; 8], String> {
    let bad = || {
        format!(
            "bad 64-bit value {:?} (want xxxx:xxxx:xxxx:xxxx)",
            String::from_utf8_lossy(w.text)
        )
    };
    let mut out = [0u8; 8];
    let mut groups = w.text.split(|&b| b == b':');
    for pair in out.chunks_mut(2) {
        let g = groups.next().filter(|g| (1..=4).contains(&g.len())).ok_or_else(bad)?;
        let mut v = 0u16;
        for &d in g {
            v = v << 4 | u16::from(hex_nibble(d).ok_or_else(bad)?);
        }
        pair.copy_from_slice(&v.to_be_bytes());
    }
    if groups.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

/// NID (RFC 6742 §2.1): preference, node id.
fn nid(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let data = exactly(data, 2)?;
    let mut out = int::<u16>(data.first(), "preference")?.to_be_bytes().to_vec();
    out.extend_from_slice(&sixty_four(&data[1])?);
    Ok(out)
}

/// L32 (RFC 6742 §2.2): preference, IPv4 locator.
fn l32(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let data = exactly(data, 2)?;
    let mut out = int::<u16>(data.first(), "preference")?.to_be_bytes().to_vec();
    out.extend_from_slice(&int::<Ipv4Addr>(data.get(1), "locator")?.octets());
    Ok(out)
}

/// L64 (RFC 6742 §2.3): preference, 64-bit locator.
fn l64(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    nid(data, _origin)
}

/// EUI48 / EUI64 (RFC 7043 §3.2, §4.2): hex pairs joined by hyphens.
fn eui(data: &[Token<'_>], octets: usize) -> Result<Vec<u8>, String> {
    let word = &exactly(data, 1)?[0];
    let bad = || {
        format!(
            "bad address {:?} (want {octets} hex pairs joined by '-')",
            String::from_utf8_lossy(word.text)
        )
    };
    let out: Vec<u8> = word
        .text
        .split(|&b| b == b'-')
        .map(|pair| hex_byte(pair).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    if out.len() != octets {
        return Err(bad());
    }
    Ok(out)
}

fn eui48(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    eui(data, 6)
}

fn eui64(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    eui(data, 8)
}

/// URI (RFC 7553 §4.4): priority, weight, target (quoted; not limited to
/// 255 bytes, and stored without a length).
fn uri(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    let data = exactly(data, 3)?;
    let mut out = int::<u16>(data.first(), "priority")?.to_be_bytes().to_vec();
    out.extend_from_slice(&int::<u16>(data.get(1), "weight")?.to_be_bytes());
    let target = unescape(data[2].text)?;
    if target.is_empty() {
        return Err("empty target".into());
    }
    out.extend(target);
    Ok(out)
}

/// A domain name of a type's data in wire form: absolute as written, or
/// under `origin`; `@` is the origin.
fn name_wire(word: &Token<'_>, origin: &[u8]) -> Result<Vec<u8>, String> {
    use domain::base::name::Name;
    let full = if word.text == b"@" {
        origin.to_vec()
    } else {
        follow_origin(word.text, origin)
    };
    let text = std::str::from_utf8(&full).map_err(|_| "a name that is not ASCII text".to_string())?;
    let name = Name::<Vec<u8>>::from_str(text)
        .map_err(|e| format!("bad name {:?}: {e}", String::from_utf8_lossy(word.text)))?;
    Ok(name.as_slice().to_vec())
}

/// HIP (RFC 8005): algorithm, the HIT in hex, the public key in base64,
/// and rendezvous servers.
fn hip(data: &[Token<'_>], origin: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 3 {
        return Err(format!("3 fields or more expected, found {}", data.len()));
    }
    let algorithm: u8 = int(data.first(), "algorithm")?;
    let hit: Vec<u8> = data[1]
        .text
        .chunks(2)
        .map(hex_byte)
        .collect::<Option<_>>()
        .filter(|h: &Vec<u8>| !h.is_empty() && h.len() <= 255)
        .ok_or_else(|| {
            format!(
                "bad HIT {:?} (want 1 to 255 bytes in hex)",
                String::from_utf8_lossy(data[1].text)
            )
        })?;
    let key = base64(&data[2..3])?;
    let key_len = u16::try_from(key.len()).map_err(|_| "public key too long".to_string())?;
    let mut out = vec![hit.len() as u8, algorithm];
    out.extend_from_slice(&key_len.to_be_bytes());
    out.extend(hit);
    out.extend(key);
    for server in &data[3..] {
        out.extend(name_wire(server, origin)?);
    }
    Ok(out)
}

/// DOA (draft-durand-doa-over-dns, as BIND reads it): enterprise, type,
/// location, media type (a string), and data in base64 or `-` for none.
fn doa(data: &[Token<'_>], _origin: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 5 {
        return Err(format!("5 fields expected, found {}", data.len()));
    }
    let mut out = int::<u32>(data.first(), "enterprise")?.to_be_bytes().to_vec();
    out.extend_from_slice(&int::<u32>(data.get(1), "type")?.to_be_bytes());
    out.push(int::<u8>(data.get(2), "location")?);
    let media = unescape(data[3].text)?;
    out.push(u8::try_from(media.len()).map_err(|_| "media type longer than 255 bytes".to_string())?);
    out.extend(media);
    match &data[4..] {
        [dash] if !dash.quoted && dash.text == b"-" => {}
        words => out.extend(base64(words)?),
    }
    Ok(out)
}

/// AMTRELAY (RFC 8777): precedence, discovery-optional bit, type, and a
/// relay of that type (`.` for none, IPv4, IPv6 or a name).
fn amtrelay(data: &[Token<'_>], origin: &[u8]) -> Result<Vec<u8>, String> {
    let data = exactly(data, 4)?;
    let precedence: u8 = int(data.first(), "precedence")?;
    let discovery: u8 = int(data.get(1), "discovery-optional bit")?;
    let relay_type: u8 = int(data.get(2), "type")?;
    if discovery > 1 {
        return Err("the discovery-optional bit is 0 or 1".into());
    }
    let mut out = vec![precedence, discovery << 7 | relay_type];
    let relay = &data[3];
    let text = utf8(relay)?;
    match relay_type {
        0 if text == "." => {}
        0 => return Err("type 0 has no relay: write `.`".into()),
        1 => out.extend(
            text.parse::<Ipv4Addr>()
                .map_err(|_| format!("bad IPv4 relay {text:?}"))?
                .octets(),
        ),
        2 => out.extend(
            text.parse::<Ipv6Addr>()
                .map_err(|_| format!("bad IPv6 relay {text:?}"))?
                .octets(),
        ),
        3 => out.extend(name_wire(relay, origin)?),
        n => return Err(format!("unknown relay type {n}: write the record in RFC 3597 form")),
    }
    Ok(out)
}

// ---- printing the data (for `lbdns explain`) ----

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn show_wks(data: &[u8]) -> Option<String> {
    let addr = Ipv4Addr::from(<[u8; 4]>::try_from(data.get(..4)?).ok()?);
    let mut text = format!("{addr} {}", data.get(4)?);
    for (i, byte) in data[5..].iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                text.push_str(&format!(" {}", i * 8 + bit));
            }
        }
    }
    Some(text)
}

fn show_nsap(data: &[u8]) -> Option<String> {
    (!data.is_empty()).then(|| format!("0x{}", hex_text(data)))
}

/// Metres with two decimals, or none when whole.
fn metres(cm: i64) -> String {
    let sign = if cm < 0 { "-" } else { "" };
    let cm = cm.unsigned_abs();
    if cm.is_multiple_of(100) {
        format!("{sign}{}m", cm / 100)
    } else {
        format!("{sign}{}.{:02}m", cm / 100, cm % 100)
    }
}

fn show_loc(data: &[u8]) -> Option<String> {
    if data.len() != 16 || data[0] != 0 {
        return None;
    }
    let coordinate = |raw: u32, [plus, minus]: [char; 2]| {
        let offset = i64::from(raw) - (1 << 31);
        let ms = offset.unsigned_abs();
        let hemisphere = if offset < 0 { minus } else { plus };
        format!(
            "{} {} {}.{:03} {hemisphere}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let precision = |b: u8| metres(i64::from(b >> 4) * 10i64.pow(u32::from(b & 0x0f)));
    Some(format!(
        "{} {} {} {} {} {}",
        coordinate(u32_at(data, 4)?, ['N', 'S']),
        coordinate(u32_at(data, 8)?, ['E', 'W']),
        metres(i64::from(u32_at(data, 12)?) - 10_000_000),
        precision(data[1]),
        precision(data[2]),
        precision(data[3]),
    ))
}

fn show_cert(data: &[u8]) -> Option<String> {
    let cert_type = u16_at(data, 0)?;
    let name = match cert_type {
        1 => "PKIX".to_string(),
        2 => "SPKI".into(),
        3 => "PGP".into(),
        4 => "IPKIX".into(),
        5 => "ISPKI".into(),
        6 => "IPGP".into(),
        7 => "ACPKIX".into(),
        8 => "IACPKIX".into(),
        253 => "URI".into(),
        254 => "OID".into(),
        n => n.to_string(),
    };
    let body = data.get(5..)?;
    Some(format!(
        "{name} {} {} {}",
        u16_at(data, 2)?,
        data[4],
        domain::utils::base64::encode_string(body)
    ))
}

fn show_apl(data: &[u8]) -> Option<String> {
    let mut items = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let family = u16_at(data, at)?;
        let prefix = *data.get(at + 2)?;
        let flags = *data.get(at + 3)?;
        let len = usize::from(flags & 0x7f);
        let bytes = data.get(at + 4..at + 4 + len)?;
        let addr = match family {
            1 if len <= 4 => {
                let mut full = [0u8; 4];
                full[..len].copy_from_slice(bytes);
                Ipv4Addr::from(full).to_string()
            }
            2 if len <= 16 => {
                let mut full = [0u8; 16];
                full[..len].copy_from_slice(bytes);
                Ipv6Addr::from(full).to_string()
            }
            _ => return None,
        };
        let negated = if flags & 0x80 != 0 { "!" } else { "" };
        items.push(format!("{negated}{family}:{addr}/{prefix}"));
        at += 4 + len;
    }
    Some(items.join(" "))
}

fn show_dhcid(data: &[u8]) -> Option<String> {
    (!data.is_empty()).then(|| domain::utils::base64::encode_string(data))
}

fn show_csync(data: &[u8]) -> Option<String> {
    let mut text = format!("{} {}", u32_at(data, 0)?, u16_at(data, 4)?);
    let mut at = 6;
    while at < data.len() {
        let window = u16::from(data[at]);
        let len = usize::from(*data.get(at + 1)?);
        for (i, byte) in data.get(at + 2..at + 2 + len)?.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let rtype = window << 8 | (i * 8 + bit) as u16;
                    text.push_str(&format!(" {}", Rtype::from_int(rtype)));
                }
            }
        }
        at += 2 + len;
    }
    Some(text)
}

fn sixty_four_text(bytes: &[u8]) -> String {
    let groups: Vec<String> = bytes.chunks(2).map(hex_text).collect();
    groups.join(":")
}

fn show_nid(data: &[u8]) -> Option<String> {
    (data.len() == 10).then(|| {
        format!(
            "{} {}",
            u16::from_be_bytes([data[0], data[1]]),
            sixty_four_text(&data[2..])
        )
    })
}

fn show_l32(data: &[u8]) -> Option<String> {
    let addr = Ipv4Addr::from(<[u8; 4]>::try_from(data.get(2..)?).ok()?);
    Some(format!("{} {addr}", u16_at(data, 0)?))
}

fn show_l64(data: &[u8]) -> Option<String> {
    show_nid(data)
}

fn show_eui(data: &[u8], octets: usize) -> Option<String> {
    (data.len() == octets).then(|| data.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join("-"))
}

fn show_eui48(data: &[u8]) -> Option<String> {
    show_eui(data, 6)
}

fn show_eui64(data: &[u8]) -> Option<String> {
    show_eui(data, 8)
}

fn show_uri(data: &[u8]) -> Option<String> {
    let mut target = String::new();
    for &b in data.get(4..)? {
        match b {
            b'"' | b'\\' => target.push_str(&format!("\\{}", b as char)),
            0x20..=0x7e => target.push(b as char),
            _ => target.push_str(&format!("\\{b:03}")),
        }
    }
    Some(format!("{} {} \"{target}\"", u16_at(data, 0)?, u16_at(data, 2)?))
}

/// A character-string, quoted with escapes.
fn quoted(bytes: &[u8]) -> String {
    let mut text = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => text.push_str(&format!("\\{}", b as char)),
            0x20..=0x7e => text.push(b as char),
            _ => text.push_str(&format!("\\{b:03}")),
        }
    }
    text.push('"');
    text
}

/// The name at the start of `data`, as text, and the bytes after it.
fn name_at(data: &[u8]) -> Option<(String, &[u8])> {
    let len = crate::name::wire_len(data)?;
    Some((crate::name::to_text(&data[..len]), &data[len..]))
}

fn show_hip(data: &[u8]) -> Option<String> {
    let hit_len = usize::from(*data.first()?);
    let key_len = usize::from(u16_at(data, 2)?);
    let hit = data.get(4..4 + hit_len)?;
    let key = data.get(4 + hit_len..4 + hit_len + key_len)?;
    let mut text = format!(
        "{} {} {}",
        data[1],
        hex_text(hit).to_ascii_uppercase(),
        domain::utils::base64::encode_string(key)
    );
    let mut rest = &data[4 + hit_len + key_len..];
    while !rest.is_empty() {
        let (name, after) = name_at(rest)?;
        text.push(' ');
        text.push_str(&name);
        rest = after;
    }
    Some(text)
}

fn show_doa(data: &[u8]) -> Option<String> {
    let media_len = usize::from(*data.get(9)?);
    let media = data.get(10..10 + media_len)?;
    let body = &data[10 + media_len..];
    let body = if body.is_empty() {
        "-".to_string()
    } else {
        domain::utils::base64::encode_string(body)
    };
    Some(format!(
        "{} {} {} {} {body}",
        u32_at(data, 0)?,
        u32_at(data, 4)?,
        data[8],
        quoted(media)
    ))
}

fn show_amtrelay(data: &[u8]) -> Option<String> {
    let (precedence, flags) = (*data.first()?, *data.get(1)?);
    let relay = &data[2..];
    let relay = match flags & 0x7f {
        0 if relay.is_empty() => ".".to_string(),
        1 => Ipv4Addr::from(<[u8; 4]>::try_from(relay).ok()?).to_string(),
        2 => Ipv6Addr::from(<[u8; 16]>::try_from(relay).ok()?).to_string(),
        3 => match name_at(relay)? {
            (name, []) => name,
            _ => return None,
        },
        _ => return None,
    };
    Some(format!("{precedence} {} {} {relay}", flags >> 7, flags & 0x7f))
}

#[cfg(test)]
mod tests {
    /// For a file with no `$GENERATE`, and for one with a few.
    const NONE: generate::Budget = generate::Budget { records: 0, bytes: 0 };
    const PLENTY: generate::Budget = generate::Budget {
        records: 100,
        bytes: 1 << 20,
    };
    use super::*;

    fn words(text: &str) -> Vec<Token<'_>> {
        text.split_whitespace()
            .map(|w| match w.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
                Some(inner) => Token {
                    text: inner.as_bytes(),
                    quoted: true,
                },
                None => Token {
                    text: w.as_bytes(),
                    quoted: false,
                },
            })
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn lookup_knows_mnemonics_in_any_case_and_type_numbers() {
        assert_eq!(lookup(b"loc").map(|k| k.rtype), Some(29));
        assert_eq!(lookup(b"NSAP-PTR").map(|k| k.rtype), Some(23));
        assert_eq!(lookup(b"TYPE99").map(|k| k.name), Some("SPF"));
        assert!(lookup(b"TYPE1").is_none()); // A: the scanner's own
        for common in [
            "A", "AAAA", "MX", "TXT", "CNAME", "SOA", "NS", "SRV", "CAA", "DS", "TLSA",
        ] {
            assert!(lookup(common.as_bytes()).is_none(), "{common}");
        }
        for kind in KINDS {
            assert_eq!(lookup(kind.name.as_bytes()).map(|k| k.rtype), Some(kind.rtype));
        }
    }

    #[test]
    fn line_needs_finds_the_type_word_and_ttls_with_units() {
        assert!(line_needs(b"loc 300 IN LOC 1 N 2 E 0"));
        assert!(line_needs(b"  IN 300 spf x"));
        assert!(!line_needs(b"www 300 IN A 192.0.2.1"));
        assert!(!line_needs(b"$ORIGIN loc."));
        assert!(!line_needs(b""));
        // A TXT whose text says LOC is not a LOC record.
        assert!(!line_needs(b"t TXT LOC"));
        assert!(line_needs(b"$TTL 1h"));
        assert!(!line_needs(b"$TTL 3600"));
        assert!(line_needs(b"www 1h30m IN A 192.0.2.1"));
        assert!(line_needs(b"  IN 2d A 192.0.2.1"));
        assert!(line_needs(b"@ SOA ns hm 1 2h 3 4 5"));
        assert!(!line_needs(b"@ SOA ns hm 1 2 3 4 5"));
        // An owner that looks like a TTL is still the owner.
        assert!(!line_needs(b"1h A 192.0.2.1"));
    }

    #[test]
    fn at_in_a_name_field_is_the_origin() {
        assert!(line_needs(b"www CNAME @"));
        assert!(line_needs(b"  IN MX 10 @"));
        assert!(!line_needs(b"t TXT @")); // a string, not a name
        assert!(!line_needs(b"@ A 192.0.2.1"));
        assert!(!line_needs(b"m MX @ x")); // the preference, not a name
        let src =
            b"www CNAME @\n$ORIGIN sub\nm MX 10 @\n@ SOA @ hm.@ 1 2 3 4 5\nt TXT @ \"@\"\n$ORIGIN other.\nk KX 1 @\n";
        let rw = rewrite(src, "x.", NONE).unwrap();
        assert_eq!(
            String::from_utf8(rw.text).unwrap(),
            "www CNAME x.\n$ORIGIN sub\nm MX 10 sub.x.\n@ SOA sub.x. hm.@ 1 2 3 4 5\nt TXT @ \"@\"\n$ORIGIN other.\nk MX 1 other.\n"
        );
        assert_eq!(follow_origin(b"a", b"."), b"a.");
        assert_eq!(follow_origin(b"a\\.", b"x."), b"a\\..x.");
        assert_eq!(follow_origin(b"a\\\\.", b"x."), b"a\\\\.");
    }

    #[test]
    fn dnssec_algorithm_mnemonics_become_numbers() {
        assert!(line_needs(b"k DNSKEY 256 3 RSASHA256 AwEA"));
        assert!(!line_needs(b"k DNSKEY 256 3 8 AwEA"));
        assert!(line_needs(b"s RRSIG A ecdsap256sha256 2 60 1 2 3 x. AA"));
        assert!(line_needs(b"k KEY 256 3 ED25519 AwEA"));
        assert!(!line_needs(b"d DS 1 RSASHA256 1 ab")); // DS: numbers only (RFC 4034 §5.3)
        let rw = rewrite(
            b"k DNSKEY 256 3 RSASHA256 AwEA\ns RRSIG A ED25519 2 60 1 2 3 x. AA\n",
            "x.",
            NONE,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(rw.text).unwrap(),
            "k DNSKEY 256 3 8 AwEA\ns RRSIG A 15 2 60 1 2 3 x. AA\n"
        );
    }

    #[test]
    fn first_record_skips_directives_and_comments() {
        assert_eq!(first_record(b"; c\n$ORIGIN x.\n  TXT \"a\"\n"), Some((15, false)));
        assert_eq!(first_record(b"$TTL 1\nw A 1.2.3.4\n"), Some((7, true)));
        assert_eq!(first_record(b"$TTL 1\n; only\n"), None);
    }

    #[test]
    fn directive_ttl_reads_plain_and_unit_values() {
        assert_eq!(directive_ttl(b"$TTL 60\nx A 1.2.3.4\n"), Some(60));
        assert_eq!(directive_ttl(b"$ttl 1h30m ; comment\n"), Some(5400));
        assert_eq!(directive_ttl(b"$TTL\n60\n"), None);
        assert_eq!(directive_ttl(b"$ORIGIN x.\n"), None);
        assert_eq!(directive_ttl(b"$TTL x\n"), None);
    }

    #[test]
    fn look_reads_one_entry_only() {
        let first = look(b"loc ( LOC 1 N\n 2 E 0 )\nwww A 1.2.3.4\n");
        assert_eq!(
            first,
            Look {
                start: Some((0, true)),
                needs: true,
                end: 22,
                lines: 2,
                unclosed: None,
                bad_owner: false,
            }
        );
        assert!(look(b"a..b ( A 1.2.3.4 )\n").bad_owner);
        assert!(!look(b"a\\..b ( A 1.2.3.4 )\n").bad_owner);
        let comment = look(b"; a comment\nloc LOC 1 N 2 E 0\n");
        assert_eq!(
            (comment.start, comment.needs, comment.end, comment.lines),
            (None, false, 11, 1)
        );
        assert!(!look(b"t TXT \"LOC\" ; LOC\n").needs);
        assert!(look(b"@ SOA ns hm (\n 1 ; serial\n 1w ; refresh\n 3 4 5 )\n").needs);
        assert_eq!(look(b"$TTL 60 ; x\n").start, Some((0, false)));
        assert_eq!(look(b"  (\nx A 1.2.3.4 )").start, Some((0, true)));
        assert_eq!(look(b"a TXT \"x\n\n").unclosed, Some((0, "quote")));
        assert_eq!(look(b"a TXT (\n\n ( \"x\" )").unclosed, Some((0, "parenthesis")));
    }

    #[test]
    fn ttls_with_units_read_as_bind_nsd_and_knot_read_them() {
        assert_eq!(units_ttl(b"1h30m"), Some(Ok(5400)));
        assert_eq!(
            units_ttl(b"1W2d3H4m5S"),
            Some(Ok(604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5))
        );
        assert_eq!(units_ttl(b"3600"), None); // the scanner's own
        assert_eq!(units_ttl(b"1h30"), None);
        assert_eq!(units_ttl(b"h"), None);
        assert_eq!(units_ttl(b"1x"), None);
        assert!(units_ttl(b"99999999w").unwrap().is_err());
        let rw = rewrite(
            b"$TTL 1h\n@ SOA ns hm ( 1 ; 2h\n 2h 30m 1w 5m )\nw 1D IN A 192.0.2.1\n",
            "x.",
            NONE,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(rw.text).unwrap(),
            "$TTL 3600\n@ SOA ns hm ( 1 ; 2h\n 7200 1800 604800 300 )\nw 86400 IN A 192.0.2.1\n"
        );
        assert!(rw.errors.is_empty() && rw.fixes.is_empty());
    }

    #[test]
    fn loc_matches_rfc_1876_examples() {
        // RFC 1876 §4 gives the text; the wire values are as BIND, NSD and
        // Knot encode them.
        let cs = loc(&words("42 21 54 N 71 06 18 W -24m 30m"), b"x.").unwrap();
        assert_eq!(hex(&cs), "0033161389172dd070be15f000988d20");
        let full = loc(&words("52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"), b"x.").unwrap();
        assert_eq!(full[1..4], [0x00, 0x16, 0x13]);
        assert_eq!(
            u32::from_be_bytes(full[4..8].try_into().unwrap()),
            (1 << 31) + (52 * 3600 + 22 * 60 + 23) * 1000
        );
        assert_eq!(u32::from_be_bytes(full[12..16].try_into().unwrap()), 10_000_000 - 200);
        assert!(
            loc(&words("91 N 0 E 0"), b"x.")
                .unwrap_err()
                .contains("latitude out of range")
        );
        assert!(loc(&words("10 60 N 0 E 0"), b"x.").is_err());
        assert!(loc(&words("10 N 0 X 0"), b"x.").unwrap_err().contains("longitude"));
        assert!(loc(&words("10 N 0 0 0 X 0"), b"x.").unwrap_err().contains("hemisphere"));
        assert!(loc(&words("10 N 0 E"), b"x.").unwrap_err().contains("altitude"));
        assert!(loc(&words("10 N 0 E 0 1 2 3 4"), b"x.").unwrap_err().contains("extra"));
        assert_eq!(precision_byte(100), 0x12);
        assert_eq!(precision_byte(1_000_000), 0x16);
        assert_eq!(precision_byte(0), 0x00);
        assert_eq!(precision_byte(250), 0x22); // 2.5 m is cut to 2 m
    }

    #[test]
    fn the_other_types_encode_as_their_rfcs_say() {
        let cases: &[(Convert, &str, &str)] = &[
            (uri, r#"10 1 "ftp://a.b/c""#, "000a00016674703a2f2f612e622f63"),
            (cert, "PGP 0 0 AAECAwQF", "0003000000000102030405"),
            (cert, "IPKIX 65535 RSASHA256 AAEC AwQF", "0004ffff08000102030405"),
            (eui48, "00-00-5e-00-53-2a", "00005e00532a"),
            (eui64, "00-00-5e-ef-10-00-00-2a", "00005eef1000002a"),
            (l32, "10 10.1.2.0", "000a0a010200"),
            (l64, "10 2001:0DB8:1140:1000", "000a20010db811401000"),
            (nid, "10 14:4fff:ff20:ee64", "000a0014 4fffff20ee64"),
            (dhcid, "AAIB", "000201"),
            // RFC 7477 §2.2's example: A, NS, AAAA.
            (csync, "66 3 A NS AAAA", "0000004200030004600000 08"),
            (
                apl,
                "1:192.168.32.0/21 !1:192.168.38.0/28",
                "00011503c0a82000011c83c0a826",
            ),
            (apl, "2:2001:db8::/32", "000220042001 0db8"),
            (apl, "", ""),
            (wks, "10.0.0.1 TCP 25 53", "0a0000010600000040 000004"),
            (nsap, "0x47.0005.80.005a00", "47000580005a00"),
        ];
        for (convert, text, want) in cases {
            let got = convert(&words(text), b"x.").unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(hex(&got), want.replace(' ', ""), "{text}");
        }
    }

    #[test]
    fn what_is_converted_here_prints_back_to_the_same_data() {
        // text -> wire -> text -> wire: the printed text reads back to the
        // same bytes, for every type converted here.
        let cases = [
            ("WKS", "10.0.0.1 tcp 25 53", "10.0.0.1 6 25 53"),
            ("NSAP", "0x47.0005.80", "0x47000580"),
            (
                "LOC",
                "52 22 23 N 4 53 32.5 E -2m 0 10000m 2.5m",
                "52 22 23.000 N 4 53 32.500 E -2m 0m 10000m 2m",
            ),
            ("LOC", "42 N 71 W 0", "42 0 0.000 N 71 0 0.000 W 0m 1m 10000m 10m"),
            ("CERT", "PGP 1 RSASHA256 AAECAwQF", "PGP 1 8 AAECAwQF"),
            ("CERT", "300 1 2 AAEC", "300 1 2 AAEC"),
            (
                "APL",
                "1:192.168.32.0/21 !2:2001:db8::/32",
                "1:192.168.32.0/21 !2:2001:db8::/32",
            ),
            ("APL", "", ""),
            ("DHCID", "AAIBY2/A", "AAIBY2/A"),
            ("CSYNC", "66 3 A NS AAAA TYPE1234", "66 3 A NS AAAA TYPE1234"),
            ("NID", "10 14:4fff:ff20:ee64", "10 0014:4fff:ff20:ee64"),
            ("L32", "10 10.1.2.0", "10 10.1.2.0"),
            ("L64", "10 2001:db8:1140:1000", "10 2001:0db8:1140:1000"),
            ("EUI48", "00-00-5E-00-53-2A", "00-00-5e-00-53-2a"),
            ("EUI64", "00-00-5e-ef-10-00-00-2a", "00-00-5e-ef-10-00-00-2a"),
            ("URI", r#"10 1 "ftp://a/\"b\\\010""#, r#"10 1 "ftp://a/\"b\\\010""#),
            (
                "HIP",
                "2 200100107b1a74df365639cc39f1d578 AAEC rvs.example.com. @ rel",
                "2 200100107B1A74DF365639CC39F1D578 AAEC rvs.example.com. x. rel.x.",
            ),
            ("HIP", "2 0A AAEC", "2 0A AAEC"),
            ("DOA", r#"0 1 2 "" aHR0"#, r#"0 1 2 "" aHR0"#),
            ("DOA", r#"1 2 3 "text/plain" -"#, r#"1 2 3 "text/plain" -"#),
            ("AMTRELAY", "10 0 0 .", "10 0 0 ."),
            ("AMTRELAY", "10 1 1 203.0.113.15", "10 1 1 203.0.113.15"),
            ("AMTRELAY", "128 0 2 2001:db8::15", "128 0 2 2001:db8::15"),
            ("AMTRELAY", "10 1 3 relay", "10 1 3 relay.x."),
        ];
        for (name, text, printed) in cases {
            let kind = lookup(name.as_bytes()).unwrap();
            let Form::Own(convert, show) = kind.form else {
                panic!("{name} is not converted here");
            };
            let wire = convert(&words(text), b"x.").unwrap_or_else(|e| panic!("{name} {text}: {e}"));
            let shown = show(&wire).unwrap_or_else(|| panic!("{name}: no text for {}", hex(&wire)));
            assert_eq!(shown, printed, "{name} {text}");
            assert_eq!(
                convert(&words(&shown), b"x.").unwrap(),
                wire,
                "{name}: {shown} reads back"
            );
        }
        // Malformed data prints as nothing, not as garbage.
        assert!(show_loc(&[0; 15]).is_none());
        assert!(show_apl(&[0, 1, 8, 5, 1]).is_none());
        assert!(show_csync(&[0, 0, 0, 1, 0, 0, 0, 9]).is_none());
    }

    #[test]
    fn bad_data_says_what_is_wrong() {
        assert!(uri(&words("10 1"), b"x.").unwrap_err().contains("3 fields"));
        assert!(uri(&words(r#"10 1 """#), b"x.").unwrap_err().contains("empty"));
        assert!(
            eui48(&words("00-00-5e-00-53"), b"x.")
                .unwrap_err()
                .contains("6 hex pairs")
        );
        assert!(l64(&words("10 2001:db8:1"), b"x.").unwrap_err().contains("64-bit"));
        assert!(cert(&words("PGP 0 0 !!!"), b"x.").unwrap_err().contains("base64"));
        assert!(apl(&words("1:10.0.0.0/33"), b"x.").unwrap_err().contains("longer"));
        assert!(apl(&words("3:10.0.0.0/8"), b"x.").unwrap_err().contains("bad item"));
        assert!(
            wks(&words("10.0.0.1 tcp smtp"), b"x.")
                .unwrap_err()
                .contains("service names")
        );
        assert!(nsap(&words("47.00"), b"x.").unwrap_err().contains("0x"));
        assert!(csync(&words("1 0 A NOPE"), b"x.").unwrap_err().contains("unknown type"));
        assert!(unescape(b"\\999").unwrap_err().contains("over 255"));
        assert_eq!(unescape(br#"a\"b\065"#).unwrap(), b"a\"bA");
    }

    #[test]
    fn rewrite_keeps_lines_and_marks_types_to_put_back() {
        let src = b"$ORIGIN x.\n@ SOA a b 1 2 3 4 5\nloc LOC ( 42 21 54 N ; a comment (\n 71 06 18 W -24m 30m )\nspf 60 IN SPF \"v=spf1 -all\"\n  KX 10 kx\nraw LOC \\# 1 00\nt TXT \"LOC\"\n";
        let rw = rewrite(src, "x.", NONE).unwrap();
        let text = String::from_utf8(rw.text.clone()).unwrap();
        assert_eq!(text.lines().count(), String::from_utf8_lossy(src).lines().count());
        assert!(
            text.contains("loc TYPE29 \\# 16 0033161389172dd070be15f000988d20 (\n)\n"),
            "{text}"
        );
        assert!(text.contains("spf 60 IN TXT \"v=spf1 -all\"\n"));
        assert!(text.contains("  MX 10 kx\n"));
        assert!(text.contains("raw TYPE29 \\# 1 00\n"));
        assert!(text.contains("t TXT \"LOC\"\n"));
        let fixed: Vec<_> = rw.fixes.iter().map(|f| (f.line, f.kind.name)).collect();
        assert_eq!(fixed, [(5, "SPF"), (6, "KX")]);
        assert!(rw.errors.is_empty());
        assert!(rewrite(b"www A 192.0.2.1\nt TXT \"LOC\"\n", "x.", NONE).is_none());
    }

    #[test]
    fn rewrite_closes_what_was_open_before_the_type_and_reports_bad_data() {
        let rw = rewrite(b"a ( IN\n URI 1 2 )\nb EUI48 zz\n", "x.", NONE).unwrap();
        let text = String::from_utf8(rw.text).unwrap();
        assert_eq!(text, "a ( IN\n TYPE256 \\# 0 ())\nb TYPE108 \\# 0\n");
        assert_eq!(rw.errors.len(), 2);
        assert_eq!(rw.errors[0].0, 1);
        assert!(rw.errors[0].1.starts_with("URI: 3 fields"), "{:?}", rw.errors);
        assert_eq!(rw.errors[1].0, 3);
    }

    #[test]
    fn string_counts_are_checked_for_txt_like_types() {
        assert!(X25.check(b"\x03123").is_ok());
        assert!(X25.check(b"\x011\x012").unwrap_err().contains("takes 1"));
        assert!(ISDN.check(b"\x011\x012").is_ok());
        assert!(GPOS.check(b"\x011").unwrap_err().contains("takes 3"));
        assert!(SPF.check(b"\x011\x012\x013").is_ok());
        assert!(X25.check(b"\x05ab").unwrap_err().contains("malformed"));
    }

    #[test]
    fn generated_records_map_back_to_their_lines() {
        let src = b"a A 10.0.0.1\n$GENERATE 1-3 g$ A 10.0.0.$\nb A 10.0.0.2\n$GENERATE 1-2 ( h$\n A 10.0.0.$ )\nc A 10.0.0.3\n$GENERATE 1-1 i$ A 10.0.0.$\n";
        let rw = rewrite(src, "x.", PLENTY).unwrap();
        let text = String::from_utf8(rw.text.clone()).unwrap();
        assert_eq!(
            text,
            "a A 10.0.0.1\ng1 A 10.0.0.1\ng2 A 10.0.0.2\ng3 A 10.0.0.3\nb A 10.0.0.2\n\
             h1 A 10.0.0.1\nh2 A 10.0.0.2\nc A 10.0.0.3\ni1 A 10.0.0.1\n"
        );
        let lines = [(2, 1, 3), (4, 2, 2), (7, 1, 1)];
        let got: Vec<_> = rw.generated.iter().map(|g| (g.line, g.lines, g.records)).collect();
        assert_eq!(got, lines);
        // Each line of the rewritten text, back in the file.
        let back: Vec<_> = (1..=9).map(|l| rw.source_line(l)).collect();
        assert_eq!(back, [1, 2, 2, 2, 3, 4, 4, 6, 7]);
        assert_eq!(rw.generated_record(2, 2), Some(&b"g3 A 10.0.0.3"[..]));
        assert_eq!(rw.generated_record(4, 0), Some(&b"h1 A 10.0.0.1"[..]));
        assert_eq!(rw.generated_record(7, 0), Some(&b"i1 A 10.0.0.1"[..]));
        assert_eq!(rw.generated_record(4, 2), None);
        assert_eq!(rw.generated_record(3, 0), None);
        // A `$GENERATE` that fails leaves one blank line.
        let rw = rewrite(b"$GENERATE 9-1 g$ A 10.0.0.$\nb A 10.0.0.2\n", "x.", PLENTY).unwrap();
        assert_eq!(rw.text, b"\nb A 10.0.0.2\n");
        assert_eq!(rw.source_line(2), 2);
        assert_eq!(rw.errors.len(), 1);
        assert!(rw.errors[0].1.starts_with("$GENERATE: bad range"), "{:?}", rw.errors);
    }

    #[test]
    fn raw_bytes_are_escaped_for_the_scanner() {
        let escaped = |word: &[u8]| {
            let mut out = Vec::new();
            escape_raw(word, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(escaped("héllo".as_bytes()), "h\\195\\169llo");
        assert_eq!(escaped(b"tab\tin\x7f"), "tab\\009in\\127");
        // An escaped raw byte is that byte; other escapes stay as written.
        assert_eq!(escaped("w\\é".as_bytes()), "w\\195\\169");
        assert_eq!(escaped(b"a\\\"b\\065\\ c"), "a\\\"b\\065\\ c");
        assert_eq!(escaped(b"end\\"), "end\\");
        // Only the words that need it, in data and owners; not in $INCLUDE.
        let src =
            "x TXT \"h\u{e9}llo\" plain \"t\tb\"\nd\u{e9}j\u{e0} A 192.0.2.1\n$INCLUDE f\u{e9}.inc\nok A 192.0.2.2\n";
        let rw = rewrite(src.as_bytes(), "x.", NONE).unwrap();
        assert_eq!(
            String::from_utf8(rw.text).unwrap(),
            "x TXT \"h\\195\\169llo\" plain \"t\\009b\"\nd\\195\\169j\\195\\160 A 192.0.2.1\n\
             $INCLUDE f\u{e9}.inc\nok A 192.0.2.2\n"
        );
        assert!(look("x TXT \"a\tb\"\n".as_bytes()).needs);
        assert!(!look(b"x TXT \"a b\"\n").needs);
    }

    #[test]
    fn hip_doa_and_amtrelay_say_what_is_wrong() {
        for (kind, text, want) in [
            (hip as Convert, "2 0A", "3 fields or more expected, found 2"),
            (hip, "2 XYZ AAEC", "bad HIT \"XYZ\""),
            (hip, "2 0A AAEC a..b", "bad name \"a..b\""),
            (doa, "0 1 2 \"\"", "5 fields expected, found 4"),
            (doa, "0 1 256 \"\" -", "bad location"),
            (amtrelay, "10 0 0 192.0.2.1", "type 0 has no relay: write `.`"),
            (amtrelay, "10 2 1 192.0.2.1", "the discovery-optional bit is 0 or 1"),
            (amtrelay, "10 0 1 2001:db8::1", "bad IPv4 relay"),
            (amtrelay, "10 0 4 x", "unknown relay type 4"),
        ] {
            let err = kind(&words(text), b"x.").unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn empty_labels_are_found_where_written() {
        for name in ["a..b", ".a", "a..", "..", "x.\\.\\...y"] {
            assert!(has_empty_label(name.as_bytes()), "{name}");
        }
        for name in [".", "a.b.", "a\\..b", "\\046.a", "a", "@", "x.\\.\\..y"] {
            assert!(!has_empty_label(name.as_bytes()), "{name}");
        }
        assert_eq!(
            bad_origin(b"$ORIGIN a..example.com.\nx A 1.2.3.4\n").as_deref(),
            Some("a..example.com.")
        );
        assert_eq!(bad_origin(b"$origin example.com. ; fine\n"), None);
        assert_eq!(bad_origin(b"$TTL 60\n"), None);
    }
}
