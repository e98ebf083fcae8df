//! BPF array maps created with BPF_F_MMAPABLE, mapped into the daemon: written with ordered
//! 64-bit atomic stores, no syscall per entry.

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::MapData;

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

/// An mmapped array map.
pub struct MappedArray {
    ptr: *mut AtomicU64,
    words: usize,
    bytes: usize,
    _map: MapData,
}

// SAFETY: the mapping lives as long as the struct; all access goes through atomics.
unsafe impl Send for MappedArray {}
unsafe impl Sync for MappedArray {}

impl MappedArray {
    /// Maps `entries` values of `value_size` bytes (a multiple of 8) of an mmapable array.
    pub fn new(map: MapData, value_size: usize, entries: u32) -> std::io::Result<Self> {
        assert_eq!(value_size % 8, 0, "mmapped values are whole words");
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let bytes = (value_size * entries as usize).div_ceil(page) * page;
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: a shared mapping of a BPF array map's data; the kernel checks the size.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { ptr: ptr as *mut AtomicU64, words: value_size * entries as usize / 8, bytes, _map: map })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.words, "word {i} outside the map ({} words)", self.words);
        // SAFETY: in bounds (checked above) of a live, 8-byte aligned mapping.
        unsafe { &*self.ptr.add(i) }
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
        // SAFETY: unmapping exactly what new() mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.bytes) };
    }
}
