//! `matcalc serve`: one page at `/` and the JSON API of SPEC §5, over the same
//! [`Session`](crate::session::Session) as the command line and the REPL.
//!
//! # Why no HTTP server crate
//!
//! The server is `std::net` plus [`httparse`] for the request head. httparse has no
//! dependencies, compiles in about a second, and is the parser under hyper, fuzzed and
//! kept by the same people. The server crates weigh more or give less control:
//! hyper, axum or actix-web bring an async runtime (tokio and some forty crates, minutes
//! of compiling on a two-core machine) for a server that does one CPU-bound job per
//! request. tiny_http is light (four dependencies) but gives every connection its own
//! thread, without bound, and sets no read timeout: a client that sends one byte a
//! minute holds a thread for ever, and a thousand such clients hold a thousand. Here
//! every part of a request has a bound instead:
//!
//! - a fixed pool of [`CONNECTION_THREADS`] threads reads requests, fed by a queue of
//!   [`QUEUE`] accepted connections; when the queue is full a connection is answered 503
//!   at once rather than waited for;
//! - a request must arrive whole within [`REQUEST_DEADLINE`] and its answer be taken
//!   within [`http::WRITE_DEADLINE`], the head at most [`http::MAX_HEAD`] bytes and the
//!   body at most [`http::MAX_BODY`] (more is 413), so a slow client holds one thread for
//!   a bounded time and no more memory than that;
//! - at most one request per core computes at a time ([`Slots`]); the others wait for
//!   a slot (up to [`SLOT_WAIT`], then 503), so that under load each computation runs at
//!   full speed within the simplifier's time limit instead of all of them at a crawl;
//! - every computation runs under the command line's limits (the server's `--max-depth`
//!   and friends, standard values by default), and a panic in one is caught and answered
//!   500 without taking its thread down.

pub mod api;
mod assets;
pub mod http;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::session::Options;
use http::{read_request, respond_and_close, ReadError, Request, Response};

/// Threads that read requests and write answers.
pub const CONNECTION_THREADS: usize = 32;
/// Accepted connections waiting for a thread; more are answered 503. A waiting
/// connection costs a file descriptor and nothing else, so the queue is generous: a burst
/// of connections arrives faster than the threads take them off the queue.
pub const QUEUE: usize = 256;
/// The time a request has to arrive whole.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The longest a request waits for a free computing slot.
pub const SLOT_WAIT: Duration = Duration::from_secs(60);
/// The stack of each connection thread: like the main thread's, so that an expression at
/// the depth limit parses and differentiates as it does on the command line.
const STACK: usize = 16 * 1024 * 1024;

/// Where to listen and with which limits.
#[derive(Clone, Debug)]
pub struct Config {
    /// The host to bind, `127.0.0.1` unless told otherwise.
    pub host: String,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// The limits every request runs under.
    pub options: Options,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    options: Arc<Options>,
}

impl Server {
    /// Binds `config.host:config.port`.
    pub fn bind(config: &Config) -> io::Result<Server> {
        let addrs: Vec<SocketAddr> = (config.host.as_str(), config.port)
            .to_socket_addrs()?
            .collect();
        let listener = TcpListener::bind(addrs.as_slice())?;
        Ok(Server {
            listener,
            options: Arc::new(config.options.clone()),
        })
    }

    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends; returns only if the pool cannot be started.
    pub fn run(self) -> io::Result<()> {
        let (sender, receiver) = sync_channel::<TcpStream>(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        let loopback = self.listener.local_addr()?.ip().is_loopback();
        let slots = Arc::new(Slots::new(
            std::thread::available_parallelism().map_or(2, |cores| cores.get()),
        ));
        for index in 0..CONNECTION_THREADS {
            let receiver = Arc::clone(&receiver);
            let slots = Arc::clone(&slots);
            let options = Arc::clone(&self.options);
            std::thread::Builder::new()
                .name(format!("matcalc-serve-{index}"))
                .stack_size(STACK)
                .spawn(move || connection_loop(&receiver, &slots, &options, loopback))?;
        }
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else {
                // Out of file descriptors, say: wait a moment instead of spinning.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let _ = stream.set_nodelay(true);
            match sender.try_send(stream) {
                Ok(()) => {}
                Err(TrySendError::Full(stream)) => refuse(stream),
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        Ok(())
    }
}

/// Answers 503 without waiting for anything: the accepting thread must not block. What
/// the client has already sent is read first, so that closing does not reset the
/// connection before the answer is read.
fn refuse(mut stream: TcpStream) {
    let busy = Response::error(503, "the server is busy; try again").with("Retry-After", "1");
    let _ = busy.write_to(&mut stream, Instant::now() + Duration::from_millis(200));
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 8192];
        for _ in 0..8 {
            match std::io::Read::read(&mut stream, &mut sink) {
                Ok(count) if count > 0 => {}
                _ => break,
            }
        }
    }
}

/// Binds and serves `config`, printing the address first; for `matcalc serve`.
pub fn run(config: &Config) -> io::Result<()> {
    let server = Server::bind(config)?;
    let addr = server.local_addr()?;
    #[allow(clippy::disallowed_macros)]
    {
        use std::io::Write;
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "matcalc serving http://{addr}/ (Ctrl-C stops it)")?;
        if !addr.ip().is_loopback() {
            writeln!(
                stdout,
                "warning: {} is not a loopback address; anyone who can reach it can use this server",
                addr.ip()
            )?;
        }
        stdout.flush()?;
    }
    server.run()
}

