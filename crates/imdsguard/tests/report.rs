//! The HTML page of a run (`hunt --html`, `imdsguard report`): what it counts against what the
//! hunt printed, what it shows of records an attacker wrote, and that it fetches nothing — in
//! headless Chromium where the machine has it (CI installs it).

mod browser;

use std::path::Path;
use std::process::Command;

/// `hunt --html` over the bundled samples: the page and the JSON lines the hunt printed.
fn hunt_page(dir: &Path, inputs: &[&Path]) -> (String, Vec<serde_json::Value>) {
    let page = dir.join("hunt.html");
    let mut cmd = Command::new(browser::exe());
    cmd.args(["hunt", "--output", "jsonl", "--db"])
        .arg(dir.join("store.db"))
        .arg("--html")
        .arg(&page)
        .args(inputs);
    let out = cmd.output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (std::fs::read_to_string(page).unwrap(), printed)
}

/// Elements and attributes of the page's own markup (log text is escaped, so every tag is
/// the page's) that would make a browser fetch something or run something.
fn loads_or_runs(page: &str) -> Vec<String> {
    let tag = regex::Regex::new(r"<([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>").unwrap();
    let bad_attr = regex::Regex::new(
        r#"(?i)(^|\s)(on[a-z]+\s*=|(src|href|action|srcset|xlink:href|formaction|poster|data)\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:|//))"#,
    )
    .unwrap();
    let forbidden = [
        "script", "img", "iframe", "object", "embed", "link", "audio", "video", "source", "image",
        "use", "form", "base", "frame",
    ];
    tag.captures_iter(page)
        .filter(|c| {
            forbidden.contains(&c[1].to_ascii_lowercase().as_str()) || bad_attr.is_match(&c[2])
        })
        .map(|c| c[0].to_owned())
        .collect()
}

#[test]
fn the_page_counts_what_the_hunt_found_and_shows_its_incidents() {
    let dir = browser::temp_dir("report", "samples");
    let (page, printed) = hunt_page(&dir, &[&browser::samples()]);
    let alerts = printed.iter().filter(|v| v["type"] == "alert").count();
    let incidents: Vec<&str> = printed
        .iter()
        .filter_map(|v| v["incident_id"].as_str())
        .collect();
    assert!(alerts > 20 && !incidents.is_empty());
    assert!(
        page.contains(&format!("<b>{alerts}</b>alerts")),
        "alert count"
    );
    assert!(page.contains(&format!("<b>{}</b>incidents", incidents.len())));
    for id in &incidents {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "{id} is not on the page"
        );
    }
    let critical = printed
        .iter()
        .filter(|v| v["severity"] == "critical" && v["type"] == "alert")
        .count();
    assert!(page.contains(&format!("<b>{critical}</b>critical")));
    for section in [
        "summary",
        "run",
        "detections",
        "incidents",
        "targets",
        "who",
        "alerts",
    ] {
        assert!(
            page.contains(&format!("<section id=\"{section}\">")),
            "{section}"
        );
    }
    // The playbook's answers and containment of each incident.
    assert!(page.contains(
        "Are access attempts to the metadata API coming from authorized applications or systems?"
    ));
    assert!(page.contains("<h3>Containment</h3>"));
    assert!(page.contains("default-src 'none'"));
    assert!(
        loads_or_runs(&page).is_empty(),
        "{:?}",
        loads_or_runs(&page)
    );
    // From the store the hunt wrote: the same alerts and incidents.
    let stored = dir.join("store.html");
    let out = Command::new(browser::exe())
        .args(["report", "--db"])
        .arg(dir.join("store.db"))
        .arg("-o")
        .arg(&stored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_store = std::fs::read_to_string(&stored).unwrap();
    assert!(from_store.contains(&format!("<b>{alerts}</b>alerts")));
    assert!(from_store.contains(&format!("<b>{}</b>incidents", incidents.len())));
    for id in &incidents {
        assert!(from_store.contains(&format!("id=\"{id}\"")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Log lines are the attacker's words: a request whose URL and user agent carry markup is
/// shown as text.
#[test]
fn markup_in_a_record_is_shown_as_text() {
    let dir = browser::temp_dir("report", "xss");
    let log = dir.join("access.log");
    std::fs::write(
        &log,
        "203.0.113.9 - - [20/Nov/2025:10:00:00 +0000] \"GET /fetch?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/%3Cscript%3E HTTP/1.1\" 200 1312 \"<script>alert(1)</script>\" \"<img src=x onerror=alert(2)>\"\n\
         203.0.113.9 - - [20/Nov/2025:10:00:01 +0000] \"GET /fetch?url=http://169.254.169.254/latest/meta-data/<svg/onload=alert(3)> HTTP/1.1\" 200 10 \"-\" \"curl/8\"\n",
    )
    .unwrap();
    let (page, printed) = hunt_page(&dir, &[&log]);
    assert!(
        printed.iter().any(|v| v["type"] == "alert"),
        "the requests alert"
    );
    assert!(
        loads_or_runs(&page).is_empty(),
        "{:?}",
        loads_or_runs(&page)
    );
    assert!(!page.contains("<svg/onload"));
    assert!(
        page.contains("&lt;svg/onload=alert(3)&gt;"),
        "the URL is shown, escaped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Headless Chromium (through chromedriver) opens the page: it renders the counts, and the
/// only request it makes is for the page itself; a screenshot is kept as an artifact.
#[test]
fn chromium_renders_the_page_and_it_asks_for_nothing() {
    if !(browser::have("chromium") && browser::have("chromedriver")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run installs chromium and chromium-driver"
        );
        eprintln!("skipped: chromium or chromedriver is not installed");
        return;
    }
    let dir = browser::temp_dir("report", "browser");
    let (_, printed) = hunt_page(&dir, &[&browser::samples()]);
    let alerts = printed.iter().filter(|v| v["type"] == "alert").count();
    let url = format!("file://{}", dir.join("hunt.html").display());
    let d = browser::Driver::start(&dir);
    d.go(&url);
    assert_eq!(d.text("#summary .tile b"), alerts.to_string());
    assert!(d.find("#incidents details.incident", 2).is_some());
    // Anything the page would fetch (a style, a font, an image) is asked for as it renders.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The browser's own pages (its new-tab page) ask for things too; this page's requests are
    // those whose document is it.
    let asked: Vec<String> = d
        .requests()
        .into_iter()
        .filter(|(doc, _)| doc == &url)
        .map(|(_, u)| u)
        .collect();
    assert_eq!(
        asked,
        std::slice::from_ref(&url),
        "the page asked for more than itself"
    );
    d.screenshot("report-screenshots", "hunt-samples");
    // On a phone: nothing wider than the screen (no sideways scrolling).
    d.assert_fits(390, "the page");
    d.screenshot("report-screenshots", "hunt-samples-phone");
    let _ = std::fs::remove_dir_all(&dir);
}
