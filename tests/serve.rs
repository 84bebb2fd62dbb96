//! `matcalc serve`'s JSON API and HTTP handling, against a real server on a free
//! loopback port: every endpoint answers what the command line's `--format json` prints,
//! every error carries the command line's message, span and hints, and no request —
//! malformed, oversized, slow or hostile — stops the server or stalls the others.

#[path = "common/run.rs"]
#[allow(dead_code)] // The server is compared with the command line, not the REPL.
mod run;
mod serve_support;

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};
use serve_support::{read_reply, Server};

/// Limits for tests that compare with the command line: the node and iteration limits
/// decide where saturation stops, never the clock, so both runs find the same form
/// however loaded the machine is.
const STEADY: [&str; 2] = ["--time-limit", "600000"];

fn steady_server() -> Server {
    Server::start(&STEADY)
}

/// `matcalc ARGS --time-limit …` as JSON.
#[track_caller]
fn cli_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend_from_slice(&STEADY);
    let out = run::matcalc(&all);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|error| panic!("{error}: {:?} {}{}", args, out.stdout, out.stderr))
}

/// The value without the keys that differ from run to run (`timings`) or that only the
/// API adds (`render`).
fn comparable(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !matches!(key.as_str(), "timings" | "render"))
                .map(|(key, value)| (key.clone(), comparable(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(comparable).collect()),
        other => other.clone(),
    }
}

#[track_caller]
fn ok_json(reply: &serve_support::Reply) -> Value {
    assert_eq!(reply.status, 200, "{}\n{}", reply.head, reply.text());
    reply.json()
}

#[test]
fn serve_binds_loopback_and_prints_its_address() {
    let server = Server::start(&[]);
    assert!(
        server
            .banner
            .starts_with("matcalc serving http://127.0.0.1:"),
        "{}",
        server.banner
    );
    assert_ne!(server.addr, "127.0.0.1:0", "the real port is printed");
}

#[test]
fn a_port_in_use_is_an_error_not_a_hang() {
    let server = Server::start(&[]);
    let port = server.addr.rsplit(':').next().unwrap_or("0");
    let out = run::matcalc(&["serve", "--port", port]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot serve on 127.0.0.1:{port}: ")),
        "{}",
        out.stderr
    );
}

#[test]
fn diff_answers_the_command_lines_json() {
    let server = steady_server();
    let cases: [(&str, &[&str], &[&str], &str); 3] = [
        ("½‖WᵀWx − x‖²", &[], &[], "W"),
        (
            "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)",
            &[],
            &["K = αXXᵀ + β⁻¹I"],
            "X",
        ),
        (
            "½‖W₂ swish(z₁) + b₂ − y‖²",
            &["W₁: h×n, x: n"],
            &["z₁ = W₁x + b₁"],
            "W₁,b₁,W₂,b₂",
        ),
    ];
    for (expr, decls, lets, wrt) in cases {
        let api = ok_json(&server.api(
            "diff",
            &json!({"expr": expr, "wrt": wrt, "decl": decls, "let": lets, "check": true}),
        ));
        let mut args = vec!["diff", expr, "--wrt", wrt, "--format", "json", "--check"];
        for decl in decls {
            args.extend(["--decl", decl]);
        }
        for definition in lets {
            args.extend(["--let", definition]);
        }
        assert_eq!(comparable(&api), comparable(&cli_json(&args)), "{expr}");
        let results = api["results"]
            .as_array()
            .cloned()
            .unwrap_or(vec![api.clone()]);
        for result in results {
            assert_eq!(result["check"]["passed"], true, "{expr}: {result}");
        }
    }
}

#[test]
fn diff_renders_latex_text_and_numpy_like_the_command_line() {
    let server = steady_server();
    let api = ok_json(&server.api(
        "diff",
        &json!({"expr": "½‖WᵀWx − x‖²", "wrt": ["W"], "check": true,
                "render": ["latex", "text", "numpy"]}),
    ));
    let cli = |format: &str| {
        let mut args = vec![
            "diff",
            "½‖WᵀWx − x‖²",
            "--wrt",
            "W",
            "--check",
            "--format",
            format,
        ];
        args.extend_from_slice(&STEADY);
        run::matcalc(&args).stdout
    };
    assert_eq!(api["render"]["latex"], cli("latex"));
    assert_eq!(api["render"]["text"], cli("unicode"));
    assert_eq!(api["render"]["numpy"], cli("numpy"));
}

