//! One test per guard of the wire layer, on hand-made hostile bytes. Each asserts the
//! exact error variant, and that nothing panics.

use dnswarden_core::wire::{
    Error, FrameError, Message, QueryBuilder, RData, Rcode, Rtype, Section, TcpFramer,
};

/// A header with the given counts and flags (id 0xBEEF, QR set).
fn header(counts: [u16; 4]) -> Vec<u8> {
    let mut h = vec![0xBE, 0xEF, 0x81, 0x80];
    for c in counts {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// A record header after an owner name: TYPE, CLASS IN, TTL 5, RDLENGTH.
fn rr(rtype: u16, rdlen: u16) -> Vec<u8> {
    let mut v = rtype.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 1, 0, 0, 0, 5]);
    v.extend_from_slice(&rdlen.to_be_bytes());
    v
}

/// Reads every question, record and rdata; returns the first error.
fn walk(bytes: &[u8]) -> Result<usize, Error> {
    let msg = Message::parse(bytes)?;
    let mut n = 0;
    for q in msg.questions() {
        q?;
        n += 1;
    }
    let mut records = msg.records();
    for r in &mut records {
        r?.data()?;
        n += 1;
    }
    records.check_trailing()?;
    Ok(n)
}

#[test]
fn short_header() {
    assert_eq!(Message::parse(&[0; 11]).unwrap_err(), Error::ShortHeader);
    assert_eq!(Message::parse(&[]).unwrap_err(), Error::ShortHeader);
    assert!(Message::parse(&[0; 12]).is_ok());
}

#[test]
fn message_too_long() {
    let mut big = header([0, 0, 0, 0]);
    big.resize(65536, 0);
    assert_eq!(Message::parse(&big).unwrap_err(), Error::MessageTooLong);
    big.truncate(65535);
    assert_eq!(
        Message::parse(&big).map(|m| m.trailing_len()),
        Ok(Ok(65535 - 12))
    );
}

#[test]
fn counts_larger_than_the_message_can_hold() {
    // 2 answers need at least 22 octets; there are 11.
    let mut m = header([0, 2, 0, 0]);
    m.push(0);
    m.extend(rr(1, 0));
    assert_eq!(Message::parse(&m).unwrap_err(), Error::CountsTooLarge);
    // 65535 questions in a tiny message.
    assert_eq!(
        Message::parse(&header([0xFFFF, 0, 0, 0])).unwrap_err(),
        Error::CountsTooLarge
    );
}

#[test]
fn truncated_name_in_question() {
    let mut m = header([1, 0, 0, 0]);
    m.extend_from_slice(b"\x05abcde"); // no terminating root label
    assert_eq!(walk(&m).unwrap_err(), Error::Truncated);
}

#[test]
fn truncated_question_fields() {
    let mut m = header([1, 0, 0, 0]);
    m.extend_from_slice(b"\x01a\x00\x00\x01\x00"); // QCLASS cut after one octet
    assert_eq!(walk(&m).unwrap_err(), Error::Truncated);
}

#[test]
fn truncated_record_header() {
    let mut m = header([0, 1, 0, 0]);
    m.extend_from_slice(b"\x01a\x00");
    m.extend_from_slice(&rr(1, 4)[..8]); // RDLENGTH missing
    assert_eq!(walk(&m).unwrap_err(), Error::Truncated);
}

#[test]
fn rdlength_past_the_end() {
    let mut m = header([0, 1, 0, 0]);
    m.push(0);
    m.extend(rr(1, 10));
    m.extend_from_slice(&[10, 0, 0, 1]);
    assert_eq!(walk(&m).unwrap_err(), Error::RdataOverrun);
}

