//! The parser on well-formed and malformed messages.

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
    assert_eq!((m.cseq, &*m.cseq_method), (1, "INVITE"));
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
    let rendered = m.render();
    let (again, _) = parse(rendered.as_bytes()).unwrap();
    assert_eq!(
        Message {
            media: vec![],
            content_length: 0,
            content_type: None,
            body: Default::default(),
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
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:b@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 50\r\n\r\nshort", "shorter"),
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
    let na = |uri: &'static str| NameAddr {
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
