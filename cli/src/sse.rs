//! A reader of server-sent events (the `text/event-stream` format), fed chunks as they come.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    /// `message` when the stream names none.
    pub event: String,
    pub data: String,
}

/// Splits a byte stream into events; a chunk may end anywhere, even inside a character.
#[derive(Debug, Default)]
pub struct SseReader {
    pending: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseReader {
    /// The events completed by this chunk.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(event) = self.line(line) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.event = None;
                return None;
            }
            return Some(SseEvent {
                id: self.id.clone(),
                event: self.event.take().unwrap_or_else(|| "message".to_string()),
                data: std::mem::take(&mut self.data).join("\n"),
            });
        }
        if line.starts_with(':') {
            return None; // a comment: the server's keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_wherever_chunks_end() {
        let stream = "id: 7\nevent: status\ndata: {\"a\":1}\n\n: keep-alive\n\nid:8\ndata: one\ndata: two\n\n";
        for size in [1, 3, 7, stream.len()] {
            let mut reader = SseReader::default();
            let events: Vec<SseEvent> = stream
                .as_bytes()
                .chunks(size)
                .flat_map(|c| reader.push(c))
                .collect();
            assert_eq!(
                events,
                [
                    SseEvent {
                        id: Some("7".into()),
                        event: "status".into(),
                        data: r#"{"a":1}"#.into()
                    },
                    SseEvent {
                        id: Some("8".into()),
                        event: "message".into(),
                        data: "one\ntwo".into()
                    },
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn utf8_split_across_chunks_survives() {
        let mut reader = SseReader::default();
        let bytes = "data: héllo\r\n\r\n".as_bytes();
        let mut events = reader.push(&bytes[..8]);
        events.extend(reader.push(&bytes[8..]));
        assert_eq!(events[0].data, "héllo");
    }
}
