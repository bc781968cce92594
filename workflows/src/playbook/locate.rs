//! Finds where a field path (`budget.max_rounds`, `verification.checks[1]`) is written in a
//! playbook file, so that errors found after parsing still point at a line and column.
//!
//! The YAML parser keeps no positions once a document is read, so this reads the block layout
//! of the text itself: keys by indentation, sequence items by their `-`. Flow collections
//! (`[a, b]`) are not looked into: the error then points at their key, the nearest place found.

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A meaningful line: its 1-based number, the 0-based column its text starts at, the text.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

/// The 1-based line and column of `field` in `content`, or of its nearest ancestor written in
/// block style; None when not even its first key is found.
pub fn locate(content: &str, field: &str) -> Option<(usize, usize)> {
    let steps = parse_path(field)?;
    let lines: Vec<Line> = content
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let text = raw.trim_start();
            let skip = text.is_empty() || text.starts_with('#') || text == "---";
            (!skip).then(|| Line {
                number: i + 1,
                indent: raw.len() - text.len(),
                text,
            })
        })
        .collect();
    find(&lines, &steps, None)
}

fn parse_path(field: &str) -> Option<Vec<Step<'_>>> {
    let mut steps = Vec::new();
    for part in field.split('.') {
        let (key, mut indices) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some(rest) = indices.strip_prefix('[') {
            let (number, after) = rest.split_once(']')?;
            steps.push(Step::Index(number.parse().ok()?));
            indices = after;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

fn find(lines: &[Line], steps: &[Step], found: Option<(usize, usize)>) -> Option<(usize, usize)> {
    let (Some((step, rest)), Some(first)) = (steps.split_first(), lines.first()) else {
        return found;
    };
    let level = first.indent;
    match step {
        Step::Key(key) => {
            for (i, line) in lines.iter().enumerate() {
                if line.indent != level {
                    continue;
                }
                if let Some(value) = key_value(line.text, key) {
                    let here = Some((line.number, line.indent + 1));
                    let children = if value.is_empty() || value.starts_with('#') {
                        block_children(&lines[i + 1..], line.indent)
                    } else {
                        Vec::new()
                    };
                    return find(&children, rest, here);
                }
            }
            found
        }
        Step::Index(n) => {
            let items: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].indent == level && is_item(lines[i].text))
                .collect();
            let Some(&i) = items.get(*n) else {
                return found;
            };
            let item = lines[i];
            let here = Some((item.number, item.indent + 1));
            let inline = item.text[1..].trim_start();
            let mut children = Vec::new();
            if !inline.is_empty() && !inline.starts_with('#') {
                children.push(Line {
                    number: item.number,
                    indent: item.indent + item.text.len() - inline.len(),
                    text: inline,
                });
            }
            children.extend(
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.indent > item.indent)
                    .copied(),
            );
            find(&children, rest, here)
        }
    }
}

/// The lines under a key whose value is written on the following lines: deeper ones, and a
/// sequence written at the key's own indentation (`key:` then `- item`).
fn block_children<'a>(after: &[Line<'a>], indent: usize) -> Vec<Line<'a>> {
    after
        .iter()
        .take_while(|l| l.indent > indent || (l.indent == indent && is_item(l.text)))
        .copied()
        .collect()
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// The text after `key:` when `text` starts with that key (plain or quoted).
fn key_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| {
            text.strip_prefix(open)?
                .strip_prefix(key)?
                .strip_prefix(close)?
                .strip_prefix(':')
        })?;
    if rest.is_empty() || rest.starts_with([' ', '\t']) {
        Some(rest.trim())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::locate;

    const DOC: &str = "\
name: x
# a comment
procedure: |
  budget: not a key, part of the text
verification:
  checks:
    - sh test.sh
    - sh lint.sh
  setup: [a, b]
budget:
  max_rounds: 3
schedules:
- cron: '0 6 * * 1'
  inputs:
    test: t
- cron: bad
\"quoted\": 1
";

    #[test]
    fn finds_keys_items_and_the_nearest_ancestor() {
        let cases = [
            ("name", Some((1, 1))),
            ("budget", Some((10, 1))),
            ("budget.max_rounds", Some((11, 3))),
            ("verification.checks", Some((6, 3))),
            ("verification.checks[1]", Some((8, 5))),
            ("verification.checks[5]", Some((6, 3))),
            ("verification.setup[1]", Some((9, 3))),
            ("schedules[0].inputs.test", Some((15, 5))),
            ("schedules[1].cron", Some((16, 3))),
            ("budget.dollars", Some((10, 1))),
            ("quoted", Some((17, 1))),
            ("missing.key", None),
        ];
        for (field, want) in cases {
            assert_eq!(locate(DOC, field), want, "{field}");
        }
    }
}
