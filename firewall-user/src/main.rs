use aya::programs::{TestRun, TestRunOptions, Xdp};
fn main() {
    let mut ebpf = aya::EbpfLoader::new().load(sipwall::BPF_OBJECT).expect("load");
    let prog: &mut Xdp = ebpf.program_mut("sipwall").unwrap().try_into().unwrap();
    if let Err(e) = prog.load() {
        eprintln!("{e:#?}");
        if let aya::programs::ProgramError::LoadError { verifier_log, .. } = &e {
            let s = verifier_log.to_string();
            eprintln!("{}", &s[s.len().saturating_sub(6000)..]);
        }
        std::process::exit(1)
    }
    let pkt = [0u8; 64];
    let r = prog.test_run(TestRunOptions { data_in: Some(&pkt), repeat: 1, ..Default::default() }).unwrap();
    println!("ret={} dur={:?}", r.return_value, r.duration);
}
