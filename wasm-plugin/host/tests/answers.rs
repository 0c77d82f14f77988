//! Answer sets through the built `.wasm`: the filter keys targets by question, passes
//! the answer summary of every matched response to the core scorer, and feeds the
//! configured expected answers to the drift detector. Round-robin skew and answer-set
//! drift must raise the verdict (logged once, naming the detector and the name), fair
//! rotation and the expected set must not, and many one-off names must neither break
//! anything nor create per-name metrics.

mod common;

use common::{framed, query, vm};

use dnswarden_wasm_host::{Action, Vm};

const UP: &str = "127.0.0.1:5353";
const NAME: &str = "my-headless.default.svc.cluster.local";

/// The NOERROR response to `query` (unprefixed) with these A records, in this order.
fn answer(query: &[u8], addresses: &[[u8; 4]]) -> Vec<u8> {
    let mut r = query.to_vec();
    r[2] |= 0x80; // QR
    r[3] = 0x80; // RA, NOERROR
    r[6..8].copy_from_slice(&(addresses.len() as u16).to_be_bytes()); // ANCOUNT
    for a in addresses {
        // Owner: pointer to the question name at offset 12; A, IN, TTL 5, 4 octets.
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]);
        r.extend_from_slice(a);
    }
    r
}

fn tcp_vm(config: &str) -> Vm {
    let mut vm = vm(config);
    vm.set_property(&["upstream", "address"], UP.as_bytes());
    vm.clear_logs();
    vm
}

/// Sends `n` exchanges for `name` on one connection, 10 ms apart; `order(i)` gives the
/// addresses of the i-th answer.
fn exchange(vm: &mut Vm, name: &str, n: u16, order: impl Fn(u16) -> Vec<[u8; 4]>) {
    let (id, _) = vm.new_connection().expect("connect");
    for i in 0..n {
        let q = query(i, name, false);
        let down = vm.downstream_data(id, &framed(&q), false).expect("data");
        vm.advance_ms(10);
        let up = vm
            .upstream_data(id, &framed(&answer(&q, &order(i))), false)
            .expect("data");
        assert_eq!((down, up), (Action::Continue, Action::Continue));
    }
    assert!(vm.failure().is_none(), "{:?}", vm.failure());
    assert!(vm.events().is_empty(), "filter changed traffic");
}

fn verdict_lines(vm: &Vm) -> Vec<String> {
    vm.logs()
        .iter()
        .filter(|l| l.message.contains(" verdict "))
        .map(|l| l.message.clone())
        .collect()
}

const SET: [[u8; 4]; 4] = [
    [10, 244, 1, 10],
    [10, 244, 1, 11],
    [10, 244, 2, 12],
    [10, 244, 2, 13],
];

fn rotated(i: u16) -> Vec<[u8; 4]> {
    let k = usize::from(i) % SET.len();
    SET[k..].iter().chain(SET[..k].iter()).copied().collect()
}

#[test]
fn stuck_round_robin_is_raised_and_fair_rotation_is_not() {
    let config = r#"{"mode":"network","weights":{"round_robin":1.0}}"#;

    let mut fair = tcp_vm(config);
    exchange(&mut fair, NAME, 200, rotated);
    assert!(
        verdict_lines(&fair).is_empty(),
        "{:?}",
        verdict_lines(&fair)
    );

    let mut stuck = tcp_vm(config);
    exchange(&mut stuck, NAME, 200, |_| SET.to_vec());
    let lines = verdict_lines(&stuck);
    assert_eq!(lines.len(), 1, "one change, logged once: {lines:?}");
    assert!(lines[0].contains("ok -> critical"), "{}", lines[0]);
    assert!(lines[0].contains("round_robin="), "{}", lines[0]);
    // Not a configured name: named by its slot, never by the raw question.
    assert!(!lines[0].contains(NAME), "{}", lines[0]);
}

fn drift_config(expected: &str) -> String {
    format!(
        r#"{{"mode":"network","weights":{{"drift":1.0}},"expected_answers":{{"{NAME}":{expected}}}}}"#
    )
}

#[test]
fn answers_outside_the_expected_set_are_drift_and_name_the_name() {
    // The expected set is honoured as a set: any order, duplicates ignored.
    let listed = r#"["10.244.2.13","10.244.1.10","10.244.1.11","10.244.2.12","10.244.1.10"]"#;

    let mut same = tcp_vm(&drift_config(listed));
    // The core ignores mismatches for 30 s after an expectation is set (caches catch up).
    same.advance_ms(31_000);
    exchange(&mut same, NAME, 50, rotated);
    assert!(
        verdict_lines(&same).is_empty(),
        "{:?}",
        verdict_lines(&same)
    );

    let mut drifted = tcp_vm(&drift_config(listed));
    drifted.advance_ms(31_000);
    // One address replaced by one the service does not have.
    exchange(&mut drifted, NAME, 50, |i| {
        let mut a = rotated(i);
        a[0] = [10, 9, 9, 9];
        a
    });
    let lines = verdict_lines(&drifted);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("-> critical"), "{}", lines[0]);
    assert!(lines[0].contains("drift="), "{}", lines[0]);
    assert!(lines[0].contains(&format!("name {NAME} A")), "{}", lines[0]);
}

#[test]
fn many_one_off_names_are_scored_without_per_name_metrics() {
    let mut vm = tcp_vm(r#"{"mode":"network"}"#);
    let (id, _) = vm.new_connection().expect("connect");
    for i in 0..500u16 {
        let name = format!("pod-{i}.my-headless.default.svc.cluster.local");
        let q = query(i, &name, false);
        vm.downstream_data(id, &framed(&q), false).expect("data");
        vm.advance_ms(1);
        vm.upstream_data(id, &framed(&answer(&q, &rotated(i))), false)
            .expect("data");
    }
    assert!(vm.failure().is_none(), "{:?}", vm.failure());
    assert!(verdict_lines(&vm).is_empty(), "{:?}", verdict_lines(&vm));
    assert!(
        vm.metrics().iter().all(|m| !m.name.contains("pod-")),
        "no metric names carry a question name"
    );
    vm.tick().expect("tick"); // counters are batched until the tick
    let responses = vm
        .metrics()
        .iter()
        .find(|m| m.name.contains(".responses."))
        .map(|m| m.value);
    assert_eq!(responses, Some(500));
}

#[test]
fn bad_expected_answers_are_rejected_naming_the_field() {
    for (config, field) in [
        (
            r#"{"expected_answers":{"web.default.svc":["10.0.0.300"]}}"#,
            "expected_answers.web.default.svc",
        ),
        (
            r#"{"expected_answers":{"web.default.svc":[]}}"#,
            "expected_answers.web.default.svc",
        ),
        (r#"{"expected_answers":["10.0.0.1"]}"#, "expected_answers"),
        (
            r#"{"expected_answers":{"a..b":["10.0.0.1"]}}"#,
            "expected_answers.a..b",
        ),
    ] {
        let mut vm = common::host()
            .instantiate(dnswarden_wasm_host::VmOptions::default())
            .expect("instantiate");
        assert!(!vm.start(config.as_bytes()).expect("start"), "{config}");
        let line = vm
            .logs()
            .iter()
            .map(|l| l.message.clone())
            .find(|m| m.contains("invalid plugin configuration"))
            .expect("one log line");
        assert!(line.contains(&format!("field `{field}`")), "{line}");
    }
}
