//! The real XDP program, loaded with real maps, fed frames through BPF_PROG_TEST_RUN. Each run
//! reports the XDP action and the single (reason, service) counter that moved.

use std::{collections::HashMap, path::Path, time::Duration};

use aya::{
    maps::{Array, MapData},
    programs::{TestRun, TestRunOptions},
};
use firewall_common::{
    clock::ClockSample,
    maps::CLOCK_TEST,
    programs,
    rate::RateEvent,
    reason::{counter_index, Reason, REASON_SLOTS},
    service::SERVICE_SLOTS,
};
pub use sipwall::daemon::events::Record;
use sipwall::{
    datapath::clock::KernelClock,
    datapath::enforcer::Enforcer,
    datapath::good::GoodMap,
    datapath::loader::{self, KernelStats, Loaded},
    datapath::tables::kernel::KernelTables,
    rules::Rules,
};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

pub struct Harness {
    pub ebpf: aya::Ebpf,
    pub enforcer: Enforcer<KernelTables>,
    pub stats: KernelStats,
    pub events: aya::maps::RingBuf<MapData>,
    /// `SW_SIP_GOOD`, the known-good sources.
    pub good: GoodMap,
    /// `SW_CLOCK`, whose slot `CLOCK_TEST` is the programs' time.
    clock_samples: Array<MapData, ClockSample>,
    clock: KernelClock,
}

/// What one frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: u32,
    pub reason: Reason,
    /// Service name, or "" for none.
    pub service: &'static str,
}

pub fn rules(text: &str) -> Rules {
    Rules::parse("test.toml", text, Path::new("/")).unwrap_or_else(|e| panic!("test rules rejected:\n{e}")).0
}

impl Harness {
    pub fn new(text: &str) -> Self {
        Self::with_rules(rules(text))
    }

    pub fn with_rules(r: Rules) -> Self {
        Self::with_object(r, sipwall::BPF_OBJECT)
    }

    /// A harness around another build of the XDP object. The programs' clock stands still at
    /// the kernel's time of loading until [`Harness::advance`] moves it: no verdict depends on
    /// how fast the machine runs the test.
    pub fn with_object(r: Rules, object: &[u8]) -> Self {
        Self::load(r, object, true)
    }

    /// A harness whose programs keep the kernel's own time, as the daemon runs them (the
    /// benchmark).
    pub fn on_kernel_time(r: Rules, object: &[u8]) -> Self {
        Self::load(r, object, false)
    }

    fn load(r: Rules, object: &[u8], test_clock: bool) -> Self {
        let loaded =
            if test_clock { loader::load_with_test_clock(&r, object) } else { loader::load_object(&r, object, false) };
        let Loaded { ebpf, tables, stats, events, good, clock, clock_samples, refused, .. } =
            loaded.expect("load the XDP program");
        // every program must load on every kernel the tests run on: a refusal is a failure here
        if let Some((feature, why)) = refused.first() {
            panic!("the kernel refused the {}: {why}", feature.name());
        }
        let enforcer = Enforcer::new(tables, r, clock).expect("apply rules");
        let mut h = Self { ebpf, enforcer, stats, events, good, clock_samples, clock };
        if test_clock {
            let now = loader::sample(&mut h.ebpf, &h.clock_samples).expect("sample the kernel clock");
            h.set_jiffies(now.jiffies);
        }
        h
    }

    /// The programs' time, in jiffies.
    pub fn jiffies(&self) -> u64 {
        self.clock_samples.get(&CLOCK_TEST, 0).expect("read the test clock").jiffies
    }

    fn set_jiffies(&mut self, jiffies: u64) {
        let t = ClockSample { jiffies, mono_ns: 0 };
        self.clock_samples.set(CLOCK_TEST, t, 0).expect("set the test clock");
    }

