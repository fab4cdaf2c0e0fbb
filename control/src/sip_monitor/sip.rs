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

/// RFC 3261 §7.3.3 compact forms.
fn canonical(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.as_str() {
        "i" => "call-id".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "v" => "via".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        "x" => "session-expires".into(),
        _ => n,
    }
}

fn param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"'))
    })
}

fn name_addr(v: &str) -> NameAddr {
    // "Display" <sip:a@b>;tag=x  |  sip:a@b;tag=x
    let (uri, params) = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if b > a => (v[a + 1..b].trim().to_string(), &v[b + 1..]),
        _ => {
            let u = v.split(';').next().unwrap_or("").trim().to_string();
            (u, &v[v.find(';').unwrap_or(v.len())..])
        }
    };
    let p = format!("x{params}");
    NameAddr {
        uri,
        tag: param(&p, "tag").map(str::to_string),
        expires: param(&p, "expires").and_then(|e| e.parse().ok()),
    }
}

/// Parse one message. `data` may hold more than one (a TCP stream): the
/// message's length (head + body) is returned with it.
pub fn parse(data: &[u8]) -> Result<(Message, usize), SipError> {
    let lead = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(SipError::Empty)?;
    let data = &data[lead..];
    let head_end = find(data, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| find(data, b"\n\n").map(|i| (i, i + 2)))
        .ok_or(SipError::NoHeaderEnd)?;
    let head = std::str::from_utf8(&data[..head_end.0]).map_err(|_| SipError::NotUtf8)?;
    let mut lines: Vec<String> = Vec::new();
    for l in head.split('\n').map(|l| l.trim_end_matches('\r')) {
        // Header folding (§7.3.1): a line starting with white space
        // continues the previous one.
        if (l.starts_with(' ') || l.starts_with('\t')) && !lines.is_empty() {
            let last = lines.last_mut().unwrap();
            last.push(' ');
            last.push_str(l.trim());
        } else {
            lines.push(l.to_string());
        }
    }
    let first = lines.first().ok_or(SipError::Empty)?;
    let start = start_line(first)?;
    let mut call_id = None;
    let mut from = None;
    let mut to = None;
    let mut cseq = None;
    let mut via_branch = None;
    let mut contact = None;
    let mut expires = None;
    let mut content_length = None;
    let mut session_expires = None;
    let mut content_type = None;
    let mut etag = None;
    let mut if_match = None;
    let mut event = None;
    for l in &lines[1..] {
        let (name, value) = l
            .split_once(':')
            .ok_or_else(|| SipError::BadHeader(l.clone()))?;
        if name.is_empty() || name.contains(char::is_whitespace) && name.trim().contains(' ') {
            return Err(SipError::BadHeader(l.clone()));
        }
        let value = value.trim();
        match canonical(name.trim()).as_str() {
            "call-id" => call_id = Some(value.to_string()),
            "from" => from = Some(name_addr(value)),
            "to" => to = Some(name_addr(value)),
            "cseq" => {
                let mut it = value.split_whitespace();
                let n = it
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or(SipError::BadValue("CSeq", value.into()))?;
                let m = it.next().ok_or(SipError::BadValue("CSeq", value.into()))?;
                cseq = Some((n, m.to_string()));
            }
            "via" => {
                if via_branch.is_none() {
                    via_branch =
                        param(value.split(',').next().unwrap_or(""), "branch").map(str::to_string);
                }
            }
            "contact" => {
                if contact.is_none() && value != "*" {
                    contact = Some(name_addr(value.split(',').next().unwrap_or("")));
                } else if value == "*" {
                    contact = Some(NameAddr {
                        uri: "*".into(),
                        ..Default::default()
                    });
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
                content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| SipError::BadValue("Content-Length", value.into()))?,
                )
            }
            "session-expires" => {
                session_expires = value.split(';').next().and_then(|v| v.trim().parse().ok())
            }
            "content-type" => content_type = Some(value.to_ascii_lowercase()),
            "sip-etag" => etag = Some(value.to_string()),
            "sip-if-match" => if_match = Some(value.to_string()),
            "event" | "o" => event = Some(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    let (cseq, cseq_method) = cseq.ok_or(SipError::Missing("CSeq"))?;
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
    h.windows(n.len()).position(|w| w == n)
}

fn start_line(l: &str) -> Result<StartLine, SipError> {
    let bad = || SipError::BadStartLine(l.chars().take(80).collect());
    if let Some(rest) = l.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
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
    if v != "SIP/2.0"
        || it.next().is_some()
        || m.is_empty()
        || !m.bytes().all(|b| b.is_ascii_uppercase())
        || !uri.contains(':')
    {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: m.into(),
        uri: uri.into(),
    })
}

/// The media of an SDP body: m= lines with their rtpmap codecs and b=.
pub fn sdp(body: &[u8]) -> Vec<Media> {
    let text = String::from_utf8_lossy(body);
    let mut media: Vec<Media> = Vec::new();
    let mut session_bw = None;
    let mut session_addr = None;
    let mut payloads: Vec<Vec<String>> = Vec::new();
    for l in text.lines() {
        let l = l.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            let f: Vec<&str> = m.split_whitespace().collect();
            if f.len() >= 3 {
                media.push(Media {
                    kind: f[0].into(),
                    port: f[1]
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0),
                    proto: f[2].into(),
                    codecs: Vec::new(),
                    bandwidth_kbps: session_bw,
                    address: session_addr,
                });
                payloads.push(f[3..].iter().map(|s| s.to_string()).collect());
            }
        } else if let Some(c) = l.strip_prefix("c=") {
            let addr = connection_address(c);
            match media.last_mut() {
                Some(m) => m.address = addr,
                None => session_addr = addr,
            }
        } else if let Some(b) = l.strip_prefix("b=") {
            let kbps = b.split_once(':').and_then(|(_, v)| v.trim().parse().ok());
            match media.last_mut() {
                Some(m) => m.bandwidth_kbps = kbps,
                None => session_bw = kbps,
            }
        } else if let Some(a) = l.strip_prefix("a=rtpmap:") {
            if let (Some(m), Some((pt, enc))) = (media.last_mut(), a.split_once(' ')) {
                let name = enc.split('/').next().unwrap_or("").to_string();
                let _ = pt;
                m.codecs.push(name);
            }
        }
    }
    // Static payload types without rtpmap (RFC 3551).
    for (m, pts) in media.iter_mut().zip(payloads) {
        if m.codecs.is_empty() {
            for pt in pts {
                let name = match pt.as_str() {
                    "0" => "PCMU",
                    "8" => "PCMA",
                    "9" => "G722",
                    "18" => "G729",
                    _ => continue,
                };
                m.codecs.push(name.into());
            }
        }
    }
    media
}

