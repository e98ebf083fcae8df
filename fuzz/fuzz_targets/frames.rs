//! Ethernet frames through the real XDP program with BPF_PROG_TEST_RUN, each verdict checked
//! against the one the rules give ([`model`]).
//!
//! The input's first byte chooses a source for the frame and its second a destination port
//! (`model::SOURCES_V4`, `SOURCES_V6` and `PORTS`, by the byte's remainder; the remainders
//! past the lists keep the frame's own); the rest is the frame. The program is loaded once,
//! with `model::RULES` and the bans of `model::BANS`, on the test clock: it stands still, so
//! no verdict depends on time or on how fast frames come.
//!
//! Checks, frame by frame: exactly one counter moves, by one packet and the frame's length,
//! and it is the counter of the reason and service the model gives (for the `sip` service, of
//! one of the inspector's reasons); the XDP action is that reason's. Every 4,096 frames, and
//! when a check fails, every counter of every reason and service is read: each holds what the
//! frames so far added to it, so a frame counted twice is found too. A reason met for the first
//! time counts as new coverage, so the corpus keeps a frame for each.
//!
//! Needs root (it loads the program). Frames shorter than an Ethernet header are skipped, as
//! BPF_PROG_TEST_RUN refuses them, and frames are cut at 1,522 bytes (a full frame with two
//! VLAN tags).

#![no_main]

#[path = "frames/model.rs"]
mod model;

use std::cell::RefCell;

use firewall_common::reason::{counter_index, Action, Reason, COUNTER_SLOTS, REASON_SLOTS};
use libfuzzer_sys::fuzz_target;
use model::{Model, BANS, RULES};
use sipwall_tests::harness::{Harness, XDP_DROP, XDP_PASS};

const LONGEST: usize = 1522;
const FULL_CHECK_EVERY: u64 = 4096;

struct Target {
    h: Harness,
    model: Model,
    /// Service ids, in the order of [`model::Service`].
    ids: [u32; 4],
    /// Every counter (packets, bytes) as the frames so far left it.
    counters: Vec<(u64, u64)>,
    frames: u64,
}

thread_local! {
    static TARGET: RefCell<Target> = RefCell::new(Target::new());
}

fn read(h: &Harness, index: u32) -> (u64, u64) {
    let per_cpu = h.stats.counters.get(&index, 0).expect("read SW_COUNTERS");
    per_cpu.iter().fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
}

/// The reason and service of a counter index.
fn label(index: usize) -> (Option<Reason>, u32) {
    let slots = COUNTER_SLOTS / REASON_SLOTS;
    (Reason::from_u32(index as u32 / slots), index as u32 % slots)
}

impl Target {
    fn new() -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "the frames target loads the XDP program: run it as root");
        let mut h = Harness::new(RULES);
        for b in BANS {
            h.enforcer.ban(b.parse().expect("a network"), None, "fuzz", "fuzz").expect("ban");
        }
        let id = |name| h.enforcer.services().id(name).unwrap_or_else(|| panic!("service {name}"));
        let ids = [0, id("ssh"), id("sip"), id("web")];
        let counters = (0..COUNTER_SLOTS).map(|i| read(&h, i)).collect();
        Target { h, model: Model::new(), ids, counters, frames: 0 }
    }

    /// The counters that differ from what the frames so far left them at, with the change.
    fn changed(&self) -> Vec<(Option<Reason>, u32, (u64, u64))> {
        (0..COUNTER_SLOTS as usize)
            .filter_map(|i| {
                let (now, was) = (read(&self.h, i as u32), self.counters[i]);
                let (reason, svc) = label(i);
                (now != was).then(|| (reason, svc, (now.0.wrapping_sub(was.0), now.1.wrapping_sub(was.1))))
            })
            .collect()
    }

    fn run(&mut self, frame: &[u8]) {
        let want = self.model.expect(frame);
        let svc = self.ids[want.service as usize];
        let action = self.h.action(frame);
        self.frames += 1;
        let mut moved = None;
        for &r in want.reasons {
            let i = counter_index(r, svc) as usize;
            let now = read(&self.h, i as u32);
            if now == self.counters[i] {
                continue;
            }
            let by = (now.0 - self.counters[i].0, now.1 - self.counters[i].1);
            assert!(
                moved.is_none() && by == (1, frame.len() as u64),
                "frame {frame:02x?}: counted {by:?} under {r:?}, service {svc} (and before under {moved:?})"
            );
            self.counters[i] = now;
            moved = Some(r);
        }
        let Some(reason) = moved else {
            panic!(
                "frame {frame:02x?}: expected one of {:?} for service {svc} ({:?}), action {action}; counters moved: {:?}",
                want.reasons,
                want.service,
                self.changed()
            );
        };
        seen(reason);
        let xdp = match reason.action() {
            Action::Pass => XDP_PASS,
            Action::Drop => XDP_DROP,
        };
        assert_eq!(action, xdp, "frame {frame:02x?}: {reason:?} but XDP action {action}");
        if self.frames % FULL_CHECK_EVERY == 0 {
            let changed = self.changed();
            assert!(changed.is_empty(), "counters moved that no frame was counted under: {changed:?}");
        }
    }
}

/// A function of its own for each reason: the verdict happens in the kernel, where libFuzzer
/// sees no coverage, so a frame with a reason not seen before is new coverage here.
fn seen(reason: Reason) {
    #[inline(never)]
    fn reached<const N: u32>() {
        std::hint::black_box(N);
    }
    macro_rules! each {
        ($($r:ident),*) => {
            match reason {
                $(Reason::$r => reached::<{ Reason::$r as u32 }>(),)*
            }
        };
    }
    each!(
        NonIp,
        VlanDepth,
        Allowlisted,
        Fragment,
        OtherProtocol,
        UnprotectedPort,
        Accepted,
        TruncatedL2,
        TruncatedL3,
        InvalidL3,
        Ipv6Extensions,
        TruncatedL4,
        InvalidL4,
        Banned,
        Blocked,
        NotAllowed,
        RateLimited,
        SipNotSip,
        SipScanner,
        SipMethod,
        SipStealthOptions,
        SipMethodLimited,
        SipRemembered
    );
}

fuzz_target!(
    // loading the program (the verifier's walk of the SIP inspector) takes seconds: before the
    // first input, whose time libFuzzer holds against `-timeout`
    init: TARGET.with(|_| ()),
    |data: &[u8]| {
        let [src, port, frame @ ..] = data else { return };
        if frame.len() < 14 {
            return;
        }
        let mut frame = frame[..frame.len().min(LONGEST)].to_vec();
        model::steer(&mut frame, *src, *port);
        TARGET.with(|t| t.borrow_mut().run(&frame));
    }
);
