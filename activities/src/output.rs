//! Bounded capture of a command's output: the stream up to a cap goes to a sink (the log
//! file), the last bytes and the last line stay in memory; everything past the cap is drained
//! and dropped so a chatty or hostile program can neither fill the disk nor block on a full pipe.

use std::collections::VecDeque;
use std::io::{self, Write};

/// How much of the end of the output an outcome carries.
pub const OUTPUT_TAIL_BYTES: usize = 4096;
/// Longest last line kept for progress reports (its start; the rest of the line is dropped).
pub const LAST_LINE_MAX_BYTES: usize = 240;

/// Accepts chunks of a byte stream; writes at most `cap` bytes of it to `sink`.
#[derive(Debug)]
pub struct OutputCapture<W: Write> {
    sink: W,
    cap: u64,
    written: u64,
    seen: u64,
    // A sink that failed once is not written to again, but the stream is still drained.
    sink_error: Option<io::Error>,
    tail: VecDeque<u8>,
    tail_max: usize,
    lines: LastLine,
}

impl<W: Write> OutputCapture<W> {
    pub fn new(sink: W, cap: u64, tail_max: usize) -> Self {
        Self {
            sink,
            cap,
            written: 0,
            seen: 0,
            sink_error: None,
            tail: VecDeque::with_capacity(tail_max),
            tail_max,
            lines: LastLine::default(),
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.seen += chunk.len() as u64;
        self.write_capped(chunk);
        self.keep_tail(chunk);
        self.lines.push(chunk);
    }

    fn write_capped(&mut self, chunk: &[u8]) {
        if self.sink_error.is_some() {
            return;
        }
        let room = self.cap.saturating_sub(self.written);
        let take = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if take == 0 {
            return;
        }
        match self.sink.write_all(&chunk[..take]) {
            Ok(()) => self.written += take as u64,
            Err(err) => self.sink_error = Some(err),
        }
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        let keep = &chunk[chunk.len().saturating_sub(self.tail_max)..];
        let overflow = (self.tail.len() + keep.len()).saturating_sub(self.tail_max);
        self.tail.drain(..overflow);
        self.tail.extend(keep);
    }

    /// Bytes seen so far, including the dropped ones.
    pub fn seen_bytes(&self) -> u64 {
        self.seen
    }

    /// Bytes that reached the sink.
    pub fn written_bytes(&self) -> u64 {
        self.written
    }

    pub fn sink_error(&self) -> Option<&io::Error> {
        self.sink_error.as_ref()
    }

    /// The last `tail_max` bytes as text; a character cut at the front is skipped, not mangled.
    pub fn tail(&self) -> String {
        let (front, back) = self.tail.as_slices();
        let mut bytes = Vec::with_capacity(self.tail.len());
        bytes.extend_from_slice(front);
        bytes.extend_from_slice(back);
        let cut_at_front = self.seen > self.tail.len() as u64;
        let start = if cut_at_front {
            leading_continuation_bytes(&bytes)
        } else {
            0
        };
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    pub fn last_line(&self) -> String {
        self.lines.get()
    }

    /// Flushes the sink and gives it back with the first write error, if any.
    pub fn finish(mut self) -> (W, Option<io::Error>) {
        if self.sink_error.is_none()
            && let Err(err) = self.sink.flush()
        {
            self.sink_error = Some(err);
        }
        (self.sink, self.sink_error)
    }
}

/// UTF-8 continuation bytes (at most 3) at the start of a slice cut mid-character.
fn leading_continuation_bytes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
        .count()
}

/// The most recent non-empty line, where `\r` also ends a line (progress bars redraw with it).
#[derive(Debug, Default)]
struct LastLine {
    current: Vec<u8>,
    // Bytes of the current line beyond LAST_LINE_MAX_BYTES are counted here, not stored.
    current_len: usize,
    finished: Vec<u8>,
}

impl LastLine {
    fn push(&mut self, chunk: &[u8]) {
        let mut pieces = chunk.split(|b| matches!(b, b'\n' | b'\r'));
        // The first piece continues the current line; every later one starts a new line.
        if let Some(first) = pieces.next() {
            self.append(first);
        }
        for piece in pieces {
            self.end_line();
            self.append(piece);
        }
    }

