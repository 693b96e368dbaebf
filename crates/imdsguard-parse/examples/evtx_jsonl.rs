//! Writes the records of EVTX files to standard output as JSON lines, one record a line, in the
//! shape `evtx_dump -o jsonl` gives (`{"Event":{"System":…,"EventData":…}}`), which `hunt` reads
//! as `evtx-json`. `bench/run-sigma-json.sh` builds its JSON corpus with it from the public EVTX
//! files. A file or record the evtx crate cannot read is named on standard error and counted.
//!
//!   cargo run --release -p imdsguard-parse --example evtx_jsonl -- FILE.evtx… > records.jsonl

use std::io::{BufWriter, Write};

use evtx::{EvtxParser, ParserSettings};

fn main() -> std::io::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut written, mut files_skipped, mut records_skipped) = (0u64, 0u64, 0u64);
    for path in std::env::args().skip(1) {
        let parser = match EvtxParser::from_path(&path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{path}: not read: {e}");
                files_skipped += 1;
                continue;
            }
        };
        let mut parser =
            parser.with_configuration(ParserSettings::default().validate_checksums(false));
        for record in parser.records_json_value() {
            match record {
                Ok(r) => {
                    serde_json::to_writer(&mut out, &r.data)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
                Err(e) => {
                    eprintln!("{path}: a record not read: {e}");
                    records_skipped += 1;
                }
            }
        }
    }
    out.flush()?;
    eprintln!(
        "{written} records written; {records_skipped} records and {files_skipped} files not read"
    );
    Ok(())
}
