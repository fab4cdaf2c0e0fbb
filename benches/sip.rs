//! SIP parser + tracker throughput on a realistic mix (one core):
//! REGISTER/200 pairs and full calls (INVITE, 180, 200 with SDP, ACK, BYE,
//! 200). Target: >= 1,000,000 messages/s (issue 14; 1.10 M measured, BENCHMARKS.md).

use control::{
    sip_monitor::sip::parse,
    sip_monitor::track::{TalkingOn, TerminatedOn, Tracker, TrackerConfig},
};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn msg(
    first: &str,
    from: &str,
    to: &str,
    call: &str,
    cseq: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK{call}{cseq}\r\nMax-Forwards: 70\r\nFrom: \"A\" <sip:{from}>;tag=f{call}\r\nTo: <sip:{to}>\r\nCall-ID: {call}@10.0.0.2\r\nCSeq: {cseq}\r\nUser-Agent: bench\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn mix(n: usize) -> Vec<Vec<u8>> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
    let mut v = Vec::new();
    for i in 0..n {
        let (a, b, c, r) = (
            format!("u{i}@example.com"),
            format!("v{i}@example.com"),
            format!("c{i}"),
            format!("r{i}"),
        );
        v.push(msg(
            "REGISTER sip:example.com SIP/2.0",
            &a,
            &a,
            &r,
            "1 REGISTER",
            "Contact: <sip:x@10.0.0.2>;expires=3600\r\n",
            "",
        ));
        v.push(msg(
            "SIP/2.0 200 OK",
            &a,
            &a,
            &r,
            "1 REGISTER",
            "Contact: <sip:x@10.0.0.2>;expires=3600\r\n",
            "",
        ));
        v.push(msg(
            "INVITE sip:v@example.com SIP/2.0",
            &a,
            &b,
            &c,
            "1 INVITE",
            "Content-Type: application/sdp\r\n",
            sdp,
        ));
        v.push(msg("SIP/2.0 180 Ringing", &a, &b, &c, "1 INVITE", "", ""));
        v.push(msg(
            "SIP/2.0 200 OK",
            &a,
            &b,
            &c,
            "1 INVITE",
            "Content-Type: application/sdp\r\n",
            sdp,
        ));
        v.push(msg(
            "ACK sip:v@example.com SIP/2.0",
            &a,
            &b,
            &c,
            "1 ACK",
            "",
            "",
        ));
        v.push(msg(
            "BYE sip:v@example.com SIP/2.0",
            &a,
            &b,
            &c,
            "2 BYE",
            "",
            "",
        ));
        v.push(msg("SIP/2.0 200 OK", &a, &b, &c, "2 BYE", "", ""));
    }
    v
}

fn bench(c: &mut Criterion) {
    let msgs = mix(125); // 1000 messages
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("parse_and_track_1000_messages", |b| {
        b.iter(|| {
            let mut t = Tracker::new(TrackerConfig {
                domain: "example.com".into(),
                talking_on: TalkingOn::Ok200,
                terminated_on: TerminatedOn::Bye,
                default_expires: 3600,
                max_call_ms: 7_200_000,
            });
            let mut changes = 0;
            for (i, m) in msgs.iter().enumerate() {
                let (m, _) = parse(black_box(m)).expect("valid");
                changes += t.handle(&m, i as u64).len();
            }
            black_box(changes)
        })
    });
    // The parser alone, to tell its share from the tracker's.
    g.bench_function("parse_1000_messages", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                n += parse(black_box(m)).expect("valid").1;
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
