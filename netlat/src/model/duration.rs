//! Parsing the durations users type: `30` (seconds), `2.5`, `500ms`, `2m`.

use std::time::Duration;

pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration '{s}': give seconds (e.g. 30 or 2.5) or a value with a unit (500ms, 2m)"
        )
    };
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Duration::from_secs_f64(secs),
        Ok(_) => {
            return Err(format!(
                "invalid duration '{s}': it must be more than 0 seconds"
            ));
        }
        Err(_) => humantime::parse_duration(s.trim()).map_err(|_| bad())?,
    };
    if d.is_zero() {
        return Err(format!(
            "invalid duration '{s}': it must be more than 0 seconds"
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
    humantime::parse_duration(t).map_err(|_| {
        format!(
            "invalid threshold '{s}': give a duration with a unit (e.g. 2ms, 500us, 100ns, 1s), or 0 for every call"
        )
    })
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
    fn accepts_seconds_and_units() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn rejects_nonsense_and_non_positive() {
        for bad in ["abc", "-1", "0", "0s", "nan", "inf", ""] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{bad}: {err}");
        }
    }
}
