use std::collections::HashMap;

use super::*;

fn pool(body: &str) -> Pool {
    let text = format!(
        "listeners {{ listener \"w\" {{ address \"127.0.0.1:1\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}\nupstreams {{ upstream \"u\" {{ {body} }} }}"
    );
    let c = zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"));
    Pool::new(&c.upstreams[0]).expect("pool")
}

fn pick(p: &Pool) -> usize {
    p.select(SelectInput {
        hash_key: None,
        tried: Tried::default(),
    })
    .expect("a target")
}

fn counts(p: &Pool, n: usize) -> HashMap<usize, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        *m.entry(pick(p)).or_default() += 1;
    }
    m
}

const THREE: &str =
    r#"target "127.0.0.1:3001" weight=3; target "127.0.0.1:3002"; target "127.0.0.1:3003";"#;

#[test]
fn round_robin_is_smooth_and_weighted() {
    let p = pool(THREE);
    let seq: Vec<usize> = (0..10).map(|_| pick(&p)).collect();
    // nginx's smooth WRR for weights 3,1,1: a b a c a | a b a c a
    assert_eq!(seq, [0, 1, 0, 2, 0, 0, 1, 0, 2, 0]);
}

#[test]
fn weighted_random_follows_weights() {
    let p = pool(&format!("{THREE} load-balancing \"weighted\""));
    let c = counts(&p, 5000);
    let share = c[&0] as f64 / 5000.0;
    assert!((0.55..0.65).contains(&share), "weight 3 of 5 got {share}");
}

#[test]
fn least_connections_prefers_idle_targets_relative_to_weight() {
    let p = pool(&format!("{THREE} load-balancing \"least-connections\""));
    // Target 0 (weight 3) carries 3 requests, target 1 carries 1: both at load 1.
    for _ in 0..3 {
        p.begin(0);
    }
    p.begin(1);
    assert_eq!(pick(&p), 2, "the idle target wins");
    p.begin(2);
    p.begin(2);
    // Now 0 is at 3/3 = 1, 1 at 1/1 = 1, 2 at 2/1 = 2.
    for _ in 0..20 {
        assert_ne!(pick(&p), 2);
    }
}

#[test]
fn power_of_two_choices_avoids_the_busiest() {
    let p = pool(
        r#"target "127.0.0.1:3001"; target "127.0.0.1:3002"; load-balancing "power-of-two-choices""#,
    );
    for _ in 0..10 {
        p.begin(0);
    }
    let c = counts(&p, 400);
    // Target 0 only wins when both picks land on it (a quarter of the time).
    assert!(c.get(&0).copied().unwrap_or(0) < 160, "{c:?}");
}

#[test]
fn consistent_hash_is_stable_and_moves_little_when_a_target_leaves() {
    let body = r#"target "127.0.0.1:3001"; target "127.0.0.1:3002"; target "127.0.0.1:3003"; target "127.0.0.1:3004"; load-balancing "consistent-hash""#;
    let p = pool(body);
    let key = |i: usize| format!("user-{i}");
    let first: Vec<usize> = (0..1000)
        .map(|i| {
            p.select(SelectInput {
                hash_key: Some(key(i).as_bytes()),
                tried: Tried::default(),
            })
            .expect("t")
        })
        .collect();
    let again: Vec<usize> = (0..1000)
        .map(|i| {
            p.select(SelectInput {
                hash_key: Some(key(i).as_bytes()),
                tried: Tried::default(),
            })
            .expect("t")
        })
        .collect();
    assert_eq!(first, again, "same key, same target");
    let mut per = [0usize; 4];
    for t in &first {
        per[*t] += 1;
    }
    assert!(per.iter().all(|n| (150..350).contains(n)), "spread {per:?}");
    // Eject target 0: only its keys move.
    p.record(0, true);
    for _ in 0..4 {
        p.record(0, true);
    }
    assert!(!p.available(0));
    let moved = (0..1000)
        .filter(|&i| {
            let now = p
                .select(SelectInput {
                    hash_key: Some(key(i).as_bytes()),
                    tried: Tried::default(),
                })
                .expect("t");
            now != first[i]
        })
        .count();
    assert_eq!(moved, per[0], "only the keys of the ejected target move");
}

#[test]
fn passive_health_ejects_after_consecutive_failures_and_recovers() {
    let p = pool(
        r#"target "127.0.0.1:3001"; target "127.0.0.1:3002"; passive-health { consecutive-failures 2; ejection-time-ms 50; }"#,
    );
    p.record(0, true);
    p.record(0, false);
    p.record(0, true);
    assert!(p.available(0), "failures must be consecutive");
    p.record(0, true);
    assert!(!p.available(0));
    for _ in 0..10 {
        assert_eq!(pick(&p), 1);
    }
    std::thread::sleep(Duration::from_millis(60));
    assert!(p.available(0), "back after the ejection time");
}

#[test]
fn disabled_passive_health_never_ejects() {
    let p = pool(r#"target "127.0.0.1:3001"; passive-health { enabled #false; }"#);
    for _ in 0..100 {
        p.record(0, true);
    }
    assert!(p.available(0));
}

#[test]
fn all_ejected_means_no_target() {
    let p = pool(r#"target "127.0.0.1:3001"; passive-health { consecutive-failures 1; }"#);
    p.record(0, true);
    assert_eq!(
        p.select(SelectInput {
            hash_key: None,
            tried: Tried::default()
        }),
        None
    );
}

#[test]
fn retries_prefer_untried_targets() {
    let p = pool(THREE);
    let mut tried = Tried::default();
    tried.insert(0);
    tried.insert(1);
    for _ in 0..5 {
        assert_eq!(
            p.select(SelectInput {
                hash_key: None,
                tried
            }),
            Some(2)
        );
    }
    tried.insert(2);
    assert!(
        p.select(SelectInput {
            hash_key: None,
            tried
        })
        .is_some(),
        "all tried: any available one"
    );
}

#[test]
fn tried_set_covers_the_target_limit() {
    let mut t = Tried::default();
    t.insert(255);
    t.insert(0);
    assert!(t.contains(255) && t.contains(0) && !t.contains(128));
    t.insert(300);
    assert!(!t.contains(300));
}
