//! The control line protocol between a driver and a running server, both
//! halves: what a command line is, how a reader splits hostile bytes into
//! bounded lines, and how an error is answered. The server reads it on
//! stdin and on `--control ADDR`; the driver writes it.
//!
//! A line is a command word and `\n`. `snapshot` is answered with one JSON
//! report line, `stop` with nothing (the server exits as on SIGTERM), a
//! blank line is ignored, and anything else — an unknown word, bytes that
//! are not UTF-8, a line longer than [`MAX_LINE_BYTES`] — with one
//! `{"error": "..."}` line, after which the reader goes on with the next
//! line. Limits are per line, so a control connection may stay open for a
//! whole measurement run.

use std::fmt;
use std::io::{self, BufRead};

/// Longest control line accepted, newline excluded. Commands are a word;
/// the bound only keeps a line without end from growing memory.
pub const MAX_LINE_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Every serving thread's counters now, as one JSON line.
    Snapshot,
    /// Stop as on SIGTERM.
    Stop,
}

impl Command {
    pub const ALL: [Command; 2] = [Command::Snapshot, Command::Stop];

    pub fn word(self) -> &'static str {
        match self {
            Command::Snapshot => "snapshot",
            Command::Stop => "stop",
        }
    }

    /// The command as sent on the wire, newline included.
    pub fn line(self) -> String {
        format!("{}\n", self.word())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Why a control line was not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("control line is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("control line longer than {max} bytes", max = MAX_LINE_BYTES)]
    TooLong,
    #[error("unknown command `{given}` (known: {known})", known = known_words())]
    Unknown { given: String },
}

fn known_words() -> String {
    Command::ALL.map(Command::word).join(", ")
}

/// One line (with or without its `\n`) → the command, `None` for a blank
/// line.
pub fn parse_line(line: &[u8]) -> Result<Option<Command>, LineError> {
    let text = std::str::from_utf8(line).map_err(|e| LineError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let word = text.trim();
    if word.is_empty() {
        return Ok(None);
    }
    Command::ALL
        .into_iter()
        .find(|c| c.word() == word)
        .map(Some)
        .ok_or_else(|| LineError::Unknown {
            given: word.chars().take(64).collect(),
        })
}

/// The answer to a line that was not a command, or to a command that failed.
pub fn error_reply(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`]. A longer
/// line is skipped up to its newline and returned as [`LineError::TooLong`]
/// without ever being held whole, so no input grows memory.
pub struct LineReader<R> {
    inner: R,
    line: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            line: Vec::with_capacity(64),
        }
    }

    /// The next line without its `\n`; `None` at end of input. A last line
    /// without `\n` still counts.
    pub fn next_line(&mut self) -> io::Result<Option<Result<&[u8], LineError>>> {
        self.line.clear();
        let mut too_long = false;
        let mut seen_any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (piece, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            if !too_long {
                if self.line.len() + piece.len() > MAX_LINE_BYTES {
                    too_long = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(piece);
                }
            }
            let consumed = piece.len() + usize::from(found_newline);
            self.inner.consume(consumed);
            if found_newline {
                break;
            }
        }
        if too_long {
            return Ok(Some(Err(LineError::TooLong)));
        }
        Ok(Some(Ok(&self.line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, LineError>> {
        // A tiny buffer so lines arrive split across many fill_buf calls.
        let mut reader = LineReader::new(io::BufReader::with_capacity(7, input));
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(line.map(<[u8]>::to_vec));
        }
        out
    }

    #[test]
    fn commands_round_trip_through_their_lines() {
        for command in Command::ALL {
            let line = command.line();
            assert!(line.ends_with('\n'));
            assert_eq!(parse_line(line.as_bytes()), Ok(Some(command)));
        }
        assert_eq!(parse_line(b"  snapshot \r"), Ok(Some(Command::Snapshot)));
        assert_eq!(parse_line(b"   "), Ok(None));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let err = parse_line(b"snap\xffshot").unwrap_err();
        assert_eq!(err, LineError::NotUtf8 { offset: 4 });
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let err = parse_line(b"reboot").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown command `reboot` (known: snapshot, stop)"
        );
        let reply: serde_json::Value =
            serde_json::from_str(&error_reply(&err.to_string())).unwrap();
        assert_eq!(reply["error"], err.to_string());
    }

    #[test]
    fn reader_caps_each_line_and_goes_on() {
        let mut input = b"snapshot\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        input.extend(b"\n\xfe\xff\nstop");
        let got = lines(&input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], Ok(b"snapshot".to_vec()));
        assert_eq!(got[1], Err(LineError::TooLong));
        assert_eq!(got[2], Ok(b"\xfe\xff".to_vec()));
        assert_eq!(
            got[3],
            Ok(b"stop".to_vec()),
            "a last line without newline counts"
        );
    }

    #[test]
    fn reader_accepts_a_line_of_exactly_the_cap_and_many_lines() {
        let mut input = vec![b'y'; MAX_LINE_BYTES];
        input.push(b'\n');
        for _ in 0..10_000 {
            input.extend(b"snapshot\n");
        }
        let got = lines(&input);
        assert_eq!(got.len(), 10_001);
        assert_eq!(got[0].as_ref().map(Vec::len), Ok(MAX_LINE_BYTES));
        assert!(
            got[1..]
                .iter()
                .all(|l| l.as_deref() == Ok(&b"snapshot"[..]))
        );
    }
}
