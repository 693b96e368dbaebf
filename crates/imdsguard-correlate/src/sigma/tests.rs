use super::*;

fn corr(
    kind: CorrelationKind,
    rules: &[&str],
    group_by: &[&str],
    secs: u64,
    cond: &[(&str, i64)],
) -> Correlation {
    Correlation {
        kind,
        rules: rules.iter().map(|s| s.to_string()).collect(),
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        timespan_secs: secs,
        condition: cond.iter().map(|(o, n)| (o.to_string(), *n)).collect(),
        field: Vec::new(),
        aliases: Vec::new(),
        generate: false,
    }
}

fn hit(rule: &str, secs: i64, fields: &[(&str, &str)], id: u64) -> Hit {
    Hit {
        rule: vec![rule.to_string()],
        time_ms: secs * 1000,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        id: id.to_string(),
    }
}

/// A hit on host `a`.
fn on_a(rule: &str, secs: i64, id: u64) -> Hit {
    hit(rule, secs, &[("host", "a")], id)
}

fn ids(n: &[u64]) -> Vec<String> {
    n.iter().map(u64::to_string).collect()
}

fn run(c: &mut Correlator, hits: &[Hit]) -> Vec<Fired> {
    let mut out: Vec<Fired> = hits.iter().flat_map(|h| c.push(h)).collect();
    out.extend(c.finish());
    out
}

#[test]
fn event_count_fires_once_per_burst_and_per_group() {
    let rules = [corr(
        CorrelationKind::EventCount,
        &["read"],
        &["host"],
        60,
        &[("gte", 3)],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let hits: Vec<Hit> = (0..7)
        .map(|i| {
            hit(
                "read",
                i,
                &[("host", if i == 3 { "b" } else { "a" })],
                i as u64,
            )
        })
        .collect();
    let out = run(&mut c, &hits);
    // Host a: hits 0,1,2 fire; the window restarts; 4,5,6 fire again. Host b: one hit, no fire.
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].hits, ids(&[0, 1, 2]));
    assert_eq!(out[0].group, [("host".to_string(), "a".to_string())]);
    assert_eq!(out[1].hits, ids(&[4, 5, 6]));
    assert_eq!(out[1].value, 3);
}

#[test]
fn hits_older_than_the_timespan_leave_the_window() {
    let rules = [corr(
        CorrelationKind::EventCount,
        &["read"],
        &["host"],
        10,
        &[("gte", 3)],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let hits = [
        on_a("read", 0, 1),
        on_a("read", 5, 2),
        on_a("read", 12, 3), // hit 1 is out (12 - 0 >= 10)
        on_a("read", 14, 4),
    ];
    let out = run(&mut c, &hits);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].hits, ids(&[2, 3, 4]));
    assert_eq!((out[0].first_ms, out[0].last_ms), (5000, 14000));
}

#[test]
fn a_hit_without_a_group_by_field_or_of_another_rule_is_not_counted() {
    let rules = [corr(
        CorrelationKind::EventCount,
        &["read"],
        &["host"],
        60,
        &[("gte", 2)],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let hits = [
        hit("read", 0, &[], 1),
        on_a("other", 1, 2),
        on_a("read", 2, 3),
    ];
    assert!(run(&mut c, &hits).is_empty());
}

#[test]
fn value_count_counts_distinct_values() {
    let mut rule = corr(
        CorrelationKind::ValueCount,
        &["read"],
        &["host"],
        60,
        &[("gte", 3)],
    );
    rule.field = vec!["path".into()];
    let mut c = Correlator::new(&[rule]).unwrap();
    let p = |path, t, id| hit("read", t, &[("host", "a"), ("path", path)], id);
    let hits = [
        p("/a", 0, 1),
        p("/a", 1, 2),
        p("/b", 2, 3),
        p("/b", 3, 4),
        p("/c", 4, 5),
    ];
    let out = run(&mut c, &hits);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].value, 3);
    assert_eq!(out[0].hits, ids(&[1, 2, 3, 4, 5]));
}

