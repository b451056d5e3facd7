//! Server-sent events (the `text/event-stream` format of the HTML standard)
//! read from a blocking byte stream: `data:` lines joined by `\n` make one
//! event, a blank line ends it; comments (`:`), `event:`, `id:` and `retry:`
//! are skipped. An `error:` line (older llama-server builds) makes an event
//! whose data is `{"error": …}`. CR, LF and CRLF all end a line. The crates that parse this
//! format are async streams; the remote engine reads on a plain thread.

use std::io::{self, BufRead};

/// Reads events from `r`, one `data` payload at a time.
pub(crate) struct SseReader<R> {
    r: R,
    line: Vec<u8>,
    data: Vec<u8>,
    /// The last event was cut off by the end of the stream.
    cut: bool,
}

impl<R: BufRead> SseReader<R> {
    pub fn new(r: R) -> Self {
        Self {
            r,
            line: Vec::new(),
            data: Vec::new(),
            cut: false,
        }
    }

    /// Whether the stream is one JSON object rather than events: after any
    /// blank space (which it consumes), it starts with `{`. No event stream
    /// starts so: its lines start with a field name or `:`.
    ///
    /// # Errors
    /// The stream's read error.
    pub(crate) fn starts_with_json(&mut self) -> io::Result<bool> {
        loop {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let json = buf[i] == b'{';
                    self.r.consume(i);
                    return Ok(json);
                }
                None if buf.is_empty() => return Ok(false),
                None => {
                    let n = buf.len();
                    self.r.consume(n);
                }
            }
        }
    }

    /// The stream, to read on without events.
    pub fn into_inner(self) -> R {
        self.r
    }

    /// The rest of the stream as it is, not read as events.
    ///
    /// # Errors
    /// The stream's read error.
    pub(crate) fn read_rest(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest)?;
        Ok(rest)
    }

    /// Whether the event last returned was cut off by the end of the
    /// stream (no blank line after it): it may be incomplete.
    pub(crate) fn was_cut(&self) -> bool {
        self.cut
    }

    /// The next event's data (bytes, lines joined by `\n`); `None` at the
    /// end of the stream. An event cut off by the end of the stream (no blank
    /// line after it) is still returned. Events without data are skipped.
    ///
    /// # Errors
    /// The stream's read error (a dropped connection, a timeout).
    pub(crate) fn next_event(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut has_data = false;
        loop {
            self.line.clear();
            let n = read_line(&mut self.r, &mut self.line)?;
            if n == 0 {
                self.cut = has_data;
                return Ok(has_data.then(|| std::mem::take(&mut self.data)));
            }
            if self.line.is_empty() {
                if has_data {
                    self.cut = false;
                    return Ok(Some(std::mem::take(&mut self.data)));
                }
                continue;
            }
            let (field, value) = match self.line.iter().position(|&b| b == b':') {
                Some(0) => continue, // a comment
                Some(i) => {
                    let v = &self.line[i + 1..];
                    (&self.line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (&self.line[..], &[][..]),
            };
            if field == b"data" {
                if has_data {
                    self.data.push(b'\n');
                } else {
                    self.data.clear();
                }
                self.data.extend_from_slice(value);
                has_data = true;
            } else if field == b"error" {
                // llama.cpp's server (builds before late 2025) sends a
                // streamed error as an `error:` line, outside the standard.
                self.data = error_event(value);
                has_data = true;
            }
        }
    }
}

/// The data of an event for an `error:` line's `value`: `{"error": value}`,
/// `value` as a string when it is not JSON.
fn error_event(value: &[u8]) -> Vec<u8> {
    let value = match serde_json::from_slice::<serde_json::Value>(value) {
        Ok(v) => v,
        Err(_) => String::from_utf8_lossy(value).into_owned().into(),
    };
    serde_json::json!({ "error": value })
        .to_string()
        .into_bytes()
}

/// One line without its terminator (LF, CRLF or a lone CR) into `out`;
/// returns the bytes consumed (0 at the end of the stream).
fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut consumed = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(consumed);
        }
        match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                let cr = buf[i] == b'\r';
                out.extend_from_slice(&buf[..i]);
                r.consume(i + 1);
                consumed += i + 1;
                if cr {
                    // A CRLF: the LF belongs to this line.
                    let next = r.fill_buf()?;
                    if next.first() == Some(&b'\n') {
                        r.consume(1);
                        consumed += 1;
                    }
                }
                return Ok(consumed);
            }
            None => {
                let n = buf.len();
                out.extend_from_slice(buf);
                r.consume(n);
                consumed += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8]) -> Vec<String> {
        // A tiny buffer, so that lines and CRLFs straddle reads.
        let mut r = SseReader::new(io::BufReader::with_capacity(3, input));
        let mut out = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            out.push(String::from_utf8(e).unwrap());
        }
        out
    }

    #[test]
    fn data_lines_make_events_and_the_rest_is_skipped() {
        let input = b": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\nid: 7\ndata:two\ndata: lines\n\ndata: [DONE]\n\n";
        assert_eq!(events(input), ["{\"a\":1}", "two\nlines", "[DONE]"]);
    }

    #[test]
    fn a_json_body_is_told_from_events_after_blank_space() {
        let mut r = SseReader::new(io::BufReader::with_capacity(2, &b" \r\n\n {\"a\":\n1}"[..]));
        assert!(r.starts_with_json().unwrap());
        assert_eq!(r.read_rest().unwrap(), b"{\"a\":\n1}");
        for events in [&b"\n\ndata: {}\n\n"[..], b": hi\n", b"  ", b""] {
            let mut r = SseReader::new(io::BufReader::with_capacity(2, events));
            assert!(!r.starts_with_json().unwrap());
        }
        let mut r = SseReader::new(io::BufReader::new(&b"\n\ndata: x\n\n"[..]));
        assert!(!r.starts_with_json().unwrap());
        assert_eq!(r.next_event().unwrap().unwrap(), b"x");
    }

    #[test]
    fn an_error_line_is_an_event_with_the_error() {
        let input =
            b"data: {\"a\":1}\n\nerror: {\"code\":500,\"message\":\"boom\"}\n\nerror: not json\n\n";
        assert_eq!(
            events(input),
            [
                "{\"a\":1}",
                "{\"error\":{\"code\":500,\"message\":\"boom\"}}",
                "{\"error\":\"not json\"}"
            ]
        );
    }

    #[test]
    fn crlf_and_cr_end_lines_and_a_cut_event_still_counts() {
        assert_eq!(
            events(b"data: a\r\n\r\ndata: b\r\rdata: c"),
            ["a", "b", "c"]
        );
        let mut r = SseReader::new(&b"data: a\n\ndata: b"[..]);
        assert_eq!(r.next_event().unwrap().unwrap(), b"a");
        assert!(!r.was_cut());
        assert_eq!(r.next_event().unwrap().unwrap(), b"b");
        assert!(r.was_cut());
        assert_eq!(events(b"\n\n: only a comment\n\n"), Vec::<String>::new());
    }
}
