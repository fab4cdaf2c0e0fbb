//! The one entry program per interface (ARCHITECTURE §5). The interface
//! runs `entry`, which tail-calls the first role stage in `ENTRY_STAGES`;
//! a stage that passes a packet tail-calls the next one. Roles never
//! attach programs of their own to an interface they share.
//!
//! A role's stage sits in the slot of its role index ([`role`]). Where
//! each one goes next is in `ENTRY_NEXT`, written by the daemon whenever
//! a stage registers: entry `r` is the slot after role `r`'s stage,
//! entry [`FIRST`] the entry program's first, so every hand-off is one
//! tail call (or none), never a search through empty slots.

/// Slots of `ENTRY_STAGES`: at most this many stages on one interface.
pub const STAGES_MAX: u32 = 8;

/// `ENTRY_NEXT` index of the entry program's first stage.
pub const FIRST: u32 = role::COUNT;

/// `ENTRY_NEXT` value: no stage follows.
pub const NONE: u32 = u32::MAX;

/// `ENTRY_NEXT` value of a role that has no stage on the interface.
pub const ABSENT: u32 = u32::MAX - 1;

/// `ENTRY_NEXT` for the stages of `present` roles (by role index): each
/// present role's next present slot, the first one at [`FIRST`], and
/// [`ABSENT`] for the others.
pub fn chain(present: &[bool; role::COUNT as usize]) -> [u32; role::COUNT as usize + 1] {
    let mut next = [ABSENT; role::COUNT as usize + 1];
    let mut following = NONE;
    for r in (0..role::COUNT as usize).rev() {
        if present[r] {
            next[r] = following;
            following = r as u32;
        }
    }
    next[FIRST as usize] = following;
    next
}

/// Each role's index (its slot in `ENTRY_STAGES`, its entry in
/// `ENTRY_NEXT`) and the XDP program it runs.
pub mod role {
    pub const SIP_MONITOR: u32 = 0;
    pub const ROUTER: u32 = 1;
    pub const STEER: u32 = 2;
    pub const LB: u32 = 3;
    pub const GATEWAY: u32 = 4;
    pub const COUNT: u32 = 5;

    /// The program of each role, by index; also the order of stages on an
    /// interface unless the config gives another: what only observes
    /// first, then what filters, then what rewrites and sends.
    pub const PROGRAMS: [&str; COUNT as usize] = ["sip_monitor", "router", "steer", "lb", "gateway"];

    /// The role index of a program, if it is a role stage.
    pub fn of_program(program: &str) -> Option<u32> {
        PROGRAMS.iter().position(|p| *p == program).map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_links_present_roles_in_slot_order() {
        let mut present = [false; role::COUNT as usize];
        assert_eq!(chain(&present), [ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, NONE]);
        present[role::LB as usize] = true;
        assert_eq!(chain(&present), [ABSENT, ABSENT, ABSENT, NONE, ABSENT, role::LB]);
        present[role::SIP_MONITOR as usize] = true;
        present[role::GATEWAY as usize] = true;
        assert_eq!(chain(&present), [role::LB, ABSENT, ABSENT, role::GATEWAY, NONE, role::SIP_MONITOR]);
    }
}

crate::stats! {
    /// Indices into `ENTRY_STATS`: what the entry program itself decided.
    pub mod stat {
        /// No stage in any slot: passed to the stack untouched.
        NO_STAGE = "no_stage",
    }
}
