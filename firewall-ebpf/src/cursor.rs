//! Bounds-checked reads from the packet: every access is proven inside `data..data_end`.

use aya_ebpf::programs::XdpContext;

/// Largest header offset the parser reaches; keeps variable offsets bounded for the verifier.
pub const MAX_OFFSET: usize = 1024;

/// A pointer to `N` packet bytes at `offset`, or `None` if the frame is shorter.
#[inline(always)]
pub fn bytes<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<&[u8; N]> {
    let start = ctx.data();
    let end = ctx.data_end();
    if offset > MAX_OFFSET || start + offset + N > end {
        return None;
    }
    // SAFETY: the range was checked against data_end just above.
    Some(unsafe { &*((start + offset) as *const [u8; N]) })
}

#[inline(always)]
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Frame length in bytes.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}