#[test]
fn second_order_and_seed_reach_the_session() {
    let server = steady_server();
    let api = ok_json(&server.api(
        "diff",
        &json!({"expr": "xᵀAx", "wrt": "x", "order": 2, "check": true, "seed": 7}),
    ));
    let cli = cli_json(&[
        "diff", "xᵀAx", "--wrt", "x", "--order", "2", "--check", "--seed", "7", "--format", "json",
    ]);
    assert_eq!(comparable(&api), comparable(&cli));
    assert_eq!(api["kind"], "hessian");
}

#[test]
fn the_vec_form_reaches_the_session() {
    let server = steady_server();
    let api = ok_json(&server.api(
        "diff",
        &json!({"expr": "AXB", "wrt": "X", "form": "vec", "check": true}),
    ));
    let cli = cli_json(&[
        "diff", "AXB", "--wrt", "X", "--form", "vec", "--check", "--format", "json",
    ]);
    assert_eq!(comparable(&api), comparable(&cli));
    assert_eq!(api["form"], "vec");
    assert_eq!(api["check"]["passed"], true, "{api}");
}

#[test]
fn sizes_cost_the_compute_form_as_on_the_command_line() {
    let server = steady_server();
    let decl = "A: a×b, B: b×c, C: c×d";
    for (text, object, compute) in [
        (
            "a=2,b=1000,c=2,d=1000",
            json!({"a": 2, "b": 1000, "c": 2, "d": 1000}),
            "(AB)C",
        ),
        (
            "a=1000,b=2,c=1000,d=2",
            json!({"a": 1000, "b": 2, "c": 1000, "d": 2}),
            "A(BC)",
        ),
    ] {
        let cli = cli_json(&[
            "simplify", "ABC", "--decl", decl, "--sizes", text, "--format", "json",
        ]);
        assert_eq!(cli["compute"], compute, "{cli}");
        for sizes in [json!(text), object] {
            let api = ok_json(&server.api(
                "simplify",
                &json!({"expr": "ABC", "decl": [decl], "sizes": sizes}),
            ));
            assert_eq!(comparable(&api), comparable(&cli), "{sizes}");
        }
    }
    let bad = server.api("simplify", &json!({"expr": "ABC", "sizes": "a=lots"}));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "sizes: `lots` is not a size");
    let verdict = server.api(
        "verify",
        &json!({"expr": "xᵀx", "wrt": "x", "claim": "2x", "sizes": {"n": 3}}),
    );
    assert_eq!(verdict.status, 400, "{}", verdict.text());
    assert!(
        verdict.json()["error"]
            .as_str()
            .is_some_and(|error| error.contains("a verdict has none")),
        "{}",
        verdict.text()
    );
}

