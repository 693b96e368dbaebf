//! Fuzzes the Sigma front end: any text either reads into rules or returns an error naming the
//! file; any condition string parses or says why, and a parsed condition prints and parses back
//! to the same tree. Rules that read and compile are then run over a few records both ways: the
//! indexed and prefiltered evaluator must find exactly what the reference evaluator (every rule on
//! every record) finds, whatever values, modifiers and regexes the rules carry.
#![no_main]

use std::sync::LazyLock;

use imdsguard_enrich::Enricher;
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use imdsguard_rules::RuleSet;
use libfuzzer_sys::fuzz_target;

/// Records in the shape `evtx_dump -o jsonl` writes: a Sysmon process start, a Sysmon network
/// connection, a Sysmon registry write and a Security process creation, with values of their own.
const RECORDS: &str = concat!(
    r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws1.example.test","TimeCreated":{"#attributes":{"SystemTime":"2026-01-02T03:04:05.000Z"}}},"EventData":{"Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","OriginalFileName":"PowerShell.EXE","CommandLine":"powershell.exe -NoP -W Hidden -Enc SQBFAFgA iex (New-Object Net.WebClient).DownloadString('http://169.254.169.254/latest/meta-data/iam/security-credentials/')","ParentImage":"C:\\Program Files\\App\\app.exe","ParentCommandLine":"app.exe --serve","User":"NT AUTHORITY\\SYSTEM","IntegrityLevel":"System","Hashes":"SHA256=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF,IMPHASH=00112233445566778899AABBCCDDEEFF","CurrentDirectory":"C:\\Users\\Public\\"}}}"##,
    "\n",
    r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws1.example.test","TimeCreated":{"#attributes":{"SystemTime":"2026-01-02T03:04:06.000Z"}}},"EventData":{"Image":"C:\\Tools\\curl.exe","User":"EXAMPLE\\alice","Protocol":"tcp","Initiated":"true","SourceIp":"10.1.2.3","SourcePort":"50123","DestinationIp":"169.254.169.254","DestinationPort":"80","DestinationHostname":"-"}}}"##,
    "\n",
    r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":13,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws1.example.test","TimeCreated":{"#attributes":{"SystemTime":"2026-01-02T03:04:07.000Z"}}},"EventData":{"EventType":"SetValue","Image":"C:\\Windows\\regedit.exe","TargetObject":"HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater","Details":"C:\\Users\\Public\\upd.exe /silent"}}}"##,
    "\n",
    r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4688,"Channel":"Security","Computer":"dc1.example.test","TimeCreated":{"#attributes":{"SystemTime":"2026-01-02T03:04:08.000Z"}}},"EventData":{"NewProcessName":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami /all > C:\\Temp\\o.txt","ParentProcessName":"C:\\Windows\\System32\\wbem\\WmiPrvSE.exe","SubjectUserName":"svc$","TokenElevationType":"%%1936"}}}"##,
    "\n",
);

static ENRICHER: LazyLock<Enricher> = LazyLock::new(Enricher::builtin);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match imdsguard_sigma::parse_rule(text, "fuzz.yml") {
        Err(e) => assert_eq!(e.path, "fuzz.yml"),
        Ok(rules) => {
            let mut ids = std::collections::HashSet::new();
            let compiled: Vec<_> = rules
                .iter()
                .filter_map(|r| imdsguard_sigma::compile(r).ok())
                .filter(|r| ids.insert(r.id.clone()))
                .collect();
            if let Ok(set) = RuleSet::new(compiled) {
                agree(&set);
            }
        }
    }
    if let Ok(c) = imdsguard_sigma::parse_condition(text) {
        let again = imdsguard_sigma::parse_condition(&c.to_string()).expect("a printed condition parses");
        assert_eq!(again.to_string(), c.to_string());
    }
});

/// The fast evaluator finds what the reference one finds on every record.
fn agree(set: &RuleSet) {
    if set.rules().is_empty() {
        return;
    }
    let opts = ReadOptions { fields: set.record_fields().clone(), ..ReadOptions::default() };
    let mut summary = Summary::default();
    read_reader("records", &mut std::io::Cursor::new(RECORDS), &opts, &mut summary, &mut |e| {
        let ev = ENRICHER.enrich(&e);
        let fast: Vec<&str> = set.eval(&ev).iter().map(|h| h.rule.id.as_str()).collect();
        let reference: Vec<&str> =
            set.eval_reference(&ev).iter().map(|h| h.rule.id.as_str()).collect();
        assert_eq!(fast, reference, "record {:?}", e.source);
    });
    assert_eq!(summary.total_events(), 4, "the fixed records decode");
}
