//! `flamegraph --during --json`: the ranking and the sample accounting
//! behind it, as plain data.

use serde::Serialize;

use super::{culprit::Ranking, culprit::Row, sampler::Samples};

#[derive(Debug, Serialize)]
pub struct Calls {
    pub calls: u64,
    pub samples: u64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slower_than_ns: Option<u64>,
    /// The slow calls (with `--slower-than`), or all calls.
    pub slow: Calls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast: Option<Calls>,
    /// Samples taken inside the function with a kernel stack, as the
    /// kernel counted them: slow + fast + undecided + lost_in_call.
    pub in_call_samples: u64,
    /// Held for calls still running when the probes detached.
    pub undecided_samples: u64,
    /// In-call samples lost to a full pending list or count map, or whose
    /// stack was evicted.
    pub lost_in_call_samples: u64,
    pub outside_samples: u64,
    /// The sampler program's mean run time: what each sample adds (at
    /// least) to the call it lands in.
    pub sample_cost_ns: Option<f64>,
    pub enough_samples: bool,
    pub ranking: Vec<Row>,
}

impl Summary {
    pub fn new(
        function: &str,
        slower_than: Option<std::time::Duration>,
        samples: &Samples,
        slow_calls: u64,
        ranking: Ranking,
    ) -> Summary {
        let t = &samples.tally;
        let in_call = t.in_call;
        let accounted = t.kept + t.fast + samples.undecided;
        Summary {
            function: function.to_owned(),
            slower_than_ns: slower_than.map(|d| d.as_nanos() as u64),
            slow: Calls {
                calls: slow_calls,
                samples: t.kept,
            },
            fast: slower_than.map(|_| Calls {
                calls: t.fast_calls,
                samples: t.fast,
            }),
            in_call_samples: in_call,
            undecided_samples: samples.undecided,
            lost_in_call_samples: in_call.saturating_sub(accounted),
            outside_samples: t.outside,
            sample_cost_ns: samples.cost_ns(),
            enough_samples: ranking.enough_samples,
            ranking: ranking.rows,
        }
    }
}
