//! A small deterministic generator (xorshift64) for randomized tests and benchmark inputs:
//! the same seed gives the same cases on every run.

pub struct Rng(pub u64);

impl Rng {
    // an endless stream: an Iterator's `Option` would only get in the way
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
