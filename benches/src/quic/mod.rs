//! The QUIC benchmark (`quic` binary): stock quinn, and its fork noq, against
//! our endpoint with FEC off and with a plugin active, in one process and one
//! run, on loopback.
//!
//! - Bulk: the same seeded bytes through each stack; goodput at the
//!   receiver and the process's CPU seconds per GiB (both ends run in this
//!   process, so that is both ends' cost).
//! - Loss: an impairing relay of `pquic-host` (seeded loss and delay, the same
//!   for every stack) between client and server; bulk goodput and the 99th
//!   percentile latency of small messages.
//!
//! Each stack gets a fresh server and client per run; stacks are interleaved
//! within every round and the medians of the rounds are reported.

pub mod stacks;
pub mod workload;

use std::fmt;
use std::time::Duration;

crate::quic_workload!(quinn_workload, quinn);
crate::quic_workload!(noq_workload, noq);

/// Why a run failed.
#[derive(Debug)]
pub enum BenchError {
    /// A QUIC error (connection, stream, configuration).
    Quic(String),
    /// The peer said something the benchmark does not expect.
    Protocol(String),
    /// Our endpoint failed.
    Host(pquic_host::Error),
    /// A run took longer than its deadline.
    Timeout(Duration),
    /// The operating system said no (sockets, /proc).
    Io(std::io::Error),
}

impl BenchError {
    /// Wraps any displayable QUIC-stack error.
    pub fn quic(error: impl fmt::Display) -> Self {
        BenchError::Quic(error.to_string())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Quic(e) => write!(f, "QUIC: {e}"),
            BenchError::Protocol(e) => write!(f, "protocol: {e}"),
            BenchError::Host(e) => write!(f, "pquic-host: {e}"),
            BenchError::Timeout(d) => write!(f, "no result after {} s", d.as_secs()),
            BenchError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<pquic_host::Error> for BenchError {
    fn from(e: pquic_host::Error) -> Self {
        BenchError::Host(e)
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError::Io(e)
    }
}

/// CPU seconds this process has used (user + system, all threads), from
/// `/proc/self/stat` (Linux; clock ticks of 1/100 s).
pub fn process_cpu_seconds() -> Result<f64, BenchError> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name: state is field 3, utime
    // and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| BenchError::Protocol("unreadable /proc/self/stat".into()))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, BenchError> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| BenchError::Protocol("unreadable /proc/self/stat".into()))
    };
    // `rest` starts at field 3, so field n is at index n - 3.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_grow_with_work() {
        let before = process_cpu_seconds().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = process_cpu_seconds().unwrap() - before;
        assert!(
            (0.1..2.0).contains(&used),
            "300 ms of spinning read as {used} s"
        );
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn quantile_is_nearest_rank() {
        let l = workload::Latencies {
            sent: 100,
            ms: (1..=100).map(f64::from).collect(),
        };
        assert_eq!(l.quantile(0.99), 99.0);
        assert_eq!(l.quantile(0.5), 50.0);
    }
}
