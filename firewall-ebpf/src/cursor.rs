//! Bounds-checked reads from the packet: every access is proven inside `data..data_end`.

use aya_ebpf::programs::{TcContext, XdpContext};

/// A frame a program reads: the XDP program's, or the egress classifier's socket buffer.
pub trait Frame {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
}

impl Frame for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
}

impl Frame for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
}

/// Largest header offset the parser reaches; keeps variable offsets bounded for the verifier.
pub const MAX_OFFSET: usize = 1024;

/// A pointer to `N` packet bytes at `offset`, or `None` if the frame is shorter.
#[inline(always)]
pub fn bytes<const N: usize>(ctx: &impl Frame, offset: usize) -> Option<&[u8; N]> {
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
pub fn frame_len(ctx: &impl Frame) -> usize {
    ctx.data_end() - ctx.data()
}
