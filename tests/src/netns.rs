//! Throwaway network namespaces joined by a veth pair, and raw sockets inside them. Traffic
//! never leaves the pair; XDP is only ever attached to the veth end inside a namespace.

use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs a command (program and arguments) and panics with its stderr if it fails.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Two namespaces: `peer` (the internet side) and `host` (the protected VoIP host), joined by
/// `peer_if` <-> `host_if`.
pub struct Lab {
    pub peer: String,
    pub host: String,
    pub peer_if: String,
    pub host_if: String,
    pub host_mac: [u8; 6],
    pub peer_mac: [u8; 6],
    /// Addresses on the link: 10.200.N.1 (peer) and 10.200.N.2 (host), fd00:200:N::1/2.
    pub n: u32,
    /// Deletes the namespaces when dropped.
    owner: bool,
}

impl Lab {
    pub fn new() -> Self {
        let n = (std::process::id() + NEXT.fetch_add(1, Ordering::SeqCst)) % 250;
        let tag = format!("{}-{n}", std::process::id());
        let (peer, host) = (format!("swp-{tag}"), format!("swh-{tag}"));
        let (peer_if, host_if) = (format!("swp{n}"), format!("swh{n}"));
        // remove leftovers of an earlier run that died
        let _ = Command::new("ip").args(["netns", "del", &peer]).output();
        let _ = Command::new("ip").args(["netns", "del", &host]).output();
        sh(&["ip", "netns", "add", &peer]);
        sh(&["ip", "netns", "add", &host]);
        let lab = Self { peer, host, peer_if, host_if, host_mac: [0; 6], peer_mac: [0; 6], n, owner: true };
        sh(&[
            "ip",
            "link",
            "add",
            &lab.peer_if,
            "netns",
            &lab.peer,
            "type",
            "veth",
            "peer",
            "name",
            &lab.host_if,
            "netns",
            &lab.host,
        ]);
        for (ns, ifname, addr4, addr6) in [
            (&lab.peer, &lab.peer_if, format!("10.200.{}.1/24", lab.n), format!("fd00:200:{}::1/64", lab.n)),
            (&lab.host, &lab.host_if, format!("10.200.{}.2/24", lab.n), format!("fd00:200:{}::2/64", lab.n)),
        ] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "addr", "add", &addr4, "dev", ifname]);
            sh(&["ip", "-n", ns, "addr", "add", &addr6, "dev", ifname, "nodad"]);
            sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        // spoofed sources are the point: no reverse-path filtering on the host side
        for key in ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"] {
            sh(&["ip", "netns", "exec", &lab.host, "sysctl", "-qw", &format!("{key}=0")]);
        }
        sh(&["ip", "netns", "exec", &lab.host, "sysctl", "-qw", &format!("net.ipv4.conf.{}.rp_filter=0", lab.host_if)]);
        let mut lab = lab;
        lab.host_mac = mac_of(&lab.host, &lab.host_if);
        lab.peer_mac = mac_of(&lab.peer, &lab.peer_if);
        lab
    }

    /// The addressing a traffic generator needs (names and MACs), without owning the lab.
    pub fn clone_for_flow(&self) -> Lab {
        Lab {
            peer: self.peer.clone(),
            host: self.host.clone(),
            peer_if: self.peer_if.clone(),
            host_if: self.host_if.clone(),
            host_mac: self.host_mac,
            peer_mac: self.peer_mac,
            n: self.n,
            owner: false,
        }
    }

    pub fn host_ip4(&self) -> String {
        format!("10.200.{}.2", self.n)
    }

    pub fn peer_ip4(&self) -> String {
        format!("10.200.{}.1", self.n)
    }

    /// A second veth pair between the same namespaces (`peer_if`b <-> `host_if`b); returns
    /// (peer end, host end, host MAC).
    pub fn add_link(&self) -> (String, String, [u8; 6]) {
        let (p, h) = (format!("{}b", self.peer_if), format!("{}b", self.host_if));
        sh(&["ip", "link", "add", &p, "netns", &self.peer, "type", "veth", "peer", "name", &h, "netns", &self.host]);
        sh(&["ip", "-n", &self.peer, "link", "set", &p, "up"]);
        sh(&["ip", "-n", &self.host, "link", "set", &h, "up"]);
        let mac = mac_of(&self.host, &h);
        (p, h, mac)
    }

    /// An empty directory for `what`'s files in this lab (config, logs, pid files), under the
    /// system's temporary directory; a leftover of an earlier run is removed first.
    pub fn scratch_dir(&self, what: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sipwall-{what}-{}-{}", self.host, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    }

    /// `ip netns exec NS ...` as a Command.
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let _ = Command::new("ip").args(["netns", "del", &self.peer]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.host]).output();
    }
}

/// The MAC address of interface `ifname` in namespace `ns`.
pub fn mac_of(ns: &str, ifname: &str) -> [u8; 6] {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{ifname}/address")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mac = [0u8; 6];
    for (i, part) in text.trim().split(':').enumerate() {
        mac[i] = u8::from_str_radix(part, 16).expect("mac");
    }
    mac
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens belong to `ns`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on this thread only; the fd is valid for the call.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// An AF_PACKET socket bound to one interface: sends and receives whole Ethernet frames.
pub struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Opens on `ifname` in the calling thread's namespace.
    pub fn open(ifname: &str) -> std::io::Result<Self> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh, owned descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = CString::new(ifname).unwrap();
        // SAFETY: valid C string.
        let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if idx == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: zeroed sockaddr_ll is a valid starting point.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = idx as i32;
        // SAFETY: sll is a properly sized sockaddr_ll.
        let rc = unsafe {
            libc::bind(fd.as_raw_fd(), (&raw const sll).cast::<libc::sockaddr>(), size_of::<libc::sockaddr_ll>() as u32)
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        // SAFETY: valid option value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast::<libc::c_void>(),
                size_of::<libc::timeval>() as u32,
            )
        };
        let buf: i32 = 8 << 20;
        // SAFETY: valid option value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&raw const buf).cast::<libc::c_void>(),
                4,
            )
        };
        Ok(Self { fd })
    }

    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        // SAFETY: frame is a valid buffer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr() as *const libc::c_void, frame.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Next incoming frame (frames this host sends are skipped), or None after the receive
    /// timeout (100 ms).
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        loop {
            // SAFETY: zeroed sockaddr_ll is valid output space.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buffers are valid for their lengths.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                    (&raw mut sll).cast::<libc::sockaddr>(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(n as usize);
            return Some(buf);
        }
    }
}

/// Waits until `f` returns true, polling every 50 ms, up to `limit`.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Fails at once, naming the Debian package, when `program` (a name looked up in `PATH`, or a
/// path) is not installed: `ip netns exec` would start and the test would wait for a peer that
/// never comes.
pub fn require_tool(program: &str, package: &str) {
    let found = if program.contains('/') {
        std::path::Path::new(program).exists()
    } else {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
    };
    assert!(found, "{program} is not installed: scripts/setup --test installs Debian's {package}");
}
