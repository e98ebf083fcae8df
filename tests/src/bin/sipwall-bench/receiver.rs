//! The receiving side of the netfilter benchmark: where the veth peer's receive processing runs
//! and what it costs, and the UDP socket on 5060 that counts the legitimate frames.
//!
//! A frame the generator transmits on a veth end lands in the peer's receive ring
//! (`ndo_xdp_xmit`), which only a peer with NAPI has: one with an XDP program, or with GRO
//! switched on. GRO is switched on for every contender, so the ones without XDP receive too.
//! The peer's NAPI poll (its XDP program, then the stack: netdev ingress, raw PREROUTING, routing,
//! INPUT, the UDP socket) would run as a softirq on the CPU that scheduled it, the generator's;
//! threaded NAPI moves it to a kernel thread of its own (`napi/IFNAME-ID`), which the benchmark
//! pins to the receiving CPU and whose CPU time (`/proc/PID/schedstat`) is the receive cost.

use std::{
    net::{Ipv4Addr, UdpSocket},
    os::fd::AsRawFd,
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use sipwall_tests::netns::in_netns;

use crate::util::pin_to;

/// `ETHTOOL_SGRO` (linux/ethtool.h): switch GRO on or off.
const ETHTOOL_SGRO: u32 = 0x2c;

/// Switches GRO on for `ifname` in namespace `ns` (`ethtool -K IFNAME gro on`, without
/// ethtool): a veth end with GRO has NAPI, and so takes frames from its peer's XDP_TX.
pub fn gro_on(ns: &str, ifname: &str) {
    let ifname = ifname.to_owned();
    in_netns(ns, move || {
        #[repr(C)]
        struct EthtoolValue {
            cmd: u32,
            data: u32,
        }
        let mut value = EthtoolValue { cmd: ETHTOOL_SGRO, data: 1 };
        // SAFETY: a zeroed ifreq is valid; the name fits (interface names are under 16 bytes).
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&raw mut value).cast();
        let sock = UdpSocket::bind("127.0.0.1:0").expect("a socket for the ethtool ioctl");
        // SAFETY: SIOCETHTOOL with an ifreq pointing at a live ethtool_value.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &raw mut req) };
        assert_eq!(rc, 0, "GRO on {ifname}: {}", std::io::Error::last_os_error());
    })
    .join()
    .unwrap();
}

/// Threaded NAPI for `ifname` (`/sys/class/net/IFNAME/threaded`, Linux 5.12).
pub fn threaded_napi(ns: &str, ifname: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", &format!("echo 1 > /sys/class/net/{ifname}/threaded")])
        .output()
        .expect("ip netns exec");
    assert!(out.status.success(), "threaded NAPI on {ifname}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The kernel thread that runs `ifname`'s NAPI poll, pinned to `cpu`. `ifname` must be
/// unique on the machine: the thread's name (`napi/IFNAME-ID`, cut at 15 bytes) is all that
/// tells it from other interfaces' threads.
pub struct NapiThread {
    pub pid: u32,
}

impl NapiThread {
    pub fn find(ifname: &str, cpu: usize) -> Self {
        let prefix = format!("napi/{ifname}-");
        let found: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end().starts_with(&prefix))
            })
            .collect();
        assert_eq!(found.len(), 1, "one NAPI thread named {prefix}…, found {found:?}");
        let pid = found[0];
        // SAFETY: a zeroed cpu_set_t is valid; the kernel checks the CPU and the thread.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(pid as i32, size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(rc, 0, "pinning {prefix}… to CPU {cpu}: {}", std::io::Error::last_os_error());
        Self { pid }
    }

    /// Nanoseconds the thread has run (the first field of `/proc/PID/schedstat`).
    pub fn cpu_ns(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/schedstat", self.pid)).expect("the NAPI thread's schedstat");
        s.split_whitespace().next().and_then(|v| v.parse().ok()).expect("schedstat's run time")
    }
}

/// Frames the interface dropped on receipt (`rx_dropped` of `ip -s -j link`): for a veth end,
/// the frames its peer transmitted while its ring was full, and allocation failures.
pub fn rx_dropped(ns: &str, ifname: &str) -> u64 {
    let out = Command::new("ip").args(["-n", ns, "-s", "-j", "link", "show", "dev", ifname]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
    v[0]["stats64"]["rx"]["dropped"].as_u64().expect("the link's rx_dropped")
}

/// The socket's receive buffer (the kernel counts each datagram's whole buffer against it,
/// about 1 KiB for the benchmark's frames).
const RCVBUF: libc::c_int = 32 << 20;

/// A UDP socket on 5060 in the receiving namespace, read by a thread pinned to `cpu`, counting
/// the datagrams from the legitimate source.
pub struct Socket5060 {
    legit: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Socket5060 {
    pub fn start(ns: &str, legit: Ipv4Addr, cpu: usize) -> Self {
        let (count, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (c, s) = (count.clone(), stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = in_netns(ns, move || {
            pin_to(cpu);
            let sock = UdpSocket::bind("0.0.0.0:5060").expect("bind 5060/udp in the receiving namespace");
            sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            // room for about a second of the legitimate flow, so that the count is of what
            // reached the socket, not of how often this thread got its CPU
            let size: libc::c_int = RCVBUF;
            // SAFETY: an int option value of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&raw const size).cast(),
                    size_of::<libc::c_int>() as u32,
                )
            };
            assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
            ready_tx.send(()).unwrap();
            read_counting(&sock, legit, &c, &s);
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("the socket on 5060 is bound");
        Self { legit: count, stop, thread: Some(thread) }
    }

    /// Datagrams from the legitimate source read so far.
    pub fn legit(&self) -> u64 {
        self.legit.load(Ordering::Relaxed)
    }
}

impl Drop for Socket5060 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads in batches (`recvmmsg`), as a busy SIP server would, until `stop`.
fn read_counting(sock: &UdpSocket, legit: Ipv4Addr, count: &AtomicU64, stop: &AtomicBool) {
    const N: usize = 64;
    let mut bufs = vec![[0u8; 2048]; N];
    // SAFETY: zeroed sockaddr_in, iovec and mmsghdr are valid; the pointers set below stay
    // valid for as long as the arrays live, which is this function.
    let mut names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; N];
    let mut iovs: Vec<libc::iovec> =
        bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
    // SAFETY: as above.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; N];
    let want = u32::from(legit);
    while !stop.load(Ordering::Relaxed) {
        for i in 0..N {
            msgs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: N mmsghdrs, each with a name buffer and one iovec of live memory.
        let n = unsafe {
            libc::recvmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), N as u32, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if n <= 0 {
            continue;
        }
        let from_legit = names[..n as usize].iter().filter(|a| u32::from_be(a.sin_addr.s_addr) == want).count();
        count.fetch_add(from_legit as u64, Ordering::Relaxed);
    }
}
