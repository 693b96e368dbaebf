//! Waiting for followed files to change: inotify on Linux, so `watch` reads a line as soon as it
//! is written instead of at its next poll; a plain sleep elsewhere, or when inotify cannot be set
//! up (out of watches, a file system without it such as some network mounts), which the poll
//! interval then bounds as before.
//!
//! The directories holding the files are watched, not the files: a rotation (a new file created
//! or moved in under the name) and a file appearing (`--wait`) wake the waiter too. Other files in
//! the same directories wake it as well; the reader then finds nothing new and waits again.

use std::path::PathBuf;
use std::time::Duration;

/// A waiter for changes to a set of files.
pub struct Notify {
    #[cfg(target_os = "linux")]
    fd: Option<rustix::fd::OwnedFd>,
    /// Why change notification is off, when it is.
    pub off: Option<String>,
}

impl Notify {
    /// A waiter for `files` (their directories are watched).
    pub fn new(files: &[PathBuf]) -> Notify {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::inotify;
            let fd =
                match inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
                {
                    Ok(fd) => fd,
                    Err(e) => {
                        return Notify {
                            fd: None,
                            off: Some(format!("inotify unavailable ({e}); polling")),
                        }
                    }
                };
            let mut dirs: Vec<PathBuf> = files
                .iter()
                .map(|f| match f.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                })
                .collect();
            dirs.sort();
            dirs.dedup();
            let flags = inotify::WatchFlags::MODIFY
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::CLOSE_WRITE
                | inotify::WatchFlags::ATTRIB;
            for d in &dirs {
                if let Err(e) = inotify::add_watch(&fd, d.as_path(), flags) {
                    return Notify {
                        fd: None,
                        off: Some(format!(
                            "cannot watch {} for changes ({e}); polling",
                            d.display()
                        )),
                    };
                }
            }
            Notify {
                fd: Some(fd),
                off: None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = files;
            Notify {
                off: Some("change notification is Linux's inotify; polling".into()),
            }
        }
    }

    /// Waits until a watched directory changes or `timeout` passes, whichever comes first; what
    /// woke it is consumed.
    pub fn wait(&self, timeout: Duration) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            use rustix::event::{poll, PollFd, PollFlags, Timespec};
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            let ts = Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            if poll(&mut fds, Some(&ts)).is_ok() {
                self.drain();
            }
            return;
        }
        std::thread::sleep(timeout);
    }

    /// Reads and drops the pending notifications.
    #[cfg(target_os = "linux")]
    fn drain(&self) {
        use rustix::fs::inotify;
        let Some(fd) = &self.fd else {
            return;
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        while reader.next().is_ok() {}
    }

    /// Whether change notification is on.
    pub fn active(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fd.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn an_append_wakes_the_waiter_long_before_its_timeout() {
        let dir = std::env::temp_dir().join(format!("imdsguard-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.log");
        std::fs::write(&file, b"one\n").unwrap();
        let n = Notify::new(std::slice::from_ref(&file));
        if !n.active() {
            eprintln!("skipped: {}", n.off.unwrap_or_default());
            return;
        }
        let path = file.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(b"two\n").unwrap();
        });
        let started = Instant::now();
        n.wait(Duration::from_secs(20));
        let waited = started.elapsed();
        writer.join().unwrap();
        // Woken by the write (about 50 ms in), not by the 20 s timeout.
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        // The writer's close may come after the wake-up consumed the write's notification: one
        // more wake-up at most, taken here (it returns at once, or after its timeout).
        n.wait(Duration::from_millis(200));
        // Nothing pending after: the next wait lasts its timeout.
        let started = Instant::now();
        n.wait(Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(90));
        std::fs::remove_dir_all(&dir).ok();
    }
}
