//! SIP messages (RFC 3261) as the monitor needs them: request or status
//! line, the dialog and registration headers, and the SDP media of the
//! body (RFC 4566). Not valid SIP is an error with a reason, never a panic.
//!
//! A message borrows its text from the bytes it was parsed from; only a
//! folded header, or a value that must be lower-cased, is copied.
//! `Message::into_owned` detaches one from its buffer.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::grammar::{
    at, is_lws, is_lws_byte, is_token, line, lower, lws_trim, params, scan_quotes, split_list,
    token_len, uri_ok, via_branch,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartLine<'a> {
    Request {
        method: Cow<'a, str>,
        uri: Cow<'a, str>,
    },
    Response {
        status: u16,
        reason: Cow<'a, str>,
    },
}

/// A name-addr header (From, To, Contact): the URI and its tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NameAddr<'a> {
    pub uri: Cow<'a, str>,
    pub tag: Option<Cow<'a, str>>,
    /// `expires` parameter (Contact).
    pub expires: Option<u32>,
}

impl NameAddr<'_> {
    /// The address of record, user@host of a sip: or sips: URI, without
    /// port or parameters (one terminal, whatever port it used).
    pub fn aor(&self) -> String {
        let u = self.uri.as_bytes();
        let scheme = if u.len() >= 5 && u[..5].eq_ignore_ascii_case(b"sips:") {
            5
        } else if u.len() >= 4 && u[..4].eq_ignore_ascii_case(b"sip:") {
            4
        } else {
            0
        };
        let end = u[scheme..]
            .iter()
            .position(|&c| c == b';' || c == b'?')
            .map_or(u.len(), |i| scheme + i);
        // Cut at ASCII bytes: character boundaries.
        let u = &self.uri[scheme..end];
        match u.as_bytes().iter().rposition(|&c| c == b'@') {
            Some(at) => {
                let mut aor = String::with_capacity(u.len());
                aor.push_str(&u[..at + 1]);
                push_host(&mut aor, &u[at + 1..]);
                aor
            }
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
    let mut s = String::new();
    push_host(&mut s, hostport);
    s
}

/// `host_of(hostport)` appended to `out`.
fn push_host(out: &mut String, hostport: &str) {
    use std::fmt::Write;
    if let Some(rest) = hostport.strip_prefix('[') {
        let inner = rest.split(']').next().unwrap_or("");
        let _ = match inner.parse::<std::net::Ipv6Addr>() {
            Ok(a) => write!(out, "[{a}]"),
            Err(_) => write!(out, "[{}]", inner.to_ascii_lowercase()),
        };
        return;
    }
    let host = &hostport[..at(hostport.as_bytes(), b':').unwrap_or(hostport.len())];
    out.push_str(host);
    // Lower-cased in place: ASCII letters only, so still UTF-8.
    let from = out.len() - host.len();
    out[from..].make_ascii_lowercase();
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
pub struct Media<'a> {
    pub kind: Cow<'a, str>,
    pub port: u16,
    pub proto: Cow<'a, str>,
    /// Codec names from a=rtpmap, in payload order.
    pub codecs: Vec<Cow<'a, str>>,
    /// Bandwidth from b= (kbit/s), media level or session level.
    pub bandwidth_kbps: Option<u32>,
    /// The connection address from c= (`IN IP4` or `IN IP6`), media level
    /// or session level; None when absent or not a valid address of the
    /// type it names.
    pub address: Option<std::net::IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub call_id: Cow<'a, str>,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    pub cseq: u32,
    pub cseq_method: Cow<'a, str>,
    pub via_branch: Option<Cow<'a, str>>,
    pub contact: Option<NameAddr<'a>>,
    pub expires: Option<u32>,
    pub content_length: usize,
    pub session_expires: Option<u32>,
    /// Lower-cased.
    pub content_type: Option<Cow<'a, str>>,
    /// SIP-ETag / SIP-If-Match (RFC 3903), Event (lower-cased).
    pub etag: Option<Cow<'a, str>>,
    pub if_match: Option<Cow<'a, str>>,
    pub event: Option<Cow<'a, str>>,
    pub media: Vec<Media<'a>>,
    /// The body as received.
    #[serde(skip)]
    pub body: Cow<'a, [u8]>,
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

/// The headers the parser reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    ContentLength,
    ContentType,
    Expires,
    SessionExpires,
    SipEtag,
    SipIfMatch,
    Event,
    Date,
}

/// The header a name is, whatever its case or form (RFC 3261 §7.3.3's
/// compact forms, RFC 3265's `o` for Event, RFC 4028's `x` for
/// Session-Expires); `None` for the headers the monitor does not read.
/// Picked by length first: one comparison for most names.
fn header(name: &str) -> Option<Header> {
    use Header::*;
    let is = |full: &str| name.eq_ignore_ascii_case(full);
    let h = match name.len() {
        1 => match name.as_bytes()[0].to_ascii_lowercase() {
            b'v' => Via,
            b'f' => From,
            b't' => To,
            b'i' => CallId,
            b'm' => Contact,
            b'l' => ContentLength,
            b'c' => ContentType,
            b'x' => SessionExpires,
            b'o' => Event,
            _ => return None,
        },
        2 if is("to") => To,
        3 if is("via") => Via,
        4 if is("from") => From,
        4 if is("cseq") => CSeq,
        4 if is("date") => Date,
        5 if is("event") => Event,
        7 if is("call-id") => CallId,
        7 if is("contact") => Contact,
        7 if is("expires") => Expires,
        8 if is("sip-etag") => SipEtag,
        12 if is("max-forwards") => MaxForwards,
        12 if is("content-type") => ContentType,
        12 if is("sip-if-match") => SipIfMatch,
        14 if is("content-length") => ContentLength,
        15 if is("session-expires") => SessionExpires,
        _ => return None,
    };
    Some(h)
}

/// `s`, a piece of `head` or of a copy of a folded line, as a piece of
/// `head` when it is one (no copy), else copied.
fn lift<'a>(head: &'a str, s: &str) -> Cow<'a, str> {
    let (base, at) = (head.as_ptr() as usize, s.as_ptr() as usize);
    if at >= base && at + s.len() <= base + head.len() {
        Cow::Borrowed(&head[at - base..at - base + s.len()])
    } else {
        Cow::Owned(s.to_owned())
    }
}

