//! The parser judged by the grammar (RFC 3261 §25.1 and the rules of §7,
//! §8.1.1, §20), in RFC 4475's categories: messages that are odd but
//! valid are accepted, each invalid one is refused with the rule it
//! breaks named. The messages are written for these rules, not copied
//! from RFC 4475.

use super::*;

/// A valid request around `first` line and `extra` headers.
fn req(first: &str, extra: &str) -> String {
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKs1\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: s1@192.0.2.1\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn ok(name: &str, m: &str) -> Message<'static> {
    match parse(m.as_bytes()) {
        Ok((msg, _)) => msg.into_owned(),
        Err(e) => panic!("{name}: refused ({e}) but valid:\n{m}"),
    }
}

fn refused(name: &str, m: &str, why: &str) {
    match parse(m.as_bytes()) {
        Ok(_) => panic!("{name}: accepted but invalid:\n{m}"),
        Err(e) => assert!(
            e.to_string().contains(why),
            "{name}: refused for {e}, expected {why:?}"
        ),
    }
}

#[test]
fn odd_but_valid_messages_are_accepted() {
    // Extension methods are tokens: any of alphanum and -.!%*_+`'~.
    let m = "Fancy-Method.1!%*_+`'~";
    let msg = ok(
        "token method",
        &req(
            &format!("{m} sip:b@example.com SIP/2.0"),
            &format!("CSeq: 7 {m}\r\n"),
        ),
    );
    assert_eq!(msg.method(), m);
    // The user part may hold ';', '?', '/' and escapes; unknown schemes
    // and schemes with '+', '-', '.' are URIs too.
    for uri in [
        "sip:odd;user?name/x%41@example.com",
        "sips:[2001:db8::5]:5061;transport=tcp",
        "urn:service:sos",
        "x-my.scheme+v2:opaque-part",
    ] {
        ok(
            uri,
            &req(&format!("OPTIONS {uri} SIP/2.0"), "CSeq: 1 OPTIONS\r\n"),
        );
    }
    // White space before the colon, folding, LWS in CSeq, quoted display
    // names with escaped quotes, token display names, leading CRLFs, a
    // UTF-8 reason phrase, an empty one.
    let m = "\r\n\r\nINVITE sip:b@example.com SIP/2.0\r\nVia  : SIP/2.0/UDP 192.0.2.1\r\n ;branch=z9hG4bKs2\r\nMax-Forwards: 0068\r\nFrom: \"A \\\"quoted\\\" <name>\" <sip:a@example.com>;tag=2\r\nTo: Bob Smith <sip:b@example.com>\r\nCall-ID: s2\r\nCSeq: 0009\r\n  INVITE\r\nContact: <sip:a@192.0.2.1>, sip:a2@192.0.2.2;expires=60\r\nDate: Sun, 06 Dec 2026 23:00:00 GMT\r\nX-Odd: ;;,,;;\r\nl: 0\r\n\r\n";
    let msg = ok("whitespace", m);
    assert_eq!((msg.cseq, msg.from.tag.as_deref()), (9, Some("2")));
    assert_eq!(msg.contact.unwrap().uri, "sip:a@192.0.2.1");
    for first in ["SIP/2.0 180 Звонит", "SIP/2.0 100 ", "sip/2.0 200 OK"] {
        ok(
            first,
            &format!("{first}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKs3\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: s3\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"),
        );
    }
    // An RFC 2543 request (no magic cookie) may lack Max-Forwards.
    ok(
        "rfc2543",
        "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP gw.example.com\r\nFrom: <sip:a@example.com>\r\nTo: sip:b@example.com\r\nCall-ID: old@gw\r\nCSeq: 56 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    // The same Content-Length twice agrees with itself.
    ok(
        "cl twice",
        &req(
            "OPTIONS sip:b@example.com SIP/2.0",
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n",
        ),
    );
}

#[test]
fn invalid_messages_are_refused_by_rule() {
    let cs = "CSeq: 1 OPTIONS\r\n";
    let o = |first: &str| req(first, cs);
    // Start line: not a token method, extra or missing spaces, LWS in the
    // URI, a URI in <>, no scheme, a sip URI without host or with
    // headers, a bad status code.
    for (name, first) in [
        ("method with '('", "OPT(IONS sip:b@example.com SIP/2.0"),
        ("method with '@'", "OPTI@NS sip:b@example.com SIP/2.0"),
        ("two spaces", "OPTIONS  sip:b@example.com SIP/2.0"),
        ("trailing space", "OPTIONS sip:b@example.com SIP/2.0 "),
        ("leading space", " OPTIONS sip:b@example.com SIP/2.0"),
        ("lws in uri", "OPTIONS sip:b@exa mple.com SIP/2.0"),
        ("uri in <>", "OPTIONS <sip:b@example.com> SIP/2.0"),
        ("no scheme", "OPTIONS b@example.com SIP/2.0"),
        ("digit scheme", "OPTIONS 9ip:b@example.com SIP/2.0"),
        ("no host", "OPTIONS sip:b@ SIP/2.0"),
        (
            "headers in request-uri",
            "OPTIONS sip:b@example.com?Subject=x SIP/2.0",
        ),
        ("bad escape", "OPTIONS sip:b%4@example.com SIP/2.0"),
        ("quote in uri", "OPTIONS sip:\"b\"@example.com SIP/2.0"),
        ("no version", "OPTIONS sip:b@example.com"),
    ] {
        let m = if name == "method with '('" || name == "method with '@'" {
            req(
                first,
                &format!("CSeq: 1 {}\r\n", first.split(' ').next().unwrap()),
            )
        } else {
            o(first)
        };
        refused(name, &m, "not a SIP request or status line");
    }
    for first in [
        "SIP/2.0 2000 OK",
        "SIP/2.0 20 OK",
        "SIP/2.0 099 Low",
        "SIP/2.0 4294967301 Big",
    ] {
        refused(
            first,
            &format!("{first}\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"),
            "status line",
        );
    }
    // Control characters in the start line or a header.
    refused(
        "nul in start line",
        &o("OPTIONS sip:b@exam\0ple.com SIP/2.0"),
        "request or status line",
    );
    refused(
        "bell in start line",
        &o("OPTIONS\x07 sip:b@example.com SIP/2.0"),
        "request or status line",
    );
    refused(
        "escape in a header",
        &req(
            "OPTIONS sip:b@example.com SIP/2.0",
            "CSeq: 1 OPTIONS\r\nSubject: hi\x1bthere\r\n",
        ),
        "malformed header",
    );
    // Mandatory headers of a request (§8.1.1), Via of any message.
    let full = req("OPTIONS sip:b@example.com SIP/2.0", cs);
    for (h, line) in [
        ("Via", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKs1\r\n"),
        ("Max-Forwards", "Max-Forwards: 70\r\n"),
        ("Call-ID", "Call-ID: s1@192.0.2.1\r\n"),
        ("From", "From: <sip:a@example.com>;tag=1\r\n"),
        ("To", "To: <sip:b@example.com>\r\n"),
        ("CSeq", cs),
    ] {
        refused(
            h,
            &full.replace(line, ""),
            &format!("missing mandatory header {h}"),
        );
    }
    // CSeq: the request's method, case and all; one number below 2^31.
    for (name, c) in [
        ("other method", "CSeq: 1 INVITE\r\n"),
        ("other case", "CSeq: 1 options\r\n"),
        ("no method", "CSeq: 1\r\n"),
        ("two methods", "CSeq: 1 OPTIONS OPTIONS\r\n"),
        ("2^31", "CSeq: 2147483648 OPTIONS\r\n"),
        ("overlarge", "CSeq: 36893488147419103232 OPTIONS\r\n"),
        ("signed", "CSeq: +1 OPTIONS\r\n"),
    ] {
        refused(name, &req("OPTIONS sip:b@example.com SIP/2.0", c), "CSeq");
    }
    // Quoted strings that do not end; display names that are not tokens;
    // addr-specs that need <>; spaces inside a URI; unbalanced <>.
    for (name, h, v) in [
        (
            "unterminated quote",
            "From",
            "\"Alice <sip:a@example.com>;tag=1",
        ),
        (
            "escaped closing quote",
            "From",
            "\"Alice\\\" <sip:a@example.com>;tag=1",
        ),
        (
            "comma in display name",
            "To",
            "Smith, Bob <sip:b@example.com>",
        ),
        (
            "question mark outside <>",
            "To",
            "sip:b@example.com?Subject=x",
        ),
        ("space in uri", "To", "<sip:b@ example.com>"),
        ("no closing >", "To", "<sip:b@example.com"),
        (
            "contact expires overlarge",
            "Contact",
            "<sip:a@x>;expires=280297596632815",
        ),
        (
            "second contact bad",
            "Contact",
            "<sip:a@x>, \"open <sip:c@x>",
        ),
    ] {
        let m = full.replace(&format!("{h}: "), &format!("X-Old-{h}: "));
        let m = m.replacen("Content-Length", &format!("{h}: {v}\r\nContent-Length"), 1);
        refused(name, &m, h);
    }
    // Single-value headers twice; Content-Lengths that disagree; a
    // negative one; Max-Forwards out of range; a Date not in GMT.
    for (name, extra, why) in [
        ("two call-ids", "Call-ID: other\r\n", "Call-ID"),
        (
            "conflicting content-length",
            "Content-Length: 10\r\n",
            "conflicting",
        ),
        ("two cseqs", "CSeq: 2 OPTIONS\r\n", "CSeq"),
        ("two max-forwards", "Max-Forwards: 69\r\n", "Max-Forwards"),
        (
            "date not gmt",
            "Date: Sun, 06 Dec 2026 23:00:00 PST\r\n",
            "Date",
        ),
    ] {
        refused(
            name,
            &req("OPTIONS sip:b@example.com SIP/2.0", &format!("{cs}{extra}")),
            why,
        );
    }
    refused(
        "negative content-length",
        &full.replace("Content-Length: 0", "Content-Length: -1"),
        "Content-Length",
    );
    refused(
        "max-forwards 300",
        &full.replace("Max-Forwards: 70", "Max-Forwards: 300"),
        "Max-Forwards",
    );
    refused(
        "header name not a token",
        &full.replace("Max-Forwards: 70", "Max Forwards: 70"),
        "malformed header",
    );
}

/// Found by the fuzz target (`fuzz/fuzz_targets/sip_parse.rs`): a start
/// line with a multi-byte character across byte 7 panicked when sliced
/// there as text. Every such line is refused, none panics.
#[test]
fn multibyte_characters_in_the_start_line_are_refused_not_panicked_on() {
    let crash: &[u8] = &[
        32, 32, 32, 54, 32, 32, 218, 174, 10, 10, 10, 32, 55, 32, 32, 218, 174, 10, 91, 10, 13, 10,
        13, 10,
    ];
    assert!(parse(crash).is_err());
    for at in 0..10 {
        let mut line = "SIP/2.0 200 OK".to_string();
        line.insert(at.min(line.len()), 'ڮ');
        let raw = format!("{line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n");
        assert!(parse(raw.as_bytes()).is_err(), "{line:?}");
    }
}

/// The monitor counts refusals by `reason()`: the offending text is not
/// in it, so a flood of ever-different bad values makes one counter.
#[test]
fn refusal_reasons_are_a_bounded_set() {
    let bad = |cseq: &str| {
        parse(
            format!("OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nMax-Forwards: 70\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: {cseq}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap_err()
    };
    let (a, b) = (bad("x OPTIONS"), bad("99999999999 OPTIONS"));
    assert_ne!(a.to_string(), b.to_string(), "the text says which value");
    assert_eq!(a.reason(), b.reason());
    assert_eq!(a.reason(), "bad CSeq value");
    assert_eq!(
        parse(b"GARBAGE\r\n\r\n").unwrap_err().reason(),
        parse(b"MORE GARBAGE\r\n\r\n").unwrap_err().reason()
    );
}
