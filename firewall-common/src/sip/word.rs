//! Eight bytes at a time: loads from the scratch buffer and the bit tricks that find bytes and
//! word starts in them without a byte loop.

use super::{Scratch, SCRATCH_MASK};

pub const ONES: u64 = 0x0101_0101_0101_0101;
pub const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The 8 bytes at `p` (masked into the buffer), little-endian: byte `p` is the lowest. The mask
/// comes after [`opaque`], so every verifier sees it right before the read whatever range it
/// tracked for `p`: Linux 6.1's verifier can carry an impossible range out of a branch, and
/// 6.12's does not bound a 64-bit index by a compare of its low 32 bits.
#[inline(always)]
pub fn load(buf: &Scratch, p: usize) -> u64 {
    read8(buf, opaque(p) & SCRATCH_MASK)
}

#[inline(always)]
pub fn byte(buf: &Scratch, p: usize) -> u8 {
    // SAFETY: the index is masked below the buffer's length (SCRATCH_MASK < SCRATCH_LEN).
    unsafe { *buf.get_unchecked(opaque(p) & SCRATCH_MASK) }
}

/// [`load`] for the hot loops, the header walk and the signature search, whose indexes stay a
/// few additions away from a masked value read from the map: the mask comes before
/// [`opaque`], so the compiler drops it where it can prove it changes nothing, and the verifier
/// bounds the index by the ranges it tracked (about 5 ns per header line; the kernel tier checks
/// that every verifier of the matrix accepts it).
#[inline(always)]
pub fn load_near(buf: &Scratch, p: usize) -> u64 {
    read8(buf, opaque(p & SCRATCH_MASK))
}

/// The 8 bytes at `q` (at most SCRATCH_MASK), little-endian.
#[inline(always)]
fn read8(buf: &Scratch, q: usize) -> u64 {
    // SAFETY: q <= SCRATCH_MASK and the buffer has SCRATCH_SLACK bytes past it, so q + 8 is in
    // bounds; read_unaligned has no alignment requirement.
    u64::from_le(unsafe { core::ptr::read_unaligned(buf.as_ptr().add(q) as *const u64) })
}

/// `x`, hidden from the compiler on BPF (a register move in an assembly block it cannot see
/// through): it can no longer drop the mask `x` went through (when it knows a bound the verifier
/// does not) or split the index into a base and an offset that the verifier bounds separately.
/// Costs one move.
#[inline(always)]
pub fn opaque(x: usize) -> usize {
    #[cfg(target_arch = "bpf")]
    {
        let mut y = x;
        // SAFETY: an empty block that only claims to change `y`.
        unsafe { core::arch::asm!("{0} = {0}", inout(reg) y, options(pure, nomem, nostack, preserves_flags)) };
        y
    }
    #[cfg(not(target_arch = "bpf"))]
    x
}

/// The high bit of every zero byte of `x`, and possibly of bytes above a zero byte (borrows):
/// the lowest set bit is always exact.
#[inline(always)]
pub const fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The high bit of every zero byte of `x`, exactly (no borrow runs on into the bytes above).
#[inline(always)]
pub const fn zero_bytes_exact(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7).wrapping_add(LOW7)) | x) & HIGHS
}

/// Index (0–7) of the byte holding the lowest set high bit of `m` (`m` non-zero, only high bits
/// set). A multiply instead of a count-trailing-zeros, which BPF lacks.
#[inline(always)]
pub const fn first_byte(m: u64) -> usize {
    let lowest = m & m.wrapping_neg();
    ((lowest >> 7).wrapping_mul(0x0001_0203_0405_0607) >> 56) as usize
}

/// High bit of every byte of `w` within `lo..=hi` (both below 0x80).
#[inline(always)]
pub const fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    let low7 = w & !HIGHS;
    let from_lo = low7.wrapping_add((0x80 - lo as u64) * ONES);
    let past_hi = low7.wrapping_add((0x7f - hi as u64) * ONES);
    from_lo & !past_hi & !w & HIGHS
}

/// High bit of every ASCII letter or digit of `w`.
#[inline(always)]
pub const fn alnum(w: u64) -> u64 {
    in_range(w | (ONES * 0x20), b'a', b'z') | in_range(w, b'0', b'9')
}

