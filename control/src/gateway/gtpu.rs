//! GTP-U signalling (TS 29.281 §7): what the gateway's socket on the N3
//! address answers. The fast path handles G-PDUs; everything else it
//! passes to the kernel, where this decides the reply: an Echo Response to
//! an Echo Request, an Error Indication (rate-limited by the caller) to a
//! G-PDU whose TEID has no tunnel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MSG_ECHO_REQUEST: u8 = 1;
pub const MSG_ECHO_RESPONSE: u8 = 2;
pub const MSG_ERROR_INDICATION: u8 = 26;
pub const MSG_END_MARKER: u8 = 254;
pub const MSG_GPDU: u8 = 255;

/// IE types (TS 29.281 §8).
const IE_RECOVERY: u8 = 14;
const IE_TEID_DATA_I: u8 = 16;
const IE_PEER_ADDRESS: u8 = 133;

/// The header fields signalling needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub msg_type: u8,
    pub teid: u32,
    /// Present when the S flag is set.
    pub seq: Option<u16>,
}

/// Why a datagram is not a GTP-U message this socket can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    Short,
    NotVersion1,
    BadLength,
}

impl Malformed {
    pub fn name(self) -> &'static str {
        match self {
            Malformed::Short => "short",
            Malformed::NotVersion1 => "not_version_1",
            Malformed::BadLength => "bad_length",
        }
    }
}

/// The mandatory header, and the sequence number when S is set. The
/// length field must match what the datagram holds after the first 8
/// octets.
pub fn parse(msg: &[u8]) -> Result<Header, Malformed> {
    if msg.len() < 8 {
        return Err(Malformed::Short);
    }
    if msg[0] & 0xf0 != 0x30 {
        return Err(Malformed::NotVersion1);
    }
    let len = u16::from_be_bytes([msg[2], msg[3]]) as usize;
    if len != msg.len() - 8 {
        return Err(Malformed::BadLength);
    }
    let teid = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let seq = if msg[0] & 0x07 != 0 {
        if msg.len() < 12 {
            return Err(Malformed::Short);
        }
        (msg[0] & 0x02 != 0).then(|| u16::from_be_bytes([msg[8], msg[9]]))
    } else {
        None
    };
    Ok(Header {
        msg_type: msg[1],
        teid,
        seq,
    })
}

/// A header with S set and the 4 optional octets (sequence, N-PDU 0, no
/// extension), then `ies`.
fn message(msg_type: u8, teid: u32, seq: u16, ies: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + ies.len());
    out.push(0x32);
    out.push(msg_type);
    out.extend_from_slice(&((4 + ies.len()) as u16).to_be_bytes());
    out.extend_from_slice(&teid.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(ies);
    out
}

/// Echo Response to an Echo Request (§7.2.2): the request's sequence
/// number, TEID 0, and the Recovery IE whose restart counter is 0 (§8.2).
pub fn echo_response(req: &Header) -> Vec<u8> {
    message(
        MSG_ECHO_RESPONSE,
        0,
        req.seq.unwrap_or(0),
        &[IE_RECOVERY, 0],
    )
}

/// Echo Request, as a peer would send it (tests and benches).
pub fn echo_request(seq: u16) -> Vec<u8> {
    message(MSG_ECHO_REQUEST, 0, seq, &[])
}

