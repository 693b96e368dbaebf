//! What the report's and the console's tests share: the binary, the bundled samples, a
//! scratch directory, one HTTP/1.1 exchange, and a WebDriver session on chromedriver driving
//! headless Chromium.
// Each test file uses part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_imdsguard")
}

/// The bundled sample logs.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/logs")
}

/// A new, empty scratch directory for one test.
pub fn temp_dir(suite: &str, test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("imdsguard-{suite}-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One HTTP/1.1 exchange: status, headers (lowercased names), body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Headers, then the body by its length (or its chunks): a server may keep the connection
    // open whatever the request said.
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = Vec::new();
    if let Some(len) = header(&headers, "content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        r.read_exact(&mut body).unwrap();
    } else if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
    } else if method != "HEAD" && status != 204 && status != 304 {
        r.read_to_end(&mut body).unwrap();
    }
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A WebDriver session on chromedriver, spoken over HTTP.
pub struct Driver {
    child: Child,
    addr: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            "",
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    pub fn start(dir: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The performance log lists every request the page makes.
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"goog:loggingPrefs": {"performance": "ALL"}, "goog:chromeOptions": {"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400",
            format!("--user-data-dir={}", dir.join("chrome").display())
        ]}}}});
        let mut d = Driver {
            child,
            addr,
            session: String::new(),
        };
        let v = d.call("POST", "/session", Some(caps));
        d.session = v["sessionId"].as_str().expect("a session").to_owned();
        d
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (_, _, text) = http(
            &self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
        v["value"].clone()
    }

    pub fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn go(&self, url: &str) {
        self.call(
            "POST",
            &self.s("/url"),
            Some(serde_json::json!({"url": url})),
        );
    }

    /// The element matching a CSS selector, waiting up to `secs` for it.
    pub fn find(&self, css: &str, secs: u64) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.call(
                "POST",
                &self.s("/element"),
                Some(serde_json::json!({"using": "css selector", "value": css})),
            );
            if let Some(id) = v
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("element-")))
                .and_then(|(_, v)| v.as_str())
            {
                return Some(id.to_owned());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn el(&self, css: &str) -> String {
        self.find(css, 5).unwrap_or_else(|| {
            let url = self.call("GET", &self.s("/url"), None);
            let source = self.call("GET", &self.s("/source"), None);
            let text = source.as_str().unwrap_or_default();
            panic!("no {css} on {url}: {}", &text[..text.len().min(2000)])
        })
    }

    pub fn click(&self, css: &str) {
        let e = self.el(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/click")),
            Some(serde_json::json!({})),
        );
    }

    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.el(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(serde_json::json!({"text": text})),
        );
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.el(css);
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The requests the browser sent since the last call, each as (the document that asked,
    /// the URL asked for).
    pub fn requests(&self) -> Vec<(String, String)> {
        let v = self.call(
            "POST",
            &self.s("/se/log"),
            Some(serde_json::json!({"type": "performance"})),
        );
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|m| {
                let p = &m["message"]["params"];
                Some((
                    p["documentURL"].as_str()?.to_owned(),
                    p["request"]["url"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// The value of a JavaScript expression, evaluated by the driver (not by the page, whose
    /// policy may forbid scripts).
    pub fn eval(&self, expr: &str) -> serde_json::Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(serde_json::json!({"script": format!("return {expr};"), "args": []})),
        )
    }

    /// The window's size in CSS pixels.
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(serde_json::json!({"width": width, "height": height})),
        );
    }

    /// At `width` CSS pixels (a phone's), nothing is wider than the screen: no sideways
    /// scrolling. Names the elements that stick out when something is.
    pub fn assert_fits(&self, width: u32, what: &str) {
        self.resize(width, 844);
        let (page_w, view_w) = (
            self.eval("document.documentElement.scrollWidth"),
            self.eval("window.innerWidth"),
        );
        assert!(
            page_w.as_u64().unwrap() <= view_w.as_u64().unwrap(),
            "{what} is {page_w} px wide on a {view_w} px screen: {}",
            self.eval("Array.from(document.querySelectorAll('*')).filter(e => e.scrollWidth > window.innerWidth || e.getBoundingClientRect().right > window.innerWidth).slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + e.scrollWidth + '/' + Math.round(e.getBoundingClientRect().right)).join(', ')")
        );
    }

    /// A screenshot, kept in `target/DIR/NAME.png`.
    pub fn screenshot(&self, dir: &str, name: &str) {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target")
            .join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
