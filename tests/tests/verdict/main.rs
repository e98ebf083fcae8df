//! The verdict tier: the real programs run on hand-made and captured frames through
//! BPF_PROG_TEST_RUN, with the kernel clock replaced by the test's (`Harness::advance`). Needs
//! root and nothing else: no interface, no daemon, no peer. The kernel-matrix tier
//! (`cargo xtask test --kernels`) runs it on every kernel of the matrix.

mod egress;
mod limits;
mod parse;
mod policy;
mod proof_wire;
mod sip_inspect;
