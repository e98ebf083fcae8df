//! The benchmark's traffic generator (`sipwall-bench --only netfilter`): run with
//! BPF_PROG_TEST_RUN and `BPF_F_TEST_XDP_LIVE_FRAMES`, it gives each frame a source address
//! from `SW_GEN_SOURCES` and sends it out of the interface the run names (XDP_TX), to the
//! veth peer. Its second program, `sipwall_trafficgen_floor`, is the benchmark's floor on the
//! receiving side: the least an XDP filter does (read the source, compare, count, drop). An
//! object of its own: never loaded by the daemon, never part of `sipwall.bpf.o`.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, PerCpuArray},
    programs::XdpContext,
};
use firewall_common::trafficgen::SOURCE_SLOTS;

#[map]
static SW_GEN_SOURCES: Array<u32> = Array::with_max_entries(SOURCE_SLOTS, 0);

#[map]
static SW_GEN_SENT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map]
static SW_GEN_PASS: Array<u32> = Array::with_max_entries(1, 0);

#[map]
static SW_GEN_DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

const ETH_HLEN: usize = 14;
/// The frames are IPv4 without options (the benchmark builds them so).
const IP_HLEN: usize = 20;

/// Live frames keep what a program wrote when their page comes round again, so every run
/// writes the whole source address and the header checksum anew.
#[xdp]
pub fn sipwall_trafficgen(ctx: XdpContext) -> u32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + ETH_HLEN + IP_HLEN > end {
        return xdp_action::XDP_ABORTED;
    }
    let Some(sent) = SW_GEN_SENT.get_ptr_mut(0) else { return xdp_action::XDP_ABORTED };
    // SAFETY: a per-CPU slot, and XDP programs do not preempt each other on one CPU.
    let n = unsafe {
        let n = *sent;
        *sent = n + 1;
        n
    };
    let Some(&saddr_be) = SW_GEN_SOURCES.get(n as u32 & (SOURCE_SLOTS - 1)) else {
        return xdp_action::XDP_ABORTED;
    };
    let ip = (data + ETH_HLEN) as *mut u8;
    // SAFETY: the 20 bytes of the IPv4 header lie inside the frame (checked above); packet
    // memory may be unaligned on the targets the project builds for.
    unsafe {
        ip.add(12).cast::<u32>().write_unaligned(saddr_be);
        ip.add(10).cast::<u16>().write_unaligned(0);
        // RFC 1071: the ones' complement sum of the header's 16-bit words, in any byte order
        let mut sum = 0u32;
        for i in 0..IP_HLEN / 2 {
            sum += u32::from(ip.add(2 * i).cast::<u16>().read_unaligned());
        }
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        ip.add(10).cast::<u16>().write_unaligned(!(sum as u16));
    }
    xdp_action::XDP_TX
}

/// Drops every IPv4 frame but those from the source in `SW_GEN_PASS`, counting the drops.
#[xdp]
pub fn sipwall_trafficgen_floor(ctx: XdpContext) -> u32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + ETH_HLEN + IP_HLEN > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: the source address lies inside the frame (checked above).
    let saddr_be = unsafe { ((data + ETH_HLEN + 12) as *const u32).read_unaligned() };
    if SW_GEN_PASS.get(0).is_some_and(|&p| p == saddr_be) {
        return xdp_action::XDP_PASS;
    }
    if let Some(dropped) = SW_GEN_DROPPED.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot, and XDP programs do not preempt each other on one CPU.
        unsafe { *dropped += 1 };
    }
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
