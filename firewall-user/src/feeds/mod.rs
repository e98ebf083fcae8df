//! Blocklist feeds (`[[block.feeds]]`): reading each format, fetching with conditional
//! requests, and keeping the last good copy on disk.

pub mod cache;
pub mod fetch;
pub mod formats;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use self::{
    cache::{CacheError, Copy},
    fetch::{Failure, Outcome},
};
use crate::rules::feeds::Feed;

/// A feed, its client and its copy in force.
pub struct FeedState {
    pub feed: Feed,
    /// The copy in force (the saved one until a refresh brings a new one that applies).
    pub copy: Copy,
    path: PathBuf,
    client: reqwest::Client,
}

impl FeedState {
    /// The feed with its saved copy from `state_dir` (an empty one when there is none or it
    /// cannot be read; the error says why).
    pub fn open(feed: Feed, state_dir: &Path) -> Result<(FeedState, Option<CacheError>), String> {
        let client = fetch::client(&feed)?;
        let path = cache::path(state_dir, &feed.name);
        let (copy, err) = match cache::load(&path) {
            Ok(c) => (c.unwrap_or_default(), None),
            Err(e) => (Copy::default(), Some(e)),
        };
        Ok((FeedState { feed, copy, path, client }, err))
    }

    /// Fetches at `now` (Unix seconds). `Ok(None)`: the copy in force is current; `Ok(Some)`:
    /// a new copy, in force once [`FeedState::commit`] is called with it.
    pub async fn refresh(&self, now: u64) -> Result<Option<(Copy, u64)>, Failure> {
        match fetch::refresh(&self.client, &self.feed, &self.copy, now).await? {
            Outcome::NotModified => Ok(None),
            Outcome::New { copy, skipped } => Ok(Some((copy, skipped))),
        }
    }

    /// Makes `copy` the one in force and saves it.
    pub fn commit(&mut self, copy: Copy) -> Result<(), CacheError> {
        self.copy = copy;
        cache::save(&self.path, &self.copy)
    }
}
