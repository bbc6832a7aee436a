//! A function process's pid, peak resident set size and CPU time, from `/proc`.

use std::path::Path;
use std::time::Duration;

/// The pid of this process's running child whose executable is `binary`.
pub fn child_pid(binary: &Path) -> u32 {
    let me = std::process::id().to_string();
    let binary = binary.canonicalize().expect("the binary exists");
    let entries = std::fs::read_dir("/proc").expect("/proc is readable");
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            stat(*pid).is_some_and(|fields| fields[PPID] == me)
                && std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&binary)
        })
        .unwrap_or_else(|| panic!("no running child {}", binary.display()))
}

/// `VmHWM` of `/proc/<pid>/status`, the peak resident set size, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// CPU time the process has used so far, user and system, all its threads.
pub fn cpu_time(pid: u32) -> Duration {
    let fields = stat(pid).expect("process stat");
    let ticks: u64 = [UTIME, STIME]
        .iter()
        .map(|&i| fields[i].parse::<u64>().expect("clock ticks"))
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// Indexes into the fields after the command name of `/proc/<pid>/stat` (stat(5) numbers
/// fields from 1, the command name being field 2).
const PPID: usize = 1;
const UTIME: usize = 11;
const STIME: usize = 12;

/// The fields of `/proc/<pid>/stat` after the parenthesised command name, which may hold spaces.
fn stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    Some(fields.split_whitespace().map(str::to_owned).collect())
}
