//! What the monitor publishes for one terminal (claims 30, 34-43): every
//! session it is in, its contact address, and the status that follows
//! from them: a terminal in two calls stays talking until both end.

use std::sync::Arc;

use super::track::{Change, SessionInfo, Status};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminalState {
    /// The sessions it is talking in, oldest first.
    pub sessions: Vec<Arc<SessionInfo>>,
    pub contact: Option<String>,
}

impl TerminalState {
    /// Take a change of this terminal; the status to publish.
    pub fn apply(&mut self, ch: &Change) -> Status {
        if ch.contact.is_some() {
            self.contact = ch.contact.clone();
        }
        match (ch.status, &ch.session) {
            (Status::Talking, Some(s)) => {
                self.sessions.retain(|x| x.call_id != s.call_id);
                self.sessions.push(s.clone());
            }
            (Status::Terminated, Some(s)) => self.sessions.retain(|x| x.call_id != s.call_id),
            // Offline ends whatever it was in.
            (Status::Offline, _) => self.sessions.clear(),
            _ => {}
        }
        if ch.status == Status::Terminated && !self.sessions.is_empty() {
            Status::Talking
        } else {
            ch.status
        }
    }

    /// The PIDF document for `user` in `status`.
    pub fn document(&self, user: &str, status: Status) -> String {
        crate::presence::pidf_at(user, status, &self.sessions, self.contact.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: Status, call: &str, peer: &str) -> Change {
        Change {
            user: "alice@example.com".into(),
            status,
            session: Some(Arc::new(SessionInfo {
                call_id: call.into(),
                caller: "alice@example.com".into(),
                callee: peer.into(),
                media: vec!["audio".into(), "video".into()],
                codecs: vec!["PCMU".into(), "H264".into()],
                bandwidth_kbps: Some(384),
                media_address: Some("10.0.0.2".parse().unwrap()),
            })),
            contact: Some("sip:alice@10.0.0.2:5062".into()),
            at_ms: 0,
        }
    }

    #[test]
    fn a_terminal_in_two_calls_stays_talking_until_both_end() {
        let mut t = TerminalState::default();
        let u = "alice@example.com";
        assert_eq!(
            t.apply(&change(Status::Talking, "c1", "bob@example.com")),
            Status::Talking
        );
        assert_eq!(
            t.apply(&change(Status::Talking, "c2", "carol@example.com")),
            Status::Talking
        );
        let both = t.document(u, Status::Talking);
        assert!(
            both.contains("call-id=\"c1\"") && both.contains("call-id=\"c2\""),
            "{both}"
        );
        // The first call ends: still talking, in the second only.
        assert_eq!(
            t.apply(&change(Status::Terminated, "c1", "bob@example.com")),
            Status::Talking
        );
        let one = t.document(u, Status::Talking);
        assert!(
            !one.contains("call-id=\"c1\"") && one.contains("peer=\"carol@example.com\""),
            "{one}"
        );
        assert_eq!(crate::presence::pidf_status(&one), Some(Status::Talking));
        // The second ends: terminated, no session left.
        assert_eq!(
            t.apply(&change(Status::Terminated, "c2", "carol@example.com")),
            Status::Terminated
        );
        assert!(t.sessions.is_empty());
        let end = t.document(u, Status::Terminated);
        assert_eq!(crate::presence::pidf_status(&end), Some(Status::Terminated));
        assert!(!end.contains("<ep:session"), "{end}");
    }

    #[test]
    fn the_body_carries_every_field_the_claims_list() {
        // Claims 21, 27, 31: session type, the peer terminal, codec and
        // speed; claim 30: the terminal's address.
        let mut t = TerminalState::default();
        let s = t.apply(&change(Status::Talking, "c9", "bob@example.com"));
        let x = t.document("alice@example.com", s);
        for want in [
            "<note>talking</note>",
            "<basic>open</basic>",
            "<contact>sip:alice@10.0.0.2:5062</contact>",
            "media=\"audio,video\"",
            "peer=\"bob@example.com\"",
            "codecs=\"PCMU,H264\"",
            "kbps=\"384\"",
            "address=\"10.0.0.2\"",
            "entity=\"sip:alice@example.com\"",
        ] {
            assert!(x.contains(want), "{want} missing from {x}");
        }
        // Offline: closed, no sessions, the address kept.
        let off = Change {
            status: Status::Offline,
            session: None,
            ..change(Status::Offline, "", "")
        };
        assert_eq!(t.apply(&off), Status::Offline);
        let x = t.document("alice@example.com", Status::Offline);
        assert!(
            x.contains("<basic>closed</basic>") && !x.contains("<ep:session"),
            "{x}"
        );
    }
}