#[test]
fn rdata_shorter_than_its_type() {
    for (rtype, rdata) in [
        (1u16, &[10u8, 0, 0][..]),         // A with 3 octets
        (28, &[0u8; 15][..]),              // AAAA with 15
        (33, &[0u8, 1, 0, 2][..]),         // SRV without port and target
        (15, &[0u8][..]),                  // MX without preference
        (16, &[][..]),                     // TXT needs one string
        (16, &[5u8, b'a'][..]),            // TXT string longer than rdata
        (41, &[0u8, 15, 0, 9, 0][..]),     // OPT option longer than rdata
        (5, &[3u8, b'a', b'b', b'c'][..]), // CNAME name runs past RDLENGTH
        (6, &[0u8, 0, 0, 0, 0][..]),       // SOA without its numbers
    ] {
        let mut m = header([0, 1, 0, 0]);
        m.push(0);
        m.extend(rr(rtype, rdata.len() as u16));
        m.extend_from_slice(rdata);
        if rtype == 5 {
            m.extend_from_slice(&[0]); // the name ends outside the rdata
        }
        let msg = Message::parse(&m).unwrap();
        let r = msg.records().next().unwrap().unwrap();
        assert_eq!(r.data().unwrap_err(), Error::RdataTooShort, "type {rtype}");
    }
}

#[test]
fn rdata_with_octets_left_over() {
    for (rtype, rdata) in [
        (1u16, &[10u8, 0, 0, 1, 9][..]),
        (28, &[0u8; 17][..]),
        (5, &[1u8, b'a', 0, 0xFF][..]),
        (33, &[0u8, 1, 0, 2, 0, 80, 0, 7][..]),
        (15, &[0u8, 10, 0, 0][..]), // MX: root exchange, one octet more
        (6, &[0u8; 23][..]),        // SOA: two root names, 21 octets of numbers
    ] {
        let mut m = header([0, 1, 0, 0]);
        m.push(0);
        m.extend(rr(rtype, rdata.len() as u16));
        m.extend_from_slice(rdata);
        let msg = Message::parse(&m).unwrap();
        let r = msg.records().next().unwrap().unwrap();
        assert_eq!(r.data().unwrap_err(), Error::RdataTrailing, "type {rtype}");
    }
}

#[test]
fn pointer_to_itself_or_forward() {
    // QNAME is a pointer to its own offset (12): the classic decompression loop.
    let mut m = header([1, 0, 0, 0]);
    m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    assert_eq!(walk(&m).unwrap_err(), Error::PointerNotBackwards);
    // A forward pointer.
    let mut m = header([1, 0, 0, 0]);
    m.extend_from_slice(&[0xC0, 18, 0, 1, 0, 1, 0]);
    assert_eq!(walk(&m).unwrap_err(), Error::PointerNotBackwards);
    // A pointer back into its own run of labels: `a` then a pointer to `a` again.
    let mut m = header([1, 0, 0, 0]);
    m.extend_from_slice(&[1, b'a', 0xC0, 12, 0, 1, 0, 1]);
    assert_eq!(walk(&m).unwrap_err(), Error::PointerNotBackwards);
}

#[test]
fn too_many_pointer_hops() {
    // Record 1 (unknown type) carries a root label followed by a chain of pointers, each
    // to the previous one; record 2's owner points at the end of the chain.
    let chain = |links: usize| {
        let mut m = header([0, 2, 0, 0]);
        m.push(0);
        let rdata_at = m.len() + 10;
        m.extend(rr(0xFF00, (1 + 2 * links) as u16));
        m.push(0);
        for i in 0..links {
            let target = if i == 0 {
                rdata_at
            } else {
                rdata_at + 1 + 2 * (i - 1)
            };
            m.extend_from_slice(&[0xC0 | (target >> 8) as u8, target as u8]);
        }
        let last = rdata_at + 1 + 2 * (links - 1);
        m.extend_from_slice(&[0xC0 | (last >> 8) as u8, last as u8]);
        m.extend(rr(1, 4));
        m.extend_from_slice(&[10, 0, 0, 1]);
        m
    };
    // 15 links + the owner's own pointer = 16 hops: allowed.
    assert_eq!(walk(&chain(15)), Ok(2));
    assert_eq!(walk(&chain(16)).unwrap_err(), Error::TooManyPointers);
}