fn lift_na<'a>(head: &'a str, n: NameAddr<'_>) -> NameAddr<'a> {
    NameAddr {
        uri: lift(head, &n.uri),
        tag: n.tag.as_deref().map(|t| lift(head, t)),
        expires: n.expires,
    }
}

/// A name-addr or addr-spec header value (From, To, one Contact):
/// `"Display" <sip:a@b>;tag=x`, `Display <sip:a@b>`, `sip:a@b;tag=x`.
/// The display name is a quoted string or tokens; the URI is valid and,
/// outside `<>`, holds no `?` or `,` (those need the brackets, §20).
fn name_addr<'v>(h: &'static str, v: &'v str) -> Result<NameAddr<'v>, SipError> {
    let bad = || SipError::BadValue(h, v.chars().take(80).collect());
    let (lt, gt, closed) = scan_quotes(v);
    if !closed {
        return Err(bad());
    }
    let (uri, tail) = match (lt, gt) {
        (Some(a), Some(b)) if b > a => {
            let display = lws_trim(&v[..a]);
            let display_ok = display.is_empty()
                || (display.starts_with('"') && display.ends_with('"') && display.len() >= 2)
                || display
                    .split(is_lws)
                    .filter(|t| !t.is_empty())
                    .all(is_token);
            if !display_ok {
                return Err(bad());
            }
            (&v[a + 1..b], &v[b + 1..])
        }
        (None, None) => {
            let end = at(v.as_bytes(), b';').unwrap_or(v.len());
            let u = lws_trim(&v[..end]);
            if u.bytes().any(|c| c == b'?' || c == b',') {
                return Err(bad());
            }
            (u, &v[end..])
        }
        _ => return Err(bad()),
    };
    if !uri_ok(uri, false) {
        return Err(bad());
    }
    // `tail` is what follows the URI: its first ';' starts them.
    let (mut tag, mut expires) = (None, None);
    for (k, val) in params(tail) {
        if tag.is_none() && k.eq_ignore_ascii_case("tag") {
            tag = Some(Cow::Borrowed(val));
        } else if expires.is_none() && k.eq_ignore_ascii_case("expires") {
            expires = Some(val.parse::<u32>().map_err(|_| bad())?);
        }
    }
    Ok(NameAddr {
        uri: Cow::Borrowed(uri),
        tag,
        expires,
    })
}

