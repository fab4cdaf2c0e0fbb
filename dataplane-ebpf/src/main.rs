//! XDP programs of edgeplane. One module per concern: `parse` (the one
//! bounds-checked cursor), `maps` (every map, with who writes it), `ring`
//! (ring-buffer records), and one module per role program.
#![no_std]
#![no_main]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

mod chain;
mod csum;
mod entry;
mod floor;
mod gateway;
mod lb;
mod maps;
mod migration;
mod parse;
mod ring;
mod router;
mod sip_monitor;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never run.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
