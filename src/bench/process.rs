//! The gateway's CPU time and peak memory, read from Linux's `/proc` by
//! its process id. Only reads; on another system, or for a process that
//! is gone, it answers `None`.

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`, 100 on
/// every Linux architecture the gateway runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User and system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Peak resident memory since the process started (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
}

/// Reads process `pid`'s CPU time and peak resident memory.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from after its closing parenthesis.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), the first after the name being 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Usage {
        cpu_seconds: (utime + stime) as f64 / TICKS_PER_SECOND,
        peak_rss_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time_and_a_peak_rss() {
        let u = usage(std::process::id()).expect("a Linux /proc");
        assert!(u.cpu_seconds >= 0.0);
        assert!(u.peak_rss_kib > 0);
    }

    #[test]
    fn a_missing_process_reads_as_none() {
        assert_eq!(usage(u32::MAX), None);
    }
}
