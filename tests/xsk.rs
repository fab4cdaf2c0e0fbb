//! The AF_XDP socket (`dataplane_user::xsk`) in copy mode over a veth pair
//! in a private network namespace: frames sent through the TX ring of one
//! end arrive, whole and in order, on an AF_PACKET socket on the other end.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use dataplane_user::xsk::{Xsk, XskOptions};

const ETHERTYPE: u16 = 0x88b5;
const FRAMES: u32 = 200;

/// Frame `seq`: B's MAC, A's MAC, ethertype 0x88b5, then the sequence
/// number and a pattern derived from it; 60 to 99 bytes long.
fn frame(dst: [u8; 6], src: [u8; 6], seq: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    let len = 60 + (seq % 40) as usize;
    let mut b = seq as u8;
    while f.len() < len {
        f.push(b);
        b = b.wrapping_mul(31).wrapping_add(7);
    }
    f
}

/// An AF_PACKET socket bound to `ifindex` for every protocol, with a
/// receive timeout and a buffer large enough for the whole burst.
fn packet_listener(ifindex: u32) -> OwnedFd {
    let all = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket call; the result is checked before it is owned.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(all),
        )
    };
    assert!(
        raw >= 0,
        "socket(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: zeroed sockaddr_ll with the fields bind needs set.
    let rc = unsafe {
        let mut sa: libc::sockaddr_ll = std::mem::zeroed();
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = all;
        sa.sll_ifindex = ifindex as i32;
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(
        rc,
        0,
        "bind(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    let rcvbuf: libc::c_int = 4 << 20;
    // SAFETY: option values are live and of the lengths passed.
    unsafe {
        let rc = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        assert_eq!(rc, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
        let rc = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    }
    fd
}

/// Frames of our ethertype arriving on the listener (not the ones it
/// sends), until `want` have arrived or `budget` has passed.
fn receive(fd: &OwnedFd, want: usize, budget: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + budget;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    // Bounded in count as well as time: every iteration either receives
    // something or times out after 200 ms.
    for _ in 0..(want * 20 + 100) {
        if got.len() == want || Instant::now() >= deadline {
            break;
        }
        // SAFETY: buf is writable for its length; sa/len describe a
        // writable sockaddr_ll.
        let (n, sa) = unsafe {
            let mut sa: libc::sockaddr_ll = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let n = libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut sa as *mut libc::sockaddr_ll).cast(),
                &mut len,
            );
            (n, sa)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ),
                "recvfrom: {e}"
            );
            continue;
        }
        let f = &buf[..n as usize];
        if sa.sll_pkttype == libc::PACKET_OUTGOING
            || f.len() < 14
            || f[12..14] != ETHERTYPE.to_be_bytes()
        {
            continue;
        }
        got.push(f.to_vec());
    }
    got
}

#[test]
fn options_are_validated() {
    let bad = [
        XskOptions {
            frames: 1000,
            ..XskOptions::default()
        },
        XskOptions {
            frames: 1,
            ..XskOptions::default()
        },
        XskOptions {
            frame_size: 3000,
            ..XskOptions::default()
        },
        XskOptions {
            rx: false,
            tx: false,
            ..XskOptions::default()
        },
    ];
    for o in bad {
        let e = Xsk::open(1, 0, &o).expect_err(&format!("{o:?} refused"));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{o:?}: {e}");
    }
}

#[test]
fn tx_copy_mode_over_veth() {
    if !common::kernel_available("xsk tx_copy_mode_over_veth") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "xa", "type", "veth", "peer", "name", "xb",
        ]);
        common::sh(&["ip", "link", "set", "xa", "up"]);
        common::sh(&["ip", "link", "set", "xb", "up"]);
        let a = dataplane_user::ifindex("xa").unwrap();
        let b = dataplane_user::ifindex("xb").unwrap();
        let (mac_a, mac_b) = (
            dataplane_user::mac_of("xa").unwrap(),
            dataplane_user::mac_of("xb").unwrap(),
        );

        let listener = packet_listener(b);
        // 64 UMEM frames: 32 for TX and a 32-entry TX ring, so the burst of
        // 200 reuses every TX frame and wraps the ring indices several times.
        let opts = XskOptions {
            frames: 64,
            rx: false,
            tx: true,
            ..XskOptions::default()
        };
        let mut xsk = Xsk::open(a, 0, &opts).expect("open AF_XDP socket on xa queue 0");
        assert!(xsk.fd() >= 0);
        eprintln!("{xsk:?}");

        // Nothing to receive without an RX ring.
        assert_eq!(xsk.recv(64, |_| panic!("no RX ring")), 0);

        // Too long (and empty) frames are refused and take no TX frame.
        let e = xsk
            .send(&vec![0u8; opts.frame_size as usize + 1])
            .expect_err("frame longer than frame_size refused");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        eprintln!("oversized frame: {e}");
        assert!(xsk.send(&[]).is_err(), "empty frame refused");

        let sent: Vec<Vec<u8>> = (0..FRAMES).map(|seq| frame(mac_b, mac_a, seq)).collect();
        for (seq, f) in sent.iter().enumerate() {
            xsk.send(f).unwrap_or_else(|e| panic!("send {seq}: {e}"));
        }
        assert_eq!(
            xsk.flush(Duration::from_secs(5)),
            0,
            "all TX frames completed"
        );

        let got = receive(&listener, sent.len(), Duration::from_secs(10));
        assert_eq!(got.len(), sent.len(), "every frame arrived on xb");
        for (seq, (g, s)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(g, s, "frame {seq}: same bytes, in order");
        }

        let stats = xsk.stats().expect("XDP_STATISTICS");
        eprintln!("{stats:?}");
        assert_eq!(stats.tx_invalid_descs, 0, "{stats:?}");
        assert_eq!(
            stats.rx_dropped + stats.rx_invalid_descs + stats.rx_ring_full,
            0,
            "{stats:?}"
        );

        // The socket keeps working after a flush: one more frame.
        let last = frame(mac_b, mac_a, FRAMES);
        xsk.send(&last).unwrap();
        assert_eq!(xsk.flush(Duration::from_secs(5)), 0);
        assert_eq!(receive(&listener, 1, Duration::from_secs(5)), vec![last]);
        eprintln!(
            "{} frames sent through the TX ring of xa arrived in order on xb",
            FRAMES + 1
        );
    })
    .join()
    .unwrap();
}
