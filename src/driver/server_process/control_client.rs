//! The driver's half of the control line protocol
//! ([`crate::protocol::control`]): sending a [`Command`] and reading the
//! JSON report that answers it, to a child over its stdin/stdout or to a
//! server started elsewhere with `--control ADDR` ([`RemoteControl`]).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::protocol::control::Command;
use crate::server::report::{ReportKind, ServerReport};

use super::{ServerControl, ServerError};
use crate::sys::memory::ProcessMemory;

/// How long a server may take to answer one `snapshot` line.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes `command`'s line and flushes it.
pub fn send_command(writer: &mut impl Write, command: Command) -> io::Result<()> {
    writer.write_all(command.line().as_bytes())?;
    writer.flush()
}

/// Parses one control answer. `Ok(None)` for lines that are not JSON (a
/// stray log line), an error for JSON that is not a report of `kind`.
pub(super) fn parse_report_line(
    variant: &str,
    line: &str,
    kind: ReportKind,
) -> Result<Option<ServerReport>, ServerError> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return Ok(None);
    }
    let bad = |reason: String| ServerError::BadReport {
        variant: variant.to_string(),
        line: truncate(trimmed, 200),
        reason,
    };
    let report: ServerReport = serde_json::from_str(trimmed).map_err(|e| bad(e.to_string()))?;
    if report.report != kind {
        return Err(bad(format!(
            "expected a {kind:?} report, got {:?}",
            report.report
        )));
    }
    Ok(Some(report))
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        text.chars().take(max_chars).collect::<String>() + "…"
    }
}

/// The control interface of a server started elsewhere with `--control ADDR`.
pub struct RemoteControl {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RemoteControl {
    pub fn connect(addr: &str, timeout: Duration) -> Result<RemoteControl, ServerError> {
        let control_err = |source| ServerError::Control {
            addr: addr.to_string(),
            source,
        };
        let resolved = addr
            .to_socket_addrs()
            .map_err(control_err)?
            .next()
            .ok_or_else(|| {
                control_err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "address resolves to nothing",
                ))
            })?;
        let stream = TcpStream::connect_timeout(&resolved, timeout).map_err(control_err)?;
        stream
            .set_read_timeout(Some(SNAPSHOT_TIMEOUT))
            .map_err(control_err)?;
        let writer = stream.try_clone().map_err(control_err)?;
        Ok(RemoteControl {
            addr: addr.to_string(),
            reader: BufReader::new(stream),
            writer,
        })
    }
}

impl ServerControl for RemoteControl {
    fn snapshot(&mut self) -> Result<ServerReport, ServerError> {
        let control_err = |source| ServerError::Control {
            addr: self.addr.clone(),
            source,
        };
        send_command(&mut self.writer, Command::Snapshot).map_err(control_err)?;
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).map_err(|source| {
                if matches!(
                    source.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    ServerError::SnapshotTimeout {
                        variant: format!("at {}", self.addr),
                        seconds: SNAPSHOT_TIMEOUT.as_secs_f64(),
                    }
                } else {
                    ServerError::Control {
                        addr: self.addr.clone(),
                        source,
                    }
                }
            })?;
            if n == 0 {
                return Err(ServerError::Control {
                    addr: self.addr.clone(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the control connection",
                    ),
                });
            }
            let variant = format!("at {}", self.addr);
            if let Some(report) = parse_report_line(&variant, &line, ReportKind::Snapshot)? {
                return Ok(report);
            }
        }
    }

    fn memory(&self) -> Option<ProcessMemory> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    #[test]
    fn report_lines_are_checked_for_kind() {
        let report = ServerReport::new(
            ReportKind::Final,
            "lt-rw".into(),
            Protocol::Frame,
            Vec::new(),
        );
        let line = serde_json::to_string(&report).unwrap();
        assert!(matches!(
            parse_report_line("lt-rw", &line, ReportKind::Snapshot),
            Err(ServerError::BadReport { .. })
        ));
        assert_eq!(
            parse_report_line("lt-rw", &line, ReportKind::Final).unwrap(),
            Some(report)
        );
        assert_eq!(
            parse_report_line("lt-rw", "note: hello", ReportKind::Final).unwrap(),
            None
        );
        assert!(parse_report_line("lt-rw", "{not json", ReportKind::Final).is_err());
    }
}