/// The address of an SDP `c=` value (RFC 8866 §5.7): `IN IP4 <addr>` or
/// `IN IP6 <addr>`, a multicast TTL or count after `/` ignored; the
/// address must be of the type named.
fn connection_address(c: &str) -> Option<std::net::IpAddr> {
    let mut f = c.split_whitespace();
    if f.next()? != "IN" {
        return None;
    }
    let kind = f.next()?;
    let addr = f.next()?.split('/').next()?;
    match kind {
        "IP4" => addr.parse::<std::net::Ipv4Addr>().ok().map(Into::into),
        "IP6" => addr.parse::<std::net::Ipv6Addr>().ok().map(Into::into),
        _ => None,
    }
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
        if let Some(b) = &self.via_branch {
            s += &format!("Via: SIP/2.0/UDP host.invalid;branch={b}\r\n");
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
mod tests {
    use super::*;

    pub const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-1\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1@10.0.0.2\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.2:5060>\r\nSession-Expires: 1800;refresher=uac\r\nContent-Type: application/sdp\r\nContent-Length: 143\r\n\r\nv=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nb=AS:64\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";

    fn fix(s: &str) -> Vec<u8> {
        s.replace("\\\\r\\\\n", "\r\n").into_bytes()
    }

    #[test]
    fn parses_an_invite_with_sdp() {
        let raw = fix(INVITE);
        let body_len = raw.len() - (raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4);
        let raw = String::from_utf8(raw)
            .unwrap()
            .replace(
                "Content-Length: 143",
                &format!("Content-Length: {body_len}"),
            )
            .into_bytes();
        let (m, used) = parse(&raw).unwrap();
        assert_eq!(used, raw.len());
        assert_eq!(m.method(), "INVITE");
        assert_eq!(m.from.aor(), "alice@example.com");
        assert_eq!(m.from.tag.as_deref(), Some("a1"));
        assert_eq!(m.to.tag, None);
        assert_eq!(m.to.domain(), "example.com");
        assert_eq!(
            NameAddr {
                uri: "sip:Service@10.6.0.2:5060;transport=udp".into(),
                ..Default::default()
            }
            .aor(),
            "Service@10.6.0.2"
        );
        assert_eq!((m.cseq, m.cseq_method.as_str()), (1, "INVITE"));
        assert_eq!(m.via_branch.as_deref(), Some("z9hG4bK-1"));
        assert_eq!(m.session_expires, Some(1800));
        assert_eq!(m.media.len(), 1);
        assert_eq!(m.media[0].codecs, vec!["PCMU", "PCMA"]);
        assert_eq!(
            (m.media[0].port, m.media[0].bandwidth_kbps),
            (4000, Some(64))
        );
        assert_eq!(m.media[0].address, Some("10.0.0.2".parse().unwrap()));
        // Round trip of what the monitor reads.
        let (again, _) = parse(m.render().as_bytes()).unwrap();
        assert_eq!(
            Message {
                media: vec![],
                content_length: 0,
                content_type: None,
                body: vec![],
                ..m.clone()
            },
            Message {
                content_type: None,
                ..again
            }
        );
    }

    #[test]
    fn compact_forms_folding_and_responses() {
        let raw = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a;branch=z9hG4bKx\r\nf: <sip:a@x.org>;tag=1\r\nt: <sip:b@x.org>\r\n ;tag=2\r\ni: abc\r\nCSeq: 7 REGISTER\r\nm: <sip:a@1.2.3.4>;expires=300\r\nl: 0\r\n\r\n".to_vec();
        let raw = String::from_utf8(raw)
            .unwrap()
            .replace("\\\\r\\\\n", "\r\n")
            .into_bytes();
        let (m, _) = parse(&raw).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.method(), "REGISTER");
        assert_eq!(m.to.tag.as_deref(), Some("2"), "folded header");
        assert_eq!(m.contact.as_ref().unwrap().expires, Some(300));
    }

    #[test]
    fn malformed_messages_have_reasons_and_never_panic() {
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "empty"),
            (b"HELLO\r\n\r\n", "request"),
            (b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n", "blank line"),
            (b"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>\r\nTo: <sip:b@b>\r\nCall-ID: x\r\n\r\n", "CSeq"),
            (b"SIP/2.0 999 Nope\r\n\r\n", "status"),
            (b"INVITE sip:a@b SIP/2.0\r\nCSeq: one INVITE\r\n\r\n", "CSeq"),
            (b"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>\r\nTo: <sip:b@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 50\r\n\r\nshort", "shorter"),
            (b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", "malformed header"),
        ];
        for (raw, want) in cases {
            let raw = String::from_utf8_lossy(raw).replace("\\\\r\\\\n", "\r\n");
            let e = parse(raw.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{raw:?}: {e}");
        }
        // Arbitrary bytes: errors, not panics.
        let mut x = 12345u32;
        for n in 0..2000 {
            let mut v = fix(INVITE);
            for _ in 0..(n % 7 + 1) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % v.len();
                v[i] = (x >> 8) as u8;
            }
            v.truncate(x as usize % (v.len() + 1));
            let _ = parse(&v);
        }
    }

    #[test]
    fn ipv6_hosts_and_sdp_connections() {
        let na = |uri: &str| NameAddr {
            uri: uri.into(),
            ..Default::default()
        };
        assert_eq!(
            na("sip:service@[2001:DB8:6:0::2]:5060").aor(),
            "service@[2001:db8:6::2]"
        );
        assert_eq!(
            na("sip:service@[2001:db8:6::2]").domain(),
            "[2001:db8:6::2]"
        );
        assert_eq!(
            na("sips:[2001:db8::1];transport=tcp").aor(),
            "[2001:db8::1]"
        );
        assert_eq!(na("sip:bob@Example.com:5070").domain(), "example.com");
        assert_eq!(domain_of("2001:db8:6::2"), "[2001:db8:6::2]");
        assert_eq!(domain_of("[2001:db8:6:0:0::2]"), "[2001:db8:6::2]");
        assert_eq!(domain_of("Example.COM"), "example.com");
        // c=IN IP6 at session level, a media-level c= overriding it.
        let body = b"v=0\r\no=- 1 1 IN IP6 2001:db8:5::2\r\ns=-\r\nc=IN IP6 2001:db8:5::2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\nm=video 6002 RTP/AVP 96\r\nc=IN IP6 2001:db8:5::3\r\na=rtpmap:96 H264/90000\r\n";
        let m = sdp(body);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].address, Some("2001:db8:5::2".parse().unwrap()));
        assert_eq!(m[1].address, Some("2001:db8:5::3".parse().unwrap()));
        assert_eq!(m[1].codecs, vec!["H264"]);
        for (c, want) in [
            ("IN IP4 224.2.1.1/127", Some("224.2.1.1")),
            ("IN IP6 ff15::101/3", Some("ff15::101")),
            ("IN IP6 10.0.0.1", None),
            ("IN IP4 2001:db8::1", None),
            ("ATM NSAP 47.0005", None),
            ("IN IP6", None),
        ] {
            assert_eq!(
                connection_address(c),
                want.map(|w| w.parse().unwrap()),
                "{c}"
            );
        }
    }
}
