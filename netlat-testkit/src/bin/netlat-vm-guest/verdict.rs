//! Verdicts: what a guest test returns, and the checks that build it.

use serde_json::Value;

/// A test's verdict: passed with figures, or could not be judged here
/// (said on its line, with the reason and what was still checked).
pub enum Outcome {
    Pass(String),
    Skip(String),
}

pub type Test = fn() -> Result<Outcome, String>;

/// tcp_collapse runs only from tcp_prune_queue: without a prune there must
/// be no call, and "calls > 0" cannot be judged (a skip, saying what was
/// `checked` instead); with prunes there must be calls.
pub fn judge_collapse_calls(
    calls: u64,
    pruned: u64,
    checked: impl FnOnce() -> String,
) -> Result<Option<Outcome>, String> {
    if pruned == 0 {
        check(calls == 0, || {
            format!("{calls} tcp_collapse calls but PruneCalled did not move")
        })?;
        return Ok(Some(Outcome::Skip(format!(
            "the generator made this kernel prune 0 times, so calls>0 cannot be judged; checked instead: {}",
            checked()
        ))));
    }
    check(calls > 0, || {
        format!("0 tcp_collapse calls while PruneCalled rose by {pruned}")
    })?;
    Ok(None)
}

pub fn json(out: &str) -> Result<Value, String> {
    serde_json::from_str(out).map_err(|e| format!("bad JSON ({e}): {out}"))
}

pub fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}