#[test]
fn requests_addressed_to_another_name_are_refused() {
    // What a page elsewhere sends after pointing its own name at 127.0.0.1.
    let server = Server::start(&[]);
    let body = r#"{"expr": "xᵀx", "wrt": "x"}"#;
    for (host, status) in [
        ("evil.example:8080".to_string(), 403),
        ("localhost.evil.example".to_string(), 403),
        (
            format!(
                "localhost:{}",
                server.addr.rsplit(':').next().unwrap_or("0")
            ),
            200,
        ),
        (server.addr.clone(), 200),
    ] {
        let request = format!(
            "POST /api/diff HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let reply = server.raw(request.as_bytes());
        assert_eq!(reply.status, status, "{host}: {}", reply.text());
        let page = server.raw(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(page.status, status, "{host}");
    }
}

#[test]
fn simplify_answers_the_command_lines_json() {
    let server = steady_server();
    for expr in ["(AB)ᵀ + BᵀAᵀ", "tr(XᵀX)"] {
        let api = ok_json(&server.api("simplify", &json!({ "expr": expr })));
        assert_eq!(
            comparable(&api),
            comparable(&cli_json(&["simplify", expr, "--format", "json"])),
            "{expr}"
        );
    }
}

#[test]
fn verify_answers_the_command_lines_json_and_first_wrong_step() {
    let server = steady_server();
    let right = ok_json(&server.api(
        "verify",
        &json!({"expr": "½‖WᵀWx − x‖²", "wrt": "W", "claim": "W(zxᵀ + xzᵀ)",
                "let": ["z = WᵀWx − x"]}),
    ));
    assert_eq!(right["correct"], true, "{right}");
    let expr = "−½ tr(K⁻¹YYᵀ)";
    let definition = "K = αXXᵀ + β⁻¹I";
    let claim = "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X";
    let wrong = ok_json(&server.api(
        "verify",
        &json!({"expr": expr, "wrt": "X", "claim": claim, "let": [definition], "steps": true}),
    ));
    let cli = cli_json(&[
        "verify", expr, "--wrt", "X", "--claim", claim, "--let", definition, "--format", "json",
    ]);
    let mut without_step = wrong.clone();
    without_step
        .as_object_mut()
        .map(|map| map.remove("first_wrong_step"));
    assert_eq!(comparable(&without_step), comparable(&cli));
    assert_eq!(wrong["correct"], false);
    let mut args = vec![
        "verify", expr, "--wrt", "X", "--claim", claim, "--let", definition, "--steps",
    ];
    args.extend_from_slice(&STEADY);
    let text = run::matcalc(&args).stdout;
    let located = text
        .split("first wrong step:\n")
        .nth(1)
        .expect("the CLI locates the step");
    assert_eq!(wrong["first_wrong_step"], located.trim_end());
}

#[test]
fn explain_answers_the_command_lines_json_and_graph() {
    let server = steady_server();
    let api = ok_json(&server.api(
        "explain",
        &json!({"expr": "½‖WᵀWx − x‖²", "wrt": "W", "check": true,
                "render": ["svg", "text", "dot"]}),
    ));
    let mut plain = api.clone();
    plain
        .as_object_mut()
        .map(|map| map.remove("adjoint_checks"));
    assert_eq!(
        comparable(&plain),
        comparable(&cli_json(&[
            "explain",
            "½‖WᵀWx − x‖²",
            "--wrt",
            "W",
            "--format",
            "json"
        ]))
    );
    let drawn = |graph: &str| {
        run::matcalc(&["explain", "½‖WᵀWx − x‖²", "--wrt", "W", "--graph", graph]).stdout
    };
    assert_eq!(api["render"]["svg"], drawn("svg"));
    assert_eq!(api["render"]["dot"], drawn("dot"));
    assert_eq!(
        api["render"]["text"],
        run::matcalc(&["explain", "½‖WᵀWx − x‖²", "--wrt", "W"]).stdout
    );
    let checks = api["adjoint_checks"].as_array().expect("checked adjoints");
    assert!(!checks.is_empty());
    assert!(
        checks.iter().all(|step| step["check"]["passed"] == true),
        "{api}"
    );
}

/// One bad input: the request, the same input on the command line, and which input the
/// answer must blame.
struct BadInput {
    endpoint: &'static str,
    request: Value,
    cli: Vec<&'static str>,
    input: &'static str,
}

fn bad_inputs() -> Vec<BadInput> {
    let diff = |expr: &'static str, wrt: &'static str| BadInput {
        endpoint: "diff",
        request: json!({"expr": expr, "wrt": wrt}),
        cli: vec!["diff", expr, "--wrt", wrt],
        input: "expr",
    };
    vec![
        // Parse errors, one with a did-you-mean hint.
        diff("½‖x", "x"),
        diff("sigmod(z)", "z"),
        diff("x +* y", "x"),
        // A shape error with its ⊙ hint.
        diff("z₁(1 − σ(z₁))", "z₁"),
        // Differentiating with respect to a variable that is not there.
        diff("‖x‖²", "y"),
        // Parse limits, whose hints name the flag.
        diff("A^100", "A"),
        BadInput {
            endpoint: "simplify",
            request: json!({"expr": "((((((((((x))))))))))+".repeat(3)}),
            cli: vec![],
            input: "expr",
        },
        BadInput {
            endpoint: "diff",
            request: json!({"expr": "‖Wx‖²", "wrt": "W", "decl": ["W: m×"]}),
            cli: vec!["diff", "‖Wx‖²", "--wrt", "W", "--decl", "W: m×"],
            input: "decl",
        },
        BadInput {
            endpoint: "diff",
            request: json!({"expr": "tr(K)", "wrt": "X", "let": ["K = (αXXᵀ"]}),
            cli: vec!["diff", "tr(K)", "--wrt", "X", "--let", "K = (αXXᵀ"],
            input: "let",
        },
        BadInput {
            endpoint: "verify",
            request: json!({"expr": "‖x‖²", "wrt": "x", "claim": "2x +"}),
            cli: vec!["verify", "‖x‖²", "--wrt", "x", "--claim", "2x +"],
            input: "claim",
        },
        // A claim of the wrong shape: no place to point at.
        BadInput {
            endpoint: "verify",
            request: json!({"expr": "‖x‖²", "wrt": "x", "claim": "xᵀx"}),
            cli: vec!["verify", "‖x‖²", "--wrt", "x", "--claim", "xᵀx"],
            input: "request",
        },
    ]
}

#[test]
fn every_error_kind_is_400_with_the_command_lines_message_span_and_hints() {
    let server = steady_server();
    for case in bad_inputs() {
        let reply = server.api(case.endpoint, &case.request);
        assert_eq!(reply.status, 400, "{}: {}", case.request, reply.text());
        let body = reply.json();
        assert_eq!(body["input"], case.input, "{body}");
        if case.cli.is_empty() {
            // Brackets nested past the fixed nesting limit: no flag can allow it.
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
            continue;
        }
        let out = run::matcalc(&case.cli);
        assert_eq!(out.status, 2, "{:?}", case.cli);
        assert_eq!(body["rendered"], out.stderr, "{:?}", case.cli);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert_eq!(
            format!("error: {}", body["error"].as_str().unwrap_or_default()),
            first
        );
        let hints: Vec<String> = out
            .stderr
            .lines()
            .filter_map(|line| line.trim().strip_prefix("= hint: ").map(str::to_string))
            .collect();
        assert_eq!(body["hints"], json!(hints), "{:?}", case.cli);
        // The span starts at the column the command line's caret points at.
        let column = out
            .stderr
            .lines()
            .find_map(|line| line.trim().strip_prefix("--> "))
            .and_then(|place| place.split(':').nth(1))
            .and_then(|column| column.parse::<u64>().ok());
        match column {
            Some(column) => assert_eq!(body["span"][0].as_u64(), Some(column - 1), "{body}"),
            None => assert!(body["span"].is_null(), "{body}"),
        }
    }
}

#[test]
fn limits_given_to_serve_apply_to_every_request() {
    let server = Server::start(&["--max-depth", "3"]);
    let reply = server.api("simplify", &json!({"expr": "((xᵀ)ᵀ)ᵀ"}));
    assert_eq!(reply.status, 400, "{}", reply.text());
    let body = reply.json();
    let cli = run::matcalc(&["simplify", "((xᵀ)ᵀ)ᵀ", "--max-depth", "3"]);
    assert_eq!(body["rendered"], cli.stderr);
    assert!(cli.stderr.contains("--max-depth"), "{}", cli.stderr);
    // Limits of the simplifier stop it early, never make an error.
    let small = Server::start(&["--max-nodes", "20"]);
    let answer = ok_json(&small.api("diff", &json!({"expr": "½‖WᵀWx − x‖²", "wrt": "W"})));
    assert_eq!(answer["saturated"], false);
}

#[test]
fn malformed_requests_are_400_with_a_message() {
    let server = Server::start(&[]);
    let cases = [
        ("diff", "{\"expr\": \"x\", "),
        ("diff", "[1, 2, 3]"),
        ("diff", "\"x\""),
        ("diff", ""),
        ("diff", "{\"wrt\": \"x\"}"),
        ("diff", "{\"expr\": \"‖x‖²\", \"wrt\": \"x\", \"exprr\": 1}"),
        ("diff", "{\"expr\": 7, \"wrt\": \"x\"}"),
        ("diff", "{\"expr\": \"‖x‖²\", \"wrt\": \"x\", \"order\": 3}"),
        (
            "diff",
            "{\"expr\": \"‖x‖²\", \"wrt\": \"x\", \"order\": -1}",
        ),
        ("diff", "{\"expr\": \"‖x‖²\"}"),
        ("diff", "{\"expr\": \"   \", \"wrt\": \"x\"}"),
        (
            "diff",
            "{\"expr\": \"‖x‖²\", \"wrt\": \"x\", \"render\": [\"pdf\"]}",
        ),
        (
            "diff",
            "{\"expr\": \"‖x‖²\", \"wrt\": \"x\", \"form\": \"tensor\"}",
        ),
        ("verify", "{\"expr\": \"‖x‖²\", \"wrt\": \"x\"}"),
        (
            "verify",
            "{\"expr\": \"‖Ax‖²\", \"wrt\": \"A,x\", \"claim\": \"x\"}",
        ),
        ("explain", "{\"expr\": \"‖x‖²\"}"),
        ("diff", "{\"expr\": \"\\ud800\", \"wrt\": \"x\"}"),
    ];
    for (endpoint, body) in cases {
        let reply = server.post(&format!("/api/{endpoint}"), body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        let json = reply.json();
        let message = json["error"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{body}: {json}");
        assert_eq!(json["input"], "request", "{body}: {json}");
    }
    // The server is still there.
    ok_json(&server.api("diff", &json!({"expr": "‖x‖²", "wrt": "x"})));
}

#[test]
fn http_errors_have_their_status() {
    let server = Server::start(&[]);
    assert_eq!(server.get("/nothing-here").status, 404);
    assert_eq!(server.get("/api/nothing").status, 404);
    let reply = server.get("/api/diff");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow").as_deref(), Some("POST"));
    assert_eq!(server.post("/", "{}").status, 405);
    let no_length = server.raw(b"POST /api/diff HTTP/1.1\r\nHost: x\r\n\r\n{}");
    assert_eq!(no_length.status, 411);
    let chunked = server.raw(
        b"POST /api/diff HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    );
    assert_eq!(chunked.status, 411);
    assert_eq!(server.raw(b"NOT HTTP AT ALL\r\n\r\n").status, 400);
    let bad_length =
        server.raw(b"POST /api/diff HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n");
    assert_eq!(bad_length.status, 400);
    let huge_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(server.raw(huge_head.as_bytes()).status, 431);
    let many_headers = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(100));
    assert_eq!(server.raw(many_headers.as_bytes()).status, 431);
    // A client that says it sends more than it does is not waited for past its deadline,
    // nor taken to have sent a request.
    let mut short = server.connect();
    short
        .write_all(b"POST /api/diff HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}")
        .expect("sent");
    short
        .shutdown(std::net::Shutdown::Write)
        .expect("half-closed");
    assert_eq!(read_reply(&mut short).status, 400);
}

#[test]
fn bodies_over_64_kib_are_413_and_64_kib_is_read() {
    let server = Server::start(&[]);
    let limit = 64 * 1024;
    // A valid request padded with spaces to the byte: read, then refused by the
    // expression's own limit (10 000 bytes), which the hint names.
    let padded = |size: usize| {
        let core = json!({"expr": "x", "wrt": "x"}).to_string();
        let expr = format!("x{}", " ".repeat(size - core.len()));
        let body = json!({"expr": expr, "wrt": "x"}).to_string();
        assert_eq!(body.len(), size);
        body
    };
    let at_limit = server.post("/api/diff", &padded(limit));
    assert_eq!(at_limit.status, 400, "{}", at_limit.text());
    assert!(
        at_limit.text().contains("--max-input"),
        "{}",
        at_limit.text()
    );
    let over = server.post("/api/diff", &padded(limit + 1));
    assert_eq!(over.status, 413, "{}", over.text());
    assert!(over.json()["error"].as_str().is_some());
    // A large body that is actually sent still gets its 413, not a reset connection: the
    // server drains up to four times the limit before closing (past that it stops reading,
    // and a client still sending may see a reset; 1 MiB did under load).
    let huge = server.post("/api/diff", &"x".repeat(3 * limit));
    assert_eq!(huge.status, 413);
}

#[test]
fn a_slow_client_gets_408_and_stalls_nobody() {
    let server = Server::start(&[]);
    let mut slow = server.connect();
    slow.write_all(b"POST /api/diff HTTP/1.1\r\nHost: x\r\nContent-Le")
        .expect("the first bytes are sent");
    // While it dawdles, others are answered.
    for _ in 0..3 {
        ok_json(&server.api("diff", &json!({"expr": "‖x‖²", "wrt": "x"})));
    }
    // It trickles one more byte, then stops; the server gives up at its deadline.
    std::thread::sleep(Duration::from_millis(200));
    slow.write_all(b"n").expect("one more byte");
    let reply = read_reply(&mut slow);
    assert_eq!(reply.status, 408, "{}", reply.text());
    ok_json(&server.api("diff", &json!({"expr": "‖x‖²", "wrt": "x"})));
}

/// The hostile requests sent in the middle of the load, each with the status it earns.
fn hostile(server: &Server) -> Vec<(String, u16)> {
    let mut answers = vec![];
    let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
    let deep_body = json!({"expr": deep, "wrt": "x"}).to_string();
    // Too long for the body limit.
    answers.push((
        "100 000 brackets".into(),
        server.post("/api/diff", &deep_body).status,
    ));
    answers.push((
        "malformed JSON".into(),
        server.post("/api/diff", "{\"expr\": [").status,
    ));
    answers.push((
        "binary garbage".into(),
        server
            .raw(&[0xff, 0xfe, 0x00, 0x13, b'\r', b'\n', b'\r', b'\n'])
            .status,
    ));
    let nested = format!("{}x{}", "‖".repeat(2_000), "‖".repeat(2_000));
    answers.push((
        "2 000 nested norms".into(),
        server
            .api("diff", &json!({"expr": nested, "wrt": "x"}))
            .status,
    ));
    let long_chain = vec!["σ(Ax + b)"; 200].join(" ⊙ ");
    answers.push((
        "a 200-factor Hadamard chain".into(),
        server
            .api(
                "diff",
                &json!({"expr": format!("sum({long_chain})"), "wrt": "A", "check": true}),
            )
            .status,
    ));
    answers.push((
        "a power at the exponent limit".into(),
        server
            .api(
                "diff",
                &json!({"expr": "tr((A + B)^64)", "wrt": "A", "check": true}),
            )
            .status,
    ));
    answers
}

#[test]
fn sixty_four_concurrent_requests_with_hostile_ones_in_the_middle() {
    let server = steady_server();
    let exprs = [
        ("½‖WᵀWx − x‖²", "W"),
        ("xᵀAx", "x"),
        ("log det(X)", "X"),
        ("‖σ(Wx + b) − y‖²", "W"),
    ];
    // The answers, one at a time first.
    let expected: Vec<Value> = exprs
        .iter()
        .map(|(expr, wrt)| {
            comparable(&ok_json(
                &server.api("diff", &json!({"expr": expr, "wrt": wrt, "check": true})),
            ))
        })
        .collect();
    // A client that opens a connection and sends nothing holds one thread, no more.
    let mut idle = server.connect();
    idle.write_all(b"POST /api/diff HTTP/1.1\r\n")
        .expect("sent");
    let (answers, hostile_answers) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..64)
            .map(|index| {
                let server = &server;
                scope.spawn(move || {
                    let (expr, wrt) = exprs[index % exprs.len()];
                    let reply =
                        server.api("diff", &json!({"expr": expr, "wrt": wrt, "check": true}));
                    (index, reply)
                })
            })
            .collect();
        let hostile_answers = scope.spawn(|| hostile(&server)).join();
        let answers: Vec<_> = workers
            .into_iter()
            .map(|worker| worker.join().expect("a client thread ends"))
            .collect();
        (answers, hostile_answers.expect("the hostile client ends"))
    });
    for (index, reply) in answers {
        assert_eq!(reply.status, 200, "request {index}: {}", reply.text());
        assert_eq!(
            comparable(&reply.json()),
            expected[index % exprs.len()],
            "request {index}"
        );
    }
    for (what, status) in &hostile_answers {
        let expected = match what.as_str() {
            "100 000 brackets" => 413,
            "a 200-factor Hadamard chain" | "a power at the exponent limit" => 200,
            _ => 400,
        };
        assert_eq!(*status, expected, "{what}");
    }
    assert_eq!(read_reply(&mut idle).status, 408);
    ok_json(&server.api("diff", &json!({"expr": "‖x‖²", "wrt": "x"})));
}

#[test]
fn the_page_and_everything_it_loads_are_served() {
    let server = Server::start(&[]);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/html")));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|policy| policy.contains("default-src 'self'")));
    let html = page.text();
    assert!(html.contains("id=\"expr\""));
    assert_eq!(server.get("/?expr=x&wrt=x").body, page.body);
    let mut paths: Vec<String> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| html.split(attribute).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .filter(|path| path.starts_with('/'))
        .map(str::to_string)
        .collect();
    let css = server.get("/katex/katex.min.css").text();
    paths.extend(
        css.split("url(")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
            .filter(|url| url.ends_with(".woff2"))
            .map(|url| format!("/katex/{url}")),
    );
    assert!(paths.len() > 20, "{paths:?}");
    for path in &paths {
        let reply = server.get(path);
        assert_eq!(reply.status, 200, "{path}");
        assert!(!reply.body.is_empty(), "{path}");
    }
    assert!(server.get("/katex/LICENSE").text().contains("MIT License"));
    assert_eq!(
        server
            .get("/katex/fonts/KaTeX_Main-Regular.woff2")
            .header("content-type")
            .as_deref(),
        Some("font/woff2")
    );
    let escapes = server.get("/api/escapes").json();
    assert_eq!(escapes, json!(matcalc::typing::ESCAPES));
}

/// The issue-17 questions through the API: the vec form's Jacobian and Hessian, and an
/// entry as the variable (`"wrt": "X[m,n]"`, whose comma separates nothing), each checked;
/// a malformed entry is a 400 with the command line's message.
#[test]
fn serve_forms_and_entries() {
    let server = steady_server();
    let inverse = server
        .api(
            "diff",
            &json!({"expr": "X⁻¹", "wrt": "X", "decl": ["X: n×n"], "form": "vec", "check": true}),
        )
        .json();
    assert_eq!(inverse["vec"], "−X⁻ᵀ ⊗ X⁻¹", "{inverse}");
    assert_eq!(inverse["check"]["passed"], true, "{inverse}");
    let hessian = server
        .api(
            "diff",
            &json!({"expr": "tr(XᵀAX)", "wrt": "X", "order": 2, "form": "vec", "check": true}),
        )
        .json();
    assert_eq!(hessian["vec"], "I ⊗ (A + Aᵀ)", "{hessian}");
    assert_eq!(hessian["check"]["passed"], true, "{hessian}");
    let entry = server
        .api(
            "diff",
            &json!({"expr": "tr(AX)", "wrt": "X[m,n]", "check": true}),
        )
        .json();
    assert_eq!(entry["entry"], "X[m,n]", "{entry}");
    assert_eq!(entry["index"], "∂tr(AX)/∂Xₘₙ = Aₙₘ", "{entry}");
    assert_eq!(entry["check"]["passed"], true, "{entry}");
    assert_eq!(
        comparable(&entry),
        comparable(&cli_json(&[
            "diff", "tr(AX)", "--wrt", "X[m,n]", "--check", "--format", "json"
        ]))
    );
    let bad = server.api("diff", &json!({"expr": "tr(AX)", "wrt": "X[m]"}));
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("give two indices"), "{}", bad.text());
}
