//! The webhook sink of `watch`: every new alert is queued in the store's outbox, under the
//! destination's name, in the same transaction that stores it; this thread POSTs each one (its
//! JSON, `Content-Type: application/json`) and takes it out of the outbox on a 2xx answer. A
//! failure (no connection, a timeout, any other status) is retried with exponential backoff —
//! 1 s, 2 s, 4 s … at most 5 minutes apart — for as long as it takes, across restarts: delivery
//! is at least once, and the alert's `id` lets the receiver drop a repeat. The URL's secrets
//! are never shown nor stored (see [`crate::Webhook`]).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
#[cfg(feature = "webhook")]
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use imdsguard_store::Store;

use crate::destination::name_of_stored;
use crate::{PipelineError, Webhook};

/// How long a stopping `watch` waits for the sender's last pass: a receiver that hangs or
/// half-closes does not hold the stop longer.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long one delivery may take.
#[cfg_attr(not(feature = "webhook"), allow(dead_code))]
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Brings the outbox to destination names: entries an earlier imdsguard stored under a full URL
/// (its secret with it) move to that URL's name, their last errors dropped. Then says what
/// waits for a destination other than `current` (a changed URL or name), so that no backlog is
/// stranded unsaid.
pub(crate) fn adopt_outbox(
    store: &mut Store,
    current: Option<&Webhook>,
) -> Result<Vec<String>, PipelineError> {
    let targets = store
        .outbox_targets()
        .map_err(PipelineError::store("reading the webhook's outbox"))?;
    let mut notes = Vec::new();
    for (target, n) in targets {
        let name = name_of_stored(&target);
        if name != target {
            store
                .rename_outbox_target(
                    &target,
                    &name,
                    Some("(stored before destinations had names)"),
                )
                .map_err(PipelineError::store("renaming an outbox destination"))?;
        }
        if current.is_none_or(|w| w.name() != name) {
            notes.push(format!(
                "webhook: {n} alerts wait in the store for {name:?}, which is not this run's \
                 webhook; give --webhook with its URL (and --webhook-name {name:?} if it had a \
                 name) to deliver them"
            ));
        }
    }
    Ok(notes)
}

/// The running sender.
pub(crate) struct Delivery {
    done: Receiver<()>,
}

impl Delivery {
    /// Whether the sender finished its last pass within `grace` of the stop; if not, it is left
    /// to end with the process (what it did not deliver waits in the outbox).
    pub(crate) fn stopped_within(self, grace: Duration) -> bool {
        !matches!(
            self.done.recv_timeout(grace),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        )
    }
}

/// Starts the sender; it stops when `stop` is set, after one last pass over what is due (so a
/// clean shutdown delivers what it can; the rest waits in the outbox for the next run). What it
/// has to say (a receiver failing, the store) goes to `notes`, once per different message, with
/// the URL's secrets masked.
pub(crate) fn start(
    db: PathBuf,
    hook: Webhook,
    stop: Arc<AtomicBool>,
    notes: Sender<String>,
) -> Result<Delivery, PipelineError> {
    #[cfg(not(feature = "webhook"))]
    {
        let _ = (db, hook, stop, notes);
        Err(PipelineError::Webhook(
            "this imdsguard was built without the `webhook` feature".into(),
        ))
    }
    #[cfg(feature = "webhook")]
    {
        let store = Store::open(&db).map_err(PipelineError::store(format!(
            "cannot use the store {} for the webhook",
            imdsguard_store::shown(&db)
        )))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            run(store, agent, &hook, &stop, &notes);
            let _ = done_tx.send(());
        });
        Ok(Delivery { done })
    }
}

#[cfg(feature = "webhook")]
fn run(
    mut store: Store,
    agent: ureq::Agent,
    hook: &Webhook,
    stop: &AtomicBool,
    notes: &Sender<String>,
) {
    let note = |m: String| {
        let _ = notes.send(hook.redact(&m));
    };
    let name = hook.name();
    let mut last_error = String::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let due = match store.due(name, now_ms(), 100) {
            Ok(d) => d,
            Err(e) => {
                note(format!("webhook: {e}"));
                Vec::new()
            }
        };
        for p in &due {
            let result = agent
                .post(hook.url())
                .header("Content-Type", "application/json")
                .header("X-Imdsguard-Alert-Id", p.alert_id.as_str())
                .send(p.json.as_str());
            let outcome = match result {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
                // ureq names its timer ("timeout: global"); the receiver's silence is the news.
                Err(ureq::Error::Timeout(_)) => {
                    Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))
                }
                Err(e) => Err(hook.redact(&e.to_string())),
            };
            let stored = match outcome {
                Ok(()) => store.delivered(&p.alert_id, name),
                Err(why) => {
                    if why != last_error {
                        note(format!(
                            "webhook: {}: {why}; retrying with backoff (alerts wait in the store)",
                            hook.shown()
                        ));
                        last_error = why.clone();
                    }
                    let next = now_ms() + backoff_ms(p.attempts);
                    store.retry_at(&p.alert_id, name, next, &why)
                }
            };
            if let Err(e) = stored {
                note(format!("webhook: {e}"));
            }
            // A stop that comes during a pass ends it at the next alert.
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
