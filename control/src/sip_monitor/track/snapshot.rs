//! The tracker's state as data, for a monitor that restarts: dialogs,
//! registrations, contacts and outstanding REGISTERs, with every time as
//! what was left of it when the snapshot was taken, so a restored
//! tracker counts the time it was down against them.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{Binding, Change, Dialog, DialogState, Register, SessionInfo, Status, Tracker};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerSnapshot {
    pub dialogs: Vec<DialogSnapshot>,
    /// user → ms left of the registration.
    pub registered: HashMap<String, u64>,
    pub contacts: HashMap<String, String>,
    pub pending_register: HashMap<String, RegisterSnapshot>,
    pub messages: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogSnapshot {
    pub call_id: String,
    pub state: DialogState,
    pub info: SessionInfo,
    /// ms left until the dialog is given up.
    pub left_ms: u64,
    pub talked: bool,
    pub session_expires: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSnapshot {
    pub user: String,
    pub contact: Option<String>,
    pub expires: Option<u32>,
}

impl Tracker {
    /// The state at `now`.
    pub fn snapshot(&self, now: u64) -> TrackerSnapshot {
        TrackerSnapshot {
            dialogs: self
                .dialogs
                .iter()
                .map(|(k, d)| DialogSnapshot {
                    call_id: k.clone(),
                    state: d.state,
                    info: (*d.info).clone(),
                    left_ms: d.expires_at.saturating_sub(now),
                    talked: d.talked,
                    session_expires: d.session_expires,
                })
                .collect(),
            registered: self
                .registered
                .iter()
                .map(|(u, b)| (u.clone(), b.expires_at.saturating_sub(now)))
                .collect(),
            contacts: self
                .contacts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            pending_register: self
                .pending_register
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        RegisterSnapshot {
                            user: r.user.clone(),
                            contact: r.contact.clone(),
                            expires: r.expires,
                        },
                    )
                })
                .collect(),
            messages: self.messages,
        }
    }

    /// Take up a snapshot (in place of what is tracked) at `now`, after
    /// `down_ms` without one: what ran out meanwhile is due at once, and
    /// the next [`Tracker::tick`] reports it.
    pub fn restore(&mut self, s: TrackerSnapshot, now: u64, down_ms: u64) {
        let at = |left: u64| now + left.saturating_sub(down_ms);
        self.dialogs.clear();
        self.registered.clear();
        self.reg_due.clear();
        self.dialog_due.clear();
        for d in s.dialogs {
            let expires_at = at(d.left_ms);
            self.dialog_due.insert((expires_at, d.call_id.clone()));
            self.dialogs.insert(
                d.call_id,
                Dialog {
                    state: d.state,
                    info: Arc::new(d.info),
                    expires_at,
                    talked: d.talked,
                    session_expires: d.session_expires,
                    scheduled: expires_at,
                },
            );
        }
        for (user, left) in s.registered {
            let expires_at = at(left);
            self.reg_due.insert((expires_at, user.clone()));
            self.registered.insert(
                user,
                Binding {
                    expires_at,
                    scheduled: expires_at,
                },
            );
        }
        self.contacts = s.contacts.into_iter().collect();
        self.pending_register = s
            .pending_register
            .into_iter()
            .map(|(k, r)| {
                (
                    k,
                    Register {
                        user: r.user,
                        contact: r.contact,
                        expires: r.expires,
                    },
                )
            })
            .collect();
        self.messages = s.messages;
    }

    /// End every dialog now (a restart that could not see what happened
    /// to them): a call that was talking is reported terminated on both
    /// sides. Registrations stay, to lapse or be refreshed.
    pub fn end_dialogs(&mut self, now: u64) -> Vec<Change> {
        let mut out = Vec::new();
        let all: Vec<Dialog> = self.dialogs.drain().map(|(_, d)| d).collect();
        self.dialog_due.clear();
        for d in all {
            if d.talked {
                self.both(&mut out, &d, Status::Terminated, now);
            }
        }
        out
    }
}
