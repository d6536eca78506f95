//! `--by rcvbuf`'s groups as sizes: group g holds the power-of-two band
//! of bytes the entry program put there (`netlat_common::rcvbuf_group`).

/// Bytes of group `g`'s band, inclusive: `[2^(g-1), 2^g - 1]`; `None` for
/// group 0 (unreadable or not positive).
pub fn band(group: u32) -> Option<(u64, u64)> {
    (1..=31)
        .contains(&group)
        .then(|| (1u64 << (group - 1), (1u64 << group) - 1))
}

/// "128K" for a power of two; the band's name in tables.
pub fn size_label(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (unit, suffix) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use netlat_common::rcvbuf_group;

    use super::*;

    #[test]
    fn bands_hold_the_values_that_map_to_them() {
        for v in [
            1,
            2,
            3,
            4095,
            4096,
            65536,
            131072,
            131071,
            212992,
            6291456,
            i32::MAX,
        ] {
            let g = rcvbuf_group(v);
            let (low, high) = band(g).unwrap();
            assert!((low..=high).contains(&(v as u64)), "{v} in group {g}");
        }
        assert_eq!(band(0), None);
        assert_eq!(rcvbuf_group(0), 0);
        assert_eq!(rcvbuf_group(-5), 0);
        // SO_RCVBUF 64K is doubled by the kernel to 128K: band 128K..256K.
        assert_eq!(band(rcvbuf_group(131072)), Some((131072, 262143)));
    }

    #[test]
    fn labels() {
        assert_eq!(size_label(131072), "128K");
        assert_eq!(size_label(32 << 20), "32M");
        assert_eq!(size_label(1 << 30), "1G");
        assert_eq!(size_label(1), "1");
    }
}
