//! SIP messages (RFC 3261) as the monitor needs them: request or status
//! line, the dialog and registration headers, and the SDP media of the
//! body (RFC 4566). Not valid SIP is an error with a reason, never a panic.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { status: u16, reason: String },
}

/// A name-addr header (From, To, Contact): the URI and its tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NameAddr {
    pub uri: String,
    pub tag: Option<String>,
    /// `expires` parameter (Contact).
    pub expires: Option<u32>,
}

impl NameAddr {
    /// The address of record, user@host of a sip: or sips: URI, without
    /// port or parameters (one terminal, whatever port it used).
    pub fn aor(&self) -> String {
        let u = self
            .uri
            .trim_start_matches("sips:")
            .trim_start_matches("sip:");
        let u = u.split([';', '?']).next().unwrap_or("");
        match u.rsplit_once('@') {
            Some((user, host)) => format!("{user}@{}", host_of(host)),
            None => host_of(u),
        }
    }

    pub fn domain(&self) -> String {
        let aor = self.aor();
        aor.rsplit('@').next().unwrap_or("").to_string()
    }
}

/// The host of a `hostport` (RFC 3261 §25.1), lower-cased, without the
/// port; an IPv6 reference keeps its brackets and is written canonically
/// (`[2001:DB8:0::1]:5060` → `[2001:db8::1]`), so one terminal has one
/// address of record however its UA spells the address.
pub fn host_of(hostport: &str) -> String {
    if let Some(rest) = hostport.strip_prefix('[') {
        let inner = rest.split(']').next().unwrap_or("");
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(a) => format!("[{a}]"),
            Err(_) => format!("[{}]", inner.to_ascii_lowercase()),
        };
    }
    hostport
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A configured domain as `host_of` writes hosts: a bare IPv6 address
/// gets its brackets.
pub fn domain_of(configured: &str) -> String {
    match configured.parse::<std::net::Ipv6Addr>() {
        Ok(a) => format!("[{a}]"),
        Err(_) => host_of(configured),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    /// Codec names from a=rtpmap, in payload order.
    pub codecs: Vec<String>,
    /// Bandwidth from b= (kbit/s), media level or session level.
    pub bandwidth_kbps: Option<u32>,
    /// The connection address from c= (`IN IP4` or `IN IP6`), media level
    /// or session level; None when absent or not a valid address of the
    /// type it names.
    pub address: Option<std::net::IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub start: StartLine,
    pub call_id: String,
    pub from: NameAddr,
    pub to: NameAddr,
    pub cseq: u32,
    pub cseq_method: String,
    pub via_branch: Option<String>,
    pub contact: Option<NameAddr>,
    pub expires: Option<u32>,
    pub content_length: usize,
    pub session_expires: Option<u32>,
    pub content_type: Option<String>,
    /// SIP-ETag / SIP-If-Match (RFC 3903), Event.
    pub etag: Option<String>,
    pub if_match: Option<String>,
    pub event: Option<String>,
    pub media: Vec<Media>,
    /// The body as received.
    #[serde(skip)]
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SipError {
    Empty,
    NoHeaderEnd,
    BadStartLine(String),
    BadHeader(String),
    Missing(&'static str),
    BadValue(&'static str, String),
    /// Content-Length larger than the body received.
    Truncated {
        declared: usize,
        got: usize,
    },
    NotUtf8,
}

impl fmt::Display for SipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SipError::Empty => write!(f, "empty message"),
            SipError::NoHeaderEnd => write!(f, "no blank line ends the headers"),
            SipError::BadStartLine(l) => write!(f, "not a SIP request or status line: {l:?}"),
            SipError::BadHeader(l) => write!(f, "malformed header line: {l:?}"),
            SipError::Missing(h) => write!(f, "missing mandatory header {h}"),
            SipError::BadValue(h, v) => write!(f, "bad {h} value {v:?}"),
            SipError::Truncated { declared, got } => write!(
                f,
                "body shorter than Content-Length ({got} of {declared} bytes)"
            ),
            SipError::NotUtf8 => write!(f, "headers are not UTF-8"),
        }
    }
}

impl std::error::Error for SipError {}

impl SipError {
    /// What went wrong without the text that did: the name the monitor
    /// counts refusals by, one of a bounded set whatever arrives (the
    /// offending bytes are in `Display`, for `edgeplane sip parse`).
    pub fn reason(&self) -> std::borrow::Cow<'static, str> {
        match self {
            SipError::Empty => "empty message".into(),
            SipError::NoHeaderEnd => "no blank line ends the headers".into(),
            SipError::BadStartLine(_) => "not a SIP request or status line".into(),
            SipError::BadHeader(_) => "malformed header line".into(),
            SipError::Missing(h) => format!("missing mandatory header {h}").into(),
            SipError::BadValue(h, _) => format!("bad {h} value").into(),
            SipError::Truncated { .. } => "body shorter than Content-Length".into(),
            SipError::NotUtf8 => "headers are not UTF-8".into(),
        }
    }
}

