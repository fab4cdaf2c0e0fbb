//! The one entry program per interface (ARCHITECTURE §5). The interface
//! runs `entry`, which tail-calls the first role stage in `ENTRY_STAGES`;
//! a stage that passes a packet tail-calls the next one. Roles never
//! attach programs of their own to an interface they share.
//!
//! The daemon puts each role's stage in the slot of its position in the
//! interface's order ([`Order`], from `node.stage_order`). Where each
//! stage goes next is in `ENTRY_NEXT`, written whenever a stage registers:
//! entry `r` is the slot after role `r`'s stage, entry [`FIRST`] the entry
//! program's first, so every hand-off is one tail call (or none), never a
//! search through empty slots. The entries after those record the order
//! the chain was linked in, so a daemon started with another order does
//! not link a chain whose other stages sit in the old slots.

/// Slots of `ENTRY_STAGES`: at most this many stages on one interface.
pub const STAGES_MAX: u32 = 8;

/// `ENTRY_NEXT` index of the entry program's first stage.
pub const FIRST: u32 = role::COUNT;

/// `ENTRY_NEXT` index where the linked order starts (`role::COUNT`
/// entries: the role in each slot).
pub const ORDER_AT: u32 = role::COUNT + 1;

/// Entries of `ENTRY_NEXT`.
pub const NEXT_LEN: u32 = ORDER_AT + role::COUNT;

/// `ENTRY_NEXT` value: no stage follows.
pub const NONE: u32 = u32::MAX;

/// `ENTRY_NEXT` value of a role that has no stage on the interface.
pub const ABSENT: u32 = u32::MAX - 1;

/// The stages' order on an interface: the role in each slot.
pub type Order = [u32; role::COUNT as usize];

/// What only observes first, then what filters, then what rewrites and
/// sends.
pub const DEFAULT_ORDER: Order = [
    role::SIP_MONITOR,
    role::ROUTER,
    role::STEER,
    role::LB,
    role::GATEWAY,
];

/// The slot of `role` in `order` (every order names every role once).
pub fn slot_of(order: &Order, role: u32) -> u32 {
    order
        .iter()
        .position(|r| *r == role)
        .unwrap_or(role as usize) as u32
}

/// Whether `order` names every role exactly once.
pub fn is_order(order: &Order) -> bool {
    (0..role::COUNT).all(|r| order.iter().filter(|x| **x == r).count() == 1)
}

/// `ENTRY_NEXT`'s hand-offs (indices `0..=FIRST`) for the stages of the
/// `present` roles (by role index) in `order`: each present role's next
/// present slot, the first one at [`FIRST`], [`ABSENT`] for the others.
pub fn chain(
    order: &Order,
    present: &[bool; role::COUNT as usize],
) -> [u32; role::COUNT as usize + 1] {
    let mut next = [ABSENT; role::COUNT as usize + 1];
    let mut following = NONE;
    for slot in (0..role::COUNT as usize).rev() {
        let r = order[slot] as usize;
        if present[r] {
            next[r] = following;
            following = slot as u32;
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

    /// The program of each role, by index.
    pub const PROGRAMS: [&str; COUNT as usize] =
        ["sip_monitor", "router", "steer", "lb", "gateway"];

    /// The role index of a program, if it is a role stage.
    pub fn of_program(program: &str) -> Option<u32> {
        PROGRAMS
            .iter()
            .position(|p| *p == program)
            .map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_links_present_roles_in_slot_order() {
        let mut present = [false; role::COUNT as usize];
        assert_eq!(
            chain(&DEFAULT_ORDER, &present),
            [ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, NONE]
        );
        present[role::LB as usize] = true;
        assert_eq!(
            chain(&DEFAULT_ORDER, &present),
            [ABSENT, ABSENT, ABSENT, NONE, ABSENT, 3]
        );
        present[role::SIP_MONITOR as usize] = true;
        present[role::GATEWAY as usize] = true;
        assert_eq!(
            chain(&DEFAULT_ORDER, &present),
            [3, ABSENT, ABSENT, 4, NONE, 0]
        );
        // The lb first: it hands over to the sip-monitor in slot 1, which
        // hands over to the gateway in slot 4.
        let lb_first = [
            role::LB,
            role::SIP_MONITOR,
            role::ROUTER,
            role::STEER,
            role::GATEWAY,
        ];
        assert!(is_order(&lb_first) && !is_order(&[0, 0, 1, 2, 3]));
        assert_eq!(chain(&lb_first, &present), [4, ABSENT, ABSENT, 1, NONE, 0]);
        assert_eq!(
            (
                slot_of(&lb_first, role::LB),
                slot_of(&lb_first, role::GATEWAY)
            ),
            (0, 4)
        );
    }
}

crate::stats! {
    /// Indices into `ENTRY_STATS`: what the entry program itself decided.
    pub mod stat {
        /// No stage in any slot: passed to the stack untouched.
        NO_STAGE = "no_stage",
    }
}
