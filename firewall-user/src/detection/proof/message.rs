//! Reads what a proof needs from a SIP message's text: the start line, Call-ID, CSeq, the To
//! header's tag and the digest nonces (`WWW-Authenticate`/`Proxy-Authenticate` in answers,
//! `Authorization`/`Proxy-Authorization` in requests). Header names are matched without regard
//! to case, compact forms (`i`, `t`) included. Text past the header block, malformed lines and
//! headers of no interest are skipped; a message with no Call-ID is not read at all.

/// The start line: a request's method or an answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    Request(&'a str),
    Answer(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub start: Start<'a>,
    pub call_id: &'a str,
    /// The method of the CSeq header.
    pub cseq_method: Option<&'a str>,
    pub to_tag: Option<&'a str>,
    /// Digest nonces, from the challenge headers of an answer or the credentials of a request.
    pub nonces: Vec<&'a str>,
}

/// Nonces read from one message at most.
const MAX_NONCES: usize = 4;

/// Reads `text` (a UDP payload, possibly cut short); `None` if it is no SIP message with a
/// Call-ID.
pub fn read(text: &[u8]) -> Option<Message<'_>> {
    let text = until_body(text);
    let mut lines = text.split(|&c| c == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = start_line(std::str::from_utf8(lines.next()?).ok()?)?;
    let (mut call_id, mut cseq_method, mut to_tag, mut nonces) = (None, None, None, Vec::new());
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else { continue };
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim_end(), value.trim());
        let is = |long: &str, short: &str| name.eq_ignore_ascii_case(long) || (!short.is_empty() && name == short);
        if is("Call-ID", "i") {
            call_id.get_or_insert(value);
        } else if is("CSeq", "") {
            cseq_method = cseq_method.or_else(|| value.split_whitespace().nth(1));
        } else if is("To", "t") {
            to_tag = to_tag.or_else(|| param(after_uri(value), "tag"));
        } else if nonces.len() < MAX_NONCES && carries_nonce(name, &start) {
            nonces.extend(param(value, "nonce"));
        }
    }
    let call_id = call_id.filter(|c| !c.is_empty())?;
    Some(Message { start, call_id, cseq_method, to_tag, nonces })
}

/// The header block: the text before the first empty line; if the text was cut short before
/// one, its complete lines (a value cut in the middle is no value).
fn until_body(text: &[u8]) -> &[u8] {
    let end = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| text.windows(2).position(|w| w == b"\n\n"))
        .or_else(|| text.iter().rposition(|&c| c == b'\n'));
    &text[..end.unwrap_or(text.len())]
}

fn start_line(line: &str) -> Option<Start<'_>> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let code = rest.get(..3)?;
        let status: u16 = code.parse().ok().filter(|s| (100..700).contains(s))?;
        return Some(Start::Answer(status));
    }
    let mut words = line.split(' ');
    let (method, _uri, version) = (words.next()?, words.next()?, words.next()?);
    let token = !method.is_empty() && method.bytes().all(|c| c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c));
    (token && version == "SIP/2.0").then_some(Start::Request(method))
}

