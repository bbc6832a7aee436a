//! A child's stdout and stderr, merged in write order (as Lambda merges them into one log
//! stream) and readable without racing the child: `text()` first drains whatever the child
//! already wrote, so output written before the child answered an invocation or exited is
//! always there.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub(crate) struct Capture {
    pipe: AsyncFd<File>,
    bytes: Mutex<Vec<u8>>,
}

impl Capture {
    /// Starts capturing; hand the returned write end to the child as stdout and stderr.
    pub(crate) fn start() -> std::io::Result<(Arc<Capture>, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills `fds` with two fresh descriptors that we then own.
        let (read, write) = unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        // Only our end is non-blocking: the child's writes must block, not fail, on a full pipe.
        let read = File::from(read);
        set_nonblocking(&read)?;
        // SAFETY: the File owns its descriptor and keeps it for as long as the AsyncFd holds it.
        let pipe = unsafe { AsyncFd::register_with_interest(read, Interest::READABLE)? };
        let capture = Arc::new(Capture {
            pipe,
            bytes: Mutex::default(),
        });
        tokio::spawn(pump(capture.clone()));
        Ok((capture, write))
    }

    pub(crate) fn text(&self) -> String {
        self.drain();
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// Moves everything readable now into the buffer; true once the child closed its end.
    fn drain(&self) -> bool {
        // Reading under the lock keeps concurrent drains from reordering chunks.
        let mut bytes = self.lock();
        let mut pipe = self.pipe.get_ref();
        let mut chunk = [0; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.bytes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps the pipe empty so a chatty child never blocks on a full pipe between reads.
async fn pump(capture: Arc<Capture>) {
    loop {
        let Ok(mut ready) = capture.pipe.readable().await else {
            return;
        };
        if capture.drain() {
            return;
        }
        ready.clear_ready();
    }
}

fn set_nonblocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns, changing only its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
