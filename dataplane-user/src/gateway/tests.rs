//! The entries' conversions to and from the maps' layout: byte order,
//! round trips, both families.

use super::auth::{auth_key, auth_key6};
use super::*;
use std::net::SocketAddrV4;

const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// The map holds the address's octets and the port's bytes in wire order.
pub(super) fn wire_u32(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

#[test]
fn service_key_is_network_order_and_round_trips() {
    let s = Service {
        addr: A.into(),
        port: 80,
        proto: 6,
    };
    let ServiceKeyOf::V4(k) = ServiceKeyOf::from(s) else {
        panic!("an IPv4 service goes to GW_SERVICES")
    };
    assert_eq!(wire_u32(k.addr), [198, 51, 100, 10]);
    assert_eq!(k.port.to_ne_bytes(), [0, 80]);
    assert_eq!(Service::from(k), s);
    let s6 = Service {
        addr: "2001:db8:64::10".parse().unwrap(),
        ..s
    };
    let ServiceKeyOf::V6(k6) = ServiceKeyOf::from(s6) else {
        panic!("an IPv6 service goes to GW_SERVICES6")
    };
    assert_eq!(wire_u32(k6.addr[0]), [0x20, 0x01, 0x0d, 0xb8]);
    assert_eq!(wire_u32(k6.addr[3]), [0, 0, 0, 0x10]);
    assert_eq!(Service::from(k6), s6);
}

#[test]
fn server_entry_round_trips_and_an_empty_slot_is_none() {
    let e = ServerEntry {
        addr: Ipv4Addr::new(10, 2, 0, 11).into(),
        port: 8080,
        mac: [2, 0, 0, 0, 0x5e, 1],
        src_mac: [2, 0, 0, 0, 0xcc, 1],
        ifindex: 7,
    };
    let raw = Server::from(e);
    assert_eq!(wire_u32(raw.addr), [10, 2, 0, 11]);
    assert_eq!(raw.port.to_ne_bytes(), 8080u16.to_be_bytes());
    assert_eq!(raw.flags, 1);
    assert_eq!(ServerEntry::from_map(raw), Some(e));
    assert_eq!(ServerEntry::from_map(Server::default()), None);
    let e6 = ServerEntry {
        addr: "2001:db8:2::11".parse().unwrap(),
        ..e
    };
    let raw6 = Server::from(e6);
    assert_eq!((raw6.addr, wire_u32(raw6.addr6[3])), (0, [0, 0, 0, 0x11]));
    assert_eq!(ServerEntry::from_map(raw6), Some(e6));
}

#[test]
fn settings_type_rules_and_flows_round_trip() {
    let s = Settings {
        address: Ipv4Addr::new(10, 2, 0, 1),
        port_min: 20000,
        port_max: 59999,
        enabled: true,
        n3_addr: None,
        address6: None,
        n3_addr6: None,
    };
    let raw = GwConfig::from(s);
    assert_eq!(wire_u32(raw.addr), [10, 2, 0, 1]);
    assert_eq!(
        (raw.port_min, raw.port_max),
        (20000, 59999),
        "pool bounds stay host order"
    );
    assert_eq!(raw.n3_addr, 0, "no N3 address: plain IP only");
    assert_eq!(Settings::from(raw), s);
    let n3 = Settings {
        n3_addr: Some(Ipv4Addr::new(10, 3, 0, 1)),
        ..s
    };
    assert_eq!(wire_u32(GwConfig::from(n3).n3_addr), [10, 3, 0, 1]);
    assert_eq!(Settings::from(GwConfig::from(n3)), n3);
    let n3v6 = Settings {
        n3_addr6: Some("2001:db8:3::1".parse().unwrap()),
        ..n3
    };
    let raw = GwConfig::from(n3v6);
    assert_eq!(wire_u32(raw.n3_addr6[0]), [0x20, 0x01, 0x0d, 0xb8]);
    assert_eq!(wire_u32(raw.n3_addr6[3]), [0, 0, 0, 1]);
    assert_eq!(Settings::from(raw), n3v6);
    let v6 = Settings {
        address6: Some("2001:db8:2::1".parse().unwrap()),
        ..s
    };
    assert_eq!(
        wire_u32(GwConfig::from(v6).addr6[0]),
        [0x20, 0x01, 0x0d, 0xb8]
    );
    assert_eq!(Settings::from(GwConfig::from(v6)), v6);

    let r = TypeRuleEntry {
        proto: 17,
        dscp: Some(46),
        session_type: 1,
        terminals: Ipv4Addr::new(10, 9, 0, 0).into(),
        terminals_len: 16,
    };
    let raw = TypeRule::from(r);
    assert_eq!((raw.dscp_plus1, raw.valid, raw.prefix_len), (47, 1, 16));
    assert_eq!(wire_u32(raw.prefix), [10, 9, 0, 0]);
    assert_eq!(TypeRuleEntry::from_map(raw), Some(r));
    let any = TypeRuleEntry { dscp: None, ..r };
    assert_eq!(TypeRule::from(any).dscp_plus1, 0);
    assert_eq!(TypeRuleEntry::from_map(TypeRule::from(any)), Some(any));
    assert_eq!(TypeRuleEntry::from_map(TypeRule::default()), None);
    let r6 = TypeRuleEntry {
        terminals: "2001:db8:9::".parse().unwrap(),
        terminals_len: 48,
        ..r
    };
    let raw6 = TypeRule::from(r6);
    assert_eq!((raw6.v6, raw6.prefix_len, raw6.prefix), (1, 48, 0));
    assert_eq!(TypeRuleEntry::from_map(raw6), Some(r6));

    let f = Flow {
        addr: Ipv4Addr::new(10, 0, 0, 2).into(),
        port: 33000,
        proto: 6,
        tunnel: None,
    };
    let key = |f: Flow| match FlowKeyOf::from(f) {
        FlowKeyOf::V4(k) => k,
        FlowKeyOf::V6(_) => panic!("an IPv4 flow goes to GW_FLOWS"),
    };
    let raw = key(f);
    assert_eq!(raw.port.to_ne_bytes(), 33000u16.to_be_bytes());
    assert_eq!(raw.tunnel, gateway::NO_TUNNEL);
    assert_eq!(Flow::from(raw), f);
    let t = Flow {
        tunnel: Some(0),
        ..f
    };
    assert_eq!(key(t).tunnel, 1, "tunnel index + 1");
    assert_eq!(Flow::from(key(t)), t);
    let f6 = Flow {
        addr: "2001:db8:1::2".parse().unwrap(),
        ..f
    };
    let FlowKeyOf::V6(k6) = FlowKeyOf::from(f6) else {
        panic!("an IPv6 flow goes to GW_FLOWS6")
    };
    assert_eq!(Flow::from(k6), f6);
}

#[test]
fn session_ports_and_addresses_come_out_in_host_order() {
    let raw = Session {
        state: gateway::SESSION_ACTIVE,
        flags: gateway::SF_FIN,
        term_addr: u32::from_ne_bytes([10, 0, 0, 2]),
        term_port: 33000u16.to_be(),
        proto: 6,
        session_type: 1,
        rep_addr: u32::from_ne_bytes([198, 51, 100, 10]),
        rep_port: 80u16.to_be(),
        group: 3,
        server: 5,
        up_ifindex: 4,
        created_ns: 10,
        last_seen_ns: 20,
        ..Session::default()
    };
    let s = SessionEntry::from(raw);
    assert!(s.active);
    assert_eq!(
        (s.terminal, s.representative),
        (
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 33000).into(),
            SocketAddrV4::new(A, 80).into()
        )
    );
    assert_eq!(
        (
            s.flags,
            s.proto,
            s.session_type,
            s.group,
            s.server,
            s.up_ifindex,
            s.created_ns,
            s.last_seen_ns
        ),
        (gateway::SF_FIN, 6, 1, 3, 5, 4, 10, 20)
    );
    assert!(
        !SessionEntry::from(Session {
            state: gateway::SESSION_FREE,
            ..raw
        })
        .active
    );
    assert_eq!(s.tunnel, None);
    assert_eq!(
        SessionEntry::from(Session { tunnel: 8, ..raw }).tunnel,
        Some(7)
    );
}

