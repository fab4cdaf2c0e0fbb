//! A non-INVITE client transaction over UDP (RFC 3261 §17.1.2.2), for
//! the monitor's PUBLISH (or REGISTER): timer E retransmits the request
//! at T1, doubling up to T2 (at T2 once a provisional response came);
//! timer F gives up after 64*T1. Pure: the clock comes in with each call.

/// RTT estimate and the longest interval (§17.1.1.1).
pub const T1_MS: u64 = 500;
pub const T2_MS: u64 = 4000;
/// Timer F.
pub const TIMEOUT_MS: u64 = 64 * T1_MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Send the request again now.
    Retransmit,
    /// No final response within 64*T1: the transaction failed.
    TimedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonInvite {
    started_ms: u64,
    next_ms: u64,
    interval_ms: u64,
    proceeding: bool,
}

impl NonInvite {
    /// The request was sent at `now`.
    pub fn new(now: u64) -> Self {
        Self {
            started_ms: now,
            next_ms: now + T1_MS,
            interval_ms: T1_MS,
            proceeding: false,
        }
    }

    /// A provisional response: Proceeding, retransmissions every T2.
    pub fn provisional(&mut self) {
        self.proceeding = true;
    }

    pub fn poll(&mut self, now: u64) -> Step {
        if now >= self.started_ms + TIMEOUT_MS {
            return Step::TimedOut;
        }
        if now < self.next_ms {
            return Step::Wait;
        }
        self.interval_ms = if self.proceeding {
            T2_MS
        } else {
            (self.interval_ms * 2).min(T2_MS)
        };
        self.next_ms = now + self.interval_ms;
        Step::Retransmit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The moments (ms) of retransmissions, polling every 10 ms, and
    /// when it timed out.
    fn run(mut t: NonInvite, provisional_at: Option<u64>) -> (Vec<u64>, u64) {
        let mut sent = Vec::new();
        for now in (0..40_000).step_by(10) {
            if Some(now) == provisional_at {
                t.provisional();
            }
            match t.poll(now) {
                Step::Wait => {}
                Step::Retransmit => sent.push(now),
                Step::TimedOut => return (sent, now),
            }
        }
        panic!("never timed out");
    }

    #[test]
    fn timer_e_doubles_to_t2_and_timer_f_ends_it() {
        let (sent, out) = run(NonInvite::new(0), None);
        assert_eq!(
            &sent[..6],
            &[500, 1500, 3500, 7500, 11500, 15500],
            "T1, then doubling, capped at T2"
        );
        assert_eq!(out, 32_000, "64*T1");
        assert_eq!(sent.len(), 10);
    }

    #[test]
    fn a_provisional_response_spaces_them_at_t2() {
        let (sent, out) = run(NonInvite::new(0), Some(600));
        assert_eq!(&sent[..4], &[500, 1500, 5500, 9500]);
        assert_eq!(out, 32_000);
    }
}
