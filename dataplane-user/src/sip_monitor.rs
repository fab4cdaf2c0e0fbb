//! Typed access to the `sip-monitor` maps.

use aya::maps::{HashMap, MapData};
use dataplane_common::{maps, sip_monitor::SipCopyHeader, Counter};

use crate::{pins::map_err, Dataplane, Error, Result};

/// A packet the monitor copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    /// Length on the wire.
    pub len: u32,
    /// The bytes copied (all of them unless the packet was longer than
    /// `sip_monitor::COPY_MAX`).
    pub frame: Vec<u8>,
}

/// A port as `SIP_PORTS` keys it: network byte order, as the program
/// reads it from the UDP/TCP header.
fn port_key(port: u16) -> u16 {
    port.to_be()
}

impl Dataplane {
    /// Copy packets to or from `port` (host order).
    pub fn add_sip_port(&mut self, port: u16) -> Result<()> {
        let mut h: HashMap<&mut MapData, u16, u32> = self.map_mut(&maps::SIP_PORTS)?;
        h.insert(port_key(port), 1, 0)
            .map_err(map_err(&maps::SIP_PORTS))
    }

    /// Stop copying `port` (absent already is not an error).
    pub fn remove_sip_port(&mut self, port: u16) -> Result<()> {
        let mut h: HashMap<&mut MapData, u16, u32> = self.map_mut(&maps::SIP_PORTS)?;
        match h.remove(&port_key(port)) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err(&maps::SIP_PORTS)(e)),
        }
    }

    pub fn take_sip_copies(&mut self) -> Result<Vec<Copied>> {
        self.drain_ring(&maps::SIP_RING, |h: SipCopyHeader, frame| Copied {
            len: h.len,
            frame: frame.to_vec(),
        })
    }

    /// A descriptor that becomes readable when copies arrive (epoll on the
    /// ring buffer), for event-driven readers.
    pub fn sip_ring_fd(&mut self) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        let rb = self.ring(&maps::SIP_RING)?;
        rb.as_fd().try_clone_to_owned().map_err(|e| Error::Io {
            context: "dup of the SIP ring fd".into(),
            error: e,
        })
    }

    pub fn sip_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::SIP_STATS)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_key_is_the_header_bytes() {
        assert_eq!(super::port_key(5060).to_ne_bytes(), [0x13, 0xc4]);
    }
}
