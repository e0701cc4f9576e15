//! BIND's `$GENERATE` directive, which `domain`'s scanner does not read:
//! [`expand`] writes the records it makes as zone-file lines, which
//! [`extra::rewrite`](super::extra::rewrite) puts in its place and maps
//! back to its line.

use std::io::Write as _;

use super::extra::{Token, is_class, is_ttl, look, units_ttl};

/// What a file's `$GENERATE`s may still make: records (at most
/// `limits.zone_records`) and bytes of text (at most
/// `limits.zone_file_size`, as for a file written out).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub records: usize,
    pub bytes: usize,
}

/// The records a `$GENERATE` made, one line each, without a final line
/// feed.
pub struct Block {
    pub text: Vec<u8>,
    pub records: u32,
}

/// How `$GENERATE` is written, for its error messages.
const GENERATE_USAGE: &str = "write `$GENERATE start-stop[/step] owner [TTL] [class] type data`, \
                              with the data in quotes if it has blanks";

/// Expands BIND's `$GENERATE range owner [TTL] [class] type data` (its
/// words after the directive): a record for each number of the range,
/// with the number put into the owner and the data by [`substitute`]. As
/// in BIND, the data is one word, quoted when it has blanks, and read as
/// the record's data once the number is in (`"10 mail$"` for an MX).
/// Takes the records and bytes it makes from `budget`.
pub fn expand(words: &[Token<'_>], budget: &mut Budget) -> Result<Block, String> {
    if !(4..=6).contains(&words.len()) {
        return Err(format!("{} words after the directive: {GENERATE_USAGE}", words.len()));
    }
    let (start, stop, step) = generate_range(&words[0])?;
    let count = (stop - start) / step + 1;
    if count > budget.records as u64 {
        return Err(format!(
            "the range {} makes {count} records, over limits.zone_records ({} left)",
            String::from_utf8_lossy(words[0].text),
            budget.records
        ));
    }
    budget.records -= count as usize;
    let (owner, data) = (&words[1], &words[words.len() - 1]);
    if owner.quoted {
        return Err("the owner is in quotes; only the data may be".into());
    }
    // [TTL] [class] type, in either order: a word after the type would be
    // data the quotes left out.
    let middle = &words[2..words.len() - 1];
    let ttl_or_class = |w: &Token<'_>| !w.quoted && (is_ttl(w.text) || units_ttl(w.text).is_some() || is_class(w.text));
    if middle.iter().position(|w| !ttl_or_class(w)) != Some(middle.len() - 1) {
        return Err(format!("no type, or more than one word of data: {GENERATE_USAGE}"));
    }
    // Room for the records, up to 64 MiB at first: the rest as they come.
    let guess = (count as usize).saturating_mul(owner.text.len() + data.text.len() + 12);
    let mut text = Vec::with_capacity(guess.min(64 << 20));
    for i in 0..count {
        let n = start + i * step;
        if i > 0 {
            text.push(b'\n');
        }
        let line = text.len();
        substitute(owner.text, n, &mut text)?;
        if text[line] == b'$' {
            // An owner, not a directive.
            text.insert(line, b'\\');
        }
        for word in middle {
            text.push(b' ');
            if word.quoted {
                text.push(b'"');
            }
            text.extend_from_slice(word.text);
            if word.quoted {
                text.push(b'"');
            }
        }
        text.push(b' ');
        substitute(data.text, n, &mut text)?;
        if text.len() > budget.bytes {
            return Err(format!(
                "its records come to more bytes than limits.zone_file_size allows ({} left), by the one for {n}",
                budget.bytes
            ));
        }
        let look = look(&text[line..]);
        if look.lines > 0 || look.unclosed.is_some() {
            return Err(format!(
                "the record made for {n} does not fit on one line: {}",
                String::from_utf8_lossy(&text[line..]).escape_debug()
            ));
        }
    }
    budget.bytes -= text.len();
    Ok(Block {
        text,
        records: count as u32,
    })
}

/// `start-stop` or `start-stop/step`, numbers from 0 to 2^31 - 1 as in
/// BIND.
fn generate_range(word: &Token<'_>) -> Result<(u64, u64, u64), String> {
    let bad = || {
        format!(
            "bad range {:?}: write start-stop or start-stop/step, with start <= stop, \
             step >= 1 and numbers up to 2147483647",
            String::from_utf8_lossy(word.text)
        )
    };
    let number = |text: &[u8]| -> Result<u64, String> {
        std::str::from_utf8(text)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&n| n <= i32::MAX as u64)
            .ok_or_else(bad)
    };
    let (range, step) = match memchr::memchr(b'/', word.text) {
        Some(at) => (&word.text[..at], number(&word.text[at + 1..])?),
        None => (word.text, 1),
    };
    let dash = memchr::memchr(b'-', range).ok_or_else(bad)?;
    let (start, stop) = (number(&range[..dash])?, number(&range[dash + 1..])?);
    if word.quoted || start > stop || step == 0 {
        return Err(bad());
    }
    Ok((start, stop, step))
}

