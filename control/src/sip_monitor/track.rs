//! Dialog and registration tracking (seed 001): SIP messages in, presence
//! status changes out. Pure: the clock comes in with each call.

use std::collections::BTreeSet;
use std::sync::Arc;

/// Keyed by what arrives (Call-IDs, users): a hasher seeded at random
/// per map, so no sender can choose keys that collide, and faster than
/// SipHash on these short keys.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

use serde::{Deserialize, Serialize};

use super::sip::{Message, StartLine};
use crate::field::text_enum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Offline,
    Talking,
    Terminated,
}

text_enum! {
    /// When a call counts as talking (claims 12-13); `talking_on` in the
    /// config.
    pub enum TalkingOn {
        /// The 200 answering the INVITE.
        Ok200 = "200",
        /// The ACK of that 200.
        Ack = "ack",
    }
}

text_enum! {
    /// When a call counts as over (claims 14-15); `terminated_on` in the
    /// config.
    pub enum TerminatedOn {
        Bye = "bye",
        /// The 200 answering the BYE.
        ByeOk = "bye_ok",
    }
}

#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// Only terminals of this domain are reported (claims 10-11).
    pub domain: String,
    pub talking_on: TalkingOn,
    pub terminated_on: TerminatedOn,
    /// Registration lifetime when a 200 names none, seconds.
    pub default_expires: u32,
    /// A talking dialog without Session-Expires ends after this long
    /// without a BYE (ms).
    pub max_call_ms: u64,
}

/// An unanswered INVITE is forgotten after this long without a response
/// (RFC 3261 timer C, 3 minutes).
const INVITE_TIMEOUT_MS: u64 = 180_000;
/// A BYE whose 200 never comes ends the call after this long (64*T1).
const BYE_TIMEOUT_MS: u64 = 32_000;

/// What the session was, for the presence document (claim 21): one per
/// dialog, shared by both sides' changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub call_id: String,
    /// The addresses of record of the two ends.
    pub caller: String,
    pub callee: String,
    pub media: Vec<String>,
    pub codecs: Vec<String>,
    pub bandwidth_kbps: Option<u32>,
    /// The media connection address the SDP offered (c=), IPv4 or IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_address: Option<std::net::IpAddr>,
}

