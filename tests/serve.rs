//! End-to-end tests of `verinfer serve` and `verinfer client` on the embedded digits model,
//! loopback only: the real binary on 127.0.0.1:0, honest and lying answers, every bad-request
//! class, overload, concurrency and graceful shutdown. Every loop and wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/digits/digits_square_plus_x.onnx"
);

mod common;
use common::{code, images, s, verinfer, Dir, BIN};

/// A server process on 127.0.0.1:0, killed on drop.
struct Server {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--model", MODEL, "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start verinfer serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server printed its address");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Server { child, url, stderr }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// An HTTP answer: status, headers, body.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

fn read(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut resp = resp.expect("request");
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp
            .body_mut()
            .with_config()
            .limit(1 << 28)
            .read_to_vec()
            .unwrap(),
    }
}

fn get(url: &str) -> Reply {
    read(agent().get(url).call())
}

fn post(url: &str, content_type: &str, accept: &str, body: &[u8]) -> Reply {
    read(
        agent()
            .post(url)
            .header("content-type", content_type)
            .header("accept", accept)
            .send(body),
    )
}

fn post_json(url: &str, body: &str) -> Reply {
    post(url, "application/json", "application/json", body.as_bytes())
}

/// `{"input": [images skip..skip+n]}`.
fn request(n: usize, skip: usize) -> String {
    let imgs: Vec<_> = images().into_iter().cycle().skip(skip).take(n).collect();
    serde_json::json!({ "input": imgs }).to_string()
}

