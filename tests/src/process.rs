//! Child processes that cannot outlive the test process.

use std::process::Command;

/// Asks the kernel to SIGKILL the child when its parent goes away, so a test binary that is
/// killed (Ctrl-C, CI timeout) leaves no server behind; `kill_on_drop` only covers a clean
/// unwind. Caveat: the "parent" is the spawning *thread*, so spawn from a thread that lives at
/// least as long as the child is needed.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure only makes async-signal-safe calls (prctl, getppid) between fork and
    // exec and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl, which the signal would miss.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
