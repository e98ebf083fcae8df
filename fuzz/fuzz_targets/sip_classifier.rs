//! The SIP classifier (`firewall_common::sip::Classifier`) on arbitrary payloads, copied into
//! the fixed-size scratch buffer as the XDP program copies them, with the signature table the
//! daemon builds from the default rules (`rules.sip.signatures()`).
//!
//! Checks:
//! - no panic (and, under AddressSanitizer, no read outside the buffer);
//! - `Classifier::headers` returns `Done` within `MAX_HEADER_STEPS` calls and
//!   `Classifier::search` within `MAX_SEARCH_STEPS`, as the kernel's `bpf_loop` bounds assume;
//!   a finished classifier stays finished;
//! - the step-by-step result equals `classify`'s, and does not depend on the buffer's bytes past
//!   the payload or past `INSPECT_LEN`;
//! - a payload whose start line does not begin with a method name (a token followed by a space)
//!   is never a request with a method, and a known method is only reported when its name is
//!   written there;
//! - the kind (request and method, response and status, keep-alive, STUN, not SIP) equals that
//!   of a plain byte-by-byte reading of the start line (`expected_kind` below);
//! - a scanner hit is only reported for a request, names a signature of the table that applies
//!   to the field, and that signature is written (in any case) at a word start in the payload.

#![no_main]

use std::sync::OnceLock;

use firewall_common::sip::{
    classify, seal, Classifier, Kind, Method, Scratch, SignatureTable, Step, INSPECT_LEN, MAX_HEADER_STEPS, MAX_SEARCH_STEPS,
    SCRATCH_LEN,
};
use libfuzzer_sys::fuzz_target;
use sipwall::rules::Rules;

fn table() -> &'static SignatureTable {
    static TABLE: OnceLock<SignatureTable> = OnceLock::new();
    TABLE.get_or_init(|| Rules::default_rules().sip.signatures().expect("default signatures build"))
}

/// Runs the classifier step by step as the XDP program does, checking the step bounds.
fn stepwise(buf: &Scratch, len: usize, table: &SignatureTable) -> Classifier {
    let mut sealed = *buf;
    seal(&mut sealed, len);
    let buf = &sealed;
    let mut c = Classifier::new(len);
    assert!(c.inspected() <= INSPECT_LEN);
    if c.first(buf) == Step::Continue {
        let mut done = false;
        for _ in 0..MAX_HEADER_STEPS {
            if c.headers(buf) == Step::Done {
                done = true;
                break;
            }
        }
        assert!(done, "the header walk did not finish within MAX_HEADER_STEPS = {MAX_HEADER_STEPS} calls");
    }
    let before = c;
    assert_eq!(c.headers(buf), Step::Done, "the header walk goes on after it finished");
    assert_eq!(c, before, "a finished header walk changes the state");
    let mut done = false;
    for _ in 0..MAX_SEARCH_STEPS {
        if c.search(buf, table) == Step::Done {
            done = true;
            break;
        }
    }
    assert!(done, "the signature search did not finish within MAX_SEARCH_STEPS = {MAX_SEARCH_STEPS} calls");
    let before = c;
    assert_eq!(c.search(buf, table), Step::Done, "the search goes on after it finished");
    assert_eq!(c, before, "a finished search changes the state");
    c
}

const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