/// Writes a `$GENERATE` owner or data template with the number `n` put
/// in, as BIND does: `$` is the number; `${offset[,width[,base]]}` is the
/// number plus `offset`, zero-padded to `width` characters, in base `d`
/// (decimal), `o` (octal), `x` or `X` (hexadecimal), or `n` or `N`
/// (nibbles, least significant first, separated by dots, as in
/// ip6.arpa names); `$$` is a `$`; a `\` and the character after it are
/// kept as written. As in BIND, an offset also holds for the plain `$`s
/// after it in the same word (`${5000}-$` is `5003-5003` for 3).
fn substitute(template: &[u8], n: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let mut i = 0;
    // As in BIND, an offset holds for the `$`s after it in the same word.
    let mut offset = 0;
    while let Some(&b) = template.get(i) {
        match b {
            b'\\' => {
                let end = (i + 2).min(template.len());
                out.extend_from_slice(&template[i..end]);
                i = end;
            }
            b'$' if template.get(i + 1) == Some(&b'$') => {
                out.push(b'$');
                i += 2;
            }
            b'$' => {
                i += 1;
                let (width, base) = if template.get(i) == Some(&b'{') {
                    let close =
                        memchr::memchr(b'}', &template[i..]).ok_or_else(|| "a `${` without its `}`".to_string())?;
                    let spec = &template[i + 1..i + close];
                    i += close + 1;
                    let (new_offset, width, base) = modifier(spec)?;
                    offset = new_offset;
                    (width, base)
                } else {
                    (0, b'd')
                };
                let value = n as i64 + offset;
                if value > i64::from(i32::MAX) {
                    return Err(format!("{n} with offset {offset} is over 2147483647"));
                }
                let at = out.len();
                number(value, width, base, out)?;
                if out.len() - at > 127 {
                    return Err("a number wider than 127 characters".into());
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(())
}

/// The `offset[,width[,base]]` of a `${...}`.
fn modifier(spec: &[u8]) -> Result<(i64, usize, u8), String> {
    let bad = || {
        format!(
            "bad ${{{}}}: write ${{offset}}, ${{offset,width}} or ${{offset,width,base}}, \
             with a width up to 127 and base d, o, x, X, n or N",
            String::from_utf8_lossy(spec)
        )
    };
    let text = std::str::from_utf8(spec).map_err(|_| bad())?;
    let mut parts = text.split(',');
    let offset = parts.next().and_then(|p| p.parse::<i32>().ok()).ok_or_else(bad)?;
    let width = match parts.next() {
        Some(p) => p.parse::<usize>().ok().filter(|&w| w <= 127).ok_or_else(bad)?,
        None => 0,
    };
    let base = match parts.next() {
        Some(p) if p.len() == 1 && b"doxXnN".contains(&p.as_bytes()[0]) => p.as_bytes()[0],
        Some(_) => return Err(bad()),
        None => b'd',
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((i64::from(offset), width, base))
}

/// Writes `value` as a `${...}` asks.
fn number(value: i64, width: usize, base: u8, out: &mut Vec<u8>) -> Result<(), String> {
    // Octal and hexadecimal show a negative number as its 32-bit two's
    // complement, as BIND's printf does.
    let unsigned = value as i32 as u32;
    let _ = match base {
        b'o' => write!(out, "{unsigned:0width$o}"),
        b'x' => write!(out, "{unsigned:0width$x}"),
        b'X' => write!(out, "{unsigned:0width$X}"),
        b'n' | b'N' => {
            if value < 0 {
                return Err(format!("{value} has no nibble form"));
            }
            let digits: &[u8; 16] = if base == b'n' {
                b"0123456789abcdef"
            } else {
                b"0123456789ABCDEF"
            };
            let (mut value, mut width) = (value as u64, width);
            loop {
                out.push(digits[(value & 0xf) as usize]);
                value >>= 4;
                width = width.saturating_sub(1);
                if width > 0 || value != 0 {
                    out.push(b'.');
                    width = width.saturating_sub(1);
                }
                if value == 0 && width == 0 {
                    break;
                }
            }
            Ok(())
        }
        _ => write!(out, "{value:0width$}"),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_numbers_as_bind_writes_them() {
        let put = |template: &str, n| {
            let mut out = Vec::new();
            substitute(template.as_bytes(), n, &mut out).map(|()| String::from_utf8(out).unwrap())
        };
        for (template, n, want) in [
            ("h$", 7, "h7"),
            ("${0,3}", 7, "007"),
            ("${-10}", 7, "-3"),
            ("${-10,4}", 7, "-003"),
            ("${0,0,o}", 8, "10"),
            ("${0,4,x}.${0,0,X}", 255, "00ff.FF"),
            ("${-1,0,x}", 0, "ffffffff"),
            ("${0,0,n}", 0, "0"),
            ("${0,0,n}", 0x1ab, "b.a.1"),
            ("${0,0,N}", 0x1ab, "B.A.1"),
            ("${0,4,n}", 0x1, "1.0."),
            ("${0,5,n}", 0x1, "1.0.0"),
            ("${0,2,n}", 0xfff, "f.f.f"),
            ("$$\\$\\\\$", 3, "$\\$\\\\3"),
            ("${5000}-$", 3, "5003-5003"),
        ] {
            assert_eq!(put(template, n).as_deref(), Ok(want), "{template} for {n}");
        }
        for (template, n, want) in [
            ("${1,x}", 1, "bad ${1,x}"),
            ("${1,200}", 1, "bad ${1,200}"),
            ("${a}", 1, "bad ${a}"),
            ("${1,2,d,4}", 1, "bad ${1,2,d,4}"),
            ("${1", 1, "without its `}`"),
            ("${-5,0,n}", 1, "-4 has no nibble form"),
            ("${1}", i32::MAX as u64, "over 2147483647"),
        ] {
            let err = put(template, n).unwrap_err();
            assert!(err.contains(want), "{template}: {err}");
        }
    }
}