/// Names remembered by the record iterator (rdata names it validated) still count every
/// pointer hop behind them: a pointer to one adds to its hops.
#[test]
fn pointer_hops_add_up_through_remembered_names() {
    // Question `a.`, then CNAME records (owner: the question) whose targets are `x` plus a
    // pointer to the previous target, the first one to the question: target k has k hops
    // and k + 1 labels. Optionally an A record whose owner points at target k.
    let build = |cnames: usize, owner_at: Option<usize>| {
        let mut m = header([1, (cnames + usize::from(owner_at.is_some())) as u16, 0, 0]);
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        let mut starts = Vec::new();
        let mut prev = 12;
        for _ in 0..cnames {
            m.extend_from_slice(&[0xC0, 12]);
            m.extend(rr(5, 4));
            let at = m.len();
            starts.push(at);
            m.extend_from_slice(&[1, b'x', 0xC0 | (prev >> 8) as u8, prev as u8]);
            prev = at;
        }
        if let Some(k) = owner_at {
            let t = starts[k - 1];
            m.extend_from_slice(&[0xC0 | (t >> 8) as u8, t as u8]);
            m.extend(rr(1, 4));
            m.extend_from_slice(&[10, 0, 0, 1]);
        }
        m
    };
    let m = build(16, None);
    assert_eq!(walk(&m), Ok(17));
    let msg = Message::parse(&m).unwrap();
    for (k, r) in msg.records().enumerate() {
        let RData::Cname(target) = r.unwrap().data().unwrap() else {
            panic!("CNAME expected");
        };
        assert_eq!(target.label_count(), k + 2);
        assert_eq!(target.labels().count(), k + 2);
        assert_eq!(target.labels().last(), Some(&b"a"[..]));
    }
    assert_eq!(walk(&build(17, None)).unwrap_err(), Error::TooManyPointers);
    // The owner's own pointer + 15 hops behind target 15 = 16: allowed.
    let m = build(16, Some(15));
    assert_eq!(walk(&m), Ok(18));
    let msg = Message::parse(&m).unwrap();
    let owner = msg.records().last().unwrap().unwrap().name();
    assert_eq!(owner.label_count(), 16);
    assert_eq!(owner.labels().count(), 16);
    assert_eq!(
        walk(&build(16, Some(16))).unwrap_err(),
        Error::TooManyPointers
    );
}

