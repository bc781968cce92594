//! An incremental reader of server-sent events, fed the bytes of a stream as they arrive (a
//! chunk may end anywhere, even inside a line). It only watches: the bytes go to the client
//! untouched, whatever this reader makes of them.

/// One event: its `event:` name, if any, and its `data:` lines joined by newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// An event longer than this is skipped (usage events are a few hundred bytes; the cap keeps a
/// stream that never ends its event from growing the buffer without bound).
const MAX_EVENT_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct EventReader {
    /// The bytes of the line being read.
    line: Vec<u8>,
    name: Option<String>,
    data: Option<String>,
    event_bytes: usize,
    /// The current event grew past the cap: ignore it until its end.
    skipping: bool,
    /// The last byte was a `\r`, so a `\n` right after it ends no second line.
    after_cr: bool,
}

impl EventReader {
    /// Reads `bytes` and hands every event completed by them to `on_event`.
    pub fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(Event)) {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    if let Some(event) = self.end_line() {
                        on_event(event);
                    }
                }
                _ => {
                    self.event_bytes += 1;
                    if self.event_bytes > MAX_EVENT_BYTES {
                        self.skipping = true;
                        self.line.clear();
                    } else if !self.skipping {
                        self.line.push(byte);
                    }
                }
            }
        }
    }

    fn end_line(&mut self) -> Option<Event> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            let data = self.data.take();
            let name = self.name.take();
            let skipped = std::mem::replace(&mut self.skipping, false);
            self.event_bytes = 0;
            return match data {
                Some(data) if !skipped => Some(Event { name, data }),
                _ => None,
            };
        }
        if self.skipping {
            return None;
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // Comments (an empty field name), `id:` and `retry:` say nothing about usage.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<Event> {
        let mut reader = EventReader::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, |event| seen.push(event));
        }
        seen
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let stream =
            b"event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: x\ndata: y\n\n";
        let whole = events(&[stream]);
        assert_eq!(
            whole,
            [
                Event {
                    name: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                Event {
                    name: None,
                    data: "x\ny".into()
                },
            ]
        );
        for split in 1..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(events(&[a, b]), whole, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytewise), whole);
    }

    #[test]
    fn crlf_line_endings_and_unfinished_events() {
        let seen = events(&[
            b"data: one\r\n\r\ndata: two\r",
            b"\n\r\ndata: never ended\n",
        ]);
        let data: Vec<&str> = seen.iter().map(|event| event.data.as_str()).collect();
        assert_eq!(data, ["one", "two"]);
    }

    #[test]
    fn an_oversized_event_is_skipped_and_the_next_one_read() {
        let mut big = b"data: ".to_vec();
        big.resize(MAX_EVENT_BYTES + 10, b'x');
        big.extend_from_slice(b"\n\ndata: after\n\n");
        let seen = events(&[&big]);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].data, "after");
    }
}
