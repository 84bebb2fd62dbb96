//! Just enough HTTP/1.1 for one page and a JSON API: read one request within a deadline
//! and a size cap, write one response, close. No keep-alive, no chunked bodies: a
//! browser and `curl` need neither, and each is a way for a client to hold a thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted (SPEC §5: more is 413).
pub const MAX_BODY: usize = 64 * 1024;
/// The time an answer has to be taken by the client.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// The most headers accepted.
const MAX_HEADERS: usize = 64;

/// One request, read whole.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without its query: `/api/diff`.
    pub path: String,
    /// The `Host` header, when there is one: `127.0.0.1:8080`.
    pub host: Option<String>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
}

/// One response, written whole.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Further headers, `(name, value)`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given type.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: vec![],
            body: body.into(),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json; charset=utf-8", value.to_string())
    }

    /// `{"error": message}` with the given status, for errors of the request itself.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({ "error": message, "span": null }),
        )
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Writes the response, giving up at `deadline`: a client that reads its answer one
    /// byte at a time holds the thread no longer than one that sends its request so.
    pub fn write_to(&self, stream: &mut TcpStream, deadline: Instant) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head += &format!("{name}: {value}\r\n");
        }
        head += "\r\n";
        for bytes in [head.as_bytes(), &self.body] {
            for chunk in bytes.chunks(16 * 1024) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                stream.set_write_timeout(Some(left))?;
                stream.write_all(chunk)?;
            }
        }
        stream.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Why a request could not be read; each becomes the response it names.
#[derive(Debug)]
pub enum ReadError {
    /// The client went away or sent nothing: nothing to answer.
    Closed,
    /// An answer to send instead of handling the request.
    Respond(Response),
}

impl From<Response> for ReadError {
    fn from(response: Response) -> ReadError {
        ReadError::Respond(response)
    }
}

/// Reads one request from `stream`, giving up at `deadline`: the whole request must
/// arrive by then, however slowly its bytes trickle in, so a slow client holds a
/// connection thread for a bounded time.
pub fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Request, ReadError> {
    let mut buffer = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = find_head_end(&buffer) {
            break end;
        }
        if buffer.len() >= MAX_HEAD {
            return Err(Response::error(431, "request head too large").into());
        }
        let room = MAX_HEAD + MAX_BODY - buffer.len();
        if read_some(stream, &mut buffer, room, deadline)? == 0 {
            return Err(ReadError::Closed);
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&buffer[..head_end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Response::error(400, "incomplete request head").into())
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::error(431, "too many headers").into())
        }
        Err(error) => return Err(Response::error(400, &format!("bad request: {error}")).into()),
    }
    let method = parsed.method.unwrap_or("").to_string();
    let target = parsed.path.unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| String::from_utf8_lossy(header.value).trim().to_string())
    };
    let host = header("host");
    if header("transfer-encoding").is_some() {
        return Err(Response::error(411, "send the body with a Content-Length").into());
    }
    let length = match header("content-length") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Response::error(400, "Content-Length is not a number"))?,
        None if method == "POST" => {
            return Err(Response::error(411, "send the body with a Content-Length").into())
        }
        None => 0,
    };
    if length > MAX_BODY {
        return Err(Response::error(
            413,
            &format!("the body is {length} bytes; at most {MAX_BODY} are accepted"),
        )
        .into());
    }
    let mut body = buffer.split_off(head_end);
    while body.len() < length {
        let missing = length - body.len();
        if read_some(stream, &mut body, missing, deadline)? == 0 {
            return Err(Response::error(400, "the body is shorter than its Content-Length").into());
        }
    }
    body.truncate(length);
    Ok(Request {
        method,
        path,
        host,
        body,
    })
}

/// The end of the head (`\r\n\r\n`), if it has arrived.
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|start| start + 4)
}

/// Reads at most `room` more bytes into `buffer`, waiting no later than `deadline`.
fn read_some(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    room: usize,
    deadline: Instant,
) -> Result<usize, ReadError> {
    let mut chunk = [0u8; 8192];
    let want = room.min(chunk.len());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Response::error(408, "the request took too long to arrive").into());
        }
        // A zero timeout would mean "block forever" to the socket: never pass one.
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match stream.read(&mut chunk[..want]) {
            Ok(count) => {
                buffer.extend_from_slice(&chunk[..count]);
                return Ok(count);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Response::error(408, "the request took too long to arrive").into())
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

/// Sends `response`, then reads and drops what the client still sends for a moment, so
/// that closing with unread bytes (a 413's body) does not reset the connection before
/// the client has read the answer.
pub fn respond_and_close(stream: &mut TcpStream, response: &Response) {
    let deadline = Instant::now() + WRITE_DEADLINE;
    if response.write_to(stream, deadline).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 8192];
    let mut drained = 0usize;
    while drained < 4 * MAX_BODY {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(count) => drained += count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_blank_line() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
