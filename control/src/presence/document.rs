//! The presence document (PIDF, RFC 3863) and the SIP requests that
//! carry it: PUBLISH (RFC 3903), or REGISTER for servers that take status
//! with registrations (seed 001 claim 20).

use std::sync::Arc;

use crate::sip_monitor::track::{SessionInfo, Status};

/// XML character data and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => o.push(c),
        }
    }
    o
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Online => "online",
        Status::Offline => "offline",
        Status::Talking => "talking",
        Status::Terminated => "terminated",
    }
}

pub fn parse_status(s: &str) -> Option<Status> {
    match s {
        "online" => Some(Status::Online),
        "offline" => Some(Status::Offline),
        "talking" => Some(Status::Talking),
        "terminated" => Some(Status::Terminated),
        _ => None,
    }
}

/// A PIDF document (RFC 3863) for `user`: basic open/closed, the status
/// as the note, and every session with its type, peer, codecs and speed
/// (claims 21, 34-43).
pub fn pidf(user: &str, status: Status, sessions: &[Arc<SessionInfo>]) -> String {
    pidf_at(user, status, sessions, None)
}

/// `pidf` with the terminal's address (claim 30) as the tuple's
/// `<contact>` (RFC 3863 §4.1.5).
pub fn pidf_at(
    user: &str,
    status: Status,
    sessions: &[Arc<SessionInfo>],
    contact: Option<&str>,
) -> String {
    let basic = if status == Status::Offline {
        "closed"
    } else {
        "open"
    };
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:ep=\"urn:edgeplane:presence\" entity=\"sip:{}\">\n  <tuple id=\"t1\">\n    <status><basic>{basic}</basic></status>\n    <note>{}</note>\n",
        escape(user),
        status_name(status)
    );
    if let Some(c) = contact {
        x += &format!("    <contact>{}</contact>\n", escape(c));
    }
    for s in sessions {
        x += &format!(
            "    <ep:session call-id=\"{}\" peer=\"{}\" media=\"{}\" codecs=\"{}\"{}{}/>\n",
            escape(&s.call_id),
            escape(s.peer_of(user)),
            escape(&s.media.join(",")),
            escape(&s.codecs.join(",")),
            s.bandwidth_kbps
                .map(|b| format!(" kbps=\"{b}\""))
                .unwrap_or_default(),
            s.media_address
                .as_ref()
                .map(|a| format!(" address=\"{a}\""))
                .unwrap_or_default()
        );
    }
    x += "  </tuple>\n</presence>\n";
    x
}

/// The status a PIDF body carries (the note written by `pidf`, else
/// basic open/closed).
pub fn pidf_status(body: &str) -> Option<Status> {
    let tag = |t: &str| {
        let a = body.find(&format!("<{t}>"))? + t.len() + 2;
        let b = body[a..].find(&format!("</{t}>"))? + a;
        Some(body[a..b].trim().to_string())
    };
    tag("note")
        .and_then(|n| parse_status(&n))
        .or_else(|| match tag("basic").as_deref() {
            Some("open") => Some(Status::Online),
            Some("closed") => Some(Status::Offline),
            _ => None,
        })
}

/// A PUBLISH (RFC 3903 §4): initial with a body, or a refresh/modify with
/// SIP-If-Match.
#[allow(clippy::too_many_arguments)]
pub fn publish(
    user: &str,
    server: &str,
    local: &str,
    call_id: &str,
    cseq: u32,
    etag: Option<&str>,
    expires: u32,
    body: &str,
) -> String {
    let mut m = format!(
        "PUBLISH sip:{user} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}>;tag=ep{cseq}\r\nTo: <sip:{user}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} PUBLISH\r\nEvent: presence\r\nExpires: {expires}\r\n"
    );
    let _ = server;
    if let Some(e) = etag {
        m += &format!("SIP-If-Match: {e}\r\n");
    }
    if body.is_empty() {
        // A refresh or a removal (§4.3, §4.5): no body, no type.
        m += "Content-Length: 0\r\n\r\n";
    } else {
        m += &format!(
            "Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
    m
}

/// `msg` (built here, its Via naming UDP) as it travels over `transport`
/// ("UDP", "TCP"): the Via says so (RFC 3261 §18.1.1).
pub fn via_transport(msg: String, transport: &str) -> String {
    msg.replacen(
        "\r\nVia: SIP/2.0/UDP ",
        &format!("\r\nVia: SIP/2.0/{transport} "),
        1,
    )
}

/// A REGISTER carrying the presence document (seed 001 claim 20), for
/// servers that take status with registrations.
pub fn register_with_status(
    user: &str,
    local: &str,
    call_id: &str,
    cseq: u32,
    expires: u32,
    body: &str,
) -> String {
    let domain = user.rsplit('@').next().unwrap_or(user);
    format!(
        "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}>;tag=ep{cseq}\r\nTo: <sip:{user}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}>\r\nExpires: {expires}\r\nContent-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidf_escapes_and_round_trips_the_status() {
        let s = SessionInfo {
            call_id: "c<1>&".into(),
            caller: "alice@example.com".into(),
            callee: "bob@example.com\"".into(),
            media: vec!["audio".into()],
            codecs: vec!["PCMU".into()],
            bandwidth_kbps: Some(64),
            media_address: Some("2001:db8:5::2".parse().unwrap()),
        };
        let x = pidf("alice@example.com", Status::Talking, &[Arc::new(s)]);
        assert!(
            x.contains("call-id=\"c&lt;1&gt;&amp;\"")
                && x.contains("peer=\"bob@example.com&quot;\"")
                && x.contains("kbps=\"64\"")
                && x.contains("address=\"2001:db8:5::2\""),
            "{x}"
        );
        assert_eq!(pidf_status(&x), Some(Status::Talking));
        assert_eq!(
            pidf_status(&pidf("a@b", Status::Offline, &[])),
            Some(Status::Offline)
        );
        assert!(x.contains("<basic>open</basic>"));
    }

    #[test]
    fn publish_parses_as_sip() {
        let body = pidf("alice@example.com", Status::Online, &[]);
        let m = publish(
            "alice@example.com",
            "10.9.0.1:5060",
            "10.0.0.1:5060",
            "p1",
            3,
            Some("etag-9"),
            3600,
            &body,
        );
        let (p, _) = crate::sip_monitor::sip::parse(m.as_bytes()).unwrap();
        assert_eq!(p.method(), "PUBLISH");
        assert_eq!(p.content_length, body.len());
        assert!(m.contains("SIP-If-Match: etag-9") && m.contains("Event: presence"));
    }
}
