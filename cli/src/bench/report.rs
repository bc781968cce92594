//! What a figure of the suite hands back: its rows of the printed summary, and its section of
//! BENCHMARKS.md (between markers of its own, so a later run replaces just that section).

use std::time::Duration;

use super::Machine;

/// One figure's outcome.
pub struct Figure {
    /// The marker name: `<!-- errand bench KEY: start -->`.
    pub key: &'static str,
    pub title: &'static str,
    pub rows: Vec<Row>,
    /// Markdown after the header: how it was measured, its table, the verdict and breakdown.
    pub body: String,
    /// 1-minute load average when the figure started and ended.
    pub load: (String, String),
    /// A section the figure writes itself (`bench sandbox` keeps its own format).
    pub own_section: Option<String>,
}

/// A line of the printed summary.
pub struct Row {
    pub what: String,
    pub measured: String,
    /// The floor, measured in the same run (or what else the figure is compared with).
    pub floor: String,
    pub goal: String,
    /// None: the figure has no goal, or it could not be judged.
    pub met: Option<bool>,
}

impl Row {
    pub fn new(what: impl Into<String>, measured: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            measured: measured.into(),
            floor: "-".into(),
            goal: "-".into(),
            met: None,
        }
    }

    pub fn floor(mut self, floor: impl Into<String>) -> Row {
        self.floor = floor.into();
        self
    }

    pub fn goal(mut self, goal: impl Into<String>, met: bool) -> Row {
        self.goal = goal.into();
        self.met = Some(met);
        self
    }
}

pub fn markers(key: &str) -> (String, String) {
    (
        format!("<!-- errand bench {key}: start -->"),
        format!("<!-- errand bench {key}: end -->"),
    )
}

/// The figure's section of BENCHMARKS.md.
pub fn section(figure: &Figure, command: &str, machine: &Machine) -> String {
    let (start, end) = markers(figure.key);
    format!(
        "{start}\n## {}\n\n\
         Measured by `{command}` on {} ({} cores ({}), {} memory, Linux {}; {} build; load \
         average {} when this figure started, {} when it ended).\n\n{}\n{end}\n",
        figure.title,
        machine.date,
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.kernel,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        figure.load.0,
        figure.load.1,
        figure.body.trim_end(),
    )
}

/// The summary the command prints: one line per row of every figure.
pub fn summary(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| figure | measured | floor (same run) | goal | verdict |\n|---|---|---|---|---|\n",
    );
    for figure in figures {
        for row in &figure.rows {
            out.push_str(&format!(
                "| {}: {} | {} | {} | {} | {} |\n",
                figure.title,
                row.what,
                row.measured,
                row.floor,
                row.goal,
                verdict(row.met)
            ));
        }
    }
    out
}

pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "-",
    }
}

/// Milliseconds under a second, seconds above.
pub fn human(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// A markdown table from a header and rows of cells.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(rows: Vec<Row>) -> Figure {
        Figure {
            key: "demo",
            title: "Demo",
            rows,
            body: "| a |\n|---|\n| 1 |\n".into(),
            load: ("0.5".into(), "0.7".into()),
            own_section: None,
        }
    }

    #[test]
    fn a_section_sits_between_its_markers_with_machine_and_load() {
        let machine = Machine {
            load: "0.5".into(),
            cores: 2,
            memory: "4.0 GiB".into(),
            kernel: "6.1".into(),
            cpu: "cpu".into(),
            date: "2026-11-21".into(),
        };
        let text = section(&figure(Vec::new()), "errand bench --quick", &machine);
        let (start, end) = markers("demo");
        assert!(text.starts_with(&start) && text.trim_end().ends_with(&end));
        assert!(text.contains("## Demo") && text.contains("2 cores"));
        assert!(text.contains("load average 0.5 when this figure started, 0.7 when it ended"));
    }

    #[test]
    fn the_summary_has_a_line_per_row_and_says_what_was_missed() {
        let rows = vec![
            Row::new("p50", "2.0 s")
                .floor("1.0 s")
                .goal("<= 1 s", false),
            Row::new("rss", "90 MiB"),
        ];
        let text = summary(&[figure(rows)]);
        assert_eq!(text.lines().count(), 4);
        assert!(text.contains("| Demo: p50 | 2.0 s | 1.0 s | <= 1 s | MISSED |"));
        assert!(text.contains("| Demo: rss | 90 MiB | - | - | - |"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_micros(2500)), "2.5 ms");
        assert_eq!(human(Duration::from_millis(12_340)), "12.34 s");
        assert_eq!(
            table(&["a", "b"], &[vec!["1".into(), "2".into()]]),
            "| a | b |\n|---|---|\n| 1 | 2 |\n"
        );
    }
}
