//! The SIP parser and the tracker never panic, whatever bytes arrive; a
//! parsed message re-renders into something that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((m, used)) = control::sip_monitor::sip::parse(data) {
        assert!(used <= data.len() + 4);
        let rendered = m.render();
        let again = control::sip_monitor::sip::parse(rendered.as_bytes()).expect("a rendered message parses");
        assert_eq!(again.0.call_id, m.call_id);
        let mut t = control::sip_monitor::track::Tracker::new(control::sip_monitor::track::TrackerConfig {
            domain: "example.com".into(),
            talking_on: control::sip_monitor::track::TalkingOn::Ok200,
            terminated_on: control::sip_monitor::track::TerminatedOn::Bye,
            default_expires: 3600,
            max_call_ms: 7_200_000,
        });
        let _ = t.handle(&m, 0);
        let _ = t.tick(u64::MAX);
    }
    // The same bytes as a TCP stream: the framer takes what is whole and
    // never more than it was given.
    let mut stream = data.to_vec();
    while let Ok(Some((_, raw))) = control::sip_monitor::stream::next_message(&mut stream) {
        assert!(!raw.is_empty() && raw.len() <= data.len());
    }
});
