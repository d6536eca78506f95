//! Parsing the durations users type: `30` (seconds), `2.5`, `500ms`, `2m`.

use std::time::Duration;

/// The longest run netlat accepts: far beyond any real one, and small
/// enough that a deadline this far ahead never overflows the clock.
pub const MAX: Duration = Duration::from_secs(1_000_000_000);

/// The shortest `--interval` netlat can keep: each window's end flips the
/// epoch, waits 5 ms for programs in flight, then reads every CPU's maps.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration '{s}': give seconds (e.g. 30 or 2.5) or a value with a unit (500ms, 2m)"
        )
    };
    let too_long = || {
        format!(
            "invalid duration '{s}': at most {} seconds (about 31 years)",
            MAX.as_secs()
        )
    };
    let not_positive = || format!("invalid duration '{s}': it must be more than 0 seconds");
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_nan() || secs <= 0.0 => return Err(not_positive()),
        Ok(secs) if secs > MAX.as_secs_f64() => return Err(too_long()),
        Ok(secs) => Duration::from_secs_f64(secs),
        Err(_) => humantime::parse_duration(s.trim()).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            _ => bad(),
        })?,
    };
    if d.is_zero() {
        return Err(not_positive());
    }
    if d > MAX {
        return Err(too_long());
    }
    Ok(d)
}

/// `--interval`: a duration netlat can honour, not one silently stretched.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "invalid interval '{s}': the shortest netlat can keep is {}ms (each window ends with a 5 ms pause and a read of every CPU's maps)",
            MIN_INTERVAL.as_millis()
        ));
    }
    Ok(d)
}

/// A latency threshold: a value with a unit (2ms, 500us, 100ns, 1s), or 0
/// for every call. A bare number other than 0 is refused: "2" could mean
/// seconds or milliseconds, and a wrong guess prints nothing or everything.
pub fn parse_threshold(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    if t.parse::<f64>().is_ok() {
        return Err(format!(
            "invalid threshold '{s}': give it a unit (e.g. 2ms, 500us, 100ns, 1s), or 0 for every call"
        ));
    }
    let too_long = || {
        format!(
            "invalid threshold '{s}': at most {}s (about 31 years); no call lasts that long",
            MAX.as_secs()
        )
    };
    // Above MAX, not just at u64::MAX ns: that value means "no threshold"
    // to the kernel side, and anything past it would saturate silently.
    match humantime::parse_duration(t) {
        Ok(d) if d > MAX => Err(too_long()),
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Err(too_long()),
        Err(_) => Err(format!(
            "invalid threshold '{s}': give a duration with a unit (e.g. 2ms, 500us, 100ns, 1s), or 0 for every call"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_need_a_unit_except_zero() {
        assert_eq!(parse_threshold("0"), Ok(Duration::ZERO));
        assert_eq!(parse_threshold("2ms"), Ok(Duration::from_millis(2)));
        assert_eq!(parse_threshold("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_threshold("100ns"), Ok(Duration::from_nanos(100)));
        for bad in ["2", "-1ms", "fast", "", "1.5"] {
            let err = parse_threshold(bad).unwrap_err();
            assert!(err.starts_with("invalid threshold"), "{bad}: {err}");
        }
    }

    #[test]
    fn thresholds_past_the_limit_are_refused_not_saturated() {
        assert_eq!(parse_threshold("1000000000s"), Ok(MAX));
        // 584 years is u64::MAX ns, the kernel side's "no threshold".
        for long in [
            "999999999999s",
            "584years",
            "1000000001s",
            "99999999999999999999999h",
        ] {
            assert_eq!(
                parse_threshold(long).unwrap_err(),
                format!(
                    "invalid threshold '{long}': at most 1000000000s (about 31 years); no call lasts that long"
                ),
                "{long}"
            );
        }
    }

    #[test]
    fn accepts_seconds_and_units() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1000000000"), Ok(MAX));
    }

    #[test]
    fn rejects_nonsense_and_non_positive() {
        for bad in ["abc", "-1", "0", "0s", "nan", ""] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{bad}: {err}");
        }
        assert_eq!(
            parse("-1").unwrap_err(),
            "invalid duration '-1': it must be more than 0 seconds"
        );
    }

    #[test]
    fn too_long_says_the_limit() {
        for long in [
            "1e10",
            "inf",
            "1000000001",
            "40years",
            "99999999999999999999999h",
        ] {
            assert_eq!(
                parse(long).unwrap_err(),
                format!("invalid duration '{long}': at most 1000000000 seconds (about 31 years)"),
                "{long}"
            );
        }
    }

    #[test]
    fn intervals_netlat_cannot_keep_are_refused() {
        assert_eq!(parse_interval("10ms"), Ok(MIN_INTERVAL));
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        let err = parse_interval("1ms").unwrap_err();
        assert!(
            err.starts_with("invalid interval '1ms': the shortest netlat can keep is 10ms"),
            "{err}"
        );
        assert!(parse_interval("0").unwrap_err().contains("more than 0"));
    }
}
