//! A feed's last good copy in `STATE_DIR/feeds/NAME`: its networks, when each was last seen, and
//! the validators (ETag, Last-Modified, APIBAN's ID) for the next fetch. Written whole to a
//! temporary file, synced, then renamed over the old copy, so a crash leaves one or the other.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What a feed knows between fetches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// APIBAN: the ID to ask from next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apiban_id: Option<String>,
    /// Each network with the Unix time (seconds) an answer last listed it.
    pub entries: BTreeMap<IpNet, u64>,
}

impl Copy {
    pub fn nets(&self) -> Vec<IpNet> {
        self.entries.keys().copied().collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a feed copy sipwall can read ({source}); the next fetch replaces it")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("saving {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the feed `name` is kept under `state_dir`.
pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("feeds").join(name)
}

/// The saved copy; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Copy>, CacheError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CacheError::Read { path: path.to_owned(), source }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|source| CacheError::Corrupt { path: path.to_owned(), source })
}

/// Saves `copy` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, copy: &Copy) -> Result<(), CacheError> {
    let err = |source| CacheError::Write { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    // feed names never start with a dot: no feed's copy is another's temporary file
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let body = serde_json::to_vec(copy).expect("a feed copy serializes");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&body).and_then(|()| f.sync_all()).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_copy_reads_back_and_replaces_the_old_one() {
        let dir = std::env::temp_dir().join(format!("sipwall-feed-cache-{}", std::process::id()));
        let p = path(&dir, "drop");
        assert!(load(&p).unwrap().is_none());
        let mut c = Copy { etag: Some("\"v1\"".into()), ..Copy::default() };
        c.entries.insert("1.2.3.0/24".parse().unwrap(), 100);
        c.entries.insert("2001:db8::/32".parse().unwrap(), 200);
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap().as_ref(), Some(&c));
        let c2 =
            Copy { apiban_id: Some("17".into()), last_modified: Some("Sun, 06 Dec 2026 10:00:00 GMT".into()), ..c };
        save(&p, &c2).unwrap();
        assert_eq!(load(&p).unwrap(), Some(c2));
        let names: Vec<_> = std::fs::read_dir(dir.join("feeds")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["drop"], "the temporary file is renamed away");
        std::fs::write(&p, b"{\"entries\": ").unwrap();
        assert!(matches!(load(&p), Err(CacheError::Corrupt { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
