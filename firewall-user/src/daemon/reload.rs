//! Reloading the rules on SIGHUP and when the rules file or a blocklist changes (inotify).
//! A file with errors is rejected whole: the error is logged and the rules in force stay.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{lock, Shared};
use crate::rules::Rules;

#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Signal,
    FileChanged,
}

/// Quiet time after the last change before reloading: editors write in several steps.
const SETTLE: Duration = Duration::from_millis(300);

/// Watches the directories holding `files` (so replace-by-rename is seen) and reports changes
/// to any of them, and to any `.conf` file in `dirs` (a file Asterisk's configuration gains).
fn watch(files: &[PathBuf], dirs: &[PathBuf], tx: mpsc::Sender<Trigger>) -> notify::Result<notify::RecommendedWatcher> {
    let abs = |f: &PathBuf| std::path::absolute(f).unwrap_or_else(|_| f.clone());
    let wanted: Vec<PathBuf> = files.iter().map(abs).collect();
    let conf_dirs: Vec<PathBuf> = dirs.iter().map(abs).collect();
    let (names, in_dirs) = (wanted.clone(), conf_dirs.clone());
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if ev.kind.is_access() {
                return;
            }
            let conf = |p: &PathBuf| {
                p.extension().is_some_and(|e| e == "conf") && p.parent().is_some_and(|d| in_dirs.iter().any(|x| x == d))
            };
            if ev.paths.iter().any(|p| names.contains(p) || conf(p)) {
                let _ = tx.try_send(Trigger::FileChanged);
            }
        }
    })?;
    let mut watched: Vec<&Path> =
        wanted.iter().filter_map(|f| f.parent()).chain(conf_dirs.iter().map(PathBuf::as_path)).collect();
    watched.sort();
    watched.dedup();
    for d in watched {
        w.watch(d, RecursiveMode::NonRecursive)?;
    }
    Ok(w)
}

/// The files a change of which reloads the rules: the rules file, the blocklist files, and the
/// Asterisk configuration files discovery read.
fn watched(config: &Option<PathBuf>, rules: &Rules) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let files = config.iter().cloned().chain(rules.watched_files()).collect();
    (files, rules.discovered.iter().map(|d| d.dir.clone()).collect())
}

pub async fn run(d: Shared, config: Option<PathBuf>, tx: mpsc::Sender<Trigger>, mut rx: mpsc::Receiver<Trigger>) {
    let rewatch = |(files, dirs): (Vec<PathBuf>, Vec<PathBuf>)| {
        if files.is_empty() && dirs.is_empty() {
            return None;
        }
        match watch(&files, &dirs, tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!("cannot watch the rules files ({e}); reload with SIGHUP");
                None
            }
        }
    };
    let files = watched(&config, lock(&d).enforcer.rules());
    let mut watcher = rewatch(files);
    while let Some(first) = rx.recv().await {
        // let a burst of writes settle
        while let Ok(Some(_)) = tokio::time::timeout(SETTLE, rx.recv()).await {}
        let cfg = config.clone();
        // without a rules file, the embedded defaults are applied again with what Asterisk's
        // configuration holds now
        let parsed = tokio::task::spawn_blocking(move || Rules::load_for_host(cfg.as_deref())).await;
        let (rules, warnings) = match parsed {
            Ok(Ok(r)) => r,
            Ok(Err(rejected)) => {
                log::error!("rules rejected, the previous rules stay in force:\n{rejected}");
                lock(&d).metrics.rules_reloads.with_label_values(&["rejected"]).inc();
                continue;
            }
            Err(e) => {
                log::error!("reading the rules: {e}");
                continue;
            }
        };
        for w in warnings {
            log::warn!("{w}");
        }
        let files = watched(&config, &rules);
        let d2 = d.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut g = lock(&d2);
            let r = g.reload(rules);
            let label = if r.is_ok() { "applied" } else { "failed" };
            g.metrics.rules_reloads.with_label_values(&[label]).inc();
            r
        })
        .await;
        match res {
            Ok(Ok(a)) => log::info!(
                "rules reloaded ({first:?}): {} table writes, {} deletions, {} service updates",
                a.nets.writes,
                a.nets.deletes,
                a.service_writes
            ),
            Ok(Err(e)) => log::error!("applying reloaded rules failed, the previous rules stay in force: {e}"),
            Err(e) => log::error!("reload task: {e}"),
        }
        watcher = rewatch(files).or(watcher);
    }
}