#[cfg(test)]
use super::sdp::connection_address;
pub use super::sdp::sdp;

/// The headers the parser reads, by their canonical (lower-case) names,
/// with the RFC 3261 §7.3.3 compact forms (RFC 3265's `o` for Event, RFC
/// 4028's `x` for Session-Expires) beside them.
const KNOWN: &[(&str, &str)] = &[
    ("via", "v"),
    ("from", "f"),
    ("to", "t"),
    ("call-id", "i"),
    ("cseq", ""),
    ("max-forwards", ""),
    ("contact", "m"),
    ("content-length", "l"),
    ("content-type", "c"),
    ("expires", ""),
    ("session-expires", "x"),
    ("sip-etag", ""),
    ("sip-if-match", ""),
    ("event", "o"),
    ("date", ""),
];

/// The canonical name of a header the parser reads, whatever its case or
/// form; `None` for the others (ignored). Allocates nothing.
fn canonical(name: &str) -> Option<&'static str> {
    KNOWN.iter().find_map(|(full, short)| {
        (name.eq_ignore_ascii_case(full) || (!short.is_empty() && name.eq_ignore_ascii_case(short)))
            .then_some(*full)
    })
}

fn param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"'))
    })
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
/// The characters of a URI (unreserved, reserved, `%` of an escape, the
/// brackets of an IPv6 reference).
static URI: [bool; 256] = class(b"-_.!~*'();/?:@&=+$,[]%");

fn is_token_char(b: u8) -> bool {
    TOKEN[b as usize]
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Characters a URI may hold (§25.1: unreserved, reserved, escaped, and
/// the brackets of an IPv6 reference); `%` must start an escape.
fn uri_chars_ok(u: &str) -> bool {
    let b = u.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
            continue;
        }
        if !URI[c as usize] {
            return false;
        }
        i += 1;
    }
    true
}

