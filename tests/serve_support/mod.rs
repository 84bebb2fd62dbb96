//! A `matcalc serve` on a free loopback port, and a small HTTP client for it (std only:
//! one request per connection, as the server answers).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The longest any test waits for one answer; every request ends well before.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The first line it printed.
    pub banner: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `matcalc serve --port 0 EXTRA…` and reads the address it prints.
    pub fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_matcalc"))
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the matcalc binary runs");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut banner = String::new();
        stdout
            .read_line(&mut banner)
            .expect("the server prints its address");
        let addr = banner
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .map(|rest| rest.trim_end_matches('/').to_string())
            .unwrap_or_else(|| panic!("no address in the first line: {banner:?}"));
        Server {
            child,
            addr,
            banner,
            _stdout: stdout,
        }
    }

    /// Sends raw bytes as one request and reads the whole answer.
    pub fn raw(&self, request: &[u8]) -> Reply {
        let mut stream = self.connect();
        stream.write_all(request).expect("the request is sent");
        read_reply(&mut stream)
    }

    /// A connection to the server, with the test's timeouts.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("the server accepts");
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("a timeout can be set");
        stream
            .set_write_timeout(Some(ANSWER_TIMEOUT))
            .expect("a timeout can be set");
        stream
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.raw(format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr).as_bytes())
    }

    /// `POST path` with a body.
    pub fn post(&self, path: &str, body: &str) -> Reply {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        self.raw(&[head.as_bytes(), body.as_bytes()].concat())
    }

    /// `POST /api/ENDPOINT` with a JSON value.
    pub fn api(&self, endpoint: &str, body: &serde_json::Value) -> Reply {
        self.post(&format!("/api/{endpoint}"), &body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The head, as received.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of a header, by name in any case.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Reads an answer to its end (the server closes every connection).
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("the answer arrives before the timeout");
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Reply {
        status,
        head,
        body: bytes[split + 4..].to_vec(),
    }
}
