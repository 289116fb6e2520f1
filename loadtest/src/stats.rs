//! Pure helpers shared by the scenarios: percentiles, sequence checks, the report printer,
//! and reading a process's resident memory. Everything here is unit-tested; nothing here
//! touches the network.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// The value at fraction `q` of sorted samples (nearest rank, rounded).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Milliseconds as a float, for tables and JSON.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The usual summary of a latency sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self {
            count: samples.len(),
            p50: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }

    /// "p50 / p99 / max" in milliseconds, for the table.
    pub fn cell(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }

    /// Adds `<prefix>_p50_ms`, `_p99_ms` and `_max_ms` to a JSON summary.
    pub fn put(&self, summary: &mut Report, prefix: &str) {
        summary.json(&format!("{prefix}_p50_ms"), round3(ms(self.p50)));
        summary.json(&format!("{prefix}_p99_ms"), round3(ms(self.p99)));
        summary.json(&format!("{prefix}_max_ms"), round3(ms(self.max)));
    }
}

/// Three decimals are plenty for milliseconds and keep the JSON line short.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What one receiver saw of a numbered stream, against what it should have seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqCheck {
    /// Numbers in `first..=last` never received.
    pub missing: u64,
    /// Receipts beyond the first of the same number.
    pub duplicates: u64,
    /// Receipts lower than one received before them.
    pub out_of_order: u64,
}

impl SeqCheck {
    /// Checks `received` (in arrival order) against the expected range `first..=last`.
    pub fn of(received: &[u64], first: u64, last: u64) -> Self {
        let mut seen: HashMap<u64, u32> = HashMap::with_capacity(received.len());
        let mut out_of_order = 0;
        let mut highest = 0;
        for &seq in received {
            *seen.entry(seq).or_default() += 1;
            if seq < highest {
                out_of_order += 1;
            }
            highest = highest.max(seq);
        }
        let duplicates = seen.values().map(|&n| u64::from(n - 1)).sum();
        let missing = if last < first {
            0
        } else {
            (first..=last).filter(|s| !seen.contains_key(s)).count() as u64
        };
        Self {
            missing,
            duplicates,
            out_of_order,
        }
    }

    pub fn add(&mut self, other: SeqCheck) {
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
    }
}

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The resident set of a process in KiB, or `None` when it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kib(&status)
}

/// The "Max open files" soft limit of a process, from `/proc/<pid>/limits`.
pub fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A scenario's result: rows for the readable table and keys for the one-line JSON.
/// Keys are stable across versions so saved lines can be compared.
pub struct Report {
    rows: Vec<(String, String)>,
    json: Map<String, Value>,
}

impl Report {
    pub fn new(scenario: &str, target: &str) -> Self {
        let mut json = Map::new();
        json.insert("scenario".into(), scenario.into());
        json.insert("target".into(), target.into());
        json.insert(
            "protocol".into(),
            paranimo_actors::protocol::PROTOCOL_VERSION.into(),
        );
        Self {
            rows: vec![("scenario".into(), format!("{scenario} ({target})"))],
            json,
        }
    }

    /// A table row only.
    pub fn row(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.rows.push((name.into(), value.to_string()));
        self
    }

    /// A JSON key only.
    pub fn json(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.json.insert(key.into(), value.into());
        self
    }

    /// Both: the row is named by the key.
    pub fn both(&mut self, key: &str, value: impl Into<Value> + ToString + Clone) -> &mut Self {
        self.rows.push((key.into(), value.to_string()));
        self.json.insert(key.into(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.json.get(key)
    }

    /// The table, then the JSON summary as the last line.
    pub fn render(&self) -> String {
        let width = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, value) in &self.rows {
            out.push_str(&format!("{name:<width$}  {value}\n"));
        }
        out.push_str(&Value::Object(self.json.clone()).to_string());
        out
    }
}

/// A small deterministic generator (xorshift64*), enough to shuffle request orders
/// reproducibly without another dependency.
pub struct Shuffler(u64);

impl Shuffler {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    /// Percentiles pick the nearest rank and never index past the end.
    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let sorted = millis(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(6));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(10));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        let summary = Latency::of(millis(&[9, 1, 5]));
        assert_eq!(summary.count, 3);
        assert_eq!(summary.p50, Duration::from_millis(5));
        assert_eq!(summary.max, Duration::from_millis(9));
    }

    /// Gaps, repeats and reordering are each counted once for what they are.
    #[test]
    fn sequence_checks_count_gaps_repeats_and_reordering() {
        assert_eq!(SeqCheck::of(&[1, 2, 3], 1, 3), SeqCheck::default());
        let check = SeqCheck::of(&[1, 3, 3, 2, 5], 1, 6);
        assert_eq!(check.missing, 2); // 4 and 6
        assert_eq!(check.duplicates, 1);
        assert_eq!(check.out_of_order, 1); // 2 after 3
        assert_eq!(SeqCheck::of(&[], 5, 4).missing, 0);
    }

    /// The resident set and the fd limit are read from the kernel's own text.
    #[test]
    fn proc_files_are_parsed() {
        let status = "Name:\tparanimo\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(123_456));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_open_files_limit(limits), Some(20_000));
    }

    /// The JSON summary is the last line and keeps its keys.
    #[test]
    fn reports_end_with_one_json_line() {
        let mut report = Report::new("idle", "paranimo");
        report.both("connections", 10).row("note", "hello");
        let text = report.render();
        let last = text.lines().last().unwrap();
        let json: Value = serde_json::from_str(last).unwrap();
        assert_eq!(json["scenario"], "idle");
        assert_eq!(json["connections"], 10);
        assert!(json.get("note").is_none());
        assert!(text.contains("connections"));
    }

    /// The shuffle is a permutation and depends only on the seed.
    #[test]
    fn shuffles_are_reproducible_permutations() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        Shuffler::new(7).shuffle(&mut a);
        Shuffler::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(a, (0..50).collect::<Vec<_>>());
    }
}
