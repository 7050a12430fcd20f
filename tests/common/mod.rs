//! Shared helpers of the end-to-end tests: running the binary, scratch folders, digits inputs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `verinfer` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_verinfer");
/// The committed digits models and test set.
pub const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/digits");

/// A file of `models/digits/`.
pub fn model(name: &str) -> PathBuf {
    Path::new(MODELS).join(name)
}

/// Runs the binary to completion (2 prover threads).
pub fn verinfer(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run verinfer")
}

/// Runs the binary like [`verinfer`], killing it if it is still running after `guard`: a
/// hang (e.g. blocked on a FIFO) then fails the test instead of stalling the suite. The guard
/// only turns a hang into a failure; a correct run exits long before it.
pub fn verinfer_guarded(args: &[&str], guard: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run verinfer");
    let deadline = Instant::now() + guard;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "verinfer {args:?} hung for {guard:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}

/// Makes a named pipe (FIFO) at `path` with the system's `mkfifo`.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The exit code (the process must not die of a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path as `&str` for command lines.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The held-out digits images, `[N][1][8][8]` JSON values.
pub fn images() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(model("test_set.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["images"].as_array().unwrap().clone()
}

/// Held-out digits `skip..skip+n` as a JSON input `[n][1][8][8]` (cycling through the 360
/// images when more are asked for).
pub fn digits_json(n: usize, skip: usize) -> String {
    let imgs: Vec<_> = images().into_iter().cycle().skip(skip).take(n).collect();
    serde_json::to_string(&imgs).unwrap()
}

/// A scratch folder under the system temp dir, removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    /// A fresh, empty folder named after the test and the process.
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("verinfer-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// A path inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `bytes` to `name` and returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.file(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Writes held-out digits `skip..skip+n` as a JSON input file.
    pub fn input(&self, name: &str, n: usize, skip: usize) -> PathBuf {
        self.write(name, digits_json(n, skip))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
