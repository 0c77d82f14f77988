//! Parse + full walk of every section, every rdata, every name label, presentation
//! writing and the header-derived accessors. Must never panic; the invariants the docs
//! promise for validated names are asserted.
#![no_main]

use dnswarden_bench::{Checksum, walk_core};
use dnswarden_core::wire::{
    MAX_LABEL_LEN, MAX_NAME_LEN, Message, Name, QueryKey, RData, Section, check_response,
};
use libfuzzer_sys::fuzz_target;

fn name(n: Name<'_>) {
    let mut wire = 1;
    let mut count = 0;
    for label in n.labels() {
        assert!(
            (1..=MAX_LABEL_LEN).contains(&label.len()),
            "label length {}",
            label.len()
        );
        wire += 1 + label.len();
        count += 1;
    }
    assert_eq!(count, n.label_count());
    assert_eq!(wire, n.wire_len());
    assert!(wire <= MAX_NAME_LEN);
    // Presentation: at most 4 characters per octet plus dots; must fit in 1024.
    let mut out = [0u8; 1024];
    let written = n.write_to(&mut out);
    assert!(matches!(written, Ok(w) if w >= 1), "{written:?}");
    // Display agrees with write_to.
    if let Ok(w) = written {
        assert_eq!(n.to_string().as_bytes(), &out[..w]);
    }
    // A name equals itself, and its fingerprint is stable.
    assert!(n.eq_name(&n));
    assert_eq!(n.fingerprint(), n.fingerprint());
    let _ = n.ends_with_str("cluster.local");
    let _ = n.eq_str("kubernetes.default.svc.cluster.local");
    // A too-small buffer is an error, not a panic.
    let _ = n.write_to(&mut out[..3]);
}

fuzz_target!(|data: &[u8]| {
    let mut sum = Checksum::default();
    let _ = walk_core(data, &mut sum);

    let Ok(msg) = Message::parse(data) else {
        return;
    };
    let h = msg.header();
    let _ = (
        h.qr(),
        h.opcode(),
        h.aa(),
        h.tc(),
        h.rd(),
        h.ra(),
        h.ad(),
        h.cd(),
        h.rcode(),
    );
    let _ = msg.extended_rcode();
    let _ = msg.trailing_len();
    if let Ok(Some(opt)) = msg.edns() {
        let _ = (opt.udp_payload_size(), opt.version(), opt.dnssec_ok());
        for o in opt.options() {
            let _ = (o.code, o.data.len());
        }
        if let Some(ede) = opt.extended_error() {
            let _ = ede.meaning();
        }
    }
    for q in msg.questions().flatten() {
        name(q.name);
    }
    let mut records = msg.records();
    for r in &mut records {
        let Ok(r) = r else { break };
        name(r.name());
        let _ = (
            r.rtype().to_string(),
            r.class().to_string(),
            r.ttl(),
            r.rdata().len(),
        );
        match r.data() {
            Ok(RData::Cname(n) | RData::Ns(n) | RData::Ptr(n)) => name(n),
            Ok(RData::Mx(mx)) => name(mx.exchange),
            Ok(RData::Srv(srv)) => name(srv.target),
            Ok(RData::Soa(soa)) => {
                name(soa.mname);
                name(soa.rname);
            }
            Ok(RData::Txt(txt)) => {
                let total: usize = txt.strings().map(|s| 1 + s.len()).sum();
                assert_eq!(total, txt.as_bytes().len());
            }
            Ok(RData::Opt(opt)) => {
                let total: usize = opt.options().map(|o| 4 + o.data.len()).sum();
                assert_eq!(total, r.rdata().len());
            }
            _ => {}
        }
    }
    let _ = records.check_trailing();
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for r in msg.section(section).flatten() {
            assert_eq!(r.section(), section);
        }
    }
    // The matcher on arbitrary pairs: the message against itself, and as a query.
    let _ = check_response(&msg, &msg);
    if let Some(key) = QueryKey::of(&msg) {
        let _ = key.check(&msg);
    }
});
