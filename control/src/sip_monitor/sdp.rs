//! The SDP of a SIP body (RFC 8866) as the monitor needs it: each m=
//! line's media, port and codecs (rtpmap, or the static payload types of
//! RFC 3551), the bandwidth and the connection address.

use super::sip::Media;

/// The space-separated fields of an SDP line (RFC 8866 §5: one space
/// between fields; runs of them tolerated).
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ' ' || c == '\t')
        .filter(|w| !w.is_empty())
}

/// `s` up to its first `c`.
fn before(s: &str, c: u8) -> &str {
    &s[..s.bytes().position(|b| b == c).unwrap_or(s.len())]
}

/// The media of an SDP body: m= lines with their rtpmap codecs and b=.
/// Borrows the body; a line that is not UTF-8 is skipped.
pub fn sdp(body: &[u8]) -> Vec<Media<'_>> {
    let mut media: Vec<Media> = Vec::new();
    let mut session_bw = None;
    let mut session_addr = None;
    // Each m= line, for the static payload types without rtpmap.
    let mut payloads: Vec<&str> = Vec::new();
    for l in body.split(|&b| b == b'\n') {
        // Only m=, c=, b= and a= lines are read: skip the rest unchecked.
        if l.len() < 2 || l[1] != b'=' || !matches!(l[0], b'm' | b'c' | b'b' | b'a') {
            continue;
        }
        let Ok(l) = std::str::from_utf8(l) else {
            continue; // not text
        };
        let l = l.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            let mut f = words(m);
            if let (Some(kind), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) {
                media.push(Media {
                    kind: kind.into(),
                    port: before(port, b'/').parse().unwrap_or(0),
                    proto: proto.into(),
                    codecs: Vec::new(),
                    bandwidth_kbps: session_bw,
                    address: session_addr,
                });
                payloads.push(m);
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
            let enc = a.bytes().position(|b| b == b' ').map(|i| &a[i + 1..]);
            if let (Some(m), Some(enc)) = (media.last_mut(), enc) {
                m.codecs.push(before(enc, b'/').into());
            }
        }
    }
    // Static payload types without rtpmap (RFC 3551).
    for (m, pts) in media.iter_mut().zip(payloads) {
        if m.codecs.is_empty() {
            for pt in words(pts).skip(3) {
                let name = match pt {
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
pub(super) fn connection_address(c: &str) -> Option<std::net::IpAddr> {
    let mut f = words(c);
    if f.next()? != "IN" {
        return None;
    }
    let kind = f.next()?;
    let addr = before(f.next()?, b'/');
    match kind {
        "IP4" => addr.parse::<std::net::Ipv4Addr>().ok().map(Into::into),
        "IP6" => addr.parse::<std::net::Ipv6Addr>().ok().map(Into::into),
        _ => None,
    }
}