fn client(server: &str, input: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "client",
        "--server",
        server,
        "--model",
        MODEL,
        "--input",
        s(input),
    ];
    args.extend(extra);
    verinfer(&args)
}

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn client_verifies_the_servers_answers() {
    let d = Dir::new("e2e");
    let srv = Server::start(&["--workers", "2", "--max-batch", "8"]);

    let health = get(&format!("{}/healthz", srv.url));
    assert_eq!(health.status, 200);
    let info = get(&format!("{}/v1/model", srv.url));
    assert_eq!(info.status, 200);
    let info = info.json();
    assert_eq!(info["input_shape"], serde_json::json!([1, 8, 8]));
    assert_eq!(info["output_shape"], serde_json::json!([10]));
    assert_eq!(info["field"], "m127");
    assert_eq!(info["layers"].as_array().unwrap().len(), 7);
    assert_eq!(info["layers"][0]["kind"], "conv2d");
    assert_eq!(info["quantization"]["input_bits"], 8);
    assert_eq!(info["limits"]["max_batch"], 8);
    let digest = info["digest"].as_str().unwrap().to_string();
    let inspect = verinfer(&["inspect", "--model", MODEL]);
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains(&digest),
        "{}",
        text(&inspect)
    );

    // One image over JSON, three over the binary answer; both equal the local inference.
    let one = d.input("one.json", 1, 0);
    let three = d.input("three.json", 3, 1);
    for (input, extra) in [(&one, vec![]), (&three, vec!["--binary"])] {
        let out = d.file("out.json");
        let proof = d.file("x.proof");
        let mut args = vec!["--output", s(&out), "--proof", s(&proof)];
        args.extend(extra);
        let o = client(&srv.url, input, &args);
        assert_eq!(code(&o), 0, "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("VALID:"));
        let local = d.file("local.json");
        let o = verinfer(&[
            "infer",
            "--model",
            MODEL,
            "--input",
            s(input),
            "--output",
            s(&local),
        ]);
        assert_eq!(code(&o), 0, "{}", text(&o));
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&local).unwrap()).unwrap();
        assert_eq!(got["values"], want["values"]);
        assert_eq!(got["shape"], want["shape"]);
        // The kept proof checks with `verify` too.
        let o = verinfer(&[
            "verify",
            "--model",
            MODEL,
            "--input",
            s(input),
            "--proof",
            s(&proof),
        ]);
        assert_eq!(code(&o), 0, "{}", text(&o));
    }

    // The server's raw answers: JSON with base64, or the proof file with headers.
    let r = post_json(&format!("{}/v1/infer", srv.url), &request(2, 0));
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["digest"], digest.as_str());
    assert_eq!(j["output"]["shape"], serde_json::json!([2, 10]));
    assert!(j["proof"].as_str().unwrap().len() > 100);
    for key in ["queue", "witness", "prove", "total"] {
        assert!(j["timings_ms"][key].as_f64().unwrap() >= 0.0, "{key}");
    }
    let r = post(
        &format!("{}/v1/infer", srv.url),
        "application/json",
        "application/octet-stream",
        request(1, 0).as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").unwrap(),
        "application/octet-stream"
    );
    assert_eq!(r.header("x-verinfer-digest").unwrap(), digest);
    let report: serde_json::Value =
        serde_json::from_str(&r.header("x-verinfer-output").unwrap()).unwrap();
    assert_eq!(report["shape"], serde_json::json!([1, 10]));
    assert!(r.header("x-verinfer-timings-ms").is_some());
    assert!(r.body.starts_with(b"vINF"), "a proof file");

    // Digests: the expected one passes; another, or other flags, are refused (exit 1).
    let o = client(&srv.url, &one, &["--expect-digest", &digest.to_uppercase()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = client(&srv.url, &one, &["--expect-digest", &"0".repeat(64)]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("REJECTED"));
    let o = client(&srv.url, &one, &["--input-bits", "7"]);
    assert_eq!(code(&o), 1, "{}", text(&o));

    // Usage and network errors: exit 2, one clear line.
    let o = client(&srv.url, &one, &["--expect-digest", "xyz"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let o = client("127.0.0.1:1", &one, &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let o = client(&dead_url, &one, &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach"));
    let nine = d.input("nine.json", 9, 0);
    let o = client(&srv.url, &nine, &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("limit of 8"));

    let m = String::from_utf8(get(&format!("{}/metrics", srv.url)).body).unwrap();
    assert!(m.contains("verinfer_http_requests_total{route=\"/v1/infer\",status=\"200\"}"));
    assert!(m.contains("verinfer_prove_seconds_count"));
    assert!(m.contains("verinfer_queue_depth 0"));
}

/// How the test double lies.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Announces another circuit digest in `/v1/model`.
    ModelDigest,
    /// Answers with one output value changed (the proof itself is honest).
    OutputValue,
    /// Proves another input than the one asked for (an honest proof of the wrong thing).
    OtherInput,
    /// Changes one byte of the proof.
    ProofByte,
    /// Changes one dequantized score (values, argmax and proof honest).
    Dequantized,
    /// Changes the first item's argmax (values, scores and proof honest).
    Argmax,
    /// Labels the answer with another digest.
    AnswerDigest,
    /// Binary answer with a changed output header.
    OutputHeader,
}

/// A proxy in front of the real server that alters requests or answers; serves until the test
/// process ends (bounded: one connection at a time, `Connection: close`).
fn lying_proxy(upstream: String, lie: Lie) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().take(100) {
            let Ok(conn) = conn else { continue };
            let _ = relay(conn, &upstream, lie);
        }
    });
    url
}

fn relay(mut conn: TcpStream, upstream: &str, lie: Lie) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut parts = first.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut len = 0usize;
    let mut accept = "application/json".to_string();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "accept" => accept = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;

    let url = format!("{upstream}{path}");
    let reply = if method == "POST" {
        if let Lie::OtherInput = lie {
            let mut req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let n = req["input"].as_array().map_or(1, Vec::len);
            let other: serde_json::Value = serde_json::from_str(&request(n, 100)).unwrap();
            req["input"] = other["input"].clone();
            body = req.to_string().into_bytes();
        }
        post(&url, "application/json", &accept, &body)
    } else {
        get(&url)
    };
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "connection" | "transfer-encoding"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut out = reply.body.clone();
    let is_json = reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    if reply.status == 200 && is_json {
        let mut j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        match lie {
            Lie::ModelDigest if path == "/v1/model" => {
                j["digest"] = serde_json::json!("ab".repeat(32))
            }
            Lie::OutputValue if path == "/v1/infer" => {
                let v: i128 = j["output"]["values"][3].as_str().unwrap().parse().unwrap();
                j["output"]["values"][3] = serde_json::json!((v + 1).to_string());
            }
            Lie::ProofByte if path == "/v1/infer" => {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD;
                let mut proof = b64.decode(j["proof"].as_str().unwrap()).unwrap();
                let at = proof.len() / 2;
                proof[at] ^= 1;
                j["proof"] = serde_json::json!(b64.encode(proof));
            }
            Lie::Dequantized if path == "/v1/infer" => {
                let x = j["output"]["dequantized"][3].as_f64().unwrap();
                j["output"]["dequantized"][3] = serde_json::json!(x + 1.0);
            }
            Lie::Argmax if path == "/v1/infer" => {
                let a = j["output"]["argmax"][0].as_u64().unwrap();
                j["output"]["argmax"][0] = serde_json::json!((a + 1) % 10);
            }
            Lie::AnswerDigest if path == "/v1/infer" => {
                j["digest"] = serde_json::json!("cd".repeat(32))
            }
            _ => {}
        }
        out = j.to_string().into_bytes();
    }
    if let Lie::OutputHeader = lie {
        for (k, v) in headers.iter_mut() {
            if k == "x-verinfer-output" {
                let mut r: serde_json::Value = serde_json::from_str(v).unwrap();
                let first: i128 = r["values"][0].as_str().unwrap().parse().unwrap();
                r["values"][0] = serde_json::json!((first - 1).to_string());
                *v = r.to_string();
            }
        }
    }
    let mut head = format!("HTTP/1.1 {} Lie\r\n", reply.status);
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        out.len()
    ));
    conn.write_all(head.as_bytes())?;
    conn.write_all(&out)?;
    conn.flush()
}

