//! Where shown alerts go: the caller's output (a printed format, a test's list). The store and
//! the webhook are the pipeline's own sinks; this is the one the caller brings.

use std::io;

use imdsguard_correlate::Incident;
use imdsguard_rules::Alert;

/// The caller's output. `hunt` hands it every alert at or above the minimum severity in output
/// order, then the incidents at or above it; `watch` hands it each such alert once it is
/// committed to the store and new there, and flushes after every transaction.
pub trait AlertSink {
    /// One alert.
    fn alert(&mut self, alert: &Alert) -> io::Result<()>;

    /// The incidents, at the end of a `hunt`.
    fn incidents(&mut self, _incidents: &[&Incident]) -> io::Result<()> {
        Ok(())
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

    fn incidents(&mut self, incidents: &[&Incident]) -> io::Result<()> {
        self.incidents
            .extend(incidents.iter().map(|i| (*i).clone()));
        Ok(())
    }
}
