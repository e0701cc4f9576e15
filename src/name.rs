//! Domain names in wire form (RFC 1035 §3.1): the helpers the zone loader,
//! the snapshot compiler and the answer path share.
//!
//! Names are kept as uncompressed wire bytes. Index keys are the same bytes
//! lower-cased: length octets are at most 63, below `b'A'`, so lower-casing
//! every byte of a wire name only touches the letters (RFC 4343).

use std::fmt::Write as _;

/// The longest name in wire form (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// The root name in wire form.
pub const ROOT: &[u8] = &[0];

/// Returns `wire` lower-cased: the key of the name in every index.
pub fn to_key(wire: &[u8]) -> Vec<u8> {
    wire.to_ascii_lowercase()
}

/// Returns the offsets at which the labels of `wire` start, root excluded.
///
/// `wire` must be a valid uncompressed name (as produced by `domain`).
pub fn label_starts(wire: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        starts.push(pos);
        pos += 1 + usize::from(wire[pos]);
    }
    starts
}

/// Returns the length of the uncompressed name at the start of `wire`, or
/// `None` if it runs past the end.
pub fn wire_len(wire: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = usize::from(*wire.get(pos)?);
        pos += 1 + len;
        if len == 0 {
            return if pos <= wire.len() { Some(pos) } else { None };
        }
        if len > 63 {
            return None;
        }
    }
}

/// Returns the parent of `wire` (the name without its first label), or
/// `None` for the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    match wire.first() {
        Some(&0) | None => None,
        Some(&len) => wire.get(1 + usize::from(len)..),
    }
}

/// Whether `name` equals `zone` or lies below it; both are keys.
pub fn is_within(name: &[u8], zone: &[u8]) -> bool {
    let mut rest = name;
    loop {
        if rest.len() == zone.len() {
            return rest == zone;
        }
        if rest.len() < zone.len() {
            return false;
        }
        match parent(rest) {
            Some(p) => rest = p,
            None => return false,
        }
    }
}

/// Whether the first label of `wire` is the wildcard label `*` (RFC 4592).
pub fn is_wildcard(wire: &[u8]) -> bool {
    wire.len() >= 2 && wire[0] == 1 && wire[1] == b'*'
}

/// Renders a wire name in presentation format, with a trailing dot and
/// RFC 1035 §5.1 escapes, for messages and logs.
pub fn to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        let len = usize::from(wire[pos]);
        let end = (pos + 1 + len).min(wire.len());
        for &b in &wire[pos + 1..end] {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
        pos = end;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WWW: &[u8] = b"\x03www\x07example\x03com\x00";
    const EXAMPLE: &[u8] = b"\x07example\x03com\x00";

    #[test]
    fn parents_and_containment() {
        assert_eq!(parent(WWW), Some(EXAMPLE));
        assert_eq!(parent(ROOT), None);
        assert!(is_within(WWW, EXAMPLE));
        assert!(is_within(EXAMPLE, EXAMPLE));
        assert!(!is_within(EXAMPLE, WWW));
        assert!(is_within(WWW, ROOT));
        // "xample.com" is not a parent of "example.com" even though the bytes end alike
        assert!(!is_within(EXAMPLE, b"\x06xample\x03com\x00"));
    }

    #[test]
    fn labels_and_lengths() {
        assert_eq!(label_starts(WWW), vec![0, 4, 12]);
        assert_eq!(wire_len(WWW), Some(WWW.len()));
        assert_eq!(wire_len(&WWW[..5]), None);
        assert_eq!(wire_len(b"\x40"), None);
    }

    #[test]
    fn text_escapes() {
        assert_eq!(to_text(WWW), "www.example.com.");
        assert_eq!(to_text(ROOT), ".");
        assert_eq!(to_text(b"\x03a.b\x01\x07\x00"), "a\\.b.\\007.");
        assert!(is_wildcard(b"\x01*\x03com\x00"));
        assert!(!is_wildcard(WWW));
    }
}
