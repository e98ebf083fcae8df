//! Blocklist feeds in the daemon: a task per feed refreshes it every `refresh` and puts each
//! new list in force through the same all-or-nothing apply as a rules reload. A failed fetch
//! or apply keeps the list in force; the saved copies apply at start, before the first fetch.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use tokio::{sync::watch, task::JoinSet};

use super::{lock, Shared};
use crate::{
    datapath::fit,
    feeds::{cache, FeedState},
    rules::{feeds::Feed, Rules},
};

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Puts the saved copy of each feed into `rules` (at start, before anything is fetched). When
/// the copies would not fit the tables, the rules start without them and the first fetches
/// try again.
pub fn saved_lists(rules: &mut Rules, state_dir: &Path) {
    for f in rules.block_feeds.clone() {
        match cache::load(&cache::path(state_dir, &f.name)) {
            Ok(Some(copy)) => {
                log::info!(
                    "feed {}: its saved list of {} networks applies until the first fetch",
                    f.name,
                    copy.entries.len()
                );
                rules.set_feed(&f.name, copy.nets());
            }
            Ok(None) => log::info!("feed {}: no saved list yet; it applies after the first fetch", f.name),
            Err(e) => log::warn!("feed {}: {e}", f.name),
        }
    }
    if !rules.feed_nets.is_empty() {
        if let Err(e) = fit::fits(rules) {
            log::error!("the saved feed lists do not fit the tables ({e}): starting without them");
            rules.feed_nets.clear();
        }
    }
}

/// Runs a task per feed of the rules in force; a reload that adds, changes or removes a feed
/// starts, restarts or stops its task.
pub async fn run(d: Shared, state_dir: PathBuf, mut feeds: watch::Receiver<Vec<Feed>>) {
    let mut set = JoinSet::new();
    let mut running: HashMap<String, (Feed, tokio::task::AbortHandle)> = HashMap::new();
    loop {
        let wanted = feeds.borrow_and_update().clone();
        running.retain(|name, (feed, task)| {
            let keep = wanted.iter().any(|w| w == feed);
            if !keep {
                log::info!("feed {name}: stopped (the rules changed)");
                task.abort();
                let g = lock(&d);
                let _ = g.metrics.feed_entries.remove_label_values(&[name]);
                let _ = g.metrics.feed_last_success.remove_label_values(&[name]);
            }
            keep
        });
        for f in wanted {
            if !running.contains_key(&f.name) {
                let task = set.spawn(one(d.clone(), f.clone(), state_dir.clone()));
                running.insert(f.name.clone(), (f, task));
            }
        }
        tokio::select! {
            changed = feeds.changed() => if changed.is_err() { return },
            Some(_) = set.join_next(), if !set.is_empty() => {}
        }
    }
}

/// Whether the rules in force hold a list for the feed `name`.
fn in_force(d: &Shared, name: &str) -> bool {
    lock(d).enforcer.rules().feed_nets.iter().any(|(n, _)| n == name)
}

/// Puts `nets` in force for the feed; `false` (logged and counted) when the tables cannot take them.
async fn apply(d: &Shared, name: &str, nets: Vec<ipnet::IpNet>) -> bool {
    let (d2, name2, n) = (d.clone(), name.to_owned(), nets.len());
    let res = tokio::task::spawn_blocking(move || lock(&d2).apply_feed(&name2, nets)).await;
    let why = match res {
        Ok(Ok(Some(a))) => {
            log::info!(
                "feed {name}: {n} networks in force ({} table writes, {} deletions)",
                a.nets.writes,
                a.nets.deletes
            );
            return true;
        }
        Ok(Ok(None)) => return false,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    log::error!(
        "feed {name}: its new list of {n} networks cannot be applied ({why}); the previous list stays in force"
    );
    lock(d).metrics.feed_failures.with_label_values(&[name, "apply"]).inc();
    false
}

async fn one(d: Shared, feed: Feed, state_dir: PathBuf) {
    let name = feed.name.clone();
    let m = {
        let g = lock(&d);
        let m = &g.metrics;
        (m.feed_entries.clone(), m.feed_last_success.clone(), m.feed_failures.clone(), m.feed_lines_skipped.clone())
    };
    let (entries, last_success, failures, skipped_lines) = m;
    let (mut st, err) = match FeedState::open(feed, &state_dir) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}; the feed is not fetched");
            failures.with_label_values(&[&name, "client"]).inc();
            return;
        }
    };
    if let Some(e) = err {
        log::warn!("feed {name}: {e}");
    }
    // a feed a reload added: its saved copy applies before the first fetch
    if !st.copy.entries.is_empty() && !in_force(&d, &name) {
        apply(&d, &name, st.copy.nets()).await;
    }
    entries.with_label_values(&[&name]).set(st.copy.entries.len() as i64);
    log::info!("feed {name}: fetching {} every {}", st.feed.url, crate::duration::format(Some(st.feed.refresh)));
    loop {
        let now = unix_now();
        match st.refresh(now).await {
            Ok(None) => {
                log::debug!("feed {name}: not modified");
                last_success.with_label_values(&[&name]).set(now as i64);
            }
            Ok(Some((copy, skipped))) => {
                skipped_lines.with_label_values(&[&name]).inc_by(skipped);
                if skipped > 0 {
                    log::warn!("feed {name}: {skipped} entries of the answer are not addresses or CIDRs; skipped");
                }
                let nets = copy.nets();
                let ok = (nets == st.copy.nets() && in_force(&d, &name)) || apply(&d, &name, nets).await;
                if ok {
                    entries.with_label_values(&[&name]).set(copy.entries.len() as i64);
                    last_success.with_label_values(&[&name]).set(now as i64);
                    if let Err(e) = st.commit(copy) {
                        log::warn!("feed {name}: {e}; the list is in force but a restart starts from the older copy");
                    }
                }
            }
            Err(f) => {
                failures.with_label_values(&[&name, f.reason()]).inc();
                log::warn!("feed {name}: {f}; its last good list ({} networks) stays in force", st.copy.entries.len());
            }
        }
        tokio::time::sleep(st.feed.refresh).await;
    }
}
