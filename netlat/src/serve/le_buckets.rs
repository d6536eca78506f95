//! Prometheus histogram buckets from a kernel log2 histogram, shared by
//! the latency histograms and `serve --softirq`'s wait.

use crate::model::histogram::Histogram;

/// Bucket bounds: 2^k ns for k in this range, then +Inf. 128 ns to 17 s
/// covers a NET_RX softirq and the 1.8 s stall of "The story of one latency
/// spike" alike. Every bound is
/// a kernel bucket boundary, so no bucket is split; the one inexactness is
/// that a call of exactly 2^k ns counts under the next bound.
const LE_POWERS: std::ops::RangeInclusive<u32> = 7..=34;

/// (upper bound in seconds, calls in that bucket only); +Inf last.
pub fn buckets(h: &Histogram) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = LE_POWERS.map(|k| ((1u64 << k) as f64 / 1e9, 0)).collect();
    out.push((f64::INFINITY, 0));
    for b in h.nonempty_buckets() {
        // The first bound strictly above the bucket: kernel buckets never
        // straddle a power of two.
        let slot = LE_POWERS
            .clone()
            .position(|k| b.high_ns < 1u64 << k)
            .unwrap_or(out.len() - 1);
        out[slot].1 += b.count;
    }
    out
}

/// The bound, in seconds, that a call of `ns` counts under.
pub fn bound_of(ns: u64) -> f64 {
    LE_POWERS
        .clone()
        .find(|&k| ns < 1u64 << k)
        .map_or(f64::INFINITY, |k| (1u64 << k) as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_powers_of_two_and_counts_land_below_them() {
        let h = Histogram::from_counts(&[
            (100, 1),
            (1000, 2),
            (1023, 1),
            (1024, 4),
            (3_000_000_000, 1),
            (40_000_000_000, 1),
        ]);
        let b = buckets(&h);
        assert_eq!(b.len(), LE_POWERS.count() + 1);
        assert_eq!(b[0], (128e-9, 1)); // 100 ns
        let at = |le: f64| {
            b.iter()
                .find(|(bound, _)| (*bound - le).abs() < 1e-12)
                .unwrap()
                .1
        };
        assert_eq!(at(1024e-9), 3); // 1000 and 1023 ns
        assert_eq!(at(2048e-9), 4); // 1024 ns counts one bound up
        assert_eq!(at((1u64 << 32) as f64 / 1e9), 1); // 3 s
        assert_eq!(b.last().unwrap(), &(f64::INFINITY, 1)); // 40 s
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), h.count);
        // An exemplar sits on the bucket its call was counted in.
        assert_eq!(bound_of(1023), 1024e-9);
        assert_eq!(bound_of(1024), 2048e-9);
        assert_eq!(bound_of(40_000_000_000), f64::INFINITY);
    }
}
