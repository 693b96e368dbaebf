//! What a read found, for the closing summary: files, events by format, skipped records by
//! reason (the first few in full), times read as local or unreadable; and the normalization of
//! each event's time and host that feeds those counts.

use std::collections::BTreeMap;

use imdsguard_event::{
    format_time_ms, normalize_host_name, parse_time_in, parse_time_ms, Clock, Event, Format,
    LocalZone, SourceRef,
};

use crate::formats;
use crate::{ReadOptions, SkipReason, Skipped};

/// What a read found, for the closing summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Files read (standard input counts as one).
    pub files: u64,
    /// Events decoded, by format.
    pub events: BTreeMap<Format, u64>,
    /// Records skipped, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// The first skipped records, in full.
    pub first_skips: Vec<Skipped>,
    /// Inputs that could not be read at all.
    pub input_errors: Vec<String>,
    /// Files in no supported format, with the formats tried.
    pub unrecognized_files: Vec<String>,
    /// Events whose time was local with no zone and no `timezone` was given: read as UTC.
    pub local_times: BTreeMap<Format, u64>,
    /// Events whose time field could not be read as a time (they are not correlated).
    pub unreadable_times: BTreeMap<Format, u64>,
    /// The first of those, with the text the record has.
    pub first_unreadable_times: Vec<(SourceRef, String)>,
    /// Records that were not valid UTF-8, read with U+FFFD in place of each invalid byte.
    pub lossy: u64,
    /// The earliest and latest event time read (milliseconds since the epoch, UTC).
    pub first_ms: Option<i64>,
    /// See `first_ms`.
    pub last_ms: Option<i64>,
    /// What a directory walk passed over on purpose (hidden entries), one line per folder.
    pub passed_over: Vec<String>,
    /// The first of those.
    pub first_lossy: Vec<SourceRef>,
}

/// What normalizing an event's time found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeNote {
    /// Read (or the record has no time field).
    Fine,
    /// Local time with no zone and none given: read as UTC.
    LocalAsUtc,
    /// Not a time.
    Unreadable,
}

/// Puts an event's time and host in the one form every output and every state uses: the time UTC
/// RFC 3339 with milliseconds (a zone-less local time read in `zone`; one that cannot be read is
/// dropped and counted), the host case-folded without a trailing dot.
pub(crate) fn normalize_event(
    e: &mut Event,
    zone: Option<&LocalZone>,
) -> (TimeNote, Option<String>, Option<i64>) {
    normalize_host_name(&mut e.host);
    let Some(raw) = e.time.take() else {
        return (TimeNote::Fine, None, None);
    };
    let (ms, note) = match e.clock {
        Clock::Utc => (parse_time_ms(&raw), TimeNote::Fine),
        Clock::Local => match zone {
            Some(z) => (parse_time_in(&raw, Some(z)), TimeNote::Fine),
            None => (parse_time_ms(&raw), TimeNote::LocalAsUtc),
        },
    };
    e.clock = Clock::Utc;
    match ms {
        Some(ms) => {
            e.time = Some(format_time_ms(ms));
            (note, None, Some(ms))
        }
        None => (TimeNote::Unreadable, Some(raw), None),
    }
}

impl Summary {
    /// Events decoded in all.
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }

    /// Records skipped in all.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Normalizes a decoded event's time, counts it and hands it on.
    pub(crate) fn event(
        &mut self,
        mut event: Event,
        opts: &ReadOptions,
        on_event: &mut dyn FnMut(Event),
    ) {
        let (note, raw, ms) = normalize_event(&mut event, opts.timezone.as_ref());
        self.count(
            event.format,
            note,
            ms,
            raw.map(|r| (event.source.clone(), r)),
            opts.keep_skips,
        );
        on_event(event);
    }

    /// Counts one event of `format` and what its time was.
    pub(crate) fn count(
        &mut self,
        format: Format,
        note: TimeNote,
        time_ms: Option<i64>,
        unreadable: Option<(SourceRef, String)>,
        keep: usize,
    ) {
        *self.events.entry(format).or_default() += 1;
        if let Some(t) = time_ms {
            self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
            self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        }
        match note {
            TimeNote::Fine => {}
            TimeNote::LocalAsUtc => *self.local_times.entry(format).or_default() += 1,
            TimeNote::Unreadable => {
                *self.unreadable_times.entry(format).or_default() += 1;
                if let Some(u) = unreadable.filter(|_| self.first_unreadable_times.len() < keep) {
                    self.first_unreadable_times.push(u);
                }
            }
        }
    }

    /// Counts and hands on a decoder's event, or records why it gave none.
    pub(crate) fn decoded(
        &mut self,
        result: Result<Event, formats::Skip>,
        source: SourceRef,
        opts: &ReadOptions,
        on_event: &mut dyn FnMut(Event),
    ) {
        match result {
            Ok(event) => self.event(event, opts, on_event),
            Err((reason, detail)) => self.skip(
                Skipped {
                    source,
                    reason,
                    detail,
                },
                opts.keep_skips,
            ),
        }
    }

    /// A record read lossily (not valid UTF-8).
    pub(crate) fn lossy(&mut self, at: SourceRef, keep: usize) {
        self.lossy += 1;
        if self.first_lossy.len() < keep {
            self.first_lossy.push(at);
        }
    }

    /// `n` more records skipped for `reason`, beyond those recorded in full.
    pub(crate) fn count_skips(&mut self, reason: SkipReason, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason).or_default() += n;
        }
    }

    pub(crate) fn skip(&mut self, s: Skipped, keep: usize) {
        *self.skipped.entry(s.reason).or_default() += 1;
        if self.first_skips.len() < keep {
            self.first_skips.push(s);
        }
    }
}

impl Summary {
    /// Adds what another read found (a file read on a worker thread), keeping at most `keep`
    /// skipped records in full.
    pub(crate) fn merge(&mut self, other: Summary, keep: usize) {
        self.files += other.files;
        self.passed_over.extend(other.passed_over);
        for t in [other.first_ms, other.last_ms].into_iter().flatten() {
            self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
            self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        }
        for (f, n) in other.events {
            *self.events.entry(f).or_default() += n;
        }
        for (r, n) in other.skipped {
            *self.skipped.entry(r).or_default() += n;
        }
        for s in other.first_skips {
            if self.first_skips.len() < keep {
                self.first_skips.push(s);
            }
        }
        self.input_errors.extend(other.input_errors);
        self.unrecognized_files.extend(other.unrecognized_files);
        for (f, n) in other.local_times {
            *self.local_times.entry(f).or_default() += n;
        }
        for (f, n) in other.unreadable_times {
            *self.unreadable_times.entry(f).or_default() += n;
        }
        for u in other.first_unreadable_times {
            if self.first_unreadable_times.len() < keep {
                self.first_unreadable_times.push(u);
            }
        }
        self.lossy += other.lossy;
        for at in other.first_lossy {
            if self.first_lossy.len() < keep {
                self.first_lossy.push(at);
            }
        }
    }
}
