//! Asterisk's configuration read the way Asterisk resolves it ([`conf`]).

mod comments;
pub mod conf;
mod glob;
mod parse;
#[cfg(test)]
mod tests;

pub use self::conf::{ConfError, Config, Entry, Level, Note, Origin, Section};