/// Whether a header named `name` holds digest nonces worth reading in this kind of message.
fn carries_nonce(name: &str, start: &Start<'_>) -> bool {
    let names: &[&str] = match start {
        Start::Answer(_) => &["WWW-Authenticate", "Proxy-Authenticate"],
        Start::Request(_) => &["Authorization", "Proxy-Authorization"],
    };
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// The header value past its URI (a tag inside `<…>` belongs to the URI, not to the header).
fn after_uri(value: &str) -> &str {
    match value.find('<') {
        Some(open) => value[open..].find('>').map_or("", |close| &value[open + close + 1..]),
        None => value,
    }
}

/// The value of parameter `name` in a run of `;name=value` (a header's parameters) or
/// `scheme name="value", …` (digest credentials), without its quotes.
fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    const SEPARATORS: [char; 4] = [';', ',', ' ', '\t'];
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(SEPARATORS);
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['=', ';', ',', ' ', '\t']).unwrap_or(rest.len());
        let key = &rest[..end];
        rest = rest[end..].trim_start();
        let mut val = "";
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            if let Some(q) = r.strip_prefix('"') {
                let close = q.find('"')?;
                (val, rest) = (&q[..close], &q[close + 1..]);
            } else {
                let e = r.find(SEPARATORS).unwrap_or(r.len());
                (val, rest) = (&r[..e], &r[e..]);
            }
        }
        if key.eq_ignore_ascii_case(name) && !val.is_empty() {
            return Some(val);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &[u8] = b"SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;rport=5060;received=10.0.0.2;branch=z9hG4bK1\r\n\
Call-ID: 4f3a@10.0.0.2\r\n\
From: \"alice\" <sip:alice@10.0.0.1>;tag=abc\r\n\
To: <sip:alice@10.0.0.1;tag=uri-param>;tag=z9hG4bK.srv1\r\n\
CSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"asterisk\",nonce=\"1700000000/5e3b7c\",opaque=\"0f\",algorithm=MD5,qop=\"auth\"\r\n\
Content-Length:  0\r\n\r\n";

    #[test]
    fn a_challenge_gives_its_nonce_tag_and_call() {
        let m = read(CHALLENGE).unwrap();
        assert_eq!(m.start, Start::Answer(401));
        assert_eq!(m.call_id, "4f3a@10.0.0.2");
        assert_eq!(m.cseq_method, Some("REGISTER"));
        assert_eq!(m.to_tag, Some("z9hG4bK.srv1"), "the header's tag, not the URI's");
        assert_eq!(m.nonces, ["1700000000/5e3b7c"]);
    }

    #[test]
    fn a_request_gives_the_nonce_it_answers_with() {
        let r = b"REGISTER sip:10.0.0.1 SIP/2.0\r\n\
i: 4f3a@10.0.0.2\r\n\
t: <sip:alice@10.0.0.1>\r\n\
CSeq: 2 REGISTER\r\n\
authorization: Digest username=\"alice\", realm=\"asterisk\", nonce=\"1700000000/5e3b7c\", uri=\"sip:10.0.0.1\", response=\"00\"\r\n\
Content-Length: 0\r\n\r\n";
        let m = read(r).unwrap();
        assert_eq!(m.start, Start::Request("REGISTER"));
        assert_eq!((m.call_id, m.to_tag), ("4f3a@10.0.0.2", None));
        assert_eq!(m.nonces, ["1700000000/5e3b7c"]);
    }

    #[test]
    fn an_ack_echoes_the_to_tag() {
        let r = b"ACK sip:900@10.0.0.1 SIP/2.0\r\nCall-ID: x1\r\nTo: \"900\" <sip:900@10.0.0.1>;tag=as5f1e;x=y\r\nCSeq: 1 ACK\r\n\r\n";
        let m = read(r).unwrap();
        assert_eq!(m.to_tag, Some("as5f1e"));
        assert!(m.nonces.is_empty());
    }

    #[test]
    fn nonces_are_read_only_where_they_belong() {
        // a request's challenge header and an answer's credentials are attacker text
        let r = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: c\r\nWWW-Authenticate: Digest nonce=\"n1\"\r\n\r\n";
        assert!(read(r).unwrap().nonces.is_empty());
        let a = b"SIP/2.0 401 Unauthorized\r\nCall-ID: c\r\nAuthorization: Digest nonce=\"n2\"\r\nProxy-Authenticate: Digest realm=\"r\", nonce=\"n3\"\r\n\r\n";
        assert_eq!(read(a).unwrap().nonces, ["n3"]);
        // a parameter whose name ends in `nonce` is not the nonce
        let c = b"SIP/2.0 407 x\r\nCall-ID: c\r\nProxy-Authenticate: Digest cnonce=\"no\", nonce=\"yes\"\r\n\r\n";
        assert_eq!(read(c).unwrap().nonces, ["yes"]);
    }

    #[test]
    fn the_body_and_junk_are_not_read() {
        let r = b"INVITE sip:1@h SIP/2.0\r\nCall-ID: c\r\n\r\nTo: <sip:x>;tag=from-body\r\n";
        assert_eq!(read(r).unwrap().to_tag, None);
        assert!(read(b"SIP/2.0 401 x\r\nFrom: a\r\n\r\n").is_none(), "no Call-ID");
        assert!(read(b"HELLO\r\nCall-ID: c\r\n").is_none());
        assert!(read(b"SIP/2.0 99 x\r\nCall-ID: c\r\n").is_none());
        assert!(read(b"\xff\xfe").is_none());
        // cut short inside a header: what came before is kept
        let m = read(b"SIP/2.0 404 Not Found\r\nCall-ID: c9\r\nTo: <sip:1@h>;tag=t9\r\nCSeq: 1 INV").unwrap();
        assert_eq!((m.call_id, m.to_tag, m.cseq_method), ("c9", Some("t9"), None));
    }
}
