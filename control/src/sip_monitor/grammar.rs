//! The pieces of RFC 3261's grammar (§25.1) the parser checks values
//! against: tokens, URIs, quoted strings and comma-separated lists.

use super::sip::SipError;

/// The first `c` in `b`. A plain loop: the values searched are short,
/// where it beats a vectorised search's setup.
#[inline]
pub(super) fn at(b: &[u8], c: u8) -> Option<usize> {
    b.iter().position(|&x| x == c)
}

/// The `;name=value` parameters after the first `;` of `v` (a Via, a
/// name-addr's tail), names and values trimmed, a value's quotes
/// dropped; a parameter without `=` has an empty value.
pub(super) struct Params<'v> {
    rest: Option<&'v str>,
}

pub(super) fn params(v: &str) -> Params<'_> {
    Params {
        rest: at(v.as_bytes(), b';').map(|i| &v[i + 1..]),
    }
}

impl<'v> Iterator for Params<'v> {
    type Item = (&'v str, &'v str);

    fn next(&mut self) -> Option<(&'v str, &'v str)> {
        let r = self.rest?;
        let (p, rest) = match at(r.as_bytes(), b';') {
            Some(i) => (&r[..i], Some(&r[i + 1..])),
            None => (r, None),
        };
        self.rest = rest;
        let (k, val) = match at(p.as_bytes(), b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, ""),
        };
        Some((lws_trim(k), lws_trim(val).trim_matches('"')))
    }
}

/// The branch parameter of a Via value's first via-parm (its parameters
/// end at a comma, where the next via-parm starts).
pub(super) fn via_branch(v: &str) -> Option<&str> {
    let b = v.as_bytes();
    let mut i = b.iter().position(|&c| c == b';' || c == b',')?;
    while b[i] == b';' {
        let start = i + 1;
        let end = b[start..]
            .iter()
            .position(|&c| c == b';' || c == b',')
            .map_or(b.len(), |k| start + k);
        let p = &v[start..end];
        let (k, val) = match at(p.as_bytes(), b'=') {
            Some(e) => (&p[..e], &p[e + 1..]),
            None => (p, ""),
        };
        if lws_trim(k).eq_ignore_ascii_case("branch") {
            return Some(lws_trim(val).trim_matches('"'));
        }
        if end == b.len() {
            return None;
        }
        i = end;
    }
    None
}

/// A byte class as a lookup table: alphanumerics and `extra`.
const fn class(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// RFC 3261 §25.1 `token` characters.
static TOKEN: [bool; 256] = class(b"-.!%*_+`'~");
/// The characters of a URI but `%` (unreserved, reserved, the brackets of
/// an IPv6 reference).
static URI_PLAIN: [bool; 256] = class(b"-_.!~*'();/?:@&=+$,[]");

fn is_token_char(b: u8) -> bool {
    TOKEN[b as usize]
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// The length of the token `b` starts with.
pub(super) fn token_len(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() && TOKEN[b[i] as usize] {
        i += 1;
    }
    i
}

/// Characters a URI may hold (§25.1: unreserved, reserved, escaped, and
/// the brackets of an IPv6 reference); `%` must start an escape.
fn uri_chars_ok(b: &[u8]) -> bool {
    let mut i = 0;
    loop {
        // The plain characters, in a tight loop; then what stopped it.
        while i < b.len() && URI_PLAIN[b[i] as usize] {
            i += 1;
        }
        if i == b.len() {
            return true;
        }
        if b[i] != b'%'
            || i + 2 >= b.len()
            || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            return false;
        }
        i += 3;
    }
}

/// A URI: `scheme ":" rest` (§19.1, RFC 2396), its characters valid; a
/// sip: or sips: URI has a host. `request`: a Request-URI, whose SIP URI
/// carries no headers (§19.1.1, table 1).
pub(super) fn uri_ok(u: &str, request: bool) -> bool {
    let b = u.as_bytes();
    let Some(colon) = at(b, b':') else {
        return false;
    };
    let (scheme, rest) = (&b[..colon], &b[colon + 1..]);
    if scheme.is_empty()
        || !scheme[0].is_ascii_alphabetic()
        || !scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
        || rest.is_empty()
        || !uri_chars_ok(rest)
    {
        return false;
    }
    if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
        // userinfo may hold ';', '?' and '/', the host part may not.
        let host_part = match rest.iter().rposition(|&c| c == b'@') {
            Some(i) => &rest[i + 1..],
            None => rest,
        };
        let end = host_part
            .iter()
            .position(|&c| c == b';' || c == b'?')
            .unwrap_or(host_part.len());
        if end == 0 || (request && at(host_part, b'?').is_some()) {
            return false;
        }
    }
    true
}

