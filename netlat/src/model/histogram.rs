//! The latency model: per-CPU kernel stats merged into one histogram of
//! nanosecond durations, with percentiles.

use netlat_common::{BUCKETS, Stats, buckets};

/// Durations of the calls of one function over one window (one CPU or merged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    pub count: u64,
    pub sum_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub unmatched_exits: u64,
    pub dropped_entries: u64,
    pub mismatched_exits: u64,
    /// Counts in the shared bucket layout (`netlat_common::buckets`).
    pub buckets: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            count: 0,
            sum_ns: 0,
            min_ns: 0,
            max_ns: 0,
            unmatched_exits: 0,
            dropped_entries: 0,
            mismatched_exits: 0,
            buckets: vec![0; BUCKETS],
        }
    }
}

impl From<&Stats> for Histogram {
    fn from(s: &Stats) -> Self {
        Self {
            count: s.count,
            sum_ns: s.sum_ns,
            min_ns: s.min_ns,
            max_ns: s.max_ns,
            unmatched_exits: s.unmatched_exits,
            dropped_entries: s.dropped_entries,
            mismatched_exits: s.mismatched_exits,
            buckets: s.buckets.to_vec(),
        }
    }
}

/// One non-empty bucket, in nanoseconds (bounds inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub low_ns: u64,
    pub high_ns: u64,
    pub count: u64,
}

impl Histogram {
    pub fn merge(&mut self, other: &Histogram) {
        if other.count > 0 {
            self.min_ns = if self.count == 0 {
                other.min_ns
            } else {
                self.min_ns.min(other.min_ns)
            };
            self.max_ns = self.max_ns.max(other.max_ns);
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.unmatched_exits += other.unmatched_exits;
        self.dropped_entries += other.dropped_entries;
        self.mismatched_exits += other.mismatched_exits;
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }

    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a Histogram>) -> Histogram {
        let mut all = Histogram::default();
        for h in parts {
            all.merge(h);
        }
        all
    }

    pub fn mean_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ns as f64 / self.count as f64)
    }

    pub fn nonempty_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &count)| Bucket {
                low_ns: buckets::lower_bound(i),
                high_ns: buckets::upper_bound(i),
                count,
            })
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket that
    /// holds that rank, clamped to the observed min and max. So it is never
    /// below the true value and at most one sub-bucket (~19%) above it.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        // Rank of the q-th value, 1-based, as HdrHistogram and stap count it.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for b in self.nonempty_buckets() {
            seen += b.count;
            if seen >= rank {
                return Some(b.high_ns.clamp(self.min_ns, self.max_ns));
            }
        }
        // Buckets and count disagree only if the kernel map was torn mid-read.
        Some(self.max_ns)
    }

    /// One call of each duration, merged as the kernel's slots are (what
    /// `slow --json` input and test fixtures are made into).
    pub fn from_values(values: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for &v in values {
            let mut one = Histogram {
                count: 1,
                sum_ns: v,
                min_ns: v,
                max_ns: v,
                ..Histogram::default()
            };
            one.buckets[buckets::index(v)] = 1;
            h.merge(&one);
        }
        h
    }

    pub fn bucket_total(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// The percentiles netlat reports, in the order it prints them.
pub const PERCENTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

/// Histograms built from durations, for the tests of what reads them.
#[cfg(test)]
impl Histogram {
    /// `n` calls of `ns` for each pair: counts, sum and buckets only.
    pub(crate) fn from_counts(values: &[(u64, u64)]) -> Histogram {
        let mut h = Histogram::default();
        for &(ns, n) in values {
            h.count += n;
            h.sum_ns += ns * n;
            h.buckets[buckets::index(ns)] += n;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_min_max_and_totals() {
        let h = Histogram::from_values(&[5, 1_000, 3, 70_000]);
        assert_eq!(
            (h.count, h.min_ns, h.max_ns, h.sum_ns),
            (4, 3, 70_000, 71_008)
        );
        assert_eq!(h.bucket_total(), 4);
        let empty = Histogram::default();
        let mut m = h.clone();
        m.merge(&empty);
        assert_eq!(m, h, "merging an empty CPU must not reset min");
    }

    #[test]
    fn quantiles_bound_the_true_value_within_one_sub_bucket() {
        let values: Vec<u64> = (1..=10_000).map(|i| i * 37).collect();
        let h = Histogram::from_values(&values);
        for (_, q) in PERCENTILES {
            let exact = values[((q * values.len() as f64).ceil() as usize) - 1];
            let got = h.quantile_ns(q).unwrap();
            assert!(got >= exact, "q={q}: {got} < {exact}");
            assert!(got as f64 <= exact as f64 * 1.25, "q={q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile_ns(1.0), Some(370_000));
        let first_upper = buckets::upper_bound(buckets::index(37));
        assert_eq!(h.quantile_ns(0.0), Some(first_upper.clamp(37, 370_000)));
    }

    #[test]
    fn empty_histogram_has_no_quantiles_or_mean() {
        let h = Histogram::default();
        assert_eq!(h.quantile_ns(0.5), None);
        assert_eq!(h.mean_ns(), None);
    }

    #[test]
    fn single_value_quantiles_are_that_value() {
        let h = Histogram::from_values(&[23_000_000]);
        for (_, q) in PERCENTILES {
            assert_eq!(h.quantile_ns(q), Some(23_000_000));
        }
    }
}
