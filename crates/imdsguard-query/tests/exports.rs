//! The query exports of two rules holding every value form, in every language (insta snapshots:
//! a change to any query is reviewed), and properties each language must keep.

use imdsguard_query::{convert, Lang, Options, SqlDialect};
use imdsguard_sigma::parse_rule;

fn rule(name: &str) -> imdsguard_sigma::SigmaRule {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    parse_rule(&text, &format!("tests/data/{name}"))
        .expect("fixture parses")
        .remove(0)
}

fn render(name: &str, lang: Lang, opts: &Options) -> String {
    match convert(&rule(name), lang, opts) {
        Ok(q) => {
            let mut s = String::new();
            for n in &q.notes {
                s.push_str(&format!("note: {n}\n"));
            }
            s.push_str(&q.text);
            s
        }
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn every_language_writes_the_constructs() {
    for lang in Lang::ALL {
        for name in ["constructs.yml", "network.yml"] {
            insta::assert_snapshot!(
                format!("{}_{}", lang.name(), name.trim_end_matches(".yml")),
                render(name, lang, &Options::default())
            );
        }
    }
}

/// EQL and ES|QL read each field where Winlogbeat's Security and Sysmon modules put it
/// (`data/ecs.toml`): moved Security fields under their event codes, `Initiated` as
/// `network.direction`, `User` split at `\`, registry `Details` in decimal, image-load version
/// information and hashes on the loaded file.
#[test]
fn elastic_queries_follow_winlogbeat() {
    for lang in [Lang::Eql, Lang::Esql] {
        for name in [
            "winlogbeat_security.yml",
            "winlogbeat_sysmon.yml",
            "winlogbeat_registry.yml",
            "winlogbeat_image_load.yml",
        ] {
            insta::assert_snapshot!(
                format!("{}_{}", lang.name(), name.trim_end_matches(".yml")),
                render(name, lang, &Options::default())
            );
        }
    }
    let security = render("winlogbeat_security.yml", Lang::Eql, &Options::default());
    // 4624 is one of the codes the module moves IpAddress for; 4663 is not.
    assert!(
        security.contains(
            r#"winlog.event_data.IpAddress : "169.254.169.254" or source.ip : "169.254.169.254""#
        ),
        "{security}"
    );
    assert!(
        security.contains(r#"winlog.event_data.ProcessName : "*\\curl.exe""#),
        "{security}"
    );
    assert!(
        !security.contains(r#"process.executable : "*\\curl.exe""#),
        "{security}"
    );
    assert!(
        security.contains(r#"winlog.event_data.LogonType : "3""#),
        "{security}"
    );
    let sysmon = render("winlogbeat_sysmon.yml", Lang::Eql, &Options::default());
    assert!(
        sysmon.contains(r#"network.direction : "egress""#),
        "{sysmon}"
    );
    assert!(sysmon.contains("destination.port == 80"), "{sysmon}");
    let registry = render("winlogbeat_registry.yml", Lang::Esql, &Options::default());
    assert!(
        registry.contains(r#"registry.data.strings) == "0""#),
        "{registry}"
    );
    assert!(registry.contains("left out (wider)"), "{registry}");
}

#[test]
fn sql_dialects_differ_only_where_the_engines_do() {
    let duck = render("constructs.yml", Lang::Sql, &Options::default());
    let spark = render(
        "constructs.yml",
        Lang::Sql,
        &Options {
            dialect: SqlDialect::Spark,
            ..Options::default()
        },
    );
    let trino = render(
        "constructs.yml",
        Lang::Sql,
        &Options {
            dialect: SqlDialect::Trino,
            ..Options::default()
        },
    );
    assert!(duck.contains("regexp_matches(\"CommandLine\""));
    assert!(trino.contains("regexp_like(\"CommandLine\""));
    assert!(spark.contains("regexp_like(`CommandLine`"));
    // Spark reads backslashes in strings as escapes: they are doubled.
    assert!(duck.contains(r"'%\\curl.exe'") || duck.contains(r"LIKE '%\\curl.exe'"));
    assert!(spark.contains(r"'%\\\\curl.exe'"));
}

#[test]
fn keywords_are_left_out_where_that_widens_and_the_note_says_so() {
    // `sel and not kw`: SQL has no full-text search; under the `not`, the keyword becomes false,
    // so the query keeps `sel` alone (wider), never `sel and not true` (nothing).
    let q = convert(&rule("network.yml"), Lang::Sql, &Options::default()).expect("converts");
    assert!(!q.text.to_lowercase().contains("metadata"), "{}", q.text);
    assert!(q.text.contains("\"DestinationPort\" = 80"), "{}", q.text);
    assert!(q
        .notes
        .iter()
        .any(|n| n.contains("keywords") && n.contains("wider")));
    // KQL searches every column instead.
    let k = convert(&rule("network.yml"), Lang::Kql, &Options::default()).expect("converts");
    assert!(
        k.text.contains("not(* contains \"metadata\")"),
        "{}",
        k.text
    );
}

#[test]
fn kql_speaks_the_defender_schema() {
    let q = convert(&rule("defender.yml"), Lang::Kql, &Options::default()).expect("exports");
    insta::assert_snapshot!(
        "kql_defender",
        render("defender.yml", Lang::Kql, &Options::default())
    );
    // DOMAIN\user split into the two columns; full hive names; ActionType values; parent by name.
    for part in [
        "(InitiatingProcessAccountDomain =~ \"NT AUTHORITY\" and InitiatingProcessAccountName =~ \"SYSTEM\")",
        "RegistryKey startswith \"HKEY_LOCAL_MACHINE\\\\Software",
        "RegistryKey startswith \"HKEY_USERS\\\\\"",
        "ActionType =~ \"RegistryValueSet\"",
        "InitiatingProcessParentFileName =~ \"winword.exe\"",
        "InitiatingProcessParentFileName =~ \"explorer.exe\"",
    ] {
        assert!(q.text.contains(part), "{part} missing in\n{}", q.text);
    }
    assert!(
        !q.text.contains("HKLM") && !q.text.contains("SetValue"),
        "{}",
        q.text
    );
    // A full parent path compared by its name is wider, and RenameKey has no ActionType: both said.
    assert!(
        q.notes.iter().any(|n| n.contains("file name only")),
        "{:?}",
        q.notes
    );
    assert!(
        q.notes.iter().any(|n| n.contains("RenameKey")),
        "{:?}",
        q.notes
    );
    assert!(!q.text.contains("RenameKey"), "{}", q.text);
}

#[test]
fn a_service_rule_reads_its_channel_only() {
    let opts = Options::default();
    let text = |lang| {
        convert(&rule("service.yml"), lang, &opts)
            .expect("exports")
            .text
    };
    assert!(
        text(Lang::Spl).contains("source=\"WinEventLog:Security\" AND"),
        "{}",
        text(Lang::Spl)
    );
    assert!(
        text(Lang::Eql).contains("winlog.channel : \"Security\" and"),
        "{}",
        text(Lang::Eql)
    );
    assert!(
        text(Lang::Esql).contains("TO_LOWER(winlog.channel) == \"security\" AND"),
        "{}",
        text(Lang::Esql)
    );
    // Category rules are not scoped by channel (their fields say which events they read).
    let c = convert(&rule("network.yml"), Lang::Spl, &opts)
        .expect("exports")
        .text;
    assert!(!c.contains("WinEventLog"), "{c}");
}

#[test]
fn time_modifiers_are_left_out_with_a_note_in_every_language() {
    let r = parse_rule(
        "title: Night curl\nlogsource: {category: process_creation, product: windows}\ndetection:\n    s:\n        CommandLine|contains: curl\n        UtcTime|hour|lt: 6\n    condition: s\n",
        "night.yml",
    )
    .unwrap()
    .remove(0);
    for lang in Lang::ALL {
        let q = convert(&r, lang, &Options::default()).unwrap();
        assert!(
            q.notes
                .iter()
                .any(|n| n.contains("time modifier `hour`") && n.contains("left out (wider)")),
            "{}: {:?}",
            lang.name(),
            q.notes
        );
        assert!(q.text.to_lowercase().contains("curl"), "{}", q.text);
    }
}

/// A rule that cannot be written says why, as a value a caller can act on.
#[test]
fn refusals_are_typed() {
    use imdsguard_query::Refusal;
    let filter = "title: Not for admins\nlogsource:\n  product: windows\n  category: process_creation\nfilter:\n  rules:\n    - 5d1a2b3c-0000-4000-8000-000000000001\n  selection:\n    User: admin\n  condition: not selection\n";
    let correlation = "title: Many\ncorrelation:\n  type: event_count\n  rules:\n    - some_rule\n  group-by:\n    - Computer\n  timespan: 5m\n  condition:\n    gte: 10\n";
    for (text, want) in [
        (filter, Refusal::Filter),
        (correlation, Refusal::Correlation),
    ] {
        let rules = parse_rule(text, "inline.yml").expect("parses");
        let e = convert(&rules[0], Lang::Kql, &Options::default()).unwrap_err();
        assert_eq!(e.reason, want, "{e}");
        assert!(e.to_string().starts_with("inline.yml: rule "), "{e}");
    }
}