/// ASCII letters of `w` lower-cased; other bytes unchanged.
#[inline(always)]
pub const fn lower8(w: u64) -> u64 {
    w | (in_range(w, b'A', b'Z') >> 2)
}

/// ASCII lower case of one byte.
#[inline(always)]
pub const fn lower(c: u8) -> u8 {
    if c.is_ascii_uppercase() {
        c | 0x20
    } else {
        c
    }
}

/// The first `c` in `buf[from..end]`, or `end`; at most `WORDS` words are read, after which
/// the search gives up and returns `end`.
#[inline(always)]
pub fn find<const WORDS: usize>(buf: &Scratch, from: usize, end: usize, c: u8) -> usize {
    let pattern = ONES * c as u64;
    let mut p = from;
    for _ in 0..WORDS {
        if p >= end {
            return end;
        }
        let m = zero_bytes(load(buf, p) ^ pattern);
        if m != 0 {
            let at = p + first_byte(m);
            // masked (a no-op, at < end) so the verifier sees one range whichever word it was
            return if at < end { opaque(at) & SCRATCH_MASK } else { end };
        }
        p += 8;
    }
    end
}

/// Packs the `n` (at most 8) bytes at `p` little-endian, zero-filled, like [`super::method::pack8`].
#[inline(always)]
pub fn pack(buf: &Scratch, p: usize, n: usize) -> u64 {
    keep(load(buf, p), n)
}

/// The low `n` bytes of `w` (all of it from 8 on).
#[inline(always)]
pub const fn keep(w: u64, n: usize) -> u64 {
    if n >= 8 {
        w
    } else {
        w & ((1u64 << (8 * n)) - 1)
    }
}

/// The smaller of `a` and `b` (both below 2^62), in arithmetic: the compiler would make a
/// compare a branch, each branch a path of its own for the verifier.
#[inline(always)]
pub fn min(a: usize, b: usize) -> usize {
    // all ones when a < b; hidden before and after the shift, or the compiler sees a compare
    // and branches again
    let less = opaque((opaque(a.wrapping_sub(b)) as isize >> 63) as usize);
    b ^ ((a ^ b) & less)
}

/// A mask of the low `n` bytes of a word (`n` at least 1; all 8 from 8 on), in arithmetic like
/// [`min`].
#[inline(always)]
pub fn low_bytes(n: usize) -> u64 {
    u64::MAX >> (64 - 8 * min(n, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tricks_agree_with_bytes() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'A', b, b'z', b'@', b'[', b, 0xc1]);
            let want = u64::from_le_bytes([lower(b), b'a', lower(b), b'z', b'@', b'[', lower(b), 0xc1]);
            assert_eq!(lower8(w), want, "byte {b:#x}");
            let m = alnum(u64::from_le_bytes([b; 8]));
            assert_eq!(m != 0, b.is_ascii_alphanumeric(), "byte {b:#x}");
        }
        for i in 0..8 {
            let mut bytes = [1u8; 8];
            bytes[i] = 0;
            if i < 7 {
                bytes[7] = 0;
            }
            assert_eq!(first_byte(zero_bytes(u64::from_le_bytes(bytes))), i);
        }
    }

    #[test]
    fn arithmetic_minimum_and_masks() {
        for (a, b) in [(0, 0), (0, 5), (5, 0), (7, 8), (8, 7), (2047, 2175), (2175, 2047), (1 << 40, 3)] {
            assert_eq!(min(a, b), a.min(b), "min({a}, {b})");
        }
        for n in 1..20 {
            assert_eq!(low_bytes(n), keep(u64::MAX, n), "{n} bytes");
        }
    }

    #[test]
    fn find_stops_at_the_end() {
        let mut buf: Scratch = [b'x'; super::super::SCRATCH_LEN];
        buf[20] = b'\n';
        assert_eq!(find::<4>(&buf, 0, 100, b'\n'), 20);
        assert_eq!(find::<4>(&buf, 0, 20, b'\n'), 20);
        assert_eq!(find::<4>(&buf, 0, 15, b'\n'), 15);
        assert_eq!(find::<2>(&buf, 0, 100, b'\n'), 100, "gives up after two words");
        assert_eq!(find::<4>(&buf, 21, 100, b'\n'), 100);
    }
}
