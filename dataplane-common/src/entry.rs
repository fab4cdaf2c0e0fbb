//! The one entry program per interface (ARCHITECTURE §5). The interface
//! runs `entry`, which tail-calls the first role stage in `ENTRY_STAGES`;
//! a stage that passes a packet tail-calls the next one. Roles never
//! attach programs of their own to an interface they share.
//!
//! A stage's slot is its position in the interface's order; each role
//! finds its own in `ENTRY_SLOTS` (indexed by [`role`]), written by the
//! daemon when it registers the stage.

/// Slots of `ENTRY_STAGES`: at most this many stages on one interface.
pub const STAGES_MAX: u32 = 8;

/// `ENTRY_SLOTS` value of a role that has no stage on the interface.
pub const NO_SLOT: u32 = u32::MAX;

/// Index of each role in `ENTRY_SLOTS`, and the XDP program it runs.
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

crate::stats! {
    /// Indices into `ENTRY_STATS`: what the entry program itself decided.
    pub mod stat {
        /// No stage in any slot: passed to the stack untouched.
        NO_STAGE = "no_stage",
    }
}