fn known_method(token: &[u8]) -> Option<Method> {
    Method::ALL[1..].iter().copied().find(|m| m.name().as_bytes() == token)
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// The payload with at most four leading CR/LF bytes skipped (RFC 3261 section 7.5).
fn after_leading_crlf(p: &[u8]) -> &[u8] {
    let lead = p.iter().take_while(|c| matches!(c, b'\r' | b'\n')).count().min(4);
    &p[lead..]
}

/// The kind of `p` (the inspected bytes) read byte by byte from RFC 3261 sections 7.1, 7.2 and
/// 7.5, RFC 5389 section 6 and RFC 5626 section 4.4, with the classifier's documented limits:
/// at most 4 leading CR/LF, a method of at most 32 bytes, a Request-URI starting with a letter
/// and its scheme's colon within 8 bytes, no control byte among those 8, the start line ended by
/// LF within the inspected bytes.
fn expected_kind(p: &[u8]) -> Kind {
    if p.len() >= 20 && p[0] & 0xc0 == 0 && p[4..8] == STUN_COOKIE {
        return Kind::Stun;
    }
    let rest = after_leading_crlf(p);
    if rest.is_empty() {
        return if p.is_empty() { Kind::NotSip } else { Kind::Keepalive };
    }
    let Some(lf) = rest.iter().position(|&c| c == b'\n') else { return Kind::NotSip };
    let line = &rest[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Kind::NotSip;
    }
    if line.len() > 8 - 1 && line[..7].eq_ignore_ascii_case(b"SIP/2.0") && line[7] == b' ' {
        let st = &line[8..];
        if st.len() < 3 || !(b'1'..=b'6').contains(&st[0]) || !st[1].is_ascii_digit() || !st[2].is_ascii_digit() {
            return Kind::NotSip;
        }
        if st.len() > 3 && st[3] != b' ' {
            return Kind::NotSip;
        }
        let status = st[..3].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        return Kind::Response(status);
    }
    // METHOD SP Request-URI SP SIP/2.0
    let Some(mlen) = line.iter().take(33).position(|&c| c == b' ') else { return Kind::NotSip };
    if mlen == 0 {
        return Kind::NotSip;
    }
    let uri_start = mlen + 1;
    if line.len() < uri_start + 2 + 7 {
        return Kind::NotSip;
    }
    let uri_end = line.len() - 8;
    if line[uri_end] != b' ' || !line[uri_end + 1..].eq_ignore_ascii_case(b"SIP/2.0") {
        return Kind::NotSip;
    }
    let uri = &line[uri_start..uri_end];
    let head = &uri[..uri.len().min(8)];
    if !head[0].is_ascii_alphabetic() || !head.contains(&b':') || head.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return Kind::NotSip;
    }
    let token = &line[..mlen];
    match known_method(token) {
        Some(m) => Kind::Request(m),
        None if token.iter().all(|&c| is_token_char(c)) => Kind::Request(Method::Unknown),
        None => Kind::NotSip,
    }
}

fuzz_target!(|data: &[u8]| {
    let table = table();
    // as the XDP program copies it: at most INSPECT_LEN bytes, the rest of the buffer zero
    let n = data.len().min(INSPECT_LEN);
    let mut clean: Scratch = [0; SCRATCH_LEN];
    clean[..n].copy_from_slice(&data[..n]);
    // the same payload with the rest of the buffer full of scanner text (and payload bytes past
    // INSPECT_LEN): neither may change anything
    let mut dirty: Scratch = [0; SCRATCH_LEN];
    for (b, s) in dirty.iter_mut().zip(b"\r\nUser-Agent: sipvicious\r\nFrom: <sip:nm@nm>\r\n".iter().cycle()) {
        *b = *s;
    }
    let m = data.len().min(SCRATCH_LEN);
    dirty[..m].copy_from_slice(&data[..m]);

    let c = stepwise(&clean, data.len(), table);
    let result = c.result();
    assert_eq!(classify(&clean, data.len(), table), result, "classify differs from the steps");
    let d = stepwise(&dirty, data.len(), table);
    assert_eq!(d.result(), result, "bytes past the payload (or past INSPECT_LEN) change the result");

    let p = &data[..n];
    let start = after_leading_crlf(p);
    if let Kind::Request(method) = result.kind {
        // a method name (a token) followed by a space starts the start line
        let sp = start.iter().position(|&c| c == b' ');
        let token = &start[..sp.unwrap_or(0)];
        assert!(
            !token.is_empty() && token.len() <= 32 && token.iter().all(|&c| is_token_char(c)),
            "a request whose start line does not begin with a method token: {method:?}"
        );
        match method {
            Method::Unknown => assert!(known_method(token).is_none(), "a known method read as unknown"),
            m => assert_eq!(token, m.name().as_bytes(), "{m:?} reported for another method token"),
        }
        assert_eq!(c.method_id(), Some(method as u32));
    } else {
        assert_eq!(c.method_id(), None);
    }
    assert_eq!(result.kind, expected_kind(p), "the classifier and a plain reading of the start line differ");

    if let Some(hit) = result.scanner {
        assert!(matches!(result.kind, Kind::Request(_)), "a scanner hit in a {:?}", result.kind);
        let sig = table.get(hit.signature).expect("the hit names a signature of the table");
        assert!(sig.fields & hit.field.bit() != 0, "signature {:?} does not apply to {:?}", sig.text(), hit.field);
        let text = sig.text().as_bytes();
        let found = (0..p.len().saturating_sub(text.len() - 1))
            .any(|q| p[q..q + text.len()].eq_ignore_ascii_case(text) && (q == 0 || !p[q - 1].is_ascii_alphanumeric()));
        assert!(found, "signature {:?} reported but not written at a word start", sig.text());
    }
});
