//! Display units for durations.

use std::{fmt, str::FromStr};

use crate::model::histogram::Histogram;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitChoice {
    Auto,
    Ns,
    Us,
    Ms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Ns,
    Us,
    Ms,
}

impl Unit {
    pub fn nanos(self) -> u64 {
        match self {
            Unit::Ns => 1,
            Unit::Us => 1_000,
            Unit::Ms => 1_000_000,
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
        }
    }

    /// `auto` picks the unit in which the median call is at least 1, so the
    /// bulk of the histogram is not folded into the "0" row as stap's
    /// fixed milliseconds did.
    pub fn choose(choice: UnitChoice, h: &Histogram) -> Unit {
        match choice {
            UnitChoice::Ns => Unit::Ns,
            UnitChoice::Us => Unit::Us,
            UnitChoice::Ms => Unit::Ms,
            UnitChoice::Auto => Unit::for_ns(h.quantile_ns(0.5).unwrap_or(0)),
        }
    }

    /// The unit in which `ns` is at least 1 (and below 1000).
    pub fn for_ns(ns: u64) -> Unit {
        match ns {
            0..1_000 => Unit::Ns,
            1_000..1_000_000 => Unit::Us,
            _ => Unit::Ms,
        }
    }

    /// Whole units, truncated, as stap prints them.
    pub fn whole(self, ns: u64) -> u64 {
        ns / self.nanos()
    }

    pub fn of(self, ns: u64) -> f64 {
        ns as f64 / self.nanos() as f64
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

impl FromStr for Unit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ns" => Ok(Unit::Ns),
            "us" => Ok(Unit::Us),
            "ms" => Ok(Unit::Ms),
            _ => Err(format!("unknown unit '{s}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlat_common::buckets;

    fn with_median(ns: u64) -> Histogram {
        let mut h = Histogram {
            count: 1,
            sum_ns: ns,
            min_ns: ns,
            max_ns: ns,
            ..Histogram::default()
        };
        h.buckets[buckets::index(ns)] = 1;
        h
    }

    #[test]
    fn auto_unit_follows_the_median() {
        assert_eq!(Unit::choose(UnitChoice::Auto, &with_median(800)), Unit::Ns);
        assert_eq!(
            Unit::choose(UnitChoice::Auto, &with_median(5_000)),
            Unit::Us
        );
        assert_eq!(
            Unit::choose(UnitChoice::Auto, &with_median(3_000_000)),
            Unit::Ms
        );
        assert_eq!(
            Unit::choose(UnitChoice::Auto, &Histogram::default()),
            Unit::Ns
        );
        assert_eq!(Unit::choose(UnitChoice::Ms, &with_median(800)), Unit::Ms);
    }

    #[test]
    fn whole_units_truncate_like_stap() {
        assert_eq!(Unit::Ms.whole(23_999_999), 23);
        assert_eq!(Unit::Us.whole(999), 0);
    }
}