/// A URI: `scheme ":" rest` (§19.1, RFC 2396), its characters valid; a
/// sip: or sips: URI has a host. `request`: a Request-URI, whose SIP URI
/// carries no headers (§19.1.1, table 1).
fn uri_ok(u: &str, request: bool) -> bool {
    let Some((scheme, rest)) = u.split_once(':') else {
        return false;
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_alphabetic()
        || !sb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        || rest.is_empty()
        || !uri_chars_ok(rest)
    {
        return false;
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // userinfo may hold ';', '?' and '/', the host part may not.
        let host_part = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
        let host = host_part.split([';', '?']).next().unwrap_or("");
        if host.is_empty() || (request && host_part.contains('?')) {
            return false;
        }
    }
    true
}

/// The bytes of `v` outside quoted strings (a backslash escapes the next
/// character inside one), with their offsets; once it has run out,
/// `closed` says whether every quoted string ended. The delimiters looked
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

    fn closed(&self) -> bool {
        !self.quoted
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
fn scan_quotes(v: &str) -> (Option<usize>, Option<usize>, bool) {
    let mut it = Unquoted::new(v);
    let (mut lt, mut gt) = (None, None);
    for (i, c) in it.by_ref() {
        match c {
            b'<' if lt.is_none() => lt = Some(i),
            b'>' if lt.is_some() && gt.is_none() => gt = Some(i),
            _ => {}
        }
    }
    (lt, gt, it.closed())
}

/// A name-addr or addr-spec header value (From, To, one Contact):
/// `"Display" <sip:a@b>;tag=x`, `Display <sip:a@b>`, `sip:a@b;tag=x`.
/// The display name is a quoted string or tokens; the URI is valid and,
/// outside `<>`, holds no `?` or `,` (those need the brackets, §20).
fn name_addr(h: &'static str, v: &str) -> Result<NameAddr, SipError> {
    let bad = || SipError::BadValue(h, v.chars().take(80).collect());
    let (lt, gt, closed) = scan_quotes(v);
    if !closed {
        return Err(bad());
    }
    let (uri, params) = match (lt, gt) {
        (Some(a), Some(b)) if b > a => {
            let display = v[..a].trim();
            let display_ok = display.is_empty()
                || (display.starts_with('"') && display.ends_with('"') && display.len() >= 2)
                || display
                    .split([' ', '\t'])
                    .filter(|t| !t.is_empty())
                    .all(is_token);
            if !display_ok {
                return Err(bad());
            }
            (v[a + 1..b].to_string(), &v[b + 1..])
        }
        (None, None) => {
            let u = v.split(';').next().unwrap_or("").trim();
            if u.contains(['?', ',']) {
                return Err(bad());
            }
            (u.to_string(), &v[v.find(';').unwrap_or(v.len())..])
        }
        _ => return Err(bad()),
    };
    if !uri_ok(&uri, false) {
        return Err(bad());
    }
    // `params` is what follows the URI: its first ';' starts them.
    let (mut tag, mut expires) = (None, None);
    for p in params.split(';').skip(1) {
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        let k = k.trim();
        if tag.is_none() && k.eq_ignore_ascii_case("tag") {
            tag = Some(val.trim().trim_matches('"').to_string());
        } else if expires.is_none() && k.eq_ignore_ascii_case("expires") {
            let e = val.trim().trim_matches('"');
            expires = Some(e.parse::<u32>().map_err(|_| bad())?);
        }
    }
    Ok(NameAddr { uri, tag, expires })
}

/// Split a header value at the commas outside quoted strings and `<>`,
/// calling `each` on every element in order (the first error stops it).
fn split_list(v: &str, mut each: impl FnMut(&str) -> Result<(), SipError>) -> Result<(), SipError> {
    let (mut start, mut angle) = (0, false);
    for (i, c) in Unquoted::new(v) {
        match c {
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => {
                each(v[start..i].trim())?;
                start = i + 1;
            }
            _ => {}
        }
    }
    each(v[start..].trim())
}

/// Parse one message. `data` may hold more than one (a TCP stream): the
/// message's length (head + body) is returned with it.
pub fn parse(data: &[u8]) -> Result<(Message, usize), SipError> {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(SipError::Empty);
    }
    // CRLFs before the start line are ignored (§7.5); other white space
    // there is not.
    let lead = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(SipError::Empty)?;
    let data = &data[lead..];
    let head_end = find(data, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| find(data, b"\n\n").map(|i| (i, i + 2)))
        .ok_or(SipError::NoHeaderEnd)?;
    let head = std::str::from_utf8(&data[..head_end.0]).map_err(|_| SipError::NotUtf8)?;
    let ctl = |l: &str| l.bytes().any(|c| (c < b' ' && c != b'\t') || c == 0x7f);
    // Lines borrow the message; only a folded one is copied.
    let mut lines: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(16);
    let mut at = 0;
    while at <= head.len() {
        let end = memchr::memchr(b'\n', &head.as_bytes()[at..]).map_or(head.len(), |i| at + i);
        let l = head[at..end].strip_suffix('\r').unwrap_or(&head[at..end]);
        let first_line = at == 0;
        at = end + 1;
        // Control characters are in no production of the start line or a
        // header (§25.1: TEXT-UTF8 excludes them; HTAB is white space).
        if ctl(l) {
            let shown = l.chars().take(80).collect();
            return Err(if first_line {
                SipError::BadStartLine(shown)
            } else {
                SipError::BadHeader(shown)
            });
        }
        // Header folding (§7.3.1): a line starting with white space
        // continues the previous one.
        if (l.starts_with(' ') || l.starts_with('\t')) && lines.len() > 1 {
            let last = lines.last_mut().unwrap().to_mut();
            last.push(' ');
            last.push_str(l.trim());
        } else {
            lines.push(std::borrow::Cow::Borrowed(l));
        }
    }
    let first = lines.first().ok_or(SipError::Empty)?;
    let start = start_line(first)?;
    let mut call_id = None;
    let mut from = None;
    let mut to = None;
    let mut cseq = None;
    let mut via_branch = None;
    let mut has_via = false;
    let mut max_forwards = None;
    let mut contact = None;
    let mut expires = None;
    let mut content_length: Option<usize> = None;
    let mut session_expires = None;
    let mut content_type = None;
    let mut etag = None;
    let mut if_match = None;
    let mut event = None;
    // A header that takes one value, seen twice (§7.3.1: only list
    // headers may repeat).
    let once = |seen: bool, h: &'static str| {
        if seen {
            Err(SipError::BadValue(h, "appears more than once".into()))
        } else {
            Ok(())
        }
    };
    for l in &lines[1..] {
        let colon =
            memchr::memchr(b':', l.as_bytes()).ok_or_else(|| SipError::BadHeader(l.to_string()))?;
        let (name, value) = (&l[..colon], &l[colon + 1..]);
        // field-name = token, then optional white space before HCOLON.
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(SipError::BadHeader(l.to_string()));
        }
        let Some(name) = canonical(name) else {
            continue; // a header the monitor does not read
        };
        let value = value.trim();
        match name {
            "call-id" => {
                once(call_id.is_some(), "Call-ID")?;
                if value.is_empty() || value.contains([' ', '\t']) {
                    return Err(SipError::BadValue("Call-ID", value.into()));
                }
                call_id = Some(value.to_string())
            }
            "from" => {
                once(from.is_some(), "From")?;
                from = Some(name_addr("From", value)?)
            }
            "to" => {
                once(to.is_some(), "To")?;
                to = Some(name_addr("To", value)?)
            }
            "cseq" => {
                once(cseq.is_some(), "CSeq")?;
                // 1*DIGIT LWS Method; the number below 2^31 (§8.1.1.5).
                let bad = || SipError::BadValue("CSeq", value.into());
                let mut it = value.split_whitespace();
                let (n, m) = (it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?);
                if it.next().is_some() || !n.bytes().all(|b| b.is_ascii_digit()) || !is_token(m) {
                    return Err(bad());
                }
                let n = n
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n < 1 << 31)
                    .ok_or_else(bad)?;
                cseq = Some((n, m.to_string()));
            }
            "via" => {
                has_via = true;
                if via_branch.is_none() {
                    via_branch =
                        param(value.split(',').next().unwrap_or(""), "branch").map(str::to_string);
                }
            }
            "max-forwards" => {
                once(max_forwards.is_some(), "Max-Forwards")?;
                let v = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse::<u8>().ok())
                    .flatten()
                    .ok_or(SipError::BadValue("Max-Forwards", value.into()))?;
                max_forwards = Some(v);
            }
            "contact" => {
                if value == "*" {
                    contact = Some(NameAddr {
                        uri: "*".into(),
                        ..Default::default()
                    });
                } else {
                    let mut first = contact.is_none();
                    split_list(value, |c| {
                        let na = name_addr("Contact", c)?;
                        if std::mem::take(&mut first) {
                            contact = Some(na);
                        }
                        Ok(())
                    })?;
                }
            }
            "expires" => {
                expires = Some(
                    value
                        .parse()
                        .map_err(|_| SipError::BadValue("Expires", value.into()))?,
                )
            }
            "content-length" => {
                let n = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse::<usize>().ok())
                    .flatten()
                    .ok_or(SipError::BadValue("Content-Length", value.into()))?;
                // Two lengths that disagree (§20.14): which is the body?
                if content_length.is_some_and(|c| c != n) {
                    return Err(SipError::BadValue(
                        "Content-Length",
                        "conflicting values".into(),
                    ));
                }
                content_length = Some(n);
            }
            "session-expires" => {
                session_expires = value.split(';').next().and_then(|v| v.trim().parse().ok())
            }
            "content-type" => content_type = Some(value.to_ascii_lowercase()),
            "sip-etag" => etag = Some(value.to_string()),
            "sip-if-match" => if_match = Some(value.to_string()),
            "event" => event = Some(value.to_ascii_lowercase()),
            // rfc1123-date: always GMT (§20.17).
            "date" if !value.ends_with(" GMT") => {
                return Err(SipError::BadValue("Date", value.into()))
            }
            _ => {}
        }
    }
    let (cseq, cseq_method) = cseq.ok_or(SipError::Missing("CSeq"))?;
    if !has_via {
        return Err(SipError::Missing("Via"));
    }
    if let StartLine::Request { method, .. } = &start {
        // §8.1.1.5: the CSeq method is the request's, case and all.
        if *method != cseq_method {
            return Err(SipError::BadValue(
                "CSeq",
                format!("method {cseq_method} in a {method} request"),
            ));
        }
        // §8.1.1: an RFC 3261 request (its branch has the magic cookie)
        // carries Max-Forwards; an RFC 2543 one may not.
        let rfc3261 = via_branch
            .as_deref()
            .is_some_and(|b| b.starts_with("z9hG4bK"));
        if rfc3261 && max_forwards.is_none() {
            return Err(SipError::Missing("Max-Forwards"));
        }
    }
    let body_start = head_end.1;
    let available = data.len() - body_start;
    // Over UDP a missing Content-Length means "the rest of the datagram".
    let content_length = content_length.unwrap_or(available);
    if content_length > available {
        return Err(SipError::Truncated {
            declared: content_length,
            got: available,
        });
    }
    let body = &data[body_start..body_start + content_length];
    let media = if content_type
        .as_deref()
        .map(|c| c.starts_with("application/sdp"))
        .unwrap_or(false)
    {
        sdp(body)
    } else {
        Vec::new()
    };
    let msg = Message {
        start,
        call_id: call_id.ok_or(SipError::Missing("Call-ID"))?,
        from: from.ok_or(SipError::Missing("From"))?,
        to: to.ok_or(SipError::Missing("To"))?,
        cseq,
        cseq_method,
        via_branch,
        contact,
        expires,
        content_length,
        session_expires,
        content_type,
        etag,
        if_match,
        event,
        media,
        body: body.to_vec(),
    };
    Ok((msg, lead + body_start + content_length))
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}

