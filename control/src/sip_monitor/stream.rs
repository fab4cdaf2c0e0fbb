//! SIP over TCP, reassembled per connection (RFC 3261 §18.3): segments in
//! sequence order make a byte stream; complete messages (headers plus
//! Content-Length bytes of body) come out as they finish.

use std::collections::{BTreeMap, HashMap};

use super::sip::{self, Message, SipError};

/// A TCP connection, one direction: (src addr, src port, dst addr, dst port).
pub type ConnKey = (std::net::IpAddr, u16, std::net::IpAddr, u16);

/// How much a connection may buffer before it is given up on.
const MAX_BUFFER: usize = 256 * 1024;

/// The next message off the front of a SIP byte stream (RFC 3261 §18.3:
/// headers, then Content-Length bytes), keep-alive CRLFs before it
/// skipped (RFC 5626 §3.5.1): the message and its bytes, taken from
/// `buf`; `None` while it is incomplete; an error when the stream is not
/// SIP (nothing taken).
pub fn next_message(buf: &mut Vec<u8>) -> Result<Option<(Message<'static>, Vec<u8>)>, SipError> {
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    buf.drain(..lead);
    if buf.is_empty() {
        return Ok(None);
    }
    match sip::parse(buf) {
        Ok((m, used)) => {
            let m = m.into_owned();
            let raw = buf.drain(..used.min(buf.len())).collect();
            Ok(Some((m, raw)))
        }
        Err(SipError::NoHeaderEnd) | Err(SipError::Truncated { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Default)]
struct Conn {
    next_seq: Option<u32>,
    buf: Vec<u8>,
    /// Out-of-order segments by sequence number.
    ahead: BTreeMap<u32, Vec<u8>>,
}

#[derive(Default)]
pub struct Reassembler {
    conns: HashMap<ConnKey, Conn>,
    pub dropped_bytes: u64,
}

impl Reassembler {
    /// Feed one segment; returns the messages it completes (or errors for
    /// bytes that are not SIP, which are dropped).
    pub fn push(
        &mut self,
        key: ConnKey,
        seq: u32,
        payload: &[u8],
        fin: bool,
    ) -> Vec<Result<Message<'static>, SipError>> {
        let c = self.conns.entry(key).or_default();
        let next = *c.next_seq.get_or_insert(seq);
        let off = seq.wrapping_sub(next) as i32;
        if off < 0 {
            // A retransmission overlapping what we have: keep the new tail.
            let skip = (-off) as usize;
            if skip < payload.len() {
                c.buf.extend_from_slice(&payload[skip..]);
                c.next_seq = Some(next.wrapping_add((payload.len() - skip) as u32));
            }
        } else if off == 0 {
            c.buf.extend_from_slice(payload);
            c.next_seq = Some(next.wrapping_add(payload.len() as u32));
        } else {
            c.ahead.insert(seq, payload.to_vec());
        }
        // Segments that now follow on.
        while let Some((&s, _)) = c.ahead.iter().next() {
            let n = c.next_seq.unwrap();
            let o = s.wrapping_sub(n) as i32;
            if o > 0 {
                break;
            }
            let data = c.ahead.remove(&s).unwrap();
            let skip = (-o) as usize;
            if skip < data.len() {
                c.buf.extend_from_slice(&data[skip..]);
                c.next_seq = Some(n.wrapping_add((data.len() - skip) as u32));
            }
        }
        let mut out = Vec::new();
        loop {
            match next_message(&mut c.buf) {
                Ok(Some((m, _))) => out.push(Ok(m)),
                Ok(None) => break, // wait for more
                Err(e) => {
                    self.dropped_bytes += c.buf.len() as u64;
                    c.buf.clear();
                    out.push(Err(e));
                    break;
                }
            }
        }
        if c.buf.len() + c.ahead.values().map(Vec::len).sum::<usize>() > MAX_BUFFER {
            self.dropped_bytes += c.buf.len() as u64;
            c.buf.clear();
            c.ahead.clear();
        }
        if fin {
            self.conns.remove(&key);
        }
        out
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u32) -> Vec<u8> {
        let body = format!("v=0\r\ns=call {n}\r\n");
        format!(
            "INVITE sip:b@x.org SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK{n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x.org>;tag=1\r\nTo: <sip:b@x.org>\r\nCall-ID: c{n}\r\nCSeq: {n} INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn ip(i: u16) -> std::net::IpAddr {
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, i).into()
    }

    #[test]
    fn messages_split_reordered_and_retransmitted() {
        let mut r = Reassembler::default();
        let key = (ip(1), 5060, ip(2), 40000);
        let mut stream = msg(1);
        stream.extend_from_slice(b"\r\n\r\n"); // keep-alive
        stream.extend(msg(2));
        let (a, rest) = stream.split_at(50);
        let (b, c) = rest.split_at(rest.len() / 2);
        let base = 1000u32;
        assert!(r.push(key, base, a, false).is_empty(), "half a message");
        // The third segment arrives before the second.
        assert!(r
            .push(key, base + (a.len() + b.len()) as u32, c, false)
            .is_empty());
        let got = r.push(key, base + a.len() as u32, b, false);
        assert_eq!(
            got.iter()
                .map(|m| m.as_ref().unwrap().call_id.clone())
                .collect::<Vec<_>>(),
            vec!["c1", "c2"]
        );
        // A retransmission of old bytes yields nothing new.
        assert!(r.push(key, base + 10, &stream[10..40], false).is_empty());
        // A message whose Content-Length spans segments.
        let m3 = msg(3);
        let at = (base as usize + stream.len()) as u32;
        let split = m3.len() - 5;
        assert!(
            r.push(key, at, &m3[..split], false).is_empty(),
            "body incomplete"
        );
        let got = r.push(key, at + split as u32, &m3[split..], true);
        assert_eq!(got.len(), 1);
        assert_eq!(r.connections(), 0, "FIN forgets the connection");
    }

    #[test]
    fn garbage_is_dropped_with_a_reason() {
        let mut r = Reassembler::default();
        let got = r.push(
            (ip(1), 1, ip(2), 2),
            0,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            false,
        );
        assert!(got[0].is_err());
        assert!(r.dropped_bytes > 0);
        // The connection recovers for the next message.
        let m = msg(9);
        let got = r.push((ip(1), 1, ip(2), 2), 27, &m, false);
        assert_eq!(got.len(), 1, "{got:?}");
    }
}
