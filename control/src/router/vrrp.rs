//! VRRPv3 for IPv4 and IPv6 (RFC 5798) as a pure engine: advertisements are
//! decoded and checked here, events go in and actions come out; sockets,
//! timers and addresses live at the edge (the daemon's `vrrp` module).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

pub const VRRP_PROTO: u8 = 112;
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 group (§5.1.2.2).
pub const VRRP_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
pub const VRRP_TTL: u8 = 255;
pub const VERSION: u8 = 3;
pub const TYPE_ADVERTISEMENT: u8 = 1;
pub const OWNER_PRIORITY: u8 = 255;

/// The virtual MAC of an IPv4 virtual router (RFC 5798 §7.3).
pub fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// The virtual MAC of an IPv6 virtual router (§7.3: 00-00-5E-00-02-{VRID}).
pub fn virtual_mac6(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x02, vrid]
}

/// The virtual MAC of a virtual router of the family of `addr`.
pub fn virtual_mac_for(addr: IpAddr, vrid: u8) -> [u8; 6] {
    if addr.is_ipv6() {
        virtual_mac6(vrid)
    } else {
        virtual_mac(vrid)
    }
}

/// Whether an IPv6 address is link-local (fe80::/10).
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A decoded advertisement (§5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds (12 bits).
    pub max_adver_int: u16,
    /// All of one family: IPv4 in an IPv4 virtual router, IPv6 in an
    /// IPv6 one (4 or 16 bytes each on the wire).
    pub addresses: Vec<IpAddr>,
}

/// Why a received advertisement was discarded (§7.1), as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Discard {
    BadTtl,
    BadVersion,
    BadType,
    BadLength,
    BadChecksum,
    UnknownVrid,
    OwnAddress,
    WeAreOwner,
    FalseOwner,
    WrongSubnet,
    AddressMismatch,
    /// IPv6: the source is not a link-local address (§5.1.2.1).
    NotLinkLocal,
    /// With unicast peers configured: from an address not among them.
    NotAPeer,
}

impl Discard {
    pub const ALL: [Discard; 13] = [
        Discard::BadTtl,
        Discard::BadVersion,
        Discard::BadType,
        Discard::BadLength,
        Discard::BadChecksum,
        Discard::UnknownVrid,
        Discard::OwnAddress,
        Discard::WeAreOwner,
        Discard::FalseOwner,
        Discard::WrongSubnet,
        Discard::AddressMismatch,
        Discard::NotLinkLocal,
        Discard::NotAPeer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Discard::BadTtl => "bad_ttl",
            Discard::BadVersion => "bad_version",
            Discard::BadType => "bad_type",
            Discard::BadLength => "bad_length",
            Discard::BadChecksum => "bad_checksum",
            Discard::UnknownVrid => "unknown_vrid",
            Discard::OwnAddress => "own_address",
            Discard::WeAreOwner => "we_are_owner",
            Discard::FalseOwner => "false_owner",
            Discard::WrongSubnet => "wrong_subnet",
            Discard::AddressMismatch => "address_mismatch",
            Discard::NotLinkLocal => "not_link_local",
            Discard::NotAPeer => "not_a_unicast_peer",
        }
    }
}