/// Request-Line = Method SP Request-URI SP SIP-Version; Status-Line =
/// SIP-Version SP Status-Code SP Reason-Phrase (§7.1, §7.2, §25.1): one
/// space between the parts, a token method, a three-digit code.
fn start_line(l: &str) -> Result<StartLine, SipError> {
    let bad = || SipError::BadStartLine(l.chars().take(80).collect());
    let version = |v: &str| v.eq_ignore_ascii_case("SIP/2.0");
    // By bytes: the line may hold multi-byte characters anywhere (byte 8
    // follows an ASCII space, so it starts one).
    let b = l.as_bytes();
    if b.len() >= 8 && b[..7].eq_ignore_ascii_case(b"SIP/2.0") && b[7] == b' ' {
        let rest = &l[8..];
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let status: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&status) {
            return Err(bad());
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_string(),
        });
    }
    let mut it = l.split(' ');
    let (m, uri, v) = (
        it.next().ok_or_else(bad)?,
        it.next().ok_or_else(bad)?,
        it.next().ok_or_else(bad)?,
    );
    if !version(v) || it.next().is_some() || !is_token(m) || !uri_ok(uri, true) {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: m.into(),
        uri: uri.into(),
    })
}

impl Message {
    pub fn method(&self) -> &str {
        match &self.start {
            StartLine::Request { method, .. } => method,
            StartLine::Response { .. } => &self.cseq_method,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            _ => None,
        }
    }

