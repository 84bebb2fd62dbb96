//! The page of `matcalc serve` in a real headless Chromium, driven through chromedriver's
//! WebDriver protocol (plain HTTP and JSON on loopback, so the client below needs only
//! std and serde_json): a shared URL reproduces a result, typing updates it, the
//! `\alpha`-style escapes turn into Unicode, an error puts its caret under the input, and
//! the problem sheet's three problems show their checks, graphs and code. What the page
//! shows is compared with what the API answers for the same request, never with a
//! string written here. Screenshots are kept in `target/tmp/serve_browser/`.
//!
//! `.ci/run` installs Debian's `chromium` and `chromium-driver`; without them the test
//! fails in CI (`CI` set) and, on a machine that has not run `.ci/run`, says so loudly and
//! passes without a browser.
// The test tells the person running it where its screenshots are, or that it skipped.
#![allow(clippy::disallowed_macros)]

mod serve_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use serve_support::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take to show an answer; it takes well under a second.
const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver on a free loopback port, with one browser session; both end when dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = TempDir(
            std::env::temp_dir().join(format!("matcalc-chromium-{}-{port}", std::process::id())),
        );
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let ready = Instant::now() + Duration::from_secs(30);
        while browser.call("GET", "/status", None).is_err() {
            assert!(Instant::now() < ready, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1360,1100",
            &format!("--user-data-dir={}", browser._profile.0.display()),
        ];
        let created = browser
            .call(
                "POST",
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                }}})),
            )
            .expect("a browser session starts");
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session in {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; `Err` for a transport failure or a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        // chromedriver keeps connections open whatever the request says: read the head,
        // then as many bytes as it announces (or chunks up to the last one).
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 65536];
        let split = loop {
            if let Some(split) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
                break split;
            }
            let count = stream.read(&mut chunk).map_err(|e| e.to_string())?;
            if count == 0 {
                return Err("the connection closed before the head".into());
            }
            bytes.extend_from_slice(&chunk[..count]);
        };
        let head = String::from_utf8_lossy(&bytes[..split]).to_lowercase();
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == "content-length").then(|| value.trim().parse::<usize>().ok())?
        });
        let chunked = head.contains("transfer-encoding: chunked");
        let complete = |bytes: &[u8]| match length {
            Some(length) => bytes.len() >= split + 4 + length,
            None => chunked && bytes.ends_with(b"0\r\n\r\n"),
        };
        while !complete(&bytes) {
            let count = stream.read(&mut chunk).map_err(|e| e.to_string())?;
            if count == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..count]);
        }
        let mut payload = bytes[split + 4..].to_vec();
        if let Some(length) = length {
            payload.truncate(length);
        } else if chunked {
            payload = dechunk(&payload);
        }
        let value: Value = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
        if value["value"]["error"].is_string() {
            return Err(format!("{method} {path}: {}", value["value"]));
        }
        Ok(value)
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = (!body.is_null()).then_some(body);
        self.call(method, &path, body)
            .unwrap_or_else(|error| panic!("{error}"))["value"]
            .clone()
    }

    fn open(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page and returns its value.
    fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    fn element(&self, selector: &str) -> String {
        let found = self.command(
            "POST",
            "/element",
            json!({"using": "css selector", "value": selector}),
        );
        found
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_string()
    }

    /// Clears a field and types `text` into it, key by key, as a person would.
    fn type_into(&self, selector: &str, text: &str) {
        let id = self.element(selector);
        self.command("POST", &format!("/element/{id}/clear"), json!({}));
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    fn click(&self, selector: &str) {
        let id = self.element(selector);
        self.command("POST", &format!("/element/{id}/click"), json!({}));
    }

    /// Waits until `script` returns true in the page.
    #[track_caller]
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.eval(script) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let state = self.eval(
                    "return document.body.dataset.state + ' | ' + document.getElementById('result').innerText + ' | ' + document.querySelector('form').innerText;",
                );
                panic!("the page never showed {what}; it shows: {state}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, selector: &str) -> String {
        self.eval(&format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            json!(selector)
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.command("GET", "/screenshot", json!(null));
        let png = base64_decode(encoded.as_str().expect("a base64 screenshot"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve_browser");
        std::fs::create_dir_all(&dir).expect("the artifact folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(2).position(|window| window == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&bytes[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || end + 2 + size > bytes.len() {
            break;
        }
        out.extend_from_slice(&bytes[end + 2..end + 2 + size]);
        bytes = &bytes[(end + 4 + size).min(bytes.len())..];
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    sextets
        .chunks(4)
        .flat_map(|group| {
            let bits = group
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &s)| acc | (u32::from(s) << (18 - 6 * i)));
            let bytes = bits.to_be_bytes();
            bytes[1..group.len()].to_vec()
        })
        .collect()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The first line of the text the API gives for `request`: `∂/∂W = W(zxᵀ + xzᵀ)`.
fn api_first_line(server: &Server, request: Value) -> String {
    let mut request = request;
    request["render"] = json!(["text"]);
    let reply = server.api("diff", &request);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["render"]["text"]
        .as_str()
        .and_then(|text| text.lines().next())
        .unwrap_or_default()
        .to_string()
}

fn have_browser() -> bool {
    let present = |path: &str| std::path::Path::new(path).exists();
    if present(CHROMIUM) && present(CHROMEDRIVER) {
        return true;
    }
    // In CI `.ci/run` has installed them: missing there is a failure, not a skip.
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the browser test, but {CHROMIUM} or {CHROMEDRIVER} is missing"
    );
    eprintln!(
        "\n\n!!!!!!!! SKIPPED: the browser test needs {CHROMIUM} and {CHROMEDRIVER}.\n\
         !!!!!!!! `.ci/run` installs them (apt-get install chromium chromium-driver).\n"
    );
    false
}

/// Waits for the next answer after `before` answers, and that it is not an error.
fn answers(browser: &Browser) -> u64 {
    browser
        .eval("return Number(document.body.dataset.answers || 0);")
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn the_page_in_a_real_browser() {
    if !have_browser() {
        return;
    }
    let server = Server::start(&["--time-limit", "600000"]);
    let browser = Browser::start();
    let base = format!("http://{}/", server.addr);

    // A shared URL reproduces a result: the derivative and the check's verdict.
    let expr = "½‖WᵀWx − x‖²";
    browser.open(&format!("{base}?expr={}&wrt=W", encode(expr)));
    browser.wait_for(
        "an answer",
        "return document.body.dataset.state === 'done';",
    );
    let expected = api_first_line(&server, json!({"expr": expr, "wrt": "W"}));
    assert!(expected.starts_with("∂/∂W = "), "{expected}");
    let shown = browser.text("#unicode");
    assert!(shown.contains(&expected), "{shown:?} lacks {expected:?}");
    let verdict = browser.text("#verdicts");
    assert!(verdict.contains("check: ok"), "{verdict:?}");
    assert_eq!(
        browser.eval("return document.querySelectorAll('#equation .katex').length > 0;"),
        json!(true),
        "the derivative is set as mathematics"
    );
    assert_eq!(
        browser.eval("return document.querySelector('#graph svg') !== null;"),
        json!(true),
        "the computation graph is drawn"
    );
    assert!(browser.text("#code").contains("def derivative("));
    // The code tab offers the other backends of `--format`, as the API renders them.
    let pick = |backend: &str| {
        browser.eval(&format!(
            "const s = document.getElementById('code-backend'); s.value = '{backend}'; s.dispatchEvent(new Event('change')); return null;"
        ));
        browser.text("#code")
    };
    let jax = pick("jax");
    assert!(
        jax.contains("import jax.numpy as jnp") && jax.contains("def derivative("),
        "{jax}"
    );
    let torch = pick("torch");
    assert!(
        torch.contains("import torch") && torch.contains("def derivative("),
        "{torch}"
    );
    assert!(!pick("numpy").contains("jnp."));
    // Everything the page loaded came from this server: it works with no network.
    let foreign = browser.eval(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin));",
    );
    assert_eq!(foreign, json!([]), "the page loads nothing from elsewhere");
    assert_eq!(
        browser.eval(
            "return [...document.fonts].some(f => f.family.includes('KaTeX_Main') && f.status === 'loaded');"
        ),
        json!(true),
        "KaTeX's fonts are loaded from the binary"
    );
    let path = browser.screenshot("shared-url.png");
    eprintln!("screenshot: {}", path.display());

    // Typing updates the result; `\half`, `\norm` and `\sq` become ½, ‖ and ².
    let before = answers(&browser);
    browser.type_into("#wrt", "x");
    browser.type_into("#expr", "\\half\\norm x\\norm\\sq ");
    assert_eq!(
        browser.eval("return document.getElementById('expr').value;"),
        json!("½‖ x‖² ")
    );
    let expected = api_first_line(&server, json!({"expr": "½‖ x‖² ", "wrt": "x"}));
    browser.wait_for(
        "the typed expression's derivative",
        &format!(
            "return Number(document.body.dataset.answers) > {before} && document.body.dataset.state === 'done' && document.getElementById('unicode').textContent.includes({});",
            json!(expected)
        ),
    );
    let search = browser.eval("return decodeURIComponent(location.search);");
    assert!(
        search.as_str().is_some_and(|query| query.contains("wrt=x")),
        "the URL follows the input: {search}"
    );

    // An error shows its message, a caret under the offending part, and the hint.
    let bad = "z(1 − σ(z))";
    browser.type_into("#wrt", "z");
    browser.type_into("#expr", bad);
    let reply = server.api("diff", &json!({"expr": bad, "wrt": "z"}));
    assert_eq!(reply.status, 400);
    let error = reply.json();
    let span: Vec<usize> = error["span"]
        .as_array()
        .expect("a span")
        .iter()
        .filter_map(|bound| bound.as_u64().map(|bound| bound as usize))
        .collect();
    let marked: String = bad.chars().skip(span[0]).take(span[1] - span[0]).collect();
    browser.wait_for(
        "the error",
        "const box = document.getElementById('error-expr'); return !box.hidden && box.querySelector('.caret') !== null;",
    );
    assert_eq!(browser.text("#error-expr .caret"), marked);
    let message = browser.text("#error-expr");
    assert!(
        message.contains(error["error"].as_str().unwrap_or("?")),
        "{message}"
    );
    assert!(message.contains("⊙"), "the hint is shown: {message}");
    browser.screenshot("error.png");

    // The problem sheet's three problems: every check passes, graph and code shown.
    for (example, variables) in [(0, 1), (1, 1), (2, 4)] {
        let before = answers(&browser);
        browser.click(&format!("[data-example=\"{example}\"]"));
        browser.wait_for(
            "the example's answer",
            &format!(
                "return Number(document.body.dataset.answers) > {before} && document.body.dataset.state === 'done' && document.querySelector('#graph svg') !== null;"
            ),
        );
        let passed = browser
            .eval("return document.querySelectorAll('#verdicts .verdict.ok').length;")
            .as_u64();
        assert_eq!(passed, Some(variables), "example {example}");
        assert!(browser.text("#code").contains("def derivative("));
        browser.screenshot(&format!("sheet-{}.png", example + 1));
    }

    // The sheet's claimed ∂L/∂X for the GP-LVM (the example fills it in) is wrong; the
    // page says so, as the API does, and names the first wrong step.
    let before = answers(&browser);
    browser.click("[data-example=\"1\"]");
    browser.wait_for(
        "the GP-LVM's answer",
        &format!("return Number(document.body.dataset.answers) > {before} && document.body.dataset.state === 'done';"),
    );
    browser.click("#claim-box summary");
    browser.click("#verify");
    browser.wait_for(
        "the claim's verdict",
        "return document.querySelector('#claim-result .verdict') !== null;",
    );
    let claim = browser.eval("return document.getElementById('claim').value;");
    let verdict = server.api(
        "verify",
        &json!({"expr": browser.eval("return document.getElementById('expr').value;"),
                "wrt": "X", "claim": claim, "let": ["K = αXXᵀ + β⁻¹I"], "steps": true}),
    );
    let verdict = verdict.json();
    assert_eq!(verdict["correct"], false, "{verdict}");
    assert_eq!(
        browser.eval(
            "return document.querySelector('#claim-result .verdict').classList.contains('bad');"
        ),
        json!(true)
    );
    let located = browser.text("#claim-result .wrong-step");
    let step = verdict["first_wrong_step"].as_str().unwrap_or("?");
    assert!(
        !located.is_empty() && step.starts_with(&located),
        "{located:?} does not begin {step:?}"
    );
    browser.screenshot("verify.png");

    // Sizes in the URL reach the compute form, as `--sizes` does.
    browser.open(&format!(
        "{base}?expr=ABC&decl=A%3A%20a%C3%97b%2C%20B%3A%20b%C3%97c%2C%20C%3A%20c%C3%97d&sizes=a%3D1000%2Cb%3D2%2Cc%3D1000%2Cd%3D2"
    ));
    browser.wait_for(
        "the compute form for the sizes",
        "return document.body.dataset.state === 'done' && document.getElementById('sizes').value === 'a=1000,b=2,c=1000,d=2' && [...document.querySelectorAll('td.mono')].some((cell) => cell.textContent === 'A(BC)');",
    );

    // The URL carries the form too: `form=vec` gives the Jacobian in vec(X).
    browser.open(&format!("{base}?expr=AXB&wrt=X&form=vec"));
    let expected = api_first_line(&server, json!({"expr": "AXB", "wrt": "X", "form": "vec"}));
    assert!(expected.starts_with("∂vec(F)/∂vec(X) = "), "{expected}");
    browser.wait_for(
        "the vec form",
        &format!(
            "return Number(document.body.dataset.answers || 0) > 0 && document.body.dataset.state === 'done' && document.getElementById('unicode').textContent.includes({});",
            json!(expected)
        ),
    );
}
