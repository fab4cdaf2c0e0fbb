//! The SDP of a SIP body (RFC 8866) as the monitor needs it: each m=
//! line's media, port and codecs (rtpmap, or the static payload types of
//! RFC 3551), the bandwidth and the connection address.

use super::sip::Media;

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
pub(super) fn connection_address(c: &str) -> Option<std::net::IpAddr> {
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
