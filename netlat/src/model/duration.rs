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

#[cfg(test)]
mod tests {
    use super::*;

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