/// A run of ASCII digits as a number; `None` for anything else (no sign,
/// no white space) or one too large.
fn digits<T: std::str::FromStr>(v: &str) -> Option<T> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// The headers read so far.
#[derive(Default)]
struct Fields<'a> {
    call_id: Option<Cow<'a, str>>,
    from: Option<NameAddr<'a>>,
    to: Option<NameAddr<'a>>,
    cseq: Option<(u32, Cow<'a, str>)>,
    via_branch: Option<Cow<'a, str>>,
    has_via: bool,
    max_forwards: Option<u8>,
    contact: Option<NameAddr<'a>>,
    expires: Option<u32>,
    content_length: Option<usize>,
    session_expires: Option<u32>,
    content_type: Option<Cow<'a, str>>,
    etag: Option<Cow<'a, str>>,
    if_match: Option<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> {
    /// Read one header line (`l`: from `head`, or an unfolded copy).
    fn header(&mut self, head: &'a str, l: &str) -> Result<(), SipError> {
        // field-name = token, then optional white space before HCOLON.
        let b = l.as_bytes();
        let n = token_len(b);
        let mut colon = n;
        while colon < b.len() && (b[colon] == b' ' || b[colon] == b'\t') {
            colon += 1;
        }
        if colon == b.len() || b[colon] != b':' || n == 0 {
            return Err(SipError::BadHeader(l.to_string()));
        }
        let (name, value) = (&l[..n], &l[colon + 1..]);
        let Some(name) = header(name) else {
            return Ok(()); // a header the monitor does not read
        };
        let value = lws_trim(value);
        let lift = |s: &str| lift(head, s);
        // A header that takes one value, seen twice (§7.3.1: only list
        // headers may repeat).
        let once = |seen: bool, h: &'static str| {
            if seen {
                Err(SipError::BadValue(h, "appears more than once".into()))
            } else {
                Ok(())
            }
        };
        match name {
            Header::CallId => {
                once(self.call_id.is_some(), "Call-ID")?;
                if value.is_empty() || value.bytes().any(|c| c == b' ' || c == b'\t') {
                    return Err(SipError::BadValue("Call-ID", value.into()));
                }
                self.call_id = Some(lift(value))
            }
            Header::From => {
                once(self.from.is_some(), "From")?;
                self.from = Some(lift_na(head, name_addr("From", value)?))
            }
            Header::To => {
                once(self.to.is_some(), "To")?;
                self.to = Some(lift_na(head, name_addr("To", value)?))
            }
            Header::CSeq => {
                once(self.cseq.is_some(), "CSeq")?;
                // 1*DIGIT LWS Method; the number below 2^31 (§8.1.1.5).
                let bad = || SipError::BadValue("CSeq", value.into());
                // The value is trimmed: a token after the number and white
                // space is all there may be.
                let b = value.as_bytes();
                let digits_end = b
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .unwrap_or(b.len());
                let (n, m) = (&value[..digits_end], lws_trim(&value[digits_end..]));
                if digits_end == b.len() || !is_lws_byte(b[digits_end]) || !is_token(m) {
                    return Err(bad());
                }
                let n = digits::<u32>(n).filter(|&n| n < 1 << 31).ok_or_else(bad)?;
                self.cseq = Some((n, lift(m)));
            }
            Header::Via => {
                self.has_via = true;
                if self.via_branch.is_none() {
                    self.via_branch = via_branch(value).map(lift);
                }
            }
            Header::MaxForwards => {
                once(self.max_forwards.is_some(), "Max-Forwards")?;
                let v = digits::<u8>(value)
                    .ok_or_else(|| SipError::BadValue("Max-Forwards", value.into()))?;
                self.max_forwards = Some(v);
            }
            Header::Contact => {
                if value == "*" {
                    self.contact = Some(NameAddr {
                        uri: "*".into(),
                        ..Default::default()
                    });
                } else {
                    let mut first = self.contact.is_none();
                    let contact = &mut self.contact;
                    split_list(value, |c| {
                        let na = name_addr("Contact", c)?;
                        if std::mem::take(&mut first) {
                            *contact = Some(lift_na(head, na));
                        }
                        Ok(())
                    })?;
                }
            }
            Header::Expires => {
                self.expires = Some(
                    value
                        .parse()
                        .map_err(|_| SipError::BadValue("Expires", value.into()))?,
                )
            }
            Header::ContentLength => {
                let n = digits::<usize>(value)
                    .ok_or_else(|| SipError::BadValue("Content-Length", value.into()))?;
                // Two lengths that disagree (§20.14): which is the body?
                if self.content_length.is_some_and(|c| c != n) {
                    return Err(SipError::BadValue(
                        "Content-Length",
                        "conflicting values".into(),
                    ));
                }
                self.content_length = Some(n);
            }
            Header::SessionExpires => {
                self.session_expires = value
                    .split(';')
                    .next()
                    .and_then(|v| lws_trim(v).parse().ok())
            }
            Header::ContentType => self.content_type = Some(lift_lower(head, value)),
            Header::SipEtag => self.etag = Some(lift(value)),
            Header::SipIfMatch => self.if_match = Some(lift(value)),
            Header::Event => self.event = Some(lift_lower(head, value)),
            // rfc1123-date: always GMT (§20.17).
            Header::Date if !value.ends_with(" GMT") => {
                return Err(SipError::BadValue("Date", value.into()))
            }
            Header::Date => {}
        }
        Ok(())
    }
}

