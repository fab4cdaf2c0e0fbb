//! What every role's config section shares: the error that names the
//! offending key, the interfaces claimed so far, and the field values
//! more than one role holds (MAC address, IPv4 prefix, port range,
//! protocol, interface name). No role's types live here, so each role's
//! `config` depends on this and on nothing of another role's.
//!
//! A field value is parsed once, when the file is read: each type
//! deserializes from the text the file holds (through its `FromStr`) and
//! serializes back to that text (its `Display`), so a bad value is
//! rejected by the TOML parser at its key and the roles never parse it
//! again.

use std::{
    collections::HashSet,
    fmt,
    net::{IpAddr, Ipv4Addr},
    ops::RangeInclusive,
    str::FromStr,
};

/// A config error: the dotted path of the offending key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `lb[0].gateway[1].mac`.
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same error seen from the table holding `section`: a role's
    /// section reports keys relative to itself, the file's keys are
    /// absolute.
    pub fn under(self, section: &str) -> Self {
        Self {
            key: format!("{section}.{}", self.key),
            reason: self.reason,
        }
    }
}

/// The interfaces role instances have claimed so far: an interface runs
/// one role's XDP program, so two instances cannot share it.
#[derive(Debug, Default)]
pub struct InterfaceClaims(HashSet<String>);

impl InterfaceClaims {
    pub fn claim(&mut self, interface: &str) -> Result<(), String> {
        if !self.0.insert(interface.to_string()) {
            return Err(format!(
                "{interface} is already used by another role instance"
            ));
        }
        Ok(())
    }
}

pub fn validate_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name.contains('/')
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

/// Serde through text: serializes as the type's `Display`, deserializes
/// a string through its `FromStr`, whose message becomes the error (the
/// TOML parser places it at the key holding the value).
macro_rules! text_serde {
    ($ty:ty) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                text.parse()
                    .map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use text_serde;

/// An enum whose values are fixed words in the file: `as_str`, `FromStr`
/// (exact, or ASCII case-insensitive when the invocation starts with
/// `ignore_case`), `Display` and text serde.
macro_rules! text_enum {
    (@impl $ignore_case:literal $(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The word the file uses.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| if $ignore_case { v.as_str().eq_ignore_ascii_case(s) } else { v.as_str() == s })
                    .ok_or_else(|| format!("{s:?} must be {}", $crate::field::one_of(&[$($text),+])))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        $crate::field::text_serde!($name);
    };
    (ignore_case $($def:tt)+) => { $crate::field::text_enum!(@impl true $($def)+); };
    ($($def:tt)+) => { $crate::field::text_enum!(@impl false $($def)+); };
}
pub(crate) use text_enum;

/// `"a", "b" or "c"`: the words an enum takes, for its error message.
pub fn one_of(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// An Ethernet address, `xx:xx:xx:xx:xx:xx` in the file (either case on
/// input, lower case on output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a MAC address (xx:xx:xx:xx:xx:xx)");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts
                .next()
                .filter(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or_else(bad)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            None => Ok(Self(out)),
            Some(_) => Err(bad()),
        }
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        f.pad(&format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}"))
    }
}

text_serde!(MacAddr);

/// The six bytes of a MAC address written `xx:xx:xx:xx:xx:xx`, for text
/// that does not come through a config type.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    s.parse::<MacAddr>().ok().map(MacAddr::octets)
}

/// An IPv4 address with a prefix length, `A.B.C.D/LEN` in the file; a
/// bare address is a /32. The address is kept as written: a VRRP virtual
/// address is a host in its subnet, an `allow` entry a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    /// 0..=32.
    pub len: u8,
}

impl Ipv4Prefix {
    /// Every address (0.0.0.0/0).
    pub const ANY: Self = Self {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    /// The netmask, host order.
    pub fn mask(self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0)
    }

    /// The address with its host bits cleared.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.network())
    }
}

