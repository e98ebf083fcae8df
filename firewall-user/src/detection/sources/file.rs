//! Following a log file like `tail -F`: through rotation by rename, copytruncate and
//! delete-and-recreate, holding a partial last line until its newline arrives, and picking up
//! a file that appears later. The caller waits on inotify between polls.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Longest line judged. A longer line is handed on cut to `MAX_LINE + 1` bytes, so the reader
/// can tell it apart and skip it unjudged (a line that never ends cannot hold memory hostage,
/// and a cut line cannot pass off an address from its middle as its last field).
pub const MAX_LINE: usize = 64 * 1024;

/// What is kept of a line: one byte more than a line may have.
const KEPT: usize = MAX_LINE + 1;

/// What the last poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Reading,
    /// The file is not there (yet).
    Missing,
    /// The file is there but cannot be read.
    Failed(String),
}

struct Open {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
}

pub struct Follower {
    path: PathBuf,
    open: Option<Open>,
    /// Start at the end of the file found at the first open.
    skip_existing: bool,
    partial: Vec<u8>,
    /// Lines longer than MAX_LINE (handed on cut).
    pub overlong: u64,
    buf: Vec<u8>,
}

impl Follower {
    pub fn new(path: &Path, from_start: bool) -> Follower {
        Follower {
            path: path.to_owned(),
            open: None,
            skip_existing: !from_start,
            partial: Vec::new(),
            overlong: 0,
            buf: vec![0; 64 * 1024],
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<()> {
        let mut file = File::open(&self.path)?;
        let meta = file.metadata()?;
        let offset = if std::mem::take(&mut self.skip_existing) { file.seek(SeekFrom::End(0))? } else { 0 };
        self.open = Some(Open { file, dev: meta.dev(), ino: meta.ino(), offset });
        Ok(())
    }

    /// Reads what is new, following rotation; calls `line` for every complete line (without its
    /// newline).
    pub fn poll(&mut self, line: &mut dyn FnMut(&[u8])) -> State {
        if self.open.is_none() {
            match self.open() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // a file that appears later is read from its start
                    self.skip_existing = false;
                    return State::Missing;
                }
                Err(e) => return State::Failed(e.to_string()),
            }
        }
        // truncated in place (copytruncate): start over
        if let Some(o) = &mut self.open {
            if o.file.metadata().map(|m| m.len() < o.offset).unwrap_or(false) {
                let _ = o.file.seek(SeekFrom::Start(0));
                o.offset = 0;
                self.partial.clear();
            }
        }
        if let Err(e) = self.drain(line) {
            self.open = None;
            return State::Failed(e.to_string());
        }
        // replaced (rename or delete-and-recreate): finish the old file, then read the new one
        let o = self.open.as_ref().expect("opened above");
        match std::fs::metadata(&self.path) {
            Ok(m) if m.dev() != o.dev || m.ino() != o.ino => {
                self.end_partial(line);
                self.open = None;
                self.skip_existing = false;
                return self.poll(line);
            }
            Ok(_) => {}
            // renamed away and not yet recreated: keep reading the old one, the writer may too
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return State::Failed(e.to_string()),
        }
        State::Reading
    }

    fn drain(&mut self, line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let Some(o) = &mut self.open else { return Ok(()) };
        loop {
            let n = match o.file.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            o.offset += n as u64;
            let mut chunk = &self.buf[..n];
            while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
                if self.partial.is_empty() {
                    emit(&chunk[..i], line, &mut self.overlong);
                } else {
                    self.partial.extend_from_slice(&chunk[..i]);
                    emit(&self.partial, line, &mut self.overlong);
                    self.partial.clear();
                }
                chunk = &chunk[i + 1..];
            }
            if self.partial.len() + chunk.len() > KEPT {
                // keep the start, drop the rest of the line up to its newline
                let room = KEPT.saturating_sub(self.partial.len());
                self.partial.extend_from_slice(&chunk[..room.min(chunk.len())]);
            } else {
                self.partial.extend_from_slice(chunk);
            }
        }
    }

    /// The last line of a file that will not grow any more.
    fn end_partial(&mut self, line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial, line, &mut self.overlong);
            self.partial.clear();
        }
    }
}

fn emit(l: &[u8], line: &mut dyn FnMut(&[u8]), overlong: &mut u64) {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    if l.len() > MAX_LINE {
        *overlong += 1;
    }
    line(&l[..l.len().min(KEPT)]);
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sipwall-follow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap().write_all(s.as_bytes()).unwrap();
    }

    fn lines(f: &mut Follower) -> (Vec<String>, State) {
        let mut out = Vec::new();
        let st = f.poll(&mut |l| out.push(String::from_utf8_lossy(l).into_owned()));
        (out, st)
    }

    #[test]
    fn starts_at_the_end_and_holds_partial_lines() {
        let d = dir("partial");
        let p = d.join("log");
        append(&p, "old 1\nold 2\n");
        let mut f = Follower::new(&p, false);
        assert_eq!(lines(&mut f), (vec![], State::Reading));
        append(&p, "new 1\nnew ");
        assert_eq!(lines(&mut f).0, ["new 1"]);
        append(&p, "2\r\n");
        assert_eq!(lines(&mut f).0, ["new 2"]);
        let mut g = Follower::new(&p, true);
        assert_eq!(lines(&mut g).0, ["old 1", "old 2", "new 1", "new 2"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn follows_rename_rotation_and_recreation() {
        let d = dir("rotate");
        let p = d.join("log");
        append(&p, "");
        let mut f = Follower::new(&p, false);
        lines(&mut f);
        append(&p, "a\n");
        std::fs::rename(&p, d.join("log.1")).unwrap();
        // the writer still has the old file open for a moment
        append(&d.join("log.1"), "b\nunfinished");
        assert_eq!(lines(&mut f).0, ["a", "b"]);
        append(&p, "c\n");
        assert_eq!(lines(&mut f).0, ["unfinished", "c"]);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(lines(&mut f), (vec![], State::Reading));
        append(&p, "d\n");
        assert_eq!(lines(&mut f).0, ["d"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn follows_copytruncate() {
        let d = dir("truncate");
        let p = d.join("log");
        append(&p, "");
        let mut f = Follower::new(&p, false);
        lines(&mut f);
        append(&p, "a long first line\n");
        assert_eq!(lines(&mut f).0, ["a long first line"]);
        std::fs::OpenOptions::new().write(true).truncate(true).open(&p).unwrap();
        append(&p, "b\n");
        assert_eq!(lines(&mut f).0, ["b"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_file_that_appears_later_is_read_from_its_start() {
        let d = dir("later");
        let p = d.join("log");
        let mut f = Follower::new(&p, false);
        assert_eq!(lines(&mut f), (vec![], State::Missing));
        append(&p, "first\n");
        assert_eq!(lines(&mut f).0, ["first"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn overlong_lines_are_handed_on_cut_and_counted() {
        let d = dir("long");
        let p = d.join("log");
        append(&p, "");
        let mut f = Follower::new(&p, false);
        lines(&mut f);
        let longest = "y".repeat(MAX_LINE);
        append(&p, &format!("{}\nshort\n{longest}\n", "x".repeat(3 * MAX_LINE)));
        let (got, _) = lines(&mut f);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].len(), MAX_LINE + 1, "cut one byte past the limit, so the reader sees it is too long");
        assert_eq!(got[1], "short");
        assert_eq!(got[2], longest, "a line of exactly the limit is whole");
        assert_eq!(f.overlong, 1);
        std::fs::remove_dir_all(d).unwrap();
    }
}
