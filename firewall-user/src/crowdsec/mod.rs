//! CrowdSec's Local API (LAPI): the decision stream a bouncer pulls, the alerts a machine
//! pushes, and the book of decisions in force. The daemon's tasks are in `daemon::crowdsec`.

pub mod alert;
pub mod book;
pub mod decisions;
pub mod lapi;
#[cfg(test)]
mod tests;

/// The `source` of a ban a CrowdSec decision made (`sipwall list`, `why`, the metrics).
pub const SOURCE: &str = "crowdsec";