#[test]
fn temporal_needs_every_rule_in_any_order() {
    let rules = [corr(
        CorrelationKind::Temporal,
        &["token", "creds"],
        &["host"],
        30,
        &[],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let out = run(&mut c, &[on_a("creds", 0, 1), on_a("token", 5, 2)]);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].value, 2);
    // Too far apart: no alert.
    let mut c = Correlator::new(&rules).unwrap();
    let out = run(&mut c, &[on_a("creds", 0, 1), on_a("token", 31, 2)]);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn temporal_ordered_needs_the_order() {
    let rules = [corr(
        CorrelationKind::TemporalOrdered,
        &["token", "creds"],
        &["host"],
        30,
        &[],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let reversed = [on_a("creds", 0, 1), on_a("token", 5, 2)];
    assert!(run(&mut c, &reversed).is_empty());
    let mut c = Correlator::new(&rules).unwrap();
    let ordered = [
        on_a("creds", 0, 1),
        on_a("token", 5, 2),
        on_a("creds", 6, 3),
    ];
    let out = run(&mut c, &ordered);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].hits, ids(&[2, 3]));
    // The times are those of the hits counted, not of the earlier `creds` hit.
    assert_eq!((out[0].first_ms, out[0].last_ms), (5000, 6000));
}

#[test]
fn upper_bounds_are_judged_when_the_window_closes() {
    // "Fewer than 3 reads in 10 s": judged at the first hit past the window, and at the end.
    let rules = [corr(
        CorrelationKind::EventCount,
        &["read"],
        &["host"],
        10,
        &[("lt", 3)],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let hits = [
        on_a("read", 0, 1),
        on_a("read", 1, 2),
        on_a("read", 2, 3),  // three in the window: does not hold
        on_a("read", 20, 4), // closes it; opens another with one hit
    ];
    let mut out: Vec<Fired> = hits.iter().flat_map(|h| c.push(h)).collect();
    assert!(out.is_empty(), "{out:?}");
    out.extend(c.finish());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].hits, ids(&[4]));
    // eq is judged at the close too: 2 hits, then a third would have broken it.
    let rules = [corr(
        CorrelationKind::EventCount,
        &["read"],
        &["host"],
        10,
        &[("eq", 2)],
    )];
    let mut c = Correlator::new(&rules).unwrap();
    let out = run(
        &mut c,
        &[on_a("read", 0, 1), on_a("read", 1, 2), on_a("read", 2, 3)],
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn the_state_stays_bounded() {
    let rules = [corr(
        CorrelationKind::EventCount,
        &["read"],
        &["host"],
        60,
        &[("gte", 2)],
    )];
    let mut c = Correlator::new(&rules).unwrap().with_max_groups(10);
    for i in 0..100u64 {
        let host = format!("h{i}");
        c.push(&hit("read", i as i64, &[("host", &host)], i));
        assert!(c.groups() <= 10);
    }
    assert_eq!(c.evicted(), 90);
}

#[test]
fn bad_correlation_rules_are_refused_with_the_reason() {
    let mut no_cond = corr(CorrelationKind::EventCount, &["read"], &[], 60, &[]);
    let e = Correlator::new(&[no_cond.clone()]).err().unwrap();
    assert!(e.message.contains("need a condition"), "{e}");
    no_cond.condition = vec![("between".into(), 3)];
    let e = Correlator::new(&[no_cond]).err().unwrap();
    assert!(e.message.contains("between"), "{e}");
    let no_field = corr(
        CorrelationKind::ValueCount,
        &["read"],
        &[],
        60,
        &[("gte", 2)],
    );
    assert!(Correlator::new(&[no_field]).is_err());
}

#[test]
fn aliases_group_by_a_different_field_in_each_rule() {
    // The specification's example: an internal error and a new connection between the same two
    // hosts, seen from each side (destination of one is the source of the other).
    let rule = imdsguard_sigma::parse_rule(
        "title: Error then connection\ncorrelation:\n    type: temporal\n    rules: [internal_error, new_network_connection]\n    group-by: [internal_ip, remote_ip]\n    timespan: 10s\n    aliases:\n        internal_ip:\n            internal_error: destination.ip\n            new_network_connection: source.ip\n        remote_ip:\n            internal_error: source.ip\n            new_network_connection: destination.ip\n",
        "c.yml",
    )
    .unwrap()
    .remove(0);
    let c = rule.correlation.clone().unwrap();
    assert_eq!(c.aliases.len(), 2);
    let mut corr = Correlator::new(&[c]).unwrap();
    let err = |src: &str, dst: &str, t: i64, id: u64| {
        hit(
            "internal_error",
            t,
            &[("source.ip", src), ("destination.ip", dst)],
            id,
        )
    };
    let conn = |src: &str, dst: &str, t: i64, id: u64| {
        hit(
            "new_network_connection",
            t,
            &[("source.ip", src), ("destination.ip", dst)],
            id,
        )
    };
    let out = run(
        &mut corr,
        &[
            err("10.0.0.9", "10.0.0.1", 0, 1),
            // The same pair seen the other way round joins the error's group ...
            conn("10.0.0.1", "10.0.0.9", 2, 2),
            // ... the same direction does not.
            conn("10.0.0.9", "10.0.0.1", 3, 3),
        ],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].hits, ids(&[1, 2]));
    assert_eq!(
        out[0].group,
        [
            ("internal_ip".to_string(), "10.0.0.1".to_string()),
            ("remote_ip".to_string(), "10.0.0.9".to_string())
        ]
    );
    // An alias must name rules the correlation lists.
    let bad = imdsguard_sigma::parse_rule(
        "title: t\ncorrelation:\n    type: temporal\n    rules: [a, b]\n    group-by: [x]\n    timespan: 10s\n    aliases:\n        x: {c: f}\n",
        "c.yml",
    )
    .unwrap_err();
    assert!(bad.message.contains("does not list"), "{bad}");
}

#[test]
fn value_count_over_several_fields_counts_distinct_combinations() {
    let rule = imdsguard_sigma::parse_rule(
        "title: t\ncorrelation:\n    type: value_count\n    rules: [read]\n    group-by: [host]\n    timespan: 1m\n    condition:\n        field: [user, path]\n        gte: 3\n",
        "c.yml",
    )
    .unwrap()
    .remove(0);
    let c = rule.correlation.unwrap();
    assert_eq!(c.field, ["user", "path"]);
    let mut corr = Correlator::new(&[c]).unwrap();
    let p = |user, path, t, id| {
        hit(
            "read",
            t,
            &[("host", "a"), ("user", user), ("path", path)],
            id,
        )
    };
    // (u1,/a) (u2,/a) (u1,/a) again, then (u1,/b): three distinct pairs at the fourth hit.
    let hits = [
        p("u1", "/a", 0, 1),
        p("u2", "/a", 1, 2),
        p("u1", "/a", 2, 3),
        p("u1", "/b", 3, 4),
    ];
    let out = run(&mut corr, &hits);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].value, 3);
    assert_eq!(out[0].hits, ids(&[1, 2, 3, 4]));
}
