//! The kernel's tick rate (CONFIG_HZ), which no file states: measured from
//! two reads of /proc/timer_list ("now at N nsecs", "jiffies: N").
//! `net.core.netdev_budget_usecs` is enforced in jiffies, so the NET_RX
//! programs need it to tell a call squeezed by time as the kernel does.

use std::time::Duration;

/// The tick rates Linux is built with (kernel/Kconfig.hz).
const RATES: [u64; 4] = [100, 250, 300, 1000];

/// `(now_ns, jiffies)` of one /proc/timer_list text.
pub fn parse(text: &str) -> Option<(u64, u64)> {
    let now = text.lines().find_map(|l| {
        l.strip_prefix("now at ")?
            .strip_suffix(" nsecs")?
            .trim()
            .parse()
            .ok()
    })?;
    let jiffies = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("jiffies:")?.trim().parse().ok())?;
    Some((now, jiffies))
}

/// The configured rate nearest to what two readings show.
pub fn rate_between(a: (u64, u64), b: (u64, u64)) -> Option<u64> {
    let ns = b.0.checked_sub(a.0).filter(|&ns| ns > 0)?;
    let ticks = b.1.checked_sub(a.1)?;
    let measured = ticks as f64 * 1e9 / ns as f64;
    RATES.into_iter().min_by(|x, y| {
        (*x as f64 - measured)
            .abs()
            .total_cmp(&(*y as f64 - measured).abs())
    })
}

/// HZ of the running kernel, measured over `over` (100 ms tells 250 from
/// 300 apart by 5 ticks); None when /proc/timer_list cannot be read.
pub fn measure_hz(over: Duration) -> Option<u64> {
    let read = || {
        std::fs::read_to_string("/proc/timer_list")
            .ok()
            .as_deref()
            .and_then(parse)
    };
    let a = read()?;
    std::thread::sleep(over);
    rate_between(a, read()?)
}

/// `usecs_to_jiffies` (include/linux/jiffies.h): rounded up.
pub fn usecs_to_jiffies(usecs: u64, hz: u64) -> u64 {
    (usecs * hz).div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_now_and_jiffies() {
        let text = "Timer List Version: v0.10\nHRTIMER_MAX_CLOCK_BASES: 8\nnow at 16620499875864 nsecs\n\ncpu: 0\n  .idle_jiffies   : 4299047344\njiffies: 4299047953\n";
        assert_eq!(parse(text), Some((16_620_499_875_864, 4_299_047_953)));
        assert_eq!(parse("jiffies: 5\n"), None);
    }

    #[test]
    fn rate_is_the_nearest_configured_one() {
        assert_eq!(rate_between((0, 0), (100_000_000, 25)), Some(250));
        assert_eq!(rate_between((0, 0), (100_000_000, 26)), Some(250));
        assert_eq!(rate_between((0, 0), (100_000_000, 30)), Some(300));
        assert_eq!(rate_between((0, 0), (100_000_000, 99)), Some(1000));
        assert_eq!(rate_between((5, 0), (5, 3)), None);
    }

    #[test]
    fn budget_usecs_round_up_to_jiffies() {
        assert_eq!(usecs_to_jiffies(2000, 250), 1);
        assert_eq!(usecs_to_jiffies(2000, 1000), 2);
        assert_eq!(usecs_to_jiffies(8000, 250), 2);
        assert_eq!(usecs_to_jiffies(2000, 300), 1);
        assert_eq!(usecs_to_jiffies(1, 100), 1);
    }
}
