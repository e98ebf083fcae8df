//! Blocklist feeds (`[[block.feeds]]`): reading each format, fetching with conditional
//! requests, and keeping the last good copy on disk.

pub mod cache;
pub mod fetch;
pub mod formats;
