//! The benchmark's traffic generator, an eBPF object of its own (`trafficgen.bpf.o`, never part
//! of `sipwall.bpf.o`): the names of its program and maps, and the size of its source table.

/// The XDP program run with BPF_PROG_TEST_RUN and `BPF_F_TEST_XDP_LIVE_FRAMES`: writes frame
/// n's source address from slot `n % SOURCE_SLOTS` of [`SOURCES`] and returns XDP_TX.
pub const PROGRAM: &str = "sipwall_trafficgen";

/// Array<u32>[SOURCE_SLOTS]: IPv4 source addresses, network byte order; frame n takes slot
/// `n % SOURCE_SLOTS`. The benchmark writes.
pub const SOURCES: &str = "SW_GEN_SOURCES";

/// PerCpuArray<u64>[1]: frames the program has sent. Kernel writes.
pub const SENT: &str = "SW_GEN_SENT";

/// Slots of [`SOURCES`]: a power of two, so that the program takes the slot with a mask; as many
/// distinct sources as a flood needs to reach past the caches of the filters it meets.
pub const SOURCE_SLOTS: u32 = 65536;

const _: () = assert!(SOURCE_SLOTS.is_power_of_two());