    /// Moves the programs' clock forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        let j = self.jiffies() + self.clock.jiffies_in(d);
        self.set_jiffies(j);
    }

    /// Instructions the verifier processed to accept the data-path program (its limit is
    /// 1,000,000 per program).
    pub fn verifier_work(&mut self) -> u32 {
        self.verifier_work_of(programs::XDP)
    }

    /// The same for another program of the object.
    pub fn verifier_work_of(&mut self, name: &'static str) -> u32 {
        let prog = self.ebpf.program(name).unwrap_or_else(|| panic!("{name} is in the object"));
        prog.info().expect("program info").verified_instruction_count().expect("kernel reports verified instructions")
    }

    /// Runs `frame` through the egress classifier as a packet leaving the host; returns its
    /// TC action.
    pub fn egress(&mut self, frame: &[u8]) -> i32 {
        let prog = sipwall::datapath::egress::program(&mut self.ebpf).unwrap();
        let res = prog
            .test_run(TestRunOptions { data_in: Some(frame), repeat: 1, ..Default::default() })
            .expect("BPF_PROG_TEST_RUN of the egress classifier");
        res.return_value as i32
    }

    /// Runs `frame` once; returns the XDP action.
    pub fn action(&mut self, frame: &[u8]) -> u32 {
        let prog = loader::program(&mut self.ebpf, programs::XDP).unwrap();
        let mut out = vec![0u8; frame.len() + 256];
        let res = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        res.return_value
    }

    /// Runs `frame` `repeat` times in one BPF_PROG_TEST_RUN through `program`; returns the
    /// action and the kernel's average ns per run.
    pub fn time(&mut self, program: &'static str, frame: &[u8], repeat: u32) -> (u32, f64) {
        let prog = loader::program(&mut self.ebpf, program).unwrap();
        let res = prog
            .test_run(TestRunOptions { data_in: Some(frame), repeat, ..Default::default() })
            .expect("BPF_PROG_TEST_RUN");
        (res.return_value, res.duration.as_nanos() as f64)
    }

    /// Packets per (reason, service id), summed over CPUs.
    pub fn counters(&self) -> HashMap<(u32, u32), (u64, u64)> {
        let mut m = HashMap::new();
        for r in 0..REASON_SLOTS {
            for s in 0..SERVICE_SLOTS {
                let Some(reason) = Reason::from_u32(r) else { continue };
                let idx = counter_index(reason, s);
                let v = self.stats.counters.get(&idx, 0).expect("read counters");
                let (p, b) = v.iter().fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes));
                if p > 0 {
                    m.insert((r, s), (p, b));
                }
            }
        }
        m
    }

    /// Runs `frame` and reports the action and the one counter that moved.
    pub fn run(&mut self, frame: &[u8]) -> Verdict {
        let before = self.counters();
        let action = self.action(frame);
        let after = self.counters();
        let moved: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(k).map_or(0, |b| b.0) != v.0)
            .map(|(k, v)| (*k, v.0 - before.get(k).map_or(0, |b| b.0), v.1 - before.get(k).map_or(0, |b| b.1)))
            .collect();
        assert_eq!(moved.len(), 1, "exactly one counter must move per packet: {moved:?}");
        let ((r, s), packets, bytes) = moved[0];
        assert_eq!((packets, bytes), (1, frame.len() as u64), "one packet of the frame's size");
        let reason = Reason::from_u32(r).unwrap();
        let want = match reason.action() {
            firewall_common::reason::Action::Pass => XDP_PASS,
            firewall_common::reason::Action::Drop => XDP_DROP,
        };
        assert_eq!(action, want, "action must follow the reason {reason:?}");
        let service = match self.enforcer.services().name(s) {
            Some(n) => Box::leak(n.to_owned().into_boxed_str()),
            None => "",
        };
        Verdict { action, reason, service }
    }

    /// Shorthand: the reason and service of one frame.
    pub fn why(&mut self, frame: &[u8]) -> (Reason, &'static str) {
        let v = self.run(frame);
        (v.reason, v.service)
    }

    /// Records waiting in the ring buffer, as the daemon reads them.
    pub fn drain_records(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            out.push(Record::read(&item).unwrap_or_else(|| panic!("a record of {} bytes", item.len())));
        }
        out
    }

    /// The events waiting in the ring buffer (rate-limit reports, SIP drops, the answers the
    /// egress classifier read), without the answers' text; requests shown for a proof are left
    /// out.
    pub fn drain_events(&mut self) -> Vec<RateEvent> {
        self.drain_records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Event(ev) | Record::Answer(ev, ..) => Some(ev),
                Record::Request(..) => None,
            })
            .collect()
    }

    /// The programs' time in jiffies `d` from now, for deadlines in the maps.
    pub fn deadline_in(&self, d: Duration) -> u64 {
        self.jiffies() + self.clock.jiffies_in(d)
    }
}

/// The example rules file, as shipped.
pub const EXAMPLE: &str = include_str!("../../rules/example.toml");