impl FromStr for Ipv4Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not A.B.C.D/LEN");
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        if len > 32 {
            return Err(bad());
        }
        Ok(Self { addr, len })
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}/{}", self.addr, self.len))
    }
}

text_serde!(Ipv4Prefix);

/// An IPv4 or IPv6 address with a prefix length, `ADDR/LEN` in the file
/// (`A.B.C.D/LEN` or `X:X::X/LEN`); a bare address is a host (/32,
/// /128). As with `Ipv4Prefix`, the address is kept as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub addr: IpAddr,
    /// 0..=32 for IPv4, 0..=128 for IPv6.
    pub len: u8,
}

impl IpPrefix {
    pub fn is_ipv6(self) -> bool {
        self.addr.is_ipv6()
    }

    /// Every prefix of one family: 0.0.0.0/0 or ::/0.
    pub fn any(ipv6: bool) -> Self {
        let addr = if ipv6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        Self { addr, len: 0 }
    }

    /// The address with the host bits cleared.
    pub fn network(self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(
                Ipv4Prefix {
                    addr: a,
                    len: self.len,
                }
                .network(),
            ),
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    /// Whether `a` (of the same family) is in this prefix.
    pub fn contains(self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(p), IpAddr::V4(a)) => Ipv4Prefix {
                addr: p,
                len: self.len,
            }
            .contains(a),
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl From<Ipv4Prefix> for IpPrefix {
    fn from(p: Ipv4Prefix) -> Self {
        Self {
            addr: IpAddr::V4(p.addr),
            len: p.len,
        }
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not A.B.C.D/LEN or X:X::X/LEN");
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv6() { 128 } else { 32 };
        let len: u8 = match l {
            Some(l) => l.parse().map_err(|_| bad())?,
            None => max,
        };
        if len > max {
            return Err(bad());
        }
        Ok(Self { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}/{}", self.addr, self.len))
    }
}

text_serde!(IpPrefix);

/// A range of ports, `FIRST-LAST` in the file, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn ports(self) -> RangeInclusive<u16> {
        self.first..=self.last
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected MIN-MAX with MIN <= MAX <= 65535");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        Ok(Self { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}-{}", self.first, self.last))
    }
}

text_serde!(PortRange);

text_enum! {
    ignore_case
    /// A transport protocol a rule or a representative address names
    /// (`tcp` or `udp`, either case on input).
    pub enum Protocol {
        Tcp = "tcp",
        Udp = "udp",
    }
}

impl Protocol {
    /// The IP protocol number (RFC 790 assigned numbers).
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text → value → the same text, through serde as the config reads
    /// and writes it.
    fn round_trip<T>(text: &str) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned + fmt::Display,
    {
        let json = serde_json::to_string(text).unwrap();
        let v: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(serde_json::to_string(&v).unwrap(), json);
        assert_eq!(v.to_string(), text);
        v
    }