/// Error Indication (§7.3.1) for a G-PDU with `teid` that has no tunnel
/// here: TEID Data I names the TEID, the peer address is ours (`n3`).
pub fn error_indication(teid: u32, n3: IpAddr, seq: u16) -> Vec<u8> {
    let mut ies = vec![IE_TEID_DATA_I];
    ies.extend_from_slice(&teid.to_be_bytes());
    ies.push(IE_PEER_ADDRESS);
    // §8.4: 4 octets for IPv4, 16 for IPv6.
    let a = match n3 {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    ies.extend_from_slice(&(a.len() as u16).to_be_bytes());
    ies.extend_from_slice(&a);
    message(MSG_ERROR_INDICATION, 0, seq, &ies)
}

/// The TEID an Error Indication names, and the peer address it carries.
pub fn parse_error_indication(msg: &[u8]) -> Option<(u32, IpAddr)> {
    let h = parse(msg).ok()?;
    if h.msg_type != MSG_ERROR_INDICATION || msg.len() < 12 + 5 + 7 {
        return None;
    }
    let ies = &msg[12..];
    if ies[0] != IE_TEID_DATA_I || ies[5] != IE_PEER_ADDRESS {
        return None;
    }
    let teid = u32::from_be_bytes([ies[1], ies[2], ies[3], ies[4]]);
    let a = &ies[8..];
    let addr = match (ies[6], ies[7]) {
        (0, 4) => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        (0, 16) if a.len() >= 16 => {
            let o: [u8; 16] = a[..16].try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some((teid, addr))
}

/// A token bucket: at most `rate` per second, bursts of `rate`.
#[derive(Clone, Debug)]
pub struct RateLimit {
    rate: f64,
    tokens: f64,
    last_s: f64,
}

impl RateLimit {
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate as f64,
            tokens: rate as f64,
            last_s: 0.0,
        }
    }

    /// One send at `now_s` (any monotonic seconds): allowed or not.
    pub fn allow(&mut self, now_s: f64) -> bool {
        self.tokens = (self.tokens + (now_s - self.last_s).max(0.0) * self.rate).min(self.rate);
        self.last_s = now_s;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_answered_with_its_sequence_number() {
        let req = echo_request(0x1234);
        let h = parse(&req).unwrap();
        assert_eq!(
            h,
            Header {
                msg_type: MSG_ECHO_REQUEST,
                teid: 0,
                seq: Some(0x1234)
            }
        );
        let resp = echo_response(&h);
        // Flags S, type 2, length 6 (4 optional octets + Recovery IE).
        assert_eq!(
            resp,
            vec![0x32, 2, 0, 6, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 14, 0]
        );
        assert_eq!(parse(&resp).unwrap().seq, Some(0x1234));
    }

    #[test]
    fn scapy_echo_request_parses() {
        // bytes(GTPHeader(version=1, PT=1, S=1, gtp_type=1, teid=0, seq=7) / GTPEchoRequest())
        // from Debian's python3-scapy 2.5.0.
        let req = [
            0x32, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
        ];
        assert_eq!(
            parse(&req).unwrap(),
            Header {
                msg_type: 1,
                teid: 0,
                seq: Some(7)
            }
        );
    }

    #[test]
    fn error_indication_names_the_teid_and_our_address() {
        let n3 = IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1));
        let m = error_indication(0xdead_beef, n3, 9);
        assert_eq!(parse(&m).unwrap().msg_type, MSG_ERROR_INDICATION);
        assert_eq!(parse_error_indication(&m), Some((0xdead_beef, n3)));
        // Over IPv6 transport the peer address IE is 16 octets.
        let n3 = IpAddr::V6("2001:db8:3::1".parse().unwrap());
        let m = error_indication(7, n3, 10);
        assert_eq!(m.len(), 12 + 5 + 3 + 16);
        assert_eq!(parse_error_indication(&m), Some((7, n3)));
        assert_eq!(parse_error_indication(&m[..m.len() - 1]), None);
    }

    #[test]
    fn malformed_headers_are_named() {
        assert_eq!(parse(&[0x32, 1, 0]), Err(Malformed::Short));
        assert_eq!(
            parse(&[0x52, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Malformed::NotVersion1)
        );
        assert_eq!(
            parse(&[0x20, 1, 0, 0, 0, 0, 0, 0]),
            Err(Malformed::NotVersion1),
            "PT 0 is GTP'"
        );
        assert_eq!(
            parse(&[0x32, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Malformed::BadLength)
        );
        assert_eq!(
            parse(&[0x32, 1, 0, 0, 0, 0, 0, 0]),
            Err(Malformed::Short),
            "S set but no optional octets"
        );
    }

    #[test]
    fn the_rate_limit_holds_its_rate() {
        let mut r = RateLimit::new(10);
        let sent = (0..1000).filter(|i| r.allow(*i as f64 / 1000.0)).count();
        // A burst of 10, then 10 per second over the second.
        assert!((19..=21).contains(&sent), "{sent}");
        let mut none = RateLimit::new(0);
        assert!(!none.allow(5.0));
    }
}
