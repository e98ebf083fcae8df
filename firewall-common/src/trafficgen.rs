//! The benchmark's traffic generator, an eBPF object of its own (`trafficgen.bpf.o`, never part
//! of `sipwall.bpf.o`): the names of its programs and maps, and the size of its source table.

/// The XDP program run with BPF_PROG_TEST_RUN and `BPF_F_TEST_XDP_LIVE_FRAMES`: writes frame
/// n's source address from slot `n % SOURCE_SLOTS` of [`SOURCES`] and returns XDP_TX.
pub const PROGRAM: &str = "sipwall_trafficgen";

/// The receiving side's floor: an XDP program that drops every IPv4 frame but those from the
/// source in [`PASS`], counting the drops in [`DROPPED`].
pub const FLOOR_PROGRAM: &str = "sipwall_trafficgen_floor";

/// Array<u32>[1]: the IPv4 source (network byte order) the floor passes. The benchmark writes.
pub const PASS: &str = "SW_GEN_PASS";

/// PerCpuArray<u64>[1]: frames the floor has dropped. Kernel writes.
pub const DROPPED: &str = "SW_GEN_DROPPED";

/// Array<u32>[SOURCE_SLOTS]: IPv4 source addresses, network byte order; frame n takes slot
/// `n % SOURCE_SLOTS`. The benchmark writes.
pub const SOURCES: &str = "SW_GEN_SOURCES";

/// PerCpuArray<u64>[1]: frames the program has sent. Kernel writes.
pub const SENT: &str = "SW_GEN_SENT";

/// Slots of [`SOURCES`]: a power of two, so that the program takes the slot with a mask; as many
/// distinct sources as a flood needs to reach past the caches of the filters it meets.
pub const SOURCE_SLOTS: u32 = 65536;

const _: () = assert!(SOURCE_SLOTS.is_power_of_two());