    fn append(&mut self, piece: &[u8]) {
        let room = LAST_LINE_MAX_BYTES.saturating_sub(self.current.len());
        self.current
            .extend_from_slice(&piece[..piece.len().min(room)]);
        self.current_len += piece.len();
    }

    fn end_line(&mut self) {
        if self.current_len > 0 {
            // Swap rather than take: no allocation per line on a stream of many short lines.
            std::mem::swap(&mut self.finished, &mut self.current);
        }
        self.current.clear();
        self.current_len = 0;
    }

    fn get(&self) -> String {
        let line = if self.current_len > 0 {
            &self.current
        } else {
            &self.finished
        };
        String::from_utf8_lossy(line).trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(cap: u64, tail: usize, chunks: &[&[u8]]) -> OutputCapture<Vec<u8>> {
        let mut capture = OutputCapture::new(Vec::new(), cap, tail);
        for chunk in chunks {
            capture.push(chunk);
        }
        capture
    }

    #[test]
    fn writes_up_to_the_cap_and_counts_the_rest() {
        let capture = capture(10, 4, &[b"0123456", b"789abcdef"]);
        assert_eq!(capture.seen_bytes(), 16);
        assert_eq!(capture.written_bytes(), 10);
        assert_eq!(capture.tail(), "cdef");
        let (sink, err) = capture.finish();
        assert_eq!(sink, b"0123456789");
        assert!(err.is_none());
    }

    #[test]
    fn tail_of_a_chunk_larger_than_the_tail() {
        let big = vec![b'x'; 10_000];
        let capture = capture(0, 8, &[b"start", &big, b"end"]);
        assert_eq!(capture.tail(), "xxxxxend");
        assert_eq!(capture.written_bytes(), 0);
    }

    #[test]
    fn tail_skips_a_character_cut_at_the_front() {
        // "é" is two bytes; a 3-byte tail of "aé!" cut from "xaé!" would start inside nothing,
        // but a 2-byte tail of "é!" keeps only the continuation byte of "é" and the "!".
        let capture = capture(0, 2, &["aé!".as_bytes()]);
        assert_eq!(capture.tail(), "!");
        let whole = capture_all("é!");
        assert_eq!(whole.tail(), "é!");
    }

    fn capture_all(text: &str) -> OutputCapture<Vec<u8>> {
        capture(0, 16, &[text.as_bytes()])
    }

    #[test]
    fn last_line_follows_lines_across_chunks() {
        let cases: &[(&[&[u8]], &str)] = &[
            (&[], ""),
            (&[b"one"], "one"),
            (&[b"one\n"], "one"),
            (&[b"one\ntw", b"o\n\n"], "two"),
            (&[b"compiling 1/3\rcompiling 2/3\r"], "compiling 2/3"),
            (&[b"a\nb\nc"], "c"),
            (&[b"trailing spaces   \n", b"\n"], "trailing spaces"),
        ];
        for (chunks, expected) in cases {
            assert_eq!(
                capture(0, 0, chunks).last_line(),
                *expected,
                "chunks {chunks:?}"
            );
        }
    }

    #[test]
    fn last_line_is_bounded() {
        let long = vec![b'y'; LAST_LINE_MAX_BYTES * 3];
        let capture = capture(0, 0, &[&long, &long, b"\n"]);
        assert_eq!(capture.last_line().len(), LAST_LINE_MAX_BYTES);
    }

    #[test]
    fn a_failing_sink_is_reported_and_the_stream_still_drained() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut capture = OutputCapture::new(Full, 100, 4);
        capture.push(b"abc");
        capture.push(b"def");
        assert_eq!(capture.seen_bytes(), 6);
        assert_eq!(capture.tail(), "cdef");
        assert!(capture.finish().1.is_some());
    }
}
