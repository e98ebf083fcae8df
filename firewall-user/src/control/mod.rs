//! The control socket: a Unix socket only root may use, one JSON request and one JSON response
//! per connection.

pub mod client;
pub mod protocol;
pub mod server;

/// Where `sipwall run` listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/sipwall/sipwall.sock";