fn connection_loop(
    receiver: &Mutex<Receiver<TcpStream>>,
    slots: &Slots,
    options: &Options,
    loopback: bool,
) {
    loop {
        // The lock is held only while waiting for the next connection.
        let next = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(mut stream) = next else { return };
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let response = match read_request(&mut stream, deadline) {
            Ok(request) => catch_unwind(AssertUnwindSafe(|| {
                route(&request, slots, options, loopback)
            }))
            .unwrap_or_else(|_| {
                Response::error(
                    500,
                    "internal error: matcalc panicked on this request; please report it",
                )
            }),
            Err(ReadError::Respond(response)) => response,
            Err(ReadError::Closed) => continue,
        };
        respond_and_close(&mut stream, &response);
    }
}

fn route(request: &Request, slots: &Slots, options: &Options, loopback: bool) -> Response {
    let path = request.path.as_str();
    if let Some(host) = request
        .host
        .as_deref()
        .filter(|host| loopback && !names_loopback(host))
    {
        // A page elsewhere can point its own name at 127.0.0.1 (DNS rebinding) and then
        // call the API as if it were this page; its requests carry its name.
        return Response::error(
            403,
            &format!(
                "this server answers requests addressed to localhost, not to `{host}` \
                 (serve with --host to answer on another address)"
            ),
        );
    }
    if let Some(endpoint) = path.strip_prefix("/api/") {
        if endpoint == "escapes" && request.method == "GET" {
            return Response::json(200, &serde_json::json!(crate::typing::ESCAPES))
                .with("Cache-Control", "no-cache");
        }
        if !matches!(endpoint, "diff" | "simplify" | "verify" | "explain") {
            return Response::error(404, &format!("no endpoint {path}"));
        }
        if request.method != "POST" {
            return Response::error(405, &format!("{path} takes POST")).with("Allow", "POST");
        }
        let Some(_slot) = slots.acquire(SLOT_WAIT) else {
            return Response::error(503, "the server is busy; try again").with("Retry-After", "1");
        };
        let (status, body) = api::answer(endpoint, &request.body, options);
        return Response::json(status, &body).with("Cache-Control", "no-store");
    }
    match assets::find(path) {
        Some(_) if request.method != "GET" => {
            Response::error(405, &format!("{path} takes GET")).with("Allow", "GET")
        }
        Some(asset) => asset.response(),
        None => Response::error(404, &format!("nothing at {path}")),
    }
}

/// Whether a `Host` header names this machine's loopback interface: `localhost`,
/// `*.localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn names_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A counting semaphore: at most `count` computations at once.
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A taken slot, given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    /// `count` free slots (at least one).
    pub fn new(count: usize) -> Slots {
        Slots {
            free: Mutex::new(count.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting at most `wait` for one.
    pub fn acquire(&self, wait: Duration) -> Option<Slot<'_>> {
        let deadline = Instant::now() + wait;
        let mut free = self.free.lock().ok()?;
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            free = self.freed.wait_timeout(free, left).ok()?.0;
        }
        *free -= 1;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut free) = self.0.free.lock() {
            *free += 1;
        }
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_are_told_from_others() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]:8080",
            "[::1]",
            "app.localhost:3000",
        ] {
            assert!(names_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "evil.example:8080",
            "10.0.0.1",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "[::2]:80",
            "",
        ] {
            assert!(!names_loopback(host), "{host}");
        }
    }

    #[test]
    fn slots_bound_how_many_run_at_once() {
        let slots = Slots::new(2);
        let first = slots.acquire(Duration::ZERO);
        let second = slots.acquire(Duration::ZERO);
        assert!(first.is_some() && second.is_some());
        assert!(slots.acquire(Duration::from_millis(10)).is_none());
        drop(first);
        assert!(slots.acquire(Duration::ZERO).is_some());
    }
}
