//! What `netlat experiment` changed, as the compared runs record it: the
//! key may be outside the sysctls every report carries, so the comparison
//! takes it from the runs' `experiment` records.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::report::HistogramReport;

/// A sysctl whose value differs between the compared runs, one value per
/// run. Declared here, beside the experiments that add to it, so compare
/// depends on this module and not the other way round.
#[derive(Debug, Serialize, PartialEq)]
pub struct Differing {
    pub sysctl: String,
    pub values: Vec<Option<String>>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ExperimentChange {
    pub sysctl: String,
    pub before: String,
    pub during: String,
}

/// Each sysctl an experiment changed, once, from the runs that say so.
pub fn experiments(reports: &[&HistogramReport]) -> Vec<ExperimentChange> {
    let mut seen: Vec<ExperimentChange> = Vec::new();
    for e in reports.iter().filter_map(|r| r.experiment.as_ref()) {
        if !seen.iter().any(|s| s.sysctl == e.sysctl) {
            seen.push(ExperimentChange {
                sysctl: e.sysctl.clone(),
                before: e.before.clone(),
                during: e.during.clone(),
            });
        }
    }
    seen
}

/// Experiment sysctls outside the recorded ones, with each run's value: the
/// one its experiment record says was in force, else the run's recorded
/// start value (unknown for keys it did not record).
pub fn sysctls(
    reports: &[&HistogramReport],
    experiments: &[ExperimentChange],
    recorded: &BTreeSet<&String>,
) -> Vec<Differing> {
    experiments
        .iter()
        .filter(|e| !recorded.contains(&e.sysctl))
        .filter_map(|e| {
            let values: Vec<Option<String>> = reports
                .iter()
                .map(|r| match &r.experiment {
                    Some(x) if x.sysctl == e.sysctl => Some(x.in_force().to_owned()),
                    _ => r
                        .conditions
                        .as_ref()
                        .and_then(|c| c.sysctls_start.get(&e.sysctl).cloned().flatten()),
                })
                .collect();
            values.iter().any(|v| v != &values[0]).then(|| Differing {
                sysctl: e.sysctl.clone(),
                values,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::model::compare::{compare, parse, tests as compare_tests, tests::named};

    #[test]
    fn an_experiment_on_an_unrecorded_sysctl_shows_in_the_comparison() {
        use crate::model::report::{Experiment, ExperimentRun};
        let mut runs = [
            named(
                "before",
                compare_tests::report("tcp_collapse", 1000, 10, "1 2 3", 0),
            ),
            named(
                "after",
                compare_tests::report("tcp_collapse", 2000, 10, "1 2 3", 0),
            ),
        ];
        for (r, run) in runs
            .iter_mut()
            .zip([ExperimentRun::Before, ExperimentRun::After])
        {
            r.report.experiment = Some(Experiment {
                sysctl: "net.core.somaxconn".into(),
                before: "4096".into(),
                during: "8192".into(),
                run,
            });
        }
        let c = compare(&runs);
        assert_eq!(c.sysctls_differing.len(), 1);
        assert_eq!(
            c.sysctls_differing[0].values,
            [Some("4096".to_owned()), Some("8192".to_owned())]
        );
        let text = crate::render::compare::render(&c);
        assert!(
            text.contains("Experiment: net.core.somaxconn 4096 -> 8192"),
            "{text}"
        );
        assert!(text.contains("net.core.somaxconn  4096  8192"), "{text}");
        assert!(!text.contains("the same in every run"), "{text}");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["experiments"][0]["during"], "8192");
        // Older files, without the field, still load.
        let mut old = serde_json::to_value(&runs[0].report).unwrap();
        old.as_object_mut().unwrap().remove("experiment");
        assert_eq!(
            parse("old.json", &old.to_string()).unwrap().experiment,
            None
        );
        let text = crate::render::histogram::json(&runs[1].report, false);
        assert_eq!(parse("r.json", &text).unwrap(), runs[1].report);
    }
}