    fn rejected<T: serde::de::DeserializeOwned + fmt::Debug>(text: &str) -> String {
        serde_json::from_str::<T>(&serde_json::to_string(text).unwrap())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mac_round_trips_and_rejects() {
        let m: MacAddr = round_trip("02:00:00:00:01:0a");
        assert_eq!(m.octets(), [2, 0, 0, 0, 1, 0x0a]);
        assert_eq!("02:00:00:00:01:0A".parse::<MacAddr>(), Ok(m));
        assert_eq!(format!("{m:<19}|"), "02:00:00:00:01:0a  |");
        for bad in [
            "nope",
            "02:00:00:00:01",
            "02:00:00:00:01:0a:0b",
            "2:00:00:00:01:0a",
            "02:00:00:00:01:zz",
            "02:00:00:00:01:+a",
            "",
        ] {
            let e = rejected::<MacAddr>(bad);
            assert!(
                e.contains("is not a MAC address (xx:xx:xx:xx:xx:xx)"),
                "{bad}: {e}"
            );
        }
        assert_eq!(parse_mac("02:00:00:00:01:0a"), Some(m.octets()));
        assert_eq!(parse_mac("zz"), None);
    }

    #[test]
    fn prefix_round_trips_and_rejects() {
        let p: Ipv4Prefix = round_trip("10.1.2.3/8");
        assert_eq!((p.addr, p.len), (Ipv4Addr::new(10, 1, 2, 3), 8));
        assert_eq!(p.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert!(
            p.contains(Ipv4Addr::new(10, 200, 0, 1)) && !p.contains(Ipv4Addr::new(11, 0, 0, 1))
        );
        let any: Ipv4Prefix = round_trip("0.0.0.0/0");
        assert_eq!(any, Ipv4Prefix::ANY);
        assert!(any.contains(Ipv4Addr::new(192, 0, 2, 1)));
        let host: Ipv4Prefix = round_trip("192.0.2.1/32");
        assert!(
            host.contains(Ipv4Addr::new(192, 0, 2, 1))
                && !host.contains(Ipv4Addr::new(192, 0, 2, 2))
        );
        // A bare address is a /32 (and is written back with its length).
        assert_eq!("192.0.2.1".parse::<Ipv4Prefix>(), Ok(host));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "ten/8",
            "",
        ] {
            let e = rejected::<Ipv4Prefix>(bad);
            assert!(e.contains("is not A.B.C.D/LEN"), "{bad}: {e}");
        }
    }

    #[test]
    fn ip_prefix_takes_both_families() {
        let p: IpPrefix = round_trip("2001:db8:3::100/64");
        assert!(p.is_ipv6());
        assert!(p.contains("2001:db8:3::9".parse().unwrap()));
        assert!(!p.contains("2001:db8:4::9".parse().unwrap()));
        assert!(
            !p.contains("10.3.0.9".parse().unwrap()),
            "families never match"
        );
        let v4: IpPrefix = round_trip("10.3.0.100/24");
        assert!(!v4.is_ipv6() && v4.contains("10.3.0.9".parse().unwrap()));
        assert_eq!(
            "fe80::1".parse::<IpPrefix>().unwrap().to_string(),
            "fe80::1/128"
        );
        assert_eq!("10.0.0.1".parse::<IpPrefix>().unwrap().len, 32);
        let all: IpPrefix = round_trip("::/0");
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        for bad in [
            "2001:db8::/129",
            "10.0.0.0/33",
            "2001:db8::1/",
            "fe80::1%eth0/64",
            "x/8",
            "",
        ] {
            let e = rejected::<IpPrefix>(bad);
            assert!(e.contains("is not A.B.C.D/LEN or X:X::X/LEN"), "{bad}: {e}");
        }
    }

    #[test]
    fn port_range_round_trips_and_rejects() {
        let r: PortRange = round_trip("20000-20099");
        assert_eq!((r.first, r.last, r.ports().count()), (20000, 20099, 100));
        assert_eq!(round_trip::<PortRange>("80-80").ports().count(), 1);
        assert_eq!("20000 - 20099".parse::<PortRange>(), Ok(r));
        for bad in ["30000-20000", "20000", "20000-70000", "a-b", "-1-5", ""] {
            let e = rejected::<PortRange>(bad);
            assert!(e.contains("expected MIN-MAX"), "{bad}: {e}");
        }
    }

    #[test]
    fn protocol_round_trips_and_rejects() {
        assert_eq!(round_trip::<Protocol>("tcp").number(), 6);
        assert_eq!(round_trip::<Protocol>("udp").number(), 17);
        assert_eq!("UDP".parse::<Protocol>(), Ok(Protocol::Udp));
        let e = rejected::<Protocol>("sctp");
        assert!(e.starts_with("\"sctp\" must be \"tcp\" or \"udp\""), "{e}");
        assert_eq!(format!("{:<4}|", Protocol::Tcp), "tcp |");
    }

    #[test]
    fn one_of_lists_the_words() {
        assert_eq!(one_of(&["a"]), "\"a\"");
        assert_eq!(one_of(&["a", "b"]), "\"a\" or \"b\"");
        assert_eq!(one_of(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
    }
}