/// The bytes of `v` outside quoted strings (a backslash escapes the next
/// character inside one), with their offsets. The delimiters looked
/// for are ASCII, which no byte of a multi-byte UTF-8 character equals.
struct Unquoted<'a> {
    bytes: std::iter::Enumerate<std::slice::Iter<'a, u8>>,
    quoted: bool,
    escaped: bool,
}

impl<'a> Unquoted<'a> {
    fn new(v: &'a str) -> Self {
        Self {
            bytes: v.as_bytes().iter().enumerate(),
            quoted: false,
            escaped: false,
        }
    }
}

impl Iterator for Unquoted<'_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        for (i, &c) in self.bytes.by_ref() {
            if self.quoted {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == b'"' {
                    self.quoted = false;
                }
            } else if c == b'"' {
                self.quoted = true;
            } else {
                return Some((i, c));
            }
        }
        None
    }
}

/// The byte offsets of `<` and the first `>` after it, outside quoted
/// strings, and whether every quoted string ends.
pub(super) fn scan_quotes(v: &str) -> (Option<usize>, Option<usize>, bool) {
    let b = v.as_bytes();
    let (mut lt, mut gt) = (None, None);
    let mut i = 0;
    while let Some(k) = b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'<' || c == b'>')
    {
        let j = i + k;
        i = j + 1;
        match b[j] {
            b'<' if lt.is_none() => lt = Some(j),
            b'>' if lt.is_some() && gt.is_none() => gt = Some(j),
            b'"' => {
                // To the closing quote; a backslash escapes the next byte.
                loop {
                    match b[i.min(b.len())..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\')
                    {
                        None => return (lt, gt, false),
                        Some(k) if b[i + k] == b'\\' => i += k + 2,
                        Some(k) => {
                            i += k + 1;
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (lt, gt, true)
}

/// Split a header value at the commas outside quoted strings and `<>`,
/// calling `each` on every element in order (the first error stops it).
pub(super) fn split_list<'v>(
    v: &'v str,
    mut each: impl FnMut(&'v str) -> Result<(), SipError>,
) -> Result<(), SipError> {
    if memchr::memchr2(b',', b'"', v.as_bytes()).is_none() {
        return each(lws_trim(v)); // one element, nothing quoted
    }
    let (mut start, mut angle) = (0, false);
    for (i, c) in Unquoted::new(v) {
        match c {
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => {
                each(lws_trim(&v[start..i]))?;
                start = i + 1;
            }
            _ => {}
        }
    }
    each(lws_trim(&v[start..]))
}

/// `s` without the white space (SP, HTAB) around it: the only white
/// space a header holds once its control characters are refused.
pub(super) fn lws_trim(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut i, mut j) = (0, b.len());
    while i < j && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    while j > i && (b[j - 1] == b' ' || b[j - 1] == b'\t') {
        j -= 1;
    }
    // Both ends are at ASCII bytes, so at character boundaries.
    &s[i..j]
}

pub(super) fn is_lws_byte(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(super) fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `s` in lower case, copied only when it has an upper-case letter.
pub(super) fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        s.to_ascii_lowercase().into()
    } else {
        s.into()
    }
}

/// Whether an 8-byte word holds a byte below 0x20 or DEL (exact for the
/// word as a whole, not per byte).
fn has_control(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let x = w ^ (ONES * 0x7f);
    let del = x.wrapping_sub(ONES) & !x & HIGH;
    below | del != 0
}

/// One line of a message head from byte `from`: where its text ends
/// (before CR LF, or LF), where the next line starts, and whether it holds
/// a control character (§25.1: none is in any production of a start line
/// or header; HTAB is white space; a CR is one unless it ends the line).
/// Eight bytes at a time while none is below 0x20.
pub(super) fn line(b: &[u8], from: usize) -> (usize, usize, bool) {
    let mut i = from;
    let mut ctl = false;
    loop {
        while i + 8 <= b.len() {
            let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            if has_control(w) {
                break;
            }
            i += 8;
        }
        // Byte by byte to the next control character (at most a word).
        let stop = (i + 8).min(b.len());
        while i < stop {
            let c = b[i];
            if c < 0x20 || c == 0x7f {
                break;
            }
            i += 1;
        }
        if i == b.len() {
            // The head's last line; a CR before the blank line is its end.
            let end = if i > from && b[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            return (end, i + 1, ctl);
        }
        if i == stop {
            continue;
        }
        match b[i] {
            b'\n' => {
                let end = if i > from && b[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                return (end, i + 1, ctl);
            }
            b'\t' => {}
            b'\r' if i + 1 == b.len() || b[i + 1] == b'\n' => {}
            _ => ctl = true,
        }
        i += 1;
    }
}
