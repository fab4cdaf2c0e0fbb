//! Seed 002 claim 20 with real gateways: sessions entering by two LBs
//! alternately keep their gateway while a gateway joins, a weight changes
//! and a gateway drains (`edgeplane-lab bench gateway-changes --daemons`,
//! smaller). With daisy chaining no session breaks and no packet is lost;
//! with it off, the same run breaks plain sessions, so the count can fail.

mod common;

use testlab::bench::changes;

#[test]
fn sessions_survive_gateway_changes_only_with_chaining() {
    if !common::kernel_available("sessions_survive_gateway_changes") {
        return;
    }
    let _serial = common::serial();
    let on = changes::run_daemons(1200, 3000, 2.0, true).expect("run with chaining");
    assert_eq!(on.phases.len(), 4, "every change was made: {:?}", on.phases);
    assert_eq!(
        (on.plain.broken, on.plain.unseen),
        (0, 0),
        "plain sessions with chaining: {on:?}"
    );
    assert_eq!(
        (on.gtpu.broken, on.gtpu.unseen),
        (0, 0),
        "GTP-U sessions: {on:?}"
    );
    assert!(on.packets_sent > 10_000, "traffic ran: {on:?}");
    assert_eq!(on.packets_lost, 0, "nothing lost: {on:?}");

    let off = changes::run_daemons(1200, 3000, 2.0, false).expect("run without chaining");
    assert!(
        off.plain.broken > 0,
        "without chaining the same changes break plain sessions: {off:?}"
    );
    assert_eq!(off.gtpu.broken, 0, "TEID owners hold either way: {off:?}");
}
