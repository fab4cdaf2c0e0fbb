//! Array ranges in one `bpf()` call (BPF_MAP_LOOKUP_BATCH and
//! BPF_MAP_UPDATE_BATCH, Linux 5.6): a 65,537-slot Maglev table is read
//! or written in a few milliseconds instead of 65,537 calls. aya 0.14 has
//! no batch API, so this is the syscall itself.

use std::os::fd::{AsFd, AsRawFd};

use aya::{maps::MapData, Pod};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid, initialised prefix of `union bpf_attr`
    // whose pointers reference live buffers of `count` elements.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Entries `base..base + n` of an array map.
pub(crate) fn array_read<T: Pod + Default>(
    map: &MapData,
    base: u32,
    n: u32,
) -> std::io::Result<Vec<T>> {
    let mut keys = vec![0u32; n as usize];
    let mut values = vec![T::default(); n as usize];
    let mut done = 0u32;
    // The batch token of an array is the last key read; none: from 0.
    let mut prev = base.wrapping_sub(1);
    let mut next = 0u32;
    while done < n {
        let mut attr = BatchAttr {
            in_batch: if base == 0 && done == 0 {
                0
            } else {
                &prev as *const u32 as u64
            },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys[done as usize..].as_mut_ptr() as u64,
            values: values[done as usize..].as_mut_ptr() as u64,
            count: n - done,
            map_fd: map.fd().as_fd().as_raw_fd() as u32,
            ..Default::default()
        };
        match bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) {
            Ok(()) => {}
            // The end of the map: what was read is in `count`.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attr.count > 0 => {}
            Err(e) => return Err(e),
        }
        if attr.count == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("array ends before entry {}", base + done),
            ));
        }
        done += attr.count;
        prev = next;
    }
    Ok(values)
}

/// Write `values` at entries `base..` of an array map.
pub(crate) fn array_write<T: Pod>(map: &MapData, base: u32, values: &[T]) -> std::io::Result<()> {
    let keys: Vec<u32> = (base..base + values.len() as u32).collect();
    array_write_at(map, &keys, values)
}

/// Write `values[i]` at entry `keys[i]` of an array map.
pub(crate) fn array_write_at<T: Pod>(
    map: &MapData,
    keys: &[u32],
    values: &[T],
) -> std::io::Result<()> {
    assert_eq!(keys.len(), values.len());
    let mut done = 0usize;
    while done < values.len() {
        let mut attr = BatchAttr {
            keys: keys[done..].as_ptr() as u64,
            values: values[done..].as_ptr() as u64,
            count: (values.len() - done) as u32,
            map_fd: map.fd().as_fd().as_raw_fd() as u32,
            ..Default::default()
        };
        let r = bpf(BPF_MAP_UPDATE_BATCH, &mut attr);
        done += attr.count as usize;
        r?;
        if attr.count == 0 {
            return Err(std::io::Error::other("the batch update wrote nothing"));
        }
    }
    Ok(())
}