fn csum(words: &[u8], sum: u32) -> u16 {
    let mut sum = sum + sum_words(words);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sum_words(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

/// §5.2.8: the checksum covers the VRRP message and the pseudo-header of
/// its IP version (RFC 791 for IPv4; RFC 8200 §8.1 for IPv6: both
/// addresses, the 32-bit upper-layer length and next header 112).
fn pseudo(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let addrs = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum_words(&s.octets()) + sum_words(&d.octets()),
        (s, d) => sum_words(&v6(s).octets()) + sum_words(&v6(d).octets()),
    };
    addrs + VRRP_PROTO as u32 + (len as u32 >> 16) + (len as u32 & 0xffff)
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

impl Advert {
    /// The VRRP message (no IP header), checksummed for `src` → `dst`
    /// (both of the advert's family).
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut m = vec![
            (VERSION << 4) | TYPE_ADVERTISEMENT,
            self.vrid,
            self.priority,
            self.addresses.len() as u8,
            ((self.max_adver_int >> 8) & 0x0f) as u8,
            self.max_adver_int as u8,
            0,
            0,
        ];
        for a in &self.addresses {
            match a {
                IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
            }
        }
        let c = csum(&m, pseudo(src, dst, m.len()));
        m[6..8].copy_from_slice(&c.to_be_bytes());
        m
    }

    /// Decode and check an IPv4 packet carrying VRRP (§7.1 checks that
    /// need no configuration: TTL, version, type, length, checksum).
    /// Trailing bytes after the addresses are a length error, as in
    /// keepalived.
    pub fn decode_ipv4(packet: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, Advert), Discard> {
        if packet.len() < 20 {
            return Err(Discard::BadLength);
        }
        let ihl = ((packet[0] & 0x0f) as usize) * 4;
        if ihl < 20 || packet.len() < ihl + 8 {
            return Err(Discard::BadLength);
        }
        if packet[8] != VRRP_TTL {
            return Err(Discard::BadTtl);
        }
        let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let total = (u16::from_be_bytes([packet[2], packet[3]]) as usize).min(packet.len());
        let m = &packet[ihl..total.max(ihl)];
        let advert = Self::decode_message(m, src.into(), dst.into())?;
        Ok((src, dst, advert))
    }

    /// Decode and check the VRRP message of an IPv6 packet, as a raw
    /// IPv6 socket delivers it (the payload, with the source, destination
    /// and hop limit from the socket's ancillary data).
    pub fn decode_ipv6(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        msg: &[u8],
    ) -> Result<Advert, Discard> {
        if hop_limit != VRRP_TTL {
            return Err(Discard::BadTtl);
        }
        Self::decode_message(msg, src.into(), dst.into())
    }

    /// The checks of §7.1 on the message itself; addresses are 4 or 16
    /// bytes by the family of `src`.
    fn decode_message(m: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, Discard> {
        if m.len() < 8 {
            return Err(Discard::BadLength);
        }
        if m[0] >> 4 != VERSION {
            return Err(Discard::BadVersion);
        }
        if m[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(Discard::BadType);
        }
        let size = if src.is_ipv6() { 16 } else { 4 };
        let count = m[3] as usize;
        if m.len() != 8 + size * count {
            return Err(Discard::BadLength);
        }
        if csum(m, pseudo(src, dst, m.len())) != 0 {
            return Err(Discard::BadChecksum);
        }
        let addresses = m[8..]
            .chunks(size)
            .map(|c| match <[u8; 16]>::try_from(c) {
                Ok(b) => IpAddr::V6(Ipv6Addr::from(b)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
            })
            .collect();
        let max_adver_int = u16::from_be_bytes([m[4] & 0x0f, m[5]]);
        Ok(Advert {
            vrid: m[1],
            priority: m[2],
            max_adver_int,
            addresses,
        })
    }
}

/// Configuration of one virtual router instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement_Interval, centiseconds.
    pub adver_int: u16,
    pub preempt: bool,
    pub accept: bool,
    /// This router's primary address on the interface: for IPv6 its
    /// link-local address (§5.1.2.1), which adverts are sent from.
    pub primary: IpAddr,
    /// IPv4: the interface's subnet (address, prefix length); adverts
    /// from outside it are discarded. IPv6 (None): adverts must come from
    /// a link-local address.
    pub subnet: Option<(Ipv4Addr, u8)>,
    pub addresses: Vec<IpAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Initialize,
    Backup,
    Master,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Startup,
    Shutdown,
    AdverTimer,
    MasterDownTimer,
    /// A decoded advertisement from `src` (already TTL/checksum-checked).
    Advert {
        src: IpAddr,
        advert: Advert,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    /// Take the virtual addresses and MAC; announce them (gratuitous ARP
    /// for IPv4, unsolicited Neighbor Advertisements for IPv6).
    BecomeMaster,
    /// Give the virtual addresses and MAC up.
    StopBeingMaster,
    StartAdverTimer {
        cs: u16,
    },
    StartMasterDownTimer {
        cs: u32,
    },
    CancelAdverTimer,
    CancelMasterDownTimer,
    Discard(Discard),
}

/// One virtual router (§6.4).
#[derive(Clone, Debug)]
pub struct VirtualRouter {
    pub params: Params,
    pub state: State,
    /// Master_Adver_Interval (centiseconds), learnt from the master.
    pub master_adver_int: u16,
    /// The current master's primary address, when known.
    pub master: Option<IpAddr>,
    /// Why the last state change happened.
    pub last_cause: String,
}

impl VirtualRouter {
    pub fn new(params: Params) -> Self {
        let ai = params.adver_int;
        Self {
            params,
            state: State::Initialize,
            master_adver_int: ai,
            master: None,
            last_cause: "created".into(),
        }
    }

    /// Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256 (§6.1).
    pub fn skew_time(&self) -> u32 {
        ((256 - self.params.priority as u32) * self.master_adver_int as u32) / 256
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (§6.1).
    pub fn master_down_interval(&self) -> u32 {
        3 * self.master_adver_int as u32 + self.skew_time()
    }

    /// The one place state changes; the daemon logs old → new with
    /// `last_cause`.
    fn change_state(&mut self, to: State, cause: &str) {
        self.state = to;
        self.last_cause = cause.into();
    }

    /// IPv4: within the interface's subnet. IPv6: link-local.
    fn source_ok(&self, a: IpAddr) -> Result<(), Discard> {
        match (a, self.params.subnet) {
            (IpAddr::V4(a), Some((net, len))) => {
                let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
                if u32::from(a) & mask == u32::from(net) & mask {
                    Ok(())
                } else {
                    Err(Discard::WrongSubnet)
                }
            }
            (IpAddr::V6(a), None) if is_link_local(a) => Ok(()),
            (IpAddr::V6(_), None) => Err(Discard::NotLinkLocal),
            _ => Err(Discard::WrongSubnet),
        }
    }

    pub fn handle(&mut self, ev: Event) -> Vec<Action> {
        use Action::*;
        let p = self.params.priority;
        match (self.state, ev) {
            // §6.4.1
            (State::Initialize, Event::Startup) => {
                if p == OWNER_PRIORITY {
                    self.master = Some(self.params.primary);
                    self.change_state(State::Master, "startup as address owner (§6.4.1)");
                    vec![
                        SendAdvert { priority: p },
                        BecomeMaster,
                        StartAdverTimer {
                            cs: self.params.adver_int,
                        },
                    ]
                } else {
                    self.master_adver_int = self.params.adver_int;
                    self.change_state(State::Backup, "startup (§6.4.1)");
                    vec![StartMasterDownTimer {
                        cs: self.master_down_interval(),
                    }]
                }
            }
            (State::Initialize, _) => vec![],
            // §6.4.2
            (State::Backup, Event::Shutdown) => {
                self.change_state(State::Initialize, "shutdown (§6.4.2)");
                vec![CancelMasterDownTimer]
            }
            (State::Backup, Event::MasterDownTimer) => {
                self.master = Some(self.params.primary);
                self.change_state(State::Master, "master down timer fired (§6.4.2)");
                vec![
                    SendAdvert { priority: p },
                    BecomeMaster,
                    StartAdverTimer {
                        cs: self.params.adver_int,
                    },
                ]
            }
            (State::Backup, Event::AdverTimer) => vec![],
            (State::Backup, Event::Startup) => vec![],
            (State::Backup, Event::Advert { src, advert }) => {
                if let Some(d) = self.check(src, &advert) {
                    return vec![Discard(d)];
                }
                if advert.priority == 0 {
                    // The master is leaving: take over after Skew_Time.
                    return vec![StartMasterDownTimer {
                        cs: self.skew_time(),
                    }];
                }
                if !self.params.preempt || advert.priority >= p {
                    self.master_adver_int = advert.max_adver_int;
                    self.master = Some(src);
                    vec![StartMasterDownTimer {
                        cs: self.master_down_interval(),
                    }]
                } else {
                    // Preempting a lower-priority master: let the timer run.
                    vec![]
                }
            }
            // §6.4.3
            (State::Master, Event::Shutdown) => {
                self.change_state(State::Initialize, "shutdown (§6.4.3)");
                vec![
                    CancelAdverTimer,
                    SendAdvert { priority: 0 },
                    StopBeingMaster,
                ]
            }
            (State::Master, Event::AdverTimer) => vec![
                SendAdvert { priority: p },
                StartAdverTimer {
                    cs: self.params.adver_int,
                },
            ],
            (State::Master, Event::MasterDownTimer) => vec![],
            (State::Master, Event::Startup) => vec![],
            (State::Master, Event::Advert { src, advert }) => {
                if let Some(d) = self.check(src, &advert) {
                    return vec![Discard(d)];
                }
                if advert.priority == 0 {
                    return vec![
                        SendAdvert { priority: p },
                        StartAdverTimer {
                            cs: self.params.adver_int,
                        },
                    ];
                }
                let higher =
                    advert.priority > p || (advert.priority == p && src > self.params.primary);
                if higher {
                    self.master_adver_int = advert.max_adver_int;
                    self.master = Some(src);
                    self.change_state(State::Backup, "higher-priority advertisement (§6.4.3)");
                    vec![
                        CancelAdverTimer,
                        StopBeingMaster,
                        StartMasterDownTimer {
                            cs: self.master_down_interval(),
                        },
                    ]
                } else {
                    vec![]
                }
            }
        }
    }

    /// §7.1 checks that need this router's configuration.
    fn check(&self, src: IpAddr, a: &Advert) -> Option<Discard> {
        if a.vrid != self.params.vrid {
            return Some(Discard::UnknownVrid);
        }
        if src == self.params.primary {
            return Some(Discard::OwnAddress);
        }
        if self.params.priority == OWNER_PRIORITY {
            return Some(Discard::WeAreOwner);
        }
        if a.priority == OWNER_PRIORITY
            && !self.params.addresses.contains(&src)
            && !a.addresses.contains(&src)
        {
            return Some(Discard::FalseOwner);
        }
        if let Err(d) = self.source_ok(src) {
            return Some(d);
        }
        if a.priority != OWNER_PRIORITY {
            let mut theirs = a.addresses.clone();
            let mut ours = self.params.addresses.clone();
            theirs.sort();
            ours.sort();
            if theirs != ours {
                // §7.1 MAY: the addresses do not match this virtual router.
                return Some(Discard::AddressMismatch);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 2);
    const PEER_HI: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 3);
    const PEER_LO: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 1);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 100);

    fn params(priority: u8, preempt: bool) -> Params {
        Params {
            vrid: 51,
            priority,
            adver_int: 100,
            preempt,
            accept: false,
            primary: ME.into(),
            subnet: Some((Ipv4Addr::new(10, 3, 0, 0), 24)),
            addresses: vec![VIP.into()],
        }
    }

    fn adv(priority: u8) -> Advert {
        Advert {
            vrid: 51,
            priority,
            max_adver_int: 100,
            addresses: vec![VIP.into()],
        }
    }

    fn from(src: impl Into<IpAddr>, a: Advert) -> Event {
        Event::Advert {
            src: src.into(),
            advert: a,
        }
    }

    /// A recorded case: starting state set up by `prelude`, then events →
    /// expected actions and final state.
    struct Case {
        name: &'static str,
        priority: u8,
        preempt: bool,
        prelude: Vec<Event>,
        events: Vec<Event>,
        actions: Vec<Vec<Action>>,
        state: State,
    }

    fn cases() -> Vec<Case> {
        use Action::*;
        let backup = vec![Event::Startup];
        let master = vec![Event::Startup, Event::MasterDownTimer];
        vec![
            Case { name: "6.4.1 startup, owner -> master", priority: 255, preempt: true, prelude: vec![], events: vec![Event::Startup],
                actions: vec![vec![SendAdvert { priority: 255 }, BecomeMaster, StartAdverTimer { cs: 100 }]], state: State::Master },
            Case { name: "6.4.1 startup, non-owner -> backup (Master_Down_Interval = 3*100 + (256-100)*100/256)", priority: 100, preempt: true, prelude: vec![], events: vec![Event::Startup],
                actions: vec![vec![StartMasterDownTimer { cs: 360 }]], state: State::Backup },
            Case { name: "6.4.1 events before startup are ignored", priority: 100, preempt: true, prelude: vec![], events: vec![from(PEER_HI, adv(200)), Event::MasterDownTimer],
                actions: vec![vec![], vec![]], state: State::Initialize },
            Case { name: "6.4.2 backup shutdown -> initialize", priority: 100, preempt: true, prelude: backup.clone(), events: vec![Event::Shutdown],
                actions: vec![vec![CancelMasterDownTimer]], state: State::Initialize },
            Case { name: "6.4.2 master down timer -> master", priority: 100, preempt: true, prelude: backup.clone(), events: vec![Event::MasterDownTimer],
                actions: vec![vec![SendAdvert { priority: 100 }, BecomeMaster, StartAdverTimer { cs: 100 }]], state: State::Master },
            Case { name: "6.4.2 priority 0 -> master down timer = skew time", priority: 100, preempt: true, prelude: backup.clone(), events: vec![from(PEER_HI, adv(0))],
                actions: vec![vec![StartMasterDownTimer { cs: 60 }]], state: State::Backup },
            Case { name: "6.4.2 higher priority advert resets the timer, learns the interval", priority: 100, preempt: true, prelude: backup.clone(),
                events: vec![from(PEER_HI, Advert { max_adver_int: 200, ..adv(200) })], actions: vec![vec![StartMasterDownTimer { cs: 3 * 200 + (156 * 200) / 256 }]], state: State::Backup },
            Case { name: "6.4.2 lower priority advert, preempt: discarded, timer runs", priority: 100, preempt: true, prelude: backup.clone(), events: vec![from(PEER_LO, adv(50))],
                actions: vec![vec![]], state: State::Backup },
            Case { name: "6.4.2 lower priority advert, no preempt: accepted", priority: 100, preempt: false, prelude: backup.clone(), events: vec![from(PEER_LO, adv(50))],
                actions: vec![vec![StartMasterDownTimer { cs: 360 }]], state: State::Backup },
            Case { name: "6.4.3 master adver timer -> advert", priority: 100, preempt: true, prelude: master.clone(), events: vec![Event::AdverTimer],
                actions: vec![vec![SendAdvert { priority: 100 }, StartAdverTimer { cs: 100 }]], state: State::Master },
            Case { name: "6.4.3 master shutdown -> priority 0, initialize", priority: 100, preempt: true, prelude: master.clone(), events: vec![Event::Shutdown],
                actions: vec![vec![CancelAdverTimer, SendAdvert { priority: 0 }, StopBeingMaster]], state: State::Initialize },
            Case { name: "6.4.3 master hears priority 0 -> advert at once", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(PEER_HI, adv(0))],
                actions: vec![vec![SendAdvert { priority: 100 }, StartAdverTimer { cs: 100 }]], state: State::Master },
            Case { name: "6.4.3 master hears higher priority -> backup", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(PEER_LO, adv(150))],
                actions: vec![vec![CancelAdverTimer, StopBeingMaster, StartMasterDownTimer { cs: 360 }]], state: State::Backup },
            Case { name: "6.4.3 equal priority, higher address wins", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(PEER_HI, adv(100))],
                actions: vec![vec![CancelAdverTimer, StopBeingMaster, StartMasterDownTimer { cs: 360 }]], state: State::Backup },
            Case { name: "6.4.3 equal priority, lower address loses", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(PEER_LO, adv(100))],
                actions: vec![vec![]], state: State::Master },
            Case { name: "6.4.3 master hears lower priority -> stays", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(PEER_HI, adv(50))],
                actions: vec![vec![]], state: State::Master },
            Case { name: "7.1 wrong VRID discarded", priority: 100, preempt: true, prelude: backup.clone(), events: vec![from(PEER_HI, Advert { vrid: 52, ..adv(200) })],
                actions: vec![vec![Discard(super::Discard::UnknownVrid)]], state: State::Backup },
            Case { name: "7.1 our own address discarded", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(ME, adv(200))],
                actions: vec![vec![Discard(super::Discard::OwnAddress)]], state: State::Master },
            Case { name: "7.1 priority 255 from a non-owner discarded", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(PEER_HI, adv(255))],
                actions: vec![vec![Discard(super::Discard::FalseOwner)]], state: State::Master },
            Case { name: "7.1 the owner discards every advert", priority: 255, preempt: true, prelude: vec![Event::Startup], events: vec![from(PEER_HI, adv(200))],
                actions: vec![vec![Discard(super::Discard::WeAreOwner)]], state: State::Master },
            Case { name: "7.1 wrong subnet discarded", priority: 100, preempt: true, prelude: master.clone(), events: vec![from(Ipv4Addr::new(192, 0, 2, 9), adv(200))],
                actions: vec![vec![Discard(super::Discard::WrongSubnet)]], state: State::Master },
            Case { name: "7.1 other virtual addresses discarded", priority: 100, preempt: true, prelude: master, events: vec![from(PEER_HI, Advert { addresses: vec![Ipv4Addr::new(10, 3, 0, 200).into()], ..adv(200) })],
                actions: vec![vec![Discard(super::Discard::AddressMismatch)]], state: State::Master },
        ]
    }

    #[test]
    fn rfc5798_section_6_4_conformance() {
        for c in cases() {
            let mut vr = VirtualRouter::new(params(c.priority, c.preempt));
            for e in c.prelude {
                vr.handle(e);
            }
            for (e, want) in c.events.into_iter().zip(c.actions) {
                assert_eq!(vr.handle(e), want, "{}", c.name);
            }
            assert_eq!(vr.state, c.state, "{}", c.name);
        }
    }

    #[test]
    fn advert_round_trip_and_checks() {
        let a = adv(150);
        let m = a.encode(ME.into(), VRRP_GROUP.into());
        assert_eq!(m.len(), 12);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 255, VRRP_PROTO, 0, 0];
        ip.extend_from_slice(&ME.octets());
        ip.extend_from_slice(&VRRP_GROUP.octets());
        ip[2..4].copy_from_slice(&((20 + m.len()) as u16).to_be_bytes());
        let mut pkt = ip.clone();
        pkt.extend_from_slice(&m);
        let (src, dst, back) = Advert::decode_ipv4(&pkt).unwrap();
        assert_eq!((src, dst, back), (ME, VRRP_GROUP, a.clone()));
        let mut ttl = pkt.clone();
        ttl[8] = 254;
        assert_eq!(Advert::decode_ipv4(&ttl).unwrap_err(), Discard::BadTtl);
        let mut sum = pkt.clone();
        sum[20 + 2] ^= 1;
        assert_eq!(Advert::decode_ipv4(&sum).unwrap_err(), Discard::BadChecksum);
        let mut v2 = pkt.clone();
        v2[20] = 0x21;
        assert_eq!(Advert::decode_ipv4(&v2).unwrap_err(), Discard::BadVersion);
        let mut trailing = pkt.clone();
        trailing.extend_from_slice(&[0, 0, 0, 0]);
        let n = trailing.len() as u16;
        trailing[2..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(
            Advert::decode_ipv4(&trailing).unwrap_err(),
            Discard::BadLength
        );
        for cut in 0..pkt.len() {
            assert!(Advert::decode_ipv4(&pkt[..cut]).is_err(), "cut at {cut}");
        }
        // 12-bit interval.
        let long = Advert {
            max_adver_int: 4095,
            ..a
        };
        let m = long.encode(ME.into(), VRRP_GROUP.into());
        let mut p2 = ip;
        p2.extend_from_slice(&m);
        assert_eq!(Advert::decode_ipv4(&p2).unwrap().2.max_adver_int, 4095);
    }

    /// keepalived 2.2.7's advert for VRID 51, priority 100, 1 s,
    /// 2001:db8:3::100, captured on a veth (tcpdump: "sum ok").
    const KEEPALIVED_V6: [u8; 24] = [
        0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x8c, 0xb3, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x03, 0, 0,
        0, 0, 0, 0, 0, 0, 0x01, 0x00,
    ];
    const KA_SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xd422, 0x87ff, 0xfef0, 0x55c6);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x100);
    const ME6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

    #[test]
    fn ipv6_advert_matches_keepalived_byte_for_byte() {
        let a = Advert::decode_ipv6(KA_SRC, VRRP_GROUP6, 255, &KEEPALIVED_V6).unwrap();
        assert_eq!(
            a,
            Advert {
                vrid: 51,
                priority: 100,
                max_adver_int: 100,
                addresses: vec![VIP6.into()],
            }
        );
        // Our encoder gives keepalived's bytes, checksum included.
        assert_eq!(a.encode(KA_SRC.into(), VRRP_GROUP6.into()), KEEPALIVED_V6);
        assert_eq!(
            Advert::decode_ipv6(KA_SRC, VRRP_GROUP6, 254, &KEEPALIVED_V6),
            Err(Discard::BadTtl)
        );
        // The checksum covers the pseudo-header: another source fails it.
        assert_eq!(
            Advert::decode_ipv6(ME6, VRRP_GROUP6, 255, &KEEPALIVED_V6),
            Err(Discard::BadChecksum)
        );
        for cut in 0..KEEPALIVED_V6.len() {
            assert!(
                Advert::decode_ipv6(KA_SRC, VRRP_GROUP6, 255, &KEEPALIVED_V6[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // An IPv4-sized address list under IPv6 is a length error.
        let v4ish = Advert {
            addresses: vec![VIP.into()],
            ..a.clone()
        }
        .encode(KA_SRC.into(), VRRP_GROUP6.into());
        assert_eq!(
            Advert::decode_ipv6(KA_SRC, VRRP_GROUP6, 255, &v4ish),
            Err(Discard::BadLength)
        );
    }

    #[test]
    fn ipv6_virtual_router_elects_by_link_local_address() {
        let p = Params {
            primary: ME6.into(),
            subnet: None,
            addresses: vec![VIP6.into()],
            ..params(100, true)
        };
        let adv6 = |priority| Advert {
            addresses: vec![VIP6.into()],
            ..adv(priority)
        };
        let mut vr = VirtualRouter::new(p.clone());
        vr.handle(Event::Startup);
        vr.handle(Event::MasterDownTimer);
        assert_eq!(vr.state, State::Master);
        // Equal priority from a lower link-local address: we stay.
        let lower = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(vr.handle(from(lower, adv6(100))), vec![]);
        // A global source is discarded, whatever its priority.
        let global = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 9);
        assert_eq!(
            vr.handle(from(global, adv6(200))),
            vec![Action::Discard(Discard::NotLinkLocal)]
        );
        assert_eq!(vr.state, State::Master);
        // Equal priority from a higher link-local address wins.
        let acts = vr.handle(from(KA_SRC, adv6(100)));
        assert_eq!(vr.state, State::Backup, "{acts:?}");
        assert_eq!(vr.master, Some(KA_SRC.into()));
        assert_eq!(virtual_mac6(51), [0, 0, 0x5e, 0, 2, 51]);
        assert_eq!(virtual_mac_for(VIP6.into(), 51), virtual_mac6(51));
        assert_eq!(virtual_mac_for(VIP.into(), 51), virtual_mac(51));
    }
}
