//! The bucket layout, shared so the kernel's index and userspace's bounds can
//! never disagree.
//!
//! Bucket `i` holds values with `floor(log2(v)) == i / SUB_BUCKETS` whose next
//! `SUB_BUCKET_BITS` bits equal `i % SUB_BUCKETS`. Values 0..SUB_BUCKETS get
//! exact buckets of their own.

use crate::{BUCKETS, SUB_BUCKET_BITS, SUB_BUCKETS};

/// floor(log2(v)) for v > 0, without a count-leading-zeros instruction (the
/// BPF backend lowers `leading_zeros` to a libcall the kernel cannot link).
#[inline(always)]
pub fn log2(mut v: u64) -> u32 {
    let mut r = 0;
    if v >> 32 != 0 {
        v >>= 32;
        r += 32;
    }
    if v >> 16 != 0 {
        v >>= 16;
        r += 16;
    }
    if v >> 8 != 0 {
        v >>= 8;
        r += 8;
    }
    if v >> 4 != 0 {
        v >>= 4;
        r += 4;
    }
    if v >> 2 != 0 {
        v >>= 2;
        r += 2;
    }
    if v >> 1 != 0 {
        r += 1;
    }
    r
}

/// Bucket index of a duration in nanoseconds; always `< BUCKETS`.
#[inline(always)]
pub fn index(v: u64) -> usize {
    if v < SUB_BUCKETS as u64 {
        return v as usize;
    }
    let l = log2(v);
    let sub = (v >> (l - SUB_BUCKET_BITS)) as usize & (SUB_BUCKETS - 1);
    (l - SUB_BUCKET_BITS + 1) as usize * SUB_BUCKETS + sub
}

/// Number of buckets a u64 can reach; the rest of `BUCKETS` stays empty.
pub const USED_BUCKETS: usize = (64 - SUB_BUCKET_BITS as usize + 1) * SUB_BUCKETS;
const _: () = assert!(USED_BUCKETS <= BUCKETS);

/// Smallest value that falls in bucket `i` (`i < USED_BUCKETS`).
pub fn lower_bound(i: usize) -> u64 {
    if i < SUB_BUCKETS {
        return i as u64;
    }
    let l = (i / SUB_BUCKETS) as u32 + SUB_BUCKET_BITS - 1;
    let sub = (i % SUB_BUCKETS) as u64;
    (1u64 << l) | (sub << (l - SUB_BUCKET_BITS))
}

/// Largest value that falls in bucket `i` (`i < USED_BUCKETS`).
pub fn upper_bound(i: usize) -> u64 {
    if i + 1 >= USED_BUCKETS {
        u64::MAX
    } else {
        lower_bound(i + 1) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_matches_leading_zeros() {
        for v in [1u64, 2, 3, 4, 7, 8, 1000, 1 << 40, u64::MAX] {
            assert_eq!(log2(v), 63 - v.leading_zeros(), "v={v}");
        }
    }

    #[test]
    fn every_value_lands_inside_its_bucket_bounds() {
        let mut v = 0u64;
        while v < 1 << 20 {
            let i = index(v);
            assert!(lower_bound(i) <= v && v <= upper_bound(i), "v={v} i={i}");
            v += 1 + v / 7;
        }
        for v in [u64::MAX, u64::MAX / 2, (1 << 63) + 5] {
            let i = index(v);
            assert!(i < USED_BUCKETS);
            assert!(lower_bound(i) <= v && v <= upper_bound(i), "v={v} i={i}");
        }
    }

    #[test]
    fn buckets_are_contiguous() {
        for i in 0..USED_BUCKETS - 1 {
            assert_eq!(upper_bound(i) + 1, lower_bound(i + 1), "i={i}");
            assert_eq!(index(lower_bound(i)), i);
            assert_eq!(index(upper_bound(i)), i);
        }
    }
}