    /// A canonical rendering (headers the monitor reads, body omitted):
    /// parsing it again gives the same message, bar the body.
    pub fn render(&self) -> String {
        let mut s = match &self.start {
            StartLine::Request { method, uri } => format!("{method} {uri} SIP/2.0\r\n"),
            StartLine::Response { status, reason } => format!("SIP/2.0 {status} {reason}\r\n"),
        };
        match &self.via_branch {
            Some(b) => s += &format!("Via: SIP/2.0/UDP host.invalid;branch={b}\r\n"),
            None => s += "Via: SIP/2.0/UDP host.invalid\r\n",
        }
        if matches!(self.start, StartLine::Request { .. }) {
            s += "Max-Forwards: 70\r\n";
        }
        let na = |n: &NameAddr| {
            let mut v = format!("<{}>", n.uri);
            if let Some(t) = &n.tag {
                v += &format!(";tag={t}");
            }
            if let Some(e) = n.expires {
                v += &format!(";expires={e}");
            }
            v
        };
        s += &format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n",
            na(&self.from),
            na(&self.to),
            self.call_id,
            self.cseq,
            self.cseq_method
        );
        if let Some(c) = &self.contact {
            s += &format!(
                "Contact: {}\r\n",
                if c.uri == "*" { "*".into() } else { na(c) }
            );
        }
        if let Some(e) = self.expires {
            s += &format!("Expires: {e}\r\n");
        }
        if let Some(e) = self.session_expires {
            s += &format!("Session-Expires: {e}\r\n");
        }
        s += "Content-Length: 0\r\n\r\n";
        s
    }
}

#[cfg(test)]
#[path = "sip_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "sip_strict_tests.rs"]
mod strict_tests;