/// Owner names pointing at every label of a ten-label question: the question memo
/// resolves the whole name and the suffixes starting at its last eight labels, the
/// general walk the others; all agree with the labels in place.
#[test]
fn owners_pointing_into_every_label_of_the_question() {
    let mut m = header([1, 10, 0, 0]);
    let mut starts = Vec::new();
    for i in 0..10u8 {
        starts.push(m.len());
        m.extend_from_slice(&[2, b'a', b'0' + i]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    for &at in &starts {
        m.extend_from_slice(&[0xC0, at as u8]);
        m.extend(rr(1, 4));
        m.extend_from_slice(&[10, 0, 0, 1]);
    }
    assert_eq!(walk(&m), Ok(11));
    let msg = Message::parse(&m).unwrap();
    for (k, r) in msg.records().enumerate() {
        let owner = r.unwrap().name();
        assert_eq!(owner.label_count(), 10 - k, "owner {k}");
        assert_eq!(owner.wire_len(), 3 * (10 - k) + 1, "owner {k}");
        let want: Vec<Vec<u8>> = (k..10).map(|i| vec![b'a', b'0' + i as u8]).collect();
        let got: Vec<Vec<u8>> = owner.labels().map(<[u8]>::to_vec).collect();
        assert_eq!(got, want, "owner {k}");
    }
}

#[test]
fn name_longer_than_255_octets() {
    // In place: 4 labels of 63 octets = 256 octets with the root.
    let mut m = header([1, 0, 0, 0]);
    for _ in 0..4 {
        m.push(63);
        m.extend_from_slice(&[b'x'; 63]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(walk(&m).unwrap_err(), Error::NameTooLong);
    // 3 labels of 63 + one of 61 = 255 octets: the longest legal name.
    let mut m = header([1, 0, 0, 0]);
    for len in [63, 63, 63, 61] {
        m.push(len);
        m.extend(std::iter::repeat_n(b'x', usize::from(len)));
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(walk(&m), Ok(1));
    // Only after decompression: a 192-octet name, then a 64-octet prefix pointing at it.
    let mut m = header([2, 0, 0, 0]);
    for _ in 0..3 {
        m.push(63);
        m.extend_from_slice(&[b'y'; 63]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.push(63);
    m.extend_from_slice(&[b'z'; 63]);
    m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    assert_eq!(walk(&m).unwrap_err(), Error::NameTooLong);
}

#[test]
fn reserved_label_types() {
    for first in [0x40u8, 0x41, 0x80, 0xBF] {
        let mut m = header([1, 0, 0, 0]);
        m.extend_from_slice(&[first, b'a', 0, 0, 1, 0, 1]);
        assert_eq!(
            walk(&m).unwrap_err(),
            Error::ReservedLabelType,
            "{first:#x}"
        );
    }
}

#[test]
fn trailing_bytes_are_reported_and_records_stay_readable() {
    let mut m = header([0, 1, 0, 0]);
    m.push(0);
    m.extend(rr(1, 4));
    m.extend_from_slice(&[10, 96, 0, 1, 0xDE, 0xAD, 0xBE]);
    assert_eq!(walk(&m).unwrap_err(), Error::TrailingBytes);
    let msg = Message::parse(&m).unwrap();
    assert_eq!(msg.trailing_len(), Ok(3));
    let r = msg.answers().next().unwrap().unwrap();
    assert_eq!(r.data().unwrap(), RData::A([10, 96, 0, 1].into()));
    // Only a full walk of every section knows: a partial iterator says nothing.
    let mut answers = msg.answers();
    answers.next();
    assert_eq!(answers.trailing_len(), None);
}

#[test]
fn iterators_stop_after_the_first_error() {
    let mut m = header([0, 2, 0, 0]);
    m.extend_from_slice(&[0x80]); // reserved label type in the first owner
    m.extend(rr(1, 4));
    m.extend_from_slice(&[0; 11]);
    let msg = Message::parse(&m).unwrap();
    let mut it = msg.records();
    assert_eq!(it.next().unwrap().unwrap_err(), Error::ReservedLabelType);
    assert!(it.next().is_none());
    assert_eq!(it.trailing_len(), None);
}

#[test]
fn builder_rejects_bad_names_and_small_buffers() {
    let mut buf = [0u8; 512];
    let long_label = "a".repeat(64);
    assert_eq!(
        QueryBuilder::new(1, &long_label, Rtype::A).write(&mut buf),
        Err(Error::LabelTooLong)
    );
    assert_eq!(
        QueryBuilder::new(1, "a..b", Rtype::A).write(&mut buf),
        Err(Error::EmptyLabel)
    );
    assert_eq!(
        QueryBuilder::new(1, ".a", Rtype::A).write(&mut buf),
        Err(Error::EmptyLabel)
    );
    assert_eq!(
        QueryBuilder::new(1, "a\\.b", Rtype::A).write(&mut buf),
        Err(Error::UnsupportedEscape)
    );
    let too_long = ["x".repeat(63).as_str(); 4].join(".");
    assert_eq!(
        QueryBuilder::new(1, &too_long, Rtype::A).write(&mut buf),
        Err(Error::NameTooLong)
    );
    let q = QueryBuilder::new(1, "kubernetes.default.svc.cluster.local", Rtype::A).edns(1232);
    let need = q.write(&mut buf).unwrap();
    assert_eq!(need, 12 + 38 + 4 + 11);
    for small in 0..need {
        assert_eq!(
            q.write(&mut buf[..small]),
            Err(Error::BufferTooSmall),
            "{small}"
        );
    }
    // The root and a trailing dot are fine.
    assert!(
        QueryBuilder::new(1, ".", Rtype::SOA)
            .write(&mut buf)
            .is_ok()
    );
    assert!(
        QueryBuilder::new(1, "a.b.", Rtype::SOA)
            .write(&mut buf)
            .is_ok()
    );
}

#[test]
fn presentation_into_a_small_buffer() {
    let mut buf = [0u8; 64];
    let n = QueryBuilder::new(1, "Web-0.my-headless", Rtype::A)
        .write(&mut buf)
        .unwrap();
    let msg = Message::parse(&buf[..n]).unwrap();
    let name = msg.first_question().unwrap().unwrap().name;
    let mut out = [0u8; 18];
    assert_eq!(name.write_to(&mut out), Ok(18));
    assert_eq!(&out, b"Web-0.my-headless.");
    assert_eq!(name.write_to(&mut out[..17]), Err(Error::BufferTooSmall));
    assert_eq!(name.to_string(), "Web-0.my-headless.");
}

#[test]
fn presentation_escapes_odd_octets() {
    let mut m = header([1, 0, 0, 0]);
    m.extend_from_slice(&[4, b'a', b'.', b'\\', 0x07, 1, b' ', 0, 0, 1, 0, 1]);
    let msg = Message::parse(&m).unwrap();
    let name = msg.first_question().unwrap().unwrap().name;
    assert_eq!(name.to_string(), "a\\.\\\\\\007.\\032.");
    let mut out = [0u8; 32];
    let n = name.write_to(&mut out).unwrap();
    assert_eq!(&out[..n], name.to_string().as_bytes());
}

#[test]
fn extended_rcode_and_ede() {
    // Header RCODE 0 + OPT upper bits 1 = BADVERS (16); EDE 22 "No Reachable Authority".
    let mut m = header([0, 0, 0, 1]);
    m.push(0);
    m.extend_from_slice(&[0, 41, 0x04, 0xD0, 1, 0, 0x80, 0]);
    let opt = [0u8, 15, 0, 6, 0, 22, b'u', b'p', b'!', b'!'];
    m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    m.extend_from_slice(&opt);
    let msg = Message::parse(&m).unwrap();
    assert_eq!(msg.extended_rcode(), Ok(Rcode::BADVERS));
    let edns = msg.edns().unwrap().unwrap();
    assert_eq!(edns.udp_payload_size(), 1232);
    assert!(edns.dnssec_ok());
    assert_eq!(edns.version(), 0);
    let ede = edns.extended_error().unwrap();
    assert_eq!(
        (ede.info_code, ede.extra_text, ede.meaning()),
        (22, &b"up!!"[..], "No Reachable Authority")
    );
    let r = msg.section(Section::Additional).next().unwrap().unwrap();
    assert_eq!(r.section(), Section::Additional);
}

#[test]
fn framer_rejects_oversized_frames_and_resyncs() {
    let mut f = TcpFramer::new([0u8; 16]);
    let mut got: Vec<Vec<u8>> = Vec::new();
    // A 20-octet frame split across chunks, then a 3-octet one.
    let mut stream = vec![0, 20];
    stream.extend_from_slice(&[7; 20]);
    stream.extend_from_slice(&[0, 3, 1, 2, 3]);
    let err = f.push(&stream[..5], |m| got.push(m.to_vec())).unwrap_err();
    assert_eq!(
        err,
        FrameError::TooLarge {
            declared: 20,
            capacity: 16,
            unread: 3
        }
    );
    // Until the caller decides, the framer refuses and consumes nothing.
    assert_eq!(
        f.push(&stream[5..], |m| got.push(m.to_vec()))
            .unwrap_err()
            .kind(),
        "frame_too_large"
    );
    f.skip_oversized();
    f.push(&stream[2..5], |m| got.push(m.to_vec())).unwrap();
    f.push(&stream[5..], |m| got.push(m.to_vec())).unwrap();
    assert_eq!(got, vec![vec![1, 2, 3]]);
    assert!(f.is_idle());
    // Or give up and start over.
    let _ = f.push(&[0xFF, 0xFF, 1], |_| {});
    f.reset();
    f.push(&[0, 1, 9], |m| got.push(m.to_vec())).unwrap();
    assert_eq!(got.last().unwrap(), &vec![9]);
}

#[test]
fn framer_capacity_does_not_depend_on_chunking() {
    // The same oversized frame, whole inside one chunk: still an error (a fuzz finding).
    let mut stream = vec![0, 20];
    stream.extend_from_slice(&[7; 20]);
    let mut f = TcpFramer::new([0u8; 16]);
    let err = f
        .push(&stream, |_| panic!("oversized frame handed out"))
        .unwrap_err();
    assert_eq!(
        err,
        FrameError::TooLarge {
            declared: 20,
            capacity: 16,
            unread: 20
        }
    );
}