/// `s` lower-cased, borrowed from `head` when it already is.
fn lift_lower<'a>(head: &'a str, s: &str) -> Cow<'a, str> {
    match lower(s) {
        Cow::Borrowed(b) => lift(head, b),
        Cow::Owned(o) => Cow::Owned(o),
    }
}

/// Parse one message. `data` may hold more than one (a TCP stream): the
/// message's length (head + body) is returned with it. One pass over the
/// head: each line is checked for control characters as its end is found,
/// and read as it is found.
pub fn parse(data: &[u8]) -> Result<(Message<'_>, usize), SipError> {
    // CRLFs before the start line are ignored (§7.5); other white space
    // there is not.
    let lead = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(SipError::Empty)?;
    if data[lead..].iter().all(|b| b.is_ascii_whitespace()) {
        return Err(SipError::Empty);
    }
    let data = &data[lead..];
    let head_end = BLANK_LINE
        .find(data)
        .map(|i| (i, i + 4))
        .or_else(|| BARE_BLANK_LINE.find(data).map(|i| (i, i + 2)))
        .ok_or(SipError::NoHeaderEnd)?;
    let head = std::str::from_utf8(&data[..head_end.0]).map_err(|_| SipError::NotUtf8)?;
    let hb = head.as_bytes();
    let shown = |l: &str| l.chars().take(80).collect::<String>();
    let (end, mut at, ctl) = line(hb, 0);
    let first = &head[..end];
    if ctl {
        return Err(SipError::BadStartLine(shown(first)));
    }
    let start = start_line(first)?;
    let mut f = Fields::default();
    while at <= hb.len() {
        let (end, next, ctl) = line(hb, at);
        let l = &head[at..end];
        if ctl {
            return Err(SipError::BadHeader(shown(l)));
        }
        at = next;
        // Header folding (§7.3.1): a line starting with white space
        // continues the previous one. Rare, so only then is it copied.
        let mut folded: Option<String> = None;
        while at < hb.len() && (hb[at] == b' ' || hb[at] == b'\t') {
            let (end, next, ctl) = line(hb, at);
            let more = &head[at..end];
            if ctl {
                return Err(SipError::BadHeader(shown(more)));
            }
            let joined = folded.get_or_insert_with(|| l.to_string());
            joined.push(' ');
            joined.push_str(more.trim());
            at = next;
        }
        f.header(head, folded.as_deref().unwrap_or(l))?;
    }
    let (cseq, cseq_method) = f.cseq.ok_or(SipError::Missing("CSeq"))?;
    if !f.has_via {
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
        let rfc3261 = f
            .via_branch
            .as_deref()
            .is_some_and(|b| b.starts_with("z9hG4bK"));
        if rfc3261 && f.max_forwards.is_none() {
            return Err(SipError::Missing("Max-Forwards"));
        }
    }
    let body_start = head_end.1;
    let available = data.len() - body_start;
    // Over UDP a missing Content-Length means "the rest of the datagram".
    let content_length = f.content_length.unwrap_or(available);
    if content_length > available {
        return Err(SipError::Truncated {
            declared: content_length,
            got: available,
        });
    }
    let body = &data[body_start..body_start + content_length];
    let media = if f
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/sdp"))
    {
        sdp(body)
    } else {
        Vec::new()
    };
    let msg = Message {
        start,
        call_id: f.call_id.ok_or(SipError::Missing("Call-ID"))?,
        from: f.from.ok_or(SipError::Missing("From"))?,
        to: f.to.ok_or(SipError::Missing("To"))?,
        cseq,
        cseq_method,
        via_branch: f.via_branch,
        contact: f.contact,
        expires: f.expires,
        content_length,
        session_expires: f.session_expires,
        content_type: f.content_type,
        etag: f.etag,
        if_match: f.if_match,
        event: f.event,
        media,
        body: Cow::Borrowed(body),
    };
    Ok((msg, lead + body_start + content_length))
}

/// The end of a head (CRLF CRLF, or LF LF from a lenient sender): built
/// once, a searcher's set-up costs as much as a short search.
static BLANK_LINE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
static BARE_BLANK_LINE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\n"));

/// Request-Line = Method SP Request-URI SP SIP-Version; Status-Line =
/// SIP-Version SP Status-Code SP Reason-Phrase (§7.1, §7.2, §25.1): one
/// space between the parts, a token method, a three-digit code.
fn start_line(l: &str) -> Result<StartLine<'_>, SipError> {
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
            reason: reason.into(),
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

impl<'a> Message<'a> {
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
