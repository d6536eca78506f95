//! Verdicts: what a guest test returns, and the checks that build it.

use netlat_testkit::netstat::Pruning;
use serde_json::Value;

/// A test's verdict: passed with figures, or could not be judged here
/// (said on its line, with the reason and what was still checked).
pub enum Outcome {
    Pass(String),
    Skip(String),
}

pub type Test = fn() -> Result<Outcome, String>;

/// Judges a tcp_collapse call count against the kernel's counters.
/// tcp_collapse runs only from tcp_prune_queue, and only when the queue is
/// still over sk_rcvbuf after tcp_clamp_window (which may raise sk_rcvbuf
/// to the memory in use): PruneCalled alone does not mean a collapse ran.
/// TCPRcvCollapsed is counted inside tcp_collapse, so when it rose there
/// must be calls; with no prune there must be none. In between, "calls > 0"
/// cannot be judged: a skip, saying what was `checked` instead.
pub fn judge_collapse_calls(
    calls: u64,
    pruning: Pruning,
    checked: impl FnOnce() -> String,
) -> Result<Option<Outcome>, String> {
    if pruning.pruned == 0 {
        check(calls == 0, || {
            format!("{calls} tcp_collapse calls but PruneCalled did not move")
        })?;
    }
    if pruning.collapsed > 0 {
        check(calls > 0, || {
            format!("0 tcp_collapse calls while the kernel collapsed: {pruning}")
        })?;
        return Ok(None);
    }
    if calls > 0 {
        return Ok(None);
    }
    Ok(Some(Outcome::Skip(format!(
        "the generator made this kernel collapse nothing ({pruning}), so calls>0 cannot be judged; checked instead: {}",
        checked()
    ))))
}

pub fn json(out: &str) -> Result<Value, String> {
    serde_json::from_str(out).map_err(|e| format!("bad JSON ({e}): {out}"))
}

pub fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}