#[test]
fn a_lying_server_is_caught() {
    let d = Dir::new("lies");
    let srv = Server::start(&["--workers", "2"]);
    let input = d.input("two.json", 2, 0);

    // The proxy itself is transparent when it does not lie about the route asked.
    let honest = lying_proxy(srv.url.clone(), Lie::ModelDigest);
    let o = client(&honest, &input, &["--binary"]);
    assert_eq!(code(&o), 1, "{}", text(&o));

    for (lie, binary, says) in [
        (Lie::ModelDigest, false, "runs circuit"),
        (Lie::OutputValue, false, "differs from the output it proves"),
        (Lie::OtherInput, false, "invalid proof"),
        (Lie::OtherInput, true, "invalid proof"),
        (Lie::ProofByte, false, "invalid proof"),
        (Lie::Dequantized, false, "field `dequantized`[3]"),
        (Lie::Argmax, false, "field `argmax`[0]"),
        (Lie::AnswerDigest, false, "the answer is for circuit"),
        (Lie::OutputHeader, true, "differs from the output it proves"),
    ] {
        let url = lying_proxy(srv.url.clone(), lie);
        let extra: &[&str] = if binary { &["--binary"] } else { &[] };
        let o = client(&url, &input, extra);
        assert_eq!(code(&o), 1, "{lie:?}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("REJECTED") && out.contains(says),
            "{lie:?}: {out}"
        );
    }

    // A lie about another route leaves the answer honest: the client accepts it.
    let url = lying_proxy(srv.url.clone(), Lie::OutputHeader);
    let o = client(&url, &input, &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn bad_requests_get_their_status() {
    let srv = Server::start(&[
        "--workers",
        "1",
        "--max-batch",
        "4",
        "--max-body-bytes",
        "50000",
    ]);
    let infer = format!("{}/v1/infer", srv.url);
    let one = serde_json::from_str::<serde_json::Value>(&request(1, 0)).unwrap();
    let mut far = one.clone();
    far["input"][0][0][3][3] = serde_json::json!(2.5);
    // Just outside [0, 1]: it would round into the range, but is refused as given.
    let mut below = one.clone();
    below["input"][0][0][3][3] = serde_json::json!(-0.001);
    let mut word = one.clone();
    word["input"][0][0][3][3] = serde_json::json!("x");
    let mut nested = String::new();
    for _ in 0..10_000 {
        nested.push('[');
    }
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", "{\"input\": [[".into(), 400),
        ("empty body", String::new(), 400),
        ("no input field", "{\"x\": 1}".into(), 400),
        ("bare array", "[1, 2]".into(), 400),
        // Refused at depth 5 as a wrong shape (the arrays are parsed against the input shape
        // as they are read), before the missing end could be seen.
        ("deep nesting", format!("{{\"input\": {nested}"), 422),
        ("wrong shape", "{\"input\": [[1, 2], [3, 4]]}".into(), 422),
        ("ragged", "{\"input\": [[[1, 2], [3]]]}".into(), 422),
        ("a string value", word.to_string(), 422),
        ("out of range", far.to_string(), 422),
        ("just below the range", below.to_string(), 422),
        ("huge number", "{\"input\": [1e999]}".into(), 400),
        ("batch over --max-batch", request(5, 0), 413),
        (
            "body over --max-body-bytes",
            format!("{{\"input\": {}}}", " ".repeat(60_000)),
            413,
        ),
    ];
    for (what, body, want) in cases {
        let r = post_json(&infer, &body);
        assert_eq!(
            r.status,
            want,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let err = r.json()["error"].as_str().unwrap_or("").to_string();
        assert!(!err.is_empty(), "{what}: an error message");
    }
    let r = post(
        &infer,
        "text/plain",
        "application/json",
        request(1, 0).as_bytes(),
    );
    assert_eq!(r.status, 415);
    assert!(r.json()["error"].is_string());
    // No Content-Type at all is refused too (raw HTTP: clients add one by themselves).
    let addr = srv.url.trim_start_matches("http://").to_string();
    let body = request(1, 0);
    let answer = raw_exchange(
        &addr,
        format!(
            "POST /v1/infer HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    let r = get(&infer);
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    let r = get(&format!("{}/nope", srv.url));
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());

    // A body that never arrives in full does not stall anyone else.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /v1/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"input\"",
    )
    .unwrap();
    let t = Instant::now();
    assert_eq!(post_json(&infer, &request(1, 0)).status, 200);
    assert!(t.elapsed() < Duration::from_secs(10));
    drop(slow);

    // Still alive and counting.
    let m = String::from_utf8(get(&format!("{}/metrics", srv.url)).body).unwrap();
    for reason in [
        "malformed_json",
        "shape",
        "range",
        "body_too_large",
        "batch_too_large",
    ] {
        assert!(
            m.contains(&format!(
                "verinfer_rejected_requests_total{{reason=\"{reason}\"}}"
            )),
            "{reason}: {m}"
        );
    }
    assert!(m.contains("status=\"422\""));
}

/// Sends `bytes` on a new connection and reads until the server closes it (a read that waits
/// over a minute fails the test: the server was expected to close the connection).
fn raw_exchange(addr: &str, bytes: &[u8]) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    conn.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server kept the connection open ({e}) after: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn idle_connections_and_half_sent_heads_are_closed() {
    let mut srv = Server::start(&["--header-timeout-secs", "1", "--workers", "1"]);
    let addr = srv.url.trim_start_matches("http://").to_string();
    // A connection that never sends anything, one that stops inside its head, and one idle
    // after a first answer (keep-alive): the server closes each (where it used to keep them
    // open for good, each holding a file descriptor).
    assert_eq!(raw_exchange(&addr, b""), "");
    let half = b"POST /v1/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";
    assert!(!raw_exchange(&addr, half).starts_with("HTTP/1.1 200"));
    let kept = raw_exchange(&addr, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    assert!(kept.starts_with("HTTP/1.1 200"), "{kept}");
    // A half-sent head no longer keeps a stopping server alive for its whole grace period
    // (300 s by default): SIGTERM, and the server exits once the head times out.
    let mut stuck = TcpStream::connect(&addr).unwrap();
    stuck.write_all(half).unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &srv.pid()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(srv.wait_exit(Duration::from_secs(120)), Some(0));
    drop(stuck);
}

/// Reads `verinfer_queue_depth` from `/metrics`.
fn queue_depth(url: &str) -> Option<u64> {
    let m = String::from_utf8(get(&format!("{url}/metrics")).body).ok()?;
    m.lines()
        .find_map(|l| l.strip_prefix("verinfer_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn full_queue_gets_503_and_shutdown_finishes_the_proof_in_flight() {
    // One worker, no waiting room: a second proof while one runs is refused. The first proof
    // is the largest batch the body limit allows (16,384 digits, about a second of proving),
    // so the probe, sent as soon as `/metrics` shows that proof accepted, arrives while it
    // still holds the only permit. If it does not, the probe is answered 200 and the test
    // fails: its premise is checked, never assumed or skipped.
    let mut srv = Server::start(&[
        "--workers",
        "1",
        "--queue",
        "0",
        "--max-batch",
        "16384",
        "--max-body-bytes",
        "8000000",
        // Enough for 16,384 digits whatever the machine's memory (the default is half of it).
        "--max-memory",
        "2G",
    ]);
    let infer = format!("{}/v1/infer", srv.url);
    let big = request(16384, 0);
    let in_flight = {
        let infer = infer.clone();
        std::thread::spawn(move || post_json(&infer, &big))
    };
    // The queue-depth gauge counts accepted proofs: it reads 1 from the moment the big request
    // holds the permit until its proof is done. Wait for that signal (no deadline: the wait
    // ends either way, because the request itself ends).
    while queue_depth(&srv.url) != Some(1) {
        assert!(
            !in_flight.is_finished(),
            "the big proof was never seen in flight: {:?}",
            in_flight.join().map(|r| r.status)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = post_json(&infer, &request(1, 0));
    assert_eq!(
        r.status,
        503,
        "the probe was not refused although the only worker was busy: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(r.json()["error"].as_str().unwrap().contains("queue"));
    // Health and the model description are not stalled by the proof.
    assert_eq!(get(&format!("{}/healthz", srv.url)).status, 200);
    assert_eq!(get(&format!("{}/v1/model", srv.url)).status, 200);
    let m = String::from_utf8(get(&format!("{}/metrics", srv.url)).body).unwrap();
    assert!(
        m.contains("verinfer_rejected_requests_total{reason=\"queue_full\"} 1"),
        "{m}"
    );

    // SIGTERM while the proof runs: it still gets its answer, then the server exits cleanly.
    let kill = Command::new("kill")
        .args(["-TERM", &srv.pid()])
        .status()
        .unwrap();
    assert!(kill.success());
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["output"]["shape"], serde_json::json!([16384, 10]));
    assert_eq!(srv.wait_exit(Duration::from_secs(30)), Some(0));
    let log = srv.stderr.lock().unwrap().clone();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
}

#[test]
fn sixteen_concurrent_clients_all_verify() {
    let d = Dir::new("concurrent");
    let srv = Server::start(&["--workers", "2", "--queue", "16"]);
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut children: Vec<(usize, Child)> = (0..16)
        .map(|i| {
            let input = d.input(&format!("in{i}.json"), 1 + i % 2, i * 7);
            let child = Command::new(BIN)
                .args(["client", "--server", &srv.url, "--model", MODEL])
                .args(["--input", s(&input)])
                .args(["--output", s(&d.file(&format!("out{i}.json")))])
                .env("RAYON_NUM_THREADS", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    let mut done = 0;
    while !children.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (i, mut child) in children {
            match child.try_wait().unwrap() {
                Some(status) => {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    assert_eq!(status.code(), Some(0), "client {i}: {err}");
                    let out: serde_json::Value = serde_json::from_str(
                        &std::fs::read_to_string(d.file(&format!("out{i}.json"))).unwrap(),
                    )
                    .unwrap();
                    assert_eq!(out["shape"], serde_json::json!([1 + i % 2, 10]));
                    done += 1;
                }
                None => still.push((i, child)),
            }
        }
        children = still;
        std::thread::sleep(Duration::from_millis(20));
    }
    for (_, mut child) in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(done, 16, "every client finished in time");
    let m = String::from_utf8(get(&format!("{}/metrics", srv.url)).body).unwrap();
    assert!(m.contains("verinfer_proved_items_total 24"), "{m}");
}

#[test]
fn the_client_does_not_follow_redirects() {
    let d = Dir::new("redirect");
    let input = d.input("one.json", 1, 0);
    // Where the redirect points: it must never see a connection.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_url = format!("http://{}", target.local_addr().unwrap());
    let redirector = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", redirector.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in redirector.incoming().take(10) {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 302 Found\r\nlocation: {target_url}/v1/model\r\ncontent-length: 0\r\n\
                 connection: close\r\n\r\n"
            );
        }
    });
    // (--timeout-secs only shortens the failure of a client that follows the redirect: the
    // target accepts the connection but never answers.)
    let o = client(&url, &input, &["--timeout-secs", "30"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("302") && err.contains("redirect"), "{err}");
    // The client has exited: any connection it made to the target would be queued by now.
    target.set_nonblocking(true).unwrap();
    let accepted = target.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the client followed the redirect: {accepted:?}"
    );
}

/// Peak resident memory of a process, in bytes (`VmHWM` of /proc/PID/status).
#[cfg(target_os = "linux")]
fn peak_rss(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn thirty_two_large_bodies_at_once_stay_within_memory() {
    // Room for all 32 at once (the worst case: none refused with 503 before its body).
    let srv = Server::start(&["--workers", "2", "--queue", "30"]);
    let addr = srv.url.trim_start_matches("http://").to_string();
    // {"input": [[0],[0],…]} just under the default 8 MiB body limit: the wrong shape for the
    // digits model, so each answer is a 422, but each body is read and parsed.
    let limit = 8 << 20;
    let head = "{\"input\": [";
    let n = (limit - head.len() - 2) / 4;
    let mut body = String::with_capacity(limit);
    body.push_str(head);
    for i in 0..n {
        body.push_str(if i == 0 { "[0]" } else { ",[0]" });
    }
    body.push_str("]}");
    assert!(body.len() <= limit);
    let request = Arc::new(format!(
        "POST /v1/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            std::thread::spawn(move || raw_exchange(&addr, request.as_bytes()))
        })
        .collect();
    for c in clients {
        let answer = c.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 422"), "{answer:.200}");
    }
    // The bodies themselves are 256 MiB in all; parsing them into JSON trees first took the
    // server past 3 GB. Shape-aware parsing keeps only numbers (here none).
    let peak = peak_rss(&srv.pid());
    eprintln!("server peak RSS: {} MiB", peak >> 20);
    assert!(peak < 640 << 20, "server peak RSS {} MiB", peak >> 20);
}

#[test]
fn the_memory_budget_lowers_the_batch_limit() {
    // The same budget as the CLI test: 512 digits fit in 100 MiB, so --max-batch 4096 is
    // lowered to 512 and announced; a batch of 513 is refused before it is proved.
    let srv = Server::start(&["--max-batch", "4096", "--max-memory", "100M"]);
    let info = get(&format!("{}/v1/model", srv.url)).json();
    assert_eq!(info["limits"]["max_batch"], 512);
    let infer = format!("{}/v1/infer", srv.url);
    assert_eq!(post_json(&infer, &request(513, 0)).status, 413);
    assert_eq!(post_json(&infer, &request(512, 0)).status, 200);
    let log = srv.stderr.lock().unwrap().clone();
    assert!(log.contains("lowered from 4096 to 512"), "{log}");
}
