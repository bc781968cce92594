//! The numbers of `GET /v1/stats`: outcomes, the share merged and the time to the agent's
//! first output, overall and by playbook. Pure: the route reads the store.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use store::{TaskEvent, TaskFacts};
use workflows::TaskStatus;

use crate::dto::{StatsGroup, TaskStats};

/// `tasks` are those created in the range; `first_output` the first `agent_output` event of
/// each task that has one.
pub fn summarize(
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    tasks: &[TaskFacts],
    first_output: &HashMap<String, TaskEvent>,
) -> TaskStats {
    let mut by_playbook: BTreeMap<Option<&str>, Vec<&TaskFacts>> = BTreeMap::new();
    for task in tasks {
        by_playbook
            .entry(task.playbook.as_deref())
            .or_default()
            .push(task);
    }
    let all: Vec<&TaskFacts> = tasks.iter().collect();
    TaskStats {
        from,
        to,
        overall: group(None, &all, first_output),
        by_playbook: by_playbook
            .into_iter()
            .map(|(playbook, tasks)| group(playbook, &tasks, first_output))
            .collect(),
    }
}

fn group(
    playbook: Option<&str>,
    tasks: &[&TaskFacts],
    first_output: &HashMap<String, TaskEvent>,
) -> StatsGroup {
    let mut by_status = BTreeMap::new();
    for task in tasks {
        *by_status
            .entry(task.status.as_str().to_string())
            .or_insert(0) += 1;
    }
    let finished = tasks.iter().filter(|t| t.status.is_final()).count() as u64;
    let merged = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Merged)
        .count() as u64;
    let to_first_output: Vec<u64> = tasks
        .iter()
        .filter_map(|task| {
            let first = first_output.get(&task.id)?;
            u64::try_from((first.at - task.created_at).num_milliseconds()).ok()
        })
        .collect();
    StatsGroup {
        playbook: playbook.map(str::to_string),
        tasks: tasks.len() as u64,
        by_status,
        finished,
        merged,
        merged_share: (finished > 0).then(|| merged as f64 / finished as f64),
        median_time_to_first_output_ms: median(to_first_output),
    }
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[mid]),
        _ => Some(values[mid - 1] + (values[mid] - values[mid - 1]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use store::TaskEventData;

    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::milliseconds(millis)
    }

    fn task(id: &str, status: TaskStatus, playbook: Option<&str>) -> TaskFacts {
        TaskFacts {
            id: id.into(),
            status,
            round: 1,
            playbook: playbook.map(str::to_string),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn output(id: &str, millis: i64) -> (String, TaskEvent) {
        let event = TaskEvent {
            id: 1,
            task_id: id.into(),
            at: at(millis),
            data: TaskEventData::AgentOutput {
                round: 1,
                line: "hi".into(),
                elapsed_ms: 0,
                output_bytes: 2,
            },
        };
        (id.to_string(), event)
    }

    #[test]
    fn outcomes_shares_and_medians_by_playbook() {
        let tasks = [
            task("a", TaskStatus::Merged, None),
            task("b", TaskStatus::Incomplete, None),
            task("c", TaskStatus::Merged, Some("fix")),
            task("d", TaskStatus::RunningAgent, Some("fix")),
        ];
        let firsts: HashMap<_, _> = [output("a", 1000), output("b", 3000), output("c", 500)].into();
        let stats = summarize(None, at(10), &tasks, &firsts);
        let overall = &stats.overall;
        assert_eq!((overall.tasks, overall.finished, overall.merged), (4, 3, 2));
        assert_eq!(overall.merged_share, Some(2.0 / 3.0));
        assert_eq!(overall.median_time_to_first_output_ms, Some(1000));
        assert_eq!(overall.by_status["merged"], 2);
        assert_eq!(overall.by_status["running_agent"], 1);

        let groups: Vec<_> = stats
            .by_playbook
            .iter()
            .map(|g| g.playbook.as_deref())
            .collect();
        assert_eq!(groups, [None, Some("fix")]);
        let ad_hoc = &stats.by_playbook[0];
        assert_eq!((ad_hoc.tasks, ad_hoc.merged_share), (2, Some(0.5)));
        assert_eq!(ad_hoc.median_time_to_first_output_ms, Some(2000));
        assert_eq!(
            stats.by_playbook[1].median_time_to_first_output_ms,
            Some(500)
        );
    }

    #[test]
    fn nothing_to_count_is_null_not_zero() {
        let stats = summarize(
            None,
            at(0),
            &[task("d", TaskStatus::Admitted, None)],
            &HashMap::new(),
        );
        assert_eq!(stats.overall.merged_share, None);
        assert_eq!(stats.overall.median_time_to_first_output_ms, None);
        assert_eq!(median(vec![3, 1, 2]), Some(2));
        assert_eq!(median(vec![]), None);
    }
}