impl SessionInfo {
    /// The other end of the session from `user`'s side.
    pub fn peer_of(&self, user: &str) -> &str {
        if user == self.caller {
            &self.callee
        } else {
            &self.caller
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// user@domain
    pub user: String,
    pub status: Status,
    /// Shared: one dialog's changes carry the same session.
    pub session: Option<Arc<SessionInfo>>,
    /// The terminal's contact address (the URI it registered or offered
    /// in its dialog), for the presence document (claim 30).
    pub contact: Option<String>,
    pub at_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogState {
    Inviting,
    Answered,
    Talking,
    Ending,
}

#[derive(Clone, Debug)]
struct Dialog {
    state: DialogState,
    /// Shared with the changes reported; copied on write when the SDP
    /// changes after one was.
    info: Arc<SessionInfo>,
    /// When the dialog is given up (ms): an unanswered INVITE's timer C,
    /// a talking call's Session-Expires (or the ceiling), a BYE's 64*T1.
    expires_at: u64,
    /// The call was talking (so its end is reported).
    talked: bool,
    /// The negotiated Session-Expires (ms), the 2xx's over the INVITE's.
    session_expires: Option<u64>,
    /// The time of this dialog's entry in `dialog_due`: a later
    /// `expires_at` is rescheduled when that entry comes due, so pushing
    /// the time on (each provisional, each refresh) writes no new entry.
    scheduled: u64,
}

/// A registration: when it lapses, and the time of its entry in
/// `reg_due` (as `Dialog::scheduled`).
#[derive(Clone, Copy)]
struct Binding {
    expires_at: u64,
    scheduled: u64,
}

/// An outstanding REGISTER: whose, the contact it binds (none for `*`
/// or a query) and the interval it asks (0: a removal).
struct Register {
    user: String,
    contact: Option<String>,
    expires: Option<u32>,
}

#[derive(Default)]
pub struct Tracker {
    cfg: Option<TrackerConfig>,
    dialogs: HashMap<String, Dialog>,
    registered: HashMap<String, Binding>,
    /// (when, user) of each registration and (when, Call-ID) of each
    /// dialog, earliest first: the sweep reads only what is due. An entry
    /// whose time is not its owner's `scheduled` is stale and skipped.
    reg_due: BTreeSet<(u64, String)>,
    dialog_due: BTreeSet<(u64, String)>,
    /// user → contact URI.
    contacts: HashMap<String, String>,
    /// Call-ID → what an outstanding REGISTER asked for.
    pending_register: HashMap<String, Register>,
    pub messages: u64,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg: Some(cfg),
            ..Default::default()
        }
    }

    /// A new configuration (reload); dialogs and registrations carry on.
    pub fn set_config(&mut self, cfg: TrackerConfig) {
        self.cfg = Some(cfg);
    }

    fn cfg(&self) -> &TrackerConfig {
        self.cfg.as_ref().expect("constructed with a config")
    }

    fn ours(&self, user: &str) -> bool {
        let b = user.as_bytes();
        let domain = b
            .iter()
            .rposition(|&c| c == b'@')
            .map_or(b, |i| &b[i + 1..]);
        domain.eq_ignore_ascii_case(self.cfg().domain.as_bytes())
    }

    fn change(
        &self,
        out: &mut Vec<Change>,
        user: &str,
        status: Status,
        session: Option<Arc<SessionInfo>>,
        now: u64,
    ) {
        if self.ours(user) {
            out.push(Change {
                user: user.to_string(),
                status,
                session,
                contact: self.contacts.get(user).cloned(),
                at_ms: now,
            });
        }
    }

    fn both(&self, out: &mut Vec<Change>, d: &Dialog, status: Status, now: u64) {
        self.change(out, &d.info.caller, status, Some(d.info.clone()), now);
        self.change(out, &d.info.callee, status, Some(d.info.clone()), now);
    }

    /// Give dialog `key` up at `at` (ms) unless something happens first.
    fn arm(&mut self, key: &str, at: u64) {
        if let Some(d) = self.dialogs.get_mut(key) {
            d.expires_at = at;
            if d.scheduled == 0 || at < d.scheduled {
                d.scheduled = at;
                self.dialog_due.insert((at, key.to_string()));
            }
        }
    }

    /// Register `user` until `at` (ms); whether it is new.
    fn bind(&mut self, user: &str, at: u64) -> bool {
        match self.registered.get_mut(user) {
            Some(b) => {
                b.expires_at = at;
                if at < b.scheduled {
                    b.scheduled = at;
                    self.reg_due.insert((at, user.to_string()));
                }
                false
            }
            None => {
                let b = Binding {
                    expires_at: at,
                    scheduled: at,
                };
                self.registered.insert(user.to_string(), b);
                self.reg_due.insert((at, user.to_string()));
                true
            }
        }
    }

    /// How long a talking dialog lasts unrefreshed: its negotiated
    /// Session-Expires, else the ceiling.
    fn call_life(&self, session_expires: Option<u64>) -> u64 {
        session_expires.unwrap_or(self.cfg().max_call_ms)
    }

    fn learn_contact(&mut self, user: &str, m: &Message) {
        if let Some(c) = m.contact.as_ref().filter(|c| c.uri != "*") {
            if self.ours(user) && self.contacts.get(user).map(String::as_str) != Some(&c.uri) {
                self.contacts.insert(user.to_string(), c.uri.to_string());
            }
        }
    }

    pub fn handle(&mut self, m: &Message, now: u64) -> Vec<Change> {
        self.messages += 1;
        let mut out = Vec::new();
        // Borrowed: a key is copied only when it is stored.
        let key: &str = &m.call_id;
        let se = m.session_expires.map(|s| s as u64 * 1000);
        match (&m.start, &*m.cseq_method) {
            (StartLine::Request { method, .. }, _) if method == "INVITE" => {
                let fresh = !self.dialogs.contains_key(key);
                if fresh {
                    let d = Dialog {
                        state: DialogState::Inviting,
                        info: Arc::new(SessionInfo {
                            call_id: key.to_string(),
                            caller: m.from.aor(),
                            callee: m.to.aor(),
                            ..Default::default()
                        }),
                        expires_at: 0,
                        talked: false,
                        session_expires: None,
                        scheduled: 0,
                    };
                    self.dialogs.insert(key.to_string(), d);
                }
                let d = self.dialogs.get_mut(key).expect("present");
                absorb_sdp(d, m);
                if se.is_some() {
                    d.session_expires = se;
                }
                let caller = d.info.caller.clone();
                if fresh {
                    self.learn_contact(&caller, m);
                    self.arm(key, now + INVITE_TIMEOUT_MS);
                }
            }
            (StartLine::Response { status, .. }, "INVITE") => {
                let talking_on = self.cfg().talking_on;
                let ceiling = self.cfg().max_call_ms;
                let Some(d) = self.dialogs.get_mut(key) else {
                    return out;
                };
                absorb_sdp(d, m);
                match status {
                    200..=299 if d.state == DialogState::Inviting => {
                        if se.is_some() {
                            d.session_expires = se;
                        }
                        d.state = if talking_on == TalkingOn::Ok200 {
                            DialogState::Talking
                        } else {
                            DialogState::Answered
                        };
                        d.talked = talking_on == TalkingOn::Ok200;
                        let life = d.session_expires.unwrap_or(ceiling);
                        let callee = d.info.callee.clone();
                        self.learn_contact(&callee, m);
                        let d = &self.dialogs[key];
                        if d.talked {
                            self.both(&mut out, d, Status::Talking, now);
                        }
                        self.arm(key, now + life);
                    }
                    200..=299 if d.state == DialogState::Talking => {
                        // A re-INVITE answered: the session is refreshed
                        // (RFC 4028 §7), maybe with a new interval.
                        if se.is_some() {
                            d.session_expires = se;
                        }
                        let life = self.call_life(self.dialogs[key].session_expires);
                        self.arm(key, now + life);
                    }
                    100..=199 if d.state == DialogState::Inviting => {
                        self.arm(key, now + INVITE_TIMEOUT_MS);
                    }
                    300..=699 if d.state == DialogState::Inviting => {
                        // Rejected or cancelled before an answer: no call.
                        self.dialogs.remove(key);
                    }
                    _ => {} // a forked 2xx after the first, a failed re-INVITE
                }
            }
            (
                StartLine::Response {
                    status: 200..=299, ..
                },
                "UPDATE",
            ) => {
                // An UPDATE refreshes the session too (RFC 4028 §7.4).
                if let Some(d) = self.dialogs.get_mut(key) {
                    if d.state == DialogState::Talking {
                        if se.is_some() {
                            d.session_expires = se;
                        }
                        let life = self.call_life(self.dialogs[key].session_expires);
                        self.arm(key, now + life);
                    }
                }
            }
            (StartLine::Request { method, .. }, _) if method == "ACK" => {
                if let Some(d) = self.dialogs.get_mut(key) {
                    if d.state == DialogState::Answered {
                        d.state = DialogState::Talking;
                        d.talked = true;
                        self.both(&mut out, &self.dialogs[key], Status::Talking, now);
                    }
                }
            }
            (StartLine::Request { method, .. }, _) if method == "BYE" => {
                let on = self.cfg().terminated_on;
                if let Some(d) = self.dialogs.get_mut(key) {
                    d.state = DialogState::Ending;
                    if on == TerminatedOn::Bye {
                        let d = self.dialogs.remove(key).unwrap();
                        if d.talked {
                            self.both(&mut out, &d, Status::Terminated, now);
                        }
                    } else {
                        self.arm(key, now + BYE_TIMEOUT_MS);
                    }
                }
            }
            (
                StartLine::Response {
                    status: 200..=299, ..
                },
                "BYE",
            ) => {
                if self.cfg().terminated_on == TerminatedOn::ByeOk {
                    if let Some(d) = self.dialogs.remove(key) {
                        if d.talked {
                            self.both(&mut out, &d, Status::Terminated, now);
                        }
                    }
                }
            }
            (StartLine::Request { method, .. }, _) if method == "CANCEL" => {
                if self
                    .dialogs
                    .get(key)
                    .map(|d| d.state == DialogState::Inviting)
                    .unwrap_or(false)
                {
                    self.dialogs.remove(key);
                }
            }
            (StartLine::Request { method, .. }, _) if method == "REGISTER" => {
                let contact = m
                    .contact
                    .as_ref()
                    .filter(|c| c.uri != "*")
                    .map(|c| c.uri.to_string());
                let expires = match &m.contact {
                    Some(c) if c.uri == "*" => Some(0),
                    Some(c) => c.expires.or(m.expires),
                    None => m.expires,
                };
                self.pending_register.insert(
                    key.to_string(),
                    Register {
                        user: m.to.aor(),
                        contact,
                        expires,
                    },
                );
            }
            (StartLine::Response { status, .. }, "REGISTER") => {
                let Some(Register {
                    user,
                    contact: asked,
                    expires: asked_expires,
                }) = self.pending_register.remove(key)
                else {
                    return out;
                };
                if !(200..=299).contains(status) {
                    return out;
                }
                // A 2xx lists the bindings left (RFC 3261 §10.3 step 8).
                // Without one, the request says what happened: a removal
                // (Expires 0, Contact *) went through; a binding stands
                // for the response's or the request's interval (lenient
                // registrars answer without the list); a query (neither
                // Contact nor Expires) changes nothing.
                let expires = match &m.contact {
                    Some(c) if c.uri == "*" => Some(0),
                    Some(c) => c.expires.or(m.expires).or(asked_expires),
                    None if asked_expires == Some(0) => Some(0),
                    None if asked.is_none() && asked_expires.is_none() => return out,
                    None => m.expires.or(asked_expires),
                }
                .unwrap_or(self.cfg().default_expires);
                if expires == 0 {
                    if self.registered.remove(&user).is_some() {
                        self.change(&mut out, &user, Status::Offline, None, now);
                    }
                    self.contacts.remove(&user);
                } else {
                    // The binding the registrar confirmed, else the one
                    // asked for.
                    let bound = m
                        .contact
                        .as_ref()
                        .filter(|c| c.uri != "*")
                        .map(|c| c.uri.to_string())
                        .or(asked);
                    if let (Some(c), true) = (bound, self.ours(&user)) {
                        // A refresh keeps its contact: nothing to copy.
                        if self.contacts.get(&user) != Some(&c) {
                            self.contacts.insert(user.clone(), c);
                        }
                    }
                    let at = now + expires as u64 * 1000;
                    if self.bind(&user, at) {
                        self.change(&mut out, &user, Status::Online, None, now);
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Registrations that expired without a refresh (claim 19), and
    /// dialogs given up (claim 18): a talking call whose session expired
    /// unrefreshed (Session-Expires, else the ceiling) or whose BYE was
    /// never answered is terminated; an INVITE never answered is
    /// forgotten. Reads only what is due.
    pub fn tick(&mut self, now: u64) -> Vec<Change> {
        let mut out = Vec::new();
        while let Some((at, user)) = self.reg_due.first().cloned() {
            if at > now {
                break;
            }
            self.reg_due.pop_first();
            match self.registered.get_mut(&user) {
                Some(b) if b.scheduled == at && b.expires_at > now => {
                    // Refreshed since this entry was written.
                    b.scheduled = b.expires_at;
                    self.reg_due.insert((b.expires_at, user));
                }
                Some(b) if b.scheduled == at => {
                    self.registered.remove(&user);
                    self.change(&mut out, &user, Status::Offline, None, now);
                    self.contacts.remove(&user);
                }
                _ => {}
            }
        }
        while let Some((at, key)) = self.dialog_due.first().cloned() {
            if at > now {
                break;
            }
            self.dialog_due.pop_first();
            match self.dialogs.get_mut(&key) {
                Some(d) if d.scheduled == at && d.expires_at > now => {
                    d.scheduled = d.expires_at;
                    self.dialog_due.insert((d.expires_at, key));
                }
                Some(d) if d.scheduled == at => {
                    let d = self.dialogs.remove(&key).expect("present");
                    if d.talked {
                        self.both(&mut out, &d, Status::Terminated, now);
                    }
                }
                _ => {}
            }
        }
        out
    }

    pub fn dialogs(&self) -> usize {
        self.dialogs.len()
    }

    /// Users registered now.
    pub fn registrations(&self) -> usize {
        self.registered.len()
    }
}

mod snapshot;
pub use snapshot::{DialogSnapshot, RegisterSnapshot, TrackerSnapshot};

fn absorb_sdp(d: &mut Dialog, m: &Message) {
    if m.media.is_empty() {
        return;
    }
    let info = Arc::make_mut(&mut d.info);
    info.media = m.media.iter().map(|x| x.kind.to_string()).collect();
    info.codecs = m
        .media
        .iter()
        .flat_map(|x| x.codecs.iter().map(|c| c.to_string()))
        .collect();
    info.bandwidth_kbps = m.media.iter().find_map(|x| x.bandwidth_kbps);
    info.media_address = m.media.iter().find_map(|x| x.address);
}

#[cfg(test)]
#[path = "track_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "track_expiry_tests.rs"]
mod expiry_tests;
