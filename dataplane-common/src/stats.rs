//! Per-role counter indices. Every role's `*_STATS` array starts with the
//! five XDP verdicts in one order (the prefix the programs count through
//! one helper); the role's reasons follow. [`stats!`](crate::stats)
//! defines both, so indices, `COUNT` and `NAMES` are written once.

/// XDP actions as the kernel numbers them (`enum xdp_action`,
/// include/uapi/linux/bpf.h), and the verdict prefix of every role's stats.
pub mod verdict {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;

    /// Names of the verdict prefix, in stat-index order.
    pub const STAT_NAMES: [&str; 5] = ["tx", "redirect", "pass", "drop", "aborted"];

    /// The stat index counting `action`. The kernel treats an unknown
    /// action as XDP_ABORTED after warning (bpf_warn_invalid_xdp_action),
    /// but no program here returns one, so anything else counts as pass.
    #[inline(always)]
    pub const fn stat_index(action: u32) -> u32 {
        match action {
            TX => 0,
            REDIRECT => 1,
            DROP => 3,
            ABORTED => 4,
            _ => 2,
        }
    }

    /// Name of an XDP action.
    pub const fn name(action: u32) -> &'static str {
        match action {
            ABORTED | DROP | PASS | TX | REDIRECT => STAT_NAMES[stat_index(action) as usize],
            _ => "unknown",
        }
    }
}

/// Defines a role's stat module: the verdict prefix (`TX`, `REDIRECT`,
/// `PASS`, `DROP`, `ABORTED` at 0..=4), then each reason in the order
/// given, `VERDICTS` (the prefix length), `COUNT` and `NAMES` (as exported
/// by the CLI and the metrics endpoint).
///
/// ```
/// dataplane_common::stats! {
///     /// Indices into `EX_STATS`.
///     pub mod stat {
///         COPIED = "copied",
///         RING_FULL = "ring_full",
///     }
/// }
/// assert_eq!(stat::COPIED, 5);
/// assert_eq!(stat::NAMES[stat::RING_FULL as usize], "ring_full");
/// ```
#[macro_export]
macro_rules! stats {
    (
        $(#[$attr:meta])*
        $vis:vis mod $module:ident {
            $( $(#[$reason_attr:meta])* $reason:ident = $label:literal ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis mod $module {
            // Discriminants number the counters: the verdict prefix first,
            // then the reasons, so no index is written by hand.
            #[allow(dead_code, non_camel_case_types, clippy::upper_case_acronyms, reason = "only the discriminants are used")]
            #[repr(u32)]
            enum Index { TX, REDIRECT, PASS, DROP, ABORTED, $($reason,)* __COUNT }

            pub const TX: u32 = Index::TX as u32;
            pub const REDIRECT: u32 = Index::REDIRECT as u32;
            pub const PASS: u32 = Index::PASS as u32;
            pub const DROP: u32 = Index::DROP as u32;
            pub const ABORTED: u32 = Index::ABORTED as u32;
            $( $(#[$reason_attr])* pub const $reason: u32 = Index::$reason as u32; )*
            /// Entries below this index are verdicts, the rest reasons.
            pub const VERDICTS: u32 = Index::ABORTED as u32 + 1;
            pub const COUNT: u32 = Index::__COUNT as u32;
            /// Names as exported by the CLI and the metrics endpoint.
            pub const NAMES: [&str; COUNT as usize] = {
                const V: [&str; 5] = $crate::verdict::STAT_NAMES;
                [V[0], V[1], V[2], V[3], V[4], $($label),*]
            };

            // The programs count verdicts by `verdict::stat_index`.
            const _: () = {
                use $crate::verdict;
                assert!(TX == verdict::stat_index(verdict::TX));
                assert!(REDIRECT == verdict::stat_index(verdict::REDIRECT));
                assert!(PASS == verdict::stat_index(verdict::PASS));
                assert!(DROP == verdict::stat_index(verdict::DROP));
                assert!(ABORTED == verdict::stat_index(verdict::ABORTED));
            };
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::{gateway, lb, migration, router, sip_monitor};

    /// Every role's names: the shared prefix, then unique reason names.
    #[test]
    fn names_start_with_the_verdicts_and_are_unique() {
        let all: [&[&str]; 5] = [
            &lb::stat::NAMES,
            &gateway::stat::NAMES,
            &router::stat::NAMES,
            &sip_monitor::stat::NAMES,
            &migration::stat::NAMES,
        ];
        for names in all {
            assert_eq!(&names[..5], &super::verdict::STAT_NAMES);
            for (i, a) in names.iter().enumerate() {
                assert!(!names[i + 1..].contains(a), "{a} twice");
            }
        }
    }

    #[test]
    fn verdict_names() {
        use super::verdict::*;
        assert_eq!(
            [ABORTED, DROP, PASS, TX, REDIRECT].map(name),
            ["aborted", "drop", "pass", "tx", "redirect"]
        );
        assert_eq!(name(7), "unknown");
    }
}
