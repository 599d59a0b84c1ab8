//! One connection, served by one task: read what is there, answer all of
//! it, write the answers with one `write_all`, repeat. Memory per
//! connection is one read buffer plus the answers to one read, whatever
//! the client sends: a client that stops reading blocks our write, and
//! then we stop reading it too (TCP's backpressure, nothing queued here).

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::frame::{FrameParser, ProtocolError};

/// Read buffer per connection, the size of the built-in servers' buffer.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// Why a connection ended other than a clean close by the client.
#[derive(Debug)]
pub enum ConnectionError {
    Io(std::io::Error),
    Protocol(ProtocolError),
}

impl From<std::io::Error> for ConnectionError {
    fn from(e: std::io::Error) -> ConnectionError {
        ConnectionError::Io(e)
    }
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionError::Io(e) => write!(f, "socket error: {e}"),
            ConnectionError::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// Frame protocol: each read's worth of requests is answered by one write.
/// Returning closes the socket (dropping it), on success or error alike.
pub async fn serve_frames(
    mut stream: TcpStream,
    max_frame_bytes: u32,
) -> Result<(), ConnectionError> {
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let mut parser = FrameParser::new(max_frame_bytes);
    let mut answers = Vec::with_capacity(READ_BUFFER_BYTES);
    loop {
        let input = reader.fill_buf().await?;
        if input.is_empty() {
            return parser.at_eof().map_err(ConnectionError::Protocol);
        }
        let read = input.len();
        let verdict = parser.answer(input, &mut answers);
        reader.consume(read);
        // The answers before a bad header are still owed to the client.
        writer.write_all(&answers).await?;
        answers.clear();
        verdict.map_err(ConnectionError::Protocol)?;
    }
}

/// Echo protocol: every byte back, in order; the client's half-close ends
/// the loop once everything read has been written, and the drop sends FIN.
pub async fn serve_echo(mut stream: TcpStream) -> Result<(), ConnectionError> {
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..n]).await?;
    }
}
