//! A minimal inotify watch on one directory, waited on with a timeout.

use std::{io, os::fd::AsFd, path::Path, time::Duration};

use nix::{
    errno::Errno,
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::inotify::{AddWatchFlags, InitFlags, Inotify},
};

/// Bytes of a `struct inotify_event` before its name: `wd`, `mask`, `cookie` and `len`.
const EVENT_HEADER: usize = 16;

pub struct DirWatch {
    inotify: Inotify,
}

impl DirWatch {
    /// Watches `dir` for changes to the files in it: writes, creation, renames, deletion,
    /// truncation (attribute changes).
    pub fn new(dir: &Path) -> io::Result<DirWatch> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF;
        inotify.add_watch(dir, mask)?;
        Ok(DirWatch { inotify })
    }

    /// Waits until something happens in the directory or `timeout` passes; returns whether the
    /// directory itself went away (it must be watched again).
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX)) {
            Err(Errno::EINTR) => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let gone_mask =
            (AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_IGNORED).bits();
        let mut gone = false;
        let mut buf = [0u8; 4096];
        // read the records in place: `Inotify::read_events` would allocate a Vec and the names
        while let Ok(len @ 1..) = nix::unistd::read(&self.inotify, &mut buf) {
            let mut off = 0usize;
            while off + EVENT_HEADER <= len {
                let word = |at: usize| u32::from_ne_bytes(buf[off + at..off + at + 4].try_into().expect("4 bytes"));
                if word(4) & gone_mask != 0 {
                    gone = true;
                }
                off += EVENT_HEADER + word(12) as usize;
            }
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_write_wakes_the_wait_and_removing_the_directory_ends_the_watch() {
        let d = std::env::temp_dir().join(format!("sipwall-dirwatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let w = DirWatch::new(&d).unwrap();
        assert!(!w.wait(Duration::ZERO).unwrap(), "nothing happened yet");
        let start = Instant::now();
        std::fs::write(d.join("some-long-log-name.log"), "line\n").unwrap();
        assert!(!w.wait(Duration::from_secs(20)).unwrap(), "the directory is still there");
        assert!(start.elapsed() < Duration::from_secs(10), "the write woke the wait");
        // a deleted file's record carries its name before the directory's own records
        std::fs::remove_dir_all(&d).unwrap();
        assert!(w.wait(Duration::from_secs(20)).unwrap(), "the directory went away");
    }
}
