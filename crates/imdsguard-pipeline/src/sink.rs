//! Where shown alerts go: the caller's output (a printed format, a test's list). The store and
//! the webhook are the pipeline's own sinks; this is the one the caller brings.

use std::io;

use imdsguard_correlate::Incident;
use imdsguard_rules::Alert;

/// The caller's output. `hunt` hands it every alert at or above the minimum severity in output
/// order, then the incidents at or above it one by one (by first alert time, then host), then
/// flushes; `watch` hands it each such alert once it is
/// committed to the store and new there, and flushes after every transaction.
pub trait AlertSink {
    /// One alert.
    fn alert(&mut self, alert: &Alert) -> io::Result<()>;

    /// Whether it shows incidents: when not, a hunt keeps none for it (it still counts and
    /// stores them).
    fn wants_incidents(&self) -> bool {
        true
    }

    /// One incident, at the end of a `hunt`, after every alert.
    fn incident(&mut self, _incident: &Incident) -> io::Result<()> {
        Ok(())
    }

    /// One incident as the JSON `serde_json` writes for it, for a sink that writes it as it
    /// is: returns whether it did (when not, [`AlertSink::incident`] follows with the parsed
    /// incident).
    fn incident_json(&mut self, _json: &[u8]) -> io::Result<bool> {
        Ok(false)
    }

    /// Everything handed so far is to be written now.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps what it is given, for tests and callers that post-process.
#[derive(Debug, Default)]
pub struct Collect {
    /// The alerts, in order.
    pub alerts: Vec<Alert>,
    /// The incidents.
    pub incidents: Vec<Incident>,
}

impl AlertSink for Collect {
    fn alert(&mut self, alert: &Alert) -> io::Result<()> {
        self.alerts.push(alert.clone());
        Ok(())
    }

    fn incident(&mut self, incident: &Incident) -> io::Result<()> {
        self.incidents.push(incident.clone());
        Ok(())
    }
}
