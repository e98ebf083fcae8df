//! BPF array maps created with BPF_F_MMAPABLE, mapped into the daemon: written with ordered
//! 64-bit atomic stores, no syscall per entry.

use std::{
    cell::Cell,
    marker::PhantomData,
    num::NonZeroUsize,
    os::fd::AsFd,
    ptr::NonNull,
    sync::{
        atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering},
        Arc,
    },
};

use aya::maps::MapData;
use nix::{
    errno::Errno,
    sys::mman::{mmap, munmap, MapFlags, ProtFlags},
    unistd::{sysconf, SysconfVar},
};

/// 64-bit words the writer stores in order; the XDP program reads them with plain loads.
pub trait Words {
    fn load(&self, i: usize) -> u64;
    fn store(&mut self, i: usize, v: u64);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Words for Vec<u64> {
    fn load(&self, i: usize) -> u64 {
        self[i]
    }
    fn store(&mut self, i: usize, v: u64) {
        self[i] = v;
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// Bytes mapped at a time. The kernel fills in every page of a BPF array mapping when it is
/// made, so mapping only the windows a batch touches keeps a single ban as cheap at 1M entries
/// as at 1k.
const WINDOW_BYTES: usize = 256 * 1024;

/// Parts each array is cut into (by words) for [`Residency::keep`].
pub const PARTS: u32 = 64;

/// How much of the arrays sharing it stays mapped. Mapped pages count as the daemon's resident
/// memory, and a table of two million entries is 70 MiB: reading one through, or writing a
/// million entries into it, should not map all of it at once.
#[derive(Debug, Default)]
pub struct Residency {
    scan: AtomicBool,
    keep: AtomicU64,
}

impl Residency {
    /// While on, an array mapping a window first unmaps its others (for reading it through in
    /// order: one window of each array mapped at a time).
    pub fn scan(&self, on: bool) {
        self.scan.store(on, Ordering::Relaxed);
    }

    /// `unmap` spares the windows overlapping these parts (bit `i`: part `i` of [`PARTS`]);
    /// 0 spares none.
    pub fn keep(&self, parts: u64) {
        self.keep.store(parts, Ordering::Relaxed);
    }
}

/// An mmapped array map, mapped window by window on first use. `unmap` drops every window (the
/// writer does so after each batch of writes), so the tables are not counted as the daemon's
/// memory between writes: they live in the kernel either way.
pub struct MappedArray {
    windows: Vec<AtomicPtr<AtomicU64>>,
    window_bytes: usize,
    words: usize,
    bytes: usize,
    map: MapData,
    residency: Option<Arc<Residency>>,
    /// Not `Sync`: one thread at a time uses an array, so a window can be unmapped whenever the
    /// array maps another (see `window`).
    _one_thread: PhantomData<Cell<()>>,
}

// SAFETY: the mappings are plain memory owned by this value; moving it to another thread moves
// that ownership with it.
unsafe impl Send for MappedArray {}

impl MappedArray {
    /// An array of `entries` values of `value_size` bytes (a multiple of 8); checks that it can
    /// be mapped.
    pub fn new(map: MapData, value_size: usize, entries: u32) -> std::io::Result<Self> {
        assert_eq!(value_size % 8, 0, "mmapped values are whole words");
        let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().expect("the page size is always known") as usize;
        let bytes = (value_size * entries as usize).div_ceil(page) * page;
        let window_bytes = WINDOW_BYTES.div_ceil(page) * page;
        let windows = (0..bytes.div_ceil(window_bytes)).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect();
        let a = Self {
            windows,
            window_bytes,
            words: value_size * entries as usize / 8,
            bytes,
            map,
            residency: None,
            _one_thread: PhantomData,
        };
        let p = a.map_window(0)?;
        a.windows[0].store(p, Ordering::Release);
        Ok(a)
    }

    /// Shares `r` with the other arrays of a table (see [`Residency`]).
    pub fn with_residency(mut self, r: Arc<Residency>) -> Self {
        self.residency = Some(r);
        self
    }

    fn window_len(&self, w: usize) -> usize {
        self.window_bytes.min(self.bytes - w * self.window_bytes)
    }

    fn map_window(&self, w: usize) -> std::io::Result<*mut AtomicU64> {
        // an empty array has nothing to map: the kernel's answer to a zero length, EINVAL
        let len = NonZeroUsize::new(self.window_len(w)).ok_or(Errno::EINVAL)?;
        let offset = (w * self.window_bytes) as _;
        // SAFETY: a shared mapping of part of a BPF array map's data at an address the kernel
        // picks; the kernel checks the range.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                self.map.fd().as_fd(),
                offset,
            )
        }?;
        Ok(ptr.cast::<AtomicU64>().as_ptr())
    }

    fn window(&self, w: usize) -> *mut AtomicU64 {
        let p = self.windows[w].load(Ordering::Acquire);
        if !p.is_null() {
            return p;
        }
        if self.residency.as_ref().is_some_and(|r| r.scan.load(Ordering::Relaxed)) {
            for other in 0..self.windows.len() {
                // SAFETY: the array is used by one thread (not Sync), and no reference into a
                // window outlives the `load` or `store` that made it, so none is in use now.
                unsafe { self.drop_window(other) };
            }
        }
        let fresh = self.map_window(w).expect("mapping part of a BPF array that was mapped before");
        self.windows[w].store(fresh, Ordering::Release);
        fresh
    }

    /// Unmaps window `w` if it is mapped.
    ///
    /// # Safety
    /// No reference into the window may be in use.
    unsafe fn drop_window(&self, w: usize) {
        if let Some(p) = NonNull::new(self.windows[w].swap(std::ptr::null_mut(), Ordering::AcqRel)) {
            // SAFETY: `p` is the window's mapping of `window_len(w)` bytes, taken out of the
            // table so nothing maps it again; the caller vouches that no reference into it is in use.
            let _ = unsafe { munmap(p.cast(), self.window_len(w)) };
        }
    }

    /// Whether window `w` overlaps a part the residency keeps.
    fn kept(&self, w: usize) -> bool {
        let parts = self.residency.as_ref().map_or(0, |r| r.keep.load(Ordering::Relaxed));
        if parts == 0 {
            return false;
        }
        let per = self.window_bytes / 8;
        let (first, last) = (w * per, ((w + 1) * per).min(self.words).max(w * per + 1) - 1);
        let part = |i: usize| (i as u128 * u128::from(PARTS) / self.words.max(1) as u128) as u32;
        (part(first)..=part(last)).any(|p| parts >> p & 1 != 0)
    }

    /// Drops every window but those the residency keeps (the next access maps its window again).
    pub fn unmap(&mut self) {
        for w in 0..self.windows.len() {
            if !self.kept(w) {
                // SAFETY: `&mut self` rules out readers.
                unsafe { self.drop_window(w) };
            }
        }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.words, "word {i} outside the map ({} words)", self.words);
        let per = self.window_bytes / 8;
        // SAFETY: in bounds (checked above) of a live, 8-byte aligned window.
        unsafe { &*self.window(i / per).add(i % per) }
    }
}

impl Words for MappedArray {
    fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Acquire)
    }
    fn store(&mut self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Release)
    }
    fn len(&self) -> usize {
        self.words
    }
}

impl Drop for MappedArray {
    fn drop(&mut self) {
        for w in 0..self.windows.len() {
            // SAFETY: `&mut self` rules out readers.
            unsafe { self.drop_window(w) };
        }
    }
}
