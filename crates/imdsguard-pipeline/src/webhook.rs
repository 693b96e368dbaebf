//! The webhook sink of `watch`: every new alert is queued in the store's outbox in the same
//! transaction that stores it; this thread POSTs each one (its JSON, `Content-Type:
//! application/json`) and takes it out of the outbox on a 2xx answer. A failure (no connection, a
//! timeout, any other status) is retried with exponential backoff — 1 s, 2 s, 4 s … at most 5
//! minutes apart — for as long as it takes, across restarts: delivery is at least once, and the
//! alert's `id` lets the receiver drop a repeat.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
#[cfg(feature = "webhook")]
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
#[cfg(feature = "webhook")]
use std::time::Duration;

#[cfg(feature = "webhook")]
use imdsguard_store::Store;

/// The backoff after `attempts` failures.
#[cfg_attr(not(feature = "webhook"), allow(dead_code))]
pub(crate) fn backoff_ms(attempts: u32) -> i64 {
    1000i64.saturating_mul(1i64 << attempts.min(9)).min(300_000)
}

#[cfg(feature = "webhook")]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Starts the sender; it stops when `stop` is set, after one last pass over what is due (so a
/// clean shutdown delivers what it can; the rest waits in the outbox for the next run). What it
/// has to say (a receiver failing, the store) goes to `notes`, once per different message.
pub(crate) fn start(
    db: PathBuf,
    url: String,
    stop: Arc<AtomicBool>,
    notes: Sender<String>,
) -> Result<JoinHandle<()>, crate::PipelineError> {
    #[cfg(not(feature = "webhook"))]
    {
        let _ = (db, url, stop, notes);
        Err(crate::PipelineError::Webhook(
            "this imdsguard was built without the `webhook` feature".into(),
        ))
    }
    #[cfg(feature = "webhook")]
    {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(crate::PipelineError::Webhook(format!(
                "--webhook {url:?}: give an http:// or https:// URL"
            )));
        }
        let store = Store::open(&db).map_err(crate::PipelineError::store(format!(
            "cannot use the store {} for the webhook",
            db.display()
        )))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(std::thread::spawn(move || {
            run(store, agent, &url, &stop, &notes)
        }))
    }
}

#[cfg(feature = "webhook")]
fn run(mut store: Store, agent: ureq::Agent, url: &str, stop: &AtomicBool, notes: &Sender<String>) {
    let note = |m: String| {
        let _ = notes.send(m);
    };
    let mut last_error = String::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let due = match store.due(url, now_ms(), 100) {
            Ok(d) => d,
            Err(e) => {
                note(format!("webhook: {e}"));
                Vec::new()
            }
        };
        for p in &due {
            let result = agent
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Imdsguard-Alert-Id", p.alert_id.as_str())
                .send(p.json.as_str());
            let outcome = match result {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
                Err(e) => Err(e.to_string()),
            };
            let stored = match outcome {
                Ok(()) => store.delivered(&p.alert_id, url),
                Err(why) => {
                    if why != last_error {
                        note(format!(
                            "webhook: {url}: {why}; retrying with backoff (alerts wait in the store)"
                        ));
                        last_error = why.clone();
                    }
                    let next = now_ms() + backoff_ms(p.attempts);
                    store.retry_at(&p.alert_id, url, next, &why)
                }
            };
            if let Err(e) = stored {
                note(format!("webhook: {e}"));
            }
            if stop.load(Ordering::Relaxed) && !stopping {
                break;
            }
        }
        if stopping {
            return;
        }
        if due.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let got: Vec<i64> = (0..12).map(backoff_ms).collect();
        assert_eq!(
            got,
            [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000, 300000]
        );
    }
}