#[test]
fn an_ipv6_session_takes_its_addresses_from_gw_sess6() {
    let term: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let rep: Ipv6Addr = "2001:db8:64::10".parse().unwrap();
    let raw = Session {
        state: gateway::SESSION_ACTIVE,
        term_port: 33000u16.to_be(),
        rep_port: 80u16.to_be(),
        family: gateway::FAMILY_V6,
        ..Session::default()
    };
    let s6 = Session6 {
        term_addr: net6(term),
        rep_addr: net6(rep),
    };
    let s = SessionEntry::from_maps(raw, Some(s6));
    assert_eq!(s.terminal, SocketAddr::new(term.into(), 33000));
    assert_eq!(s.representative, SocketAddr::new(rep.into(), 80));
    // An IPv4 session ignores a stale GW_SESS6 slot.
    let v4 = SessionEntry::from_maps(
        Session {
            family: gateway::FAMILY_V4,
            ..raw
        },
        Some(s6),
    );
    assert!(v4.terminal.is_ipv4());
    assert_eq!(addr6(net6(term)), term);
}

#[test]
fn auth_key_puts_the_group_first_in_wire_order() {
    let k = auth_key(2, Ipv4Addr::new(10, 9, 0, 0), 16);
    assert_eq!(k.prefix_len(), 48);
    assert_eq!(k.data().group_be.to_ne_bytes(), [0, 0, 0, 2]);
    assert_eq!(wire_u32(k.data().addr), [10, 9, 0, 0]);
    let k6 = auth_key6(2, "2001:db8:9::".parse().unwrap(), 48);
    assert_eq!(k6.prefix_len(), 80);
    assert_eq!(k6.data().group_be.to_ne_bytes(), [0, 0, 0, 2]);
    assert_eq!(wire_u32(k6.data().addr[1]), [0, 9, 0, 0]);
}
