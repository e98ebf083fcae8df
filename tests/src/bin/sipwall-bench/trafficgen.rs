//! The traffic generator: frames made in the kernel by BPF_PROG_TEST_RUN with
//! `BPF_F_TEST_XDP_LIVE_FRAMES` (Linux 5.18), as xdp-trafficgen makes them. The program
//! (`firewall-ebpf/src/bin/trafficgen.rs`, an object of its own) gives each frame a source from
//! its table and returns XDP_TX, which the kernel turns into a transmit on the interface named in
//! the run's context: the frame leaves the generator's veth end and arrives at its peer. One
//! thread, pinned to one CPU, runs the syscall in a loop.

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use aya::{
    maps::{Array, MapData, PerCpuArray},
    programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp},
    Ebpf,
};
use firewall_common::trafficgen::{PROGRAM, SENT, SOURCES, SOURCE_SLOTS};
use sipwall_tests::netns::in_netns;

use crate::util::pin_to;

/// Frames per batch of the live-frames run: what a driver's NAPI poll hands on at once
/// (NAPI_POLL_WEIGHT), and a quarter of the veth peer's receive ring (256 frames).
const BATCH: u32 = 64;
/// How long one syscall should run: the loop looks at its stop flag between calls.
const CALL: Duration = Duration::from_millis(50);

/// `struct xdp_md` as BPF_PROG_TEST_RUN takes it in `ctx_in`: `data` 0 and `data_end` the
/// frame's length (the kernel insists), the interface the frames enter on, queue 0.
fn xdp_md(len: usize, ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

/// Sends `frame` `repeat` times out of interface `ifindex` (of the calling thread's namespace).
fn live_run(prog: &Xdp, frame: &[u8], ifindex: u32, repeat: u32) -> Result<(), std::io::Error> {
    let ctx = xdp_md(frame.len(), ifindex);
    let opts = TestRunOptions {
        data_in: Some(frame),
        ctx_in: Some(&ctx),
        repeat,
        attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
        ..TestRunOptions::default()
    };
    prog.test_run(opts).map(|_| ()).map_err(|e| match e {
        ProgramError::SyscallError(s) => s.io_error,
        other => std::io::Error::other(other.to_string()),
    })
}

/// What to say of a live-frames run the kernel refused.
fn refusal(ifname: &str, e: &std::io::Error) -> String {
    let why = if e.raw_os_error() == Some(libc::EPERM) {
        " (this kernel refuses live frames even to root: a build that restricts them, or a security module)"
    } else {
        ""
    };
    format!("BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on {ifname} (Linux 5.18 or later): {e}{why}")
}

/// The generator's program, loaded, and the index of `ifname` (in the calling thread's
/// namespace).
fn loaded<'a>(ebpf: &'a mut Ebpf, ifname: &str) -> Result<(&'a Xdp, u32), String> {
    let prog: &mut Xdp = ebpf.program_mut(PROGRAM).expect("the generator's program").try_into().unwrap();
    prog.load().map_err(|e| format!("loading {PROGRAM}: {e}"))?;
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("{ifname}: {}", std::io::Error::last_os_error()));
    }
    Ok((prog, ifindex))
}

/// Whether this kernel sends live frames: one frame out of `ifname` in namespace `ns`. The
/// error says why not, for a section to print instead of its table.
pub fn probe(ns: &str, ifname: &str, frame: Vec<u8>) -> Result<(), String> {
    let mut ebpf = Ebpf::load(sipwall::TRAFFICGEN_OBJECT).map_err(|e| format!("loading the traffic generator: {e}"))?;
    let ifname = ifname.to_owned();
    in_netns(ns, move || {
        let (prog, ifindex) = loaded(&mut ebpf, &ifname)?;
        live_run(prog, &frame, ifindex, 1).map_err(|e| refusal(&ifname, &e))
    })
    .join()
    .expect("the probe's thread")
}

/// A running generator; stopped when dropped.
pub struct Generator {
    sent: PerCpuArray<MapData, u64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Generator {
    /// Starts sending `frame` (Ethernet, IPv4 without options) out of `ifname` in namespace
    /// `ns`, from a thread pinned to `cpu`; frame n gets source `sources[n % SOURCE_SLOTS]`
    /// (`sources` holds `SOURCE_SLOTS` addresses). Returns once the first call has run.
    pub fn start(ns: &str, ifname: &str, frame: Vec<u8>, sources: &[Ipv4Addr], cpu: usize) -> Self {
        assert_eq!(sources.len(), SOURCE_SLOTS as usize, "one source per slot");
        assert!(
            !sipwall::TRAFFICGEN_OBJECT.is_empty(),
            "this build took a prebuilt XDP object (SIPWALL_BPF_OBJECT), which has no traffic generator: \
             build from source for the netfilter benchmark"
        );
        let mut ebpf = Ebpf::load(sipwall::TRAFFICGEN_OBJECT).expect("load the traffic generator's object");
        let mut table: Array<MapData, u32> =
            Array::try_from(ebpf.take_map(SOURCES).expect("the generator's source table")).unwrap();
        for (i, a) in sources.iter().enumerate() {
            table.set(i as u32, u32::from(*a).to_be(), 0).expect("write a source");
        }
        let sent = PerCpuArray::try_from(ebpf.take_map(SENT).expect("the generator's counter")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (s, ifname) = (stop.clone(), ifname.to_owned());
        let thread = in_netns(ns, move || {
            pin_to(cpu);
            let (prog, ifindex) = loaded(&mut ebpf, &ifname)?;
            let mut repeat = 1u32 << 14;
            let mut ready = Some(ready_tx);
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                live_run(prog, &frame, ifindex, repeat).map_err(|e| refusal(&ifname, &e))?;
                // about CALL per call, whatever the rate
                let took = t.elapsed().as_secs_f64().max(1e-6);
                repeat = ((f64::from(repeat) * CALL.as_secs_f64() / took) as u32).clamp(1 << 10, 1 << 24);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
            Ok(())
        });
        let mut g = Self { sent, stop, thread: Some(thread) };
        if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            g.finish();
            panic!("the traffic generator did not start");
        }
        g
    }

    /// Frames the program has sent since it was loaded (summed over CPUs).
    pub fn sent(&self) -> u64 {
        self.sent.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }

    /// Stops the thread; its error, if any, is the caller's panic.
    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if let Err(e) = t.join().expect("the generator's thread") {
                panic!("traffic generator: {e}");
            }
        }
    }

    pub fn stop(mut self) {
        self.finish();
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
