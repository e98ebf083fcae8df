//! A SIP phone on a UDP socket of a lab's peer namespace: it registers, answering its digest
//! challenges (RFC 3261 §22, RFC 2617) with a password, right or wrong.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use crate::netns::in_netns;

/// A desk phone's User-Agent: no scanner signature of the SIP inspector matches it.
pub const PHONE_AGENT: &str = "Yealink SIP-T46S 66.86.0.15";

/// A SIP user agent on a UDP socket of the lab's peer namespace: registers, answering the
/// challenge with a password (right or wrong).
pub struct Phone {
    sock: UdpSocket,
    local: SocketAddr,
    server: SocketAddr,
    user: String,
    /// The From display name, sent verbatim in quotes.
    pub display: Option<String>,
    pub user_agent: String,
    /// How long a request is retransmitted before it counts as unanswered.
    pub patience: Duration,
    calls: u32,
}

impl Phone {
    /// A phone of `user` on `local` (an address of the peer namespace) talking to `server`.
    pub fn new(ns: &str, local: SocketAddr, server: SocketAddr, user: &str) -> Phone {
        let sock = in_netns(ns, move || UdpSocket::bind(local)).join().unwrap();
        let sock = sock.unwrap_or_else(|e| panic!("UDP socket on {local} in {ns}: {e}"));
        let (user, user_agent) = (user.to_owned(), PHONE_AGENT.to_owned());
        Phone { sock, local, server, user, display: None, user_agent, patience: Duration::from_secs(30), calls: 0 }
    }

    /// One registration: a REGISTER, then (if challenged) a REGISTER answering the challenge with
    /// `password`. The final statuses it got, in order: `[401, 200]` for a registration,
    /// `[401, 401]` (pjsip) or `[401, 403]` (chan_sip) for a wrong password, fewer when a
    /// request went unanswered for `patience`.
    pub fn register(&mut self, password: &str) -> Vec<u16> {
        let (mut got, challenge) = self.challenge(password);
        if let Some(c) = challenge {
            got.extend(self.transact(&c.call_id, 2, Some(&c.authorization)).map(|r| r.status));
        }
        got
    }

    /// A REGISTER: the final status it got (none, if unanswered) and, if it was challenged, the
    /// answer with `password`, not sent.
    pub fn challenge(&mut self, password: &str) -> (Vec<u16>, Option<Challenge>) {
        self.calls += 1;
        let call_id = format!("phone-{}-{}-{}@{}", std::process::id(), self.local.port(), self.calls, self.local.ip());
        let Some(first) = self.transact(&call_id, 1, None) else { return (Vec::new(), None) };
        let authorization = (first.status == 401).then(|| first.authorization(&self.user, password, &self.uri()));
        (vec![first.status], authorization.flatten().map(|authorization| Challenge { call_id, authorization }))
    }

    /// The REGISTER answering `c` as this phone would send it, but naming `from` as its address.
    pub fn answer_from(&self, c: &Challenge, from: SocketAddr) -> String {
        self.request(from, &c.call_id, 2, Some(&c.authorization))
    }

    fn uri(&self) -> String {
        format!("sip:{}", self.server)
    }

    fn request(&self, local: SocketAddr, call_id: &str, cseq: u32, auth: Option<&str>) -> String {
        let (host, user) = (self.server.ip(), &self.user);
        let from = match &self.display {
            Some(d) => format!("\"{d}\" <sip:{user}@{host}>"),
            None => format!("<sip:{user}@{host}>"),
        };
        let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        // the From tag is the phone's own, wherever the request claims to come from
        let (n, port, tag, ua, uri) = (self.calls, local.port(), self.local.port(), &self.user_agent, self.uri());
        format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{port}-{n}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from};tag={tag}-{n}\r\nTo: <sip:{user}@{host}>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}>\r\n{auth}User-Agent: {ua}\r\n\
             Expires: 300\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// Sends a request, retransmitting it (RFC 3261 timer E, capped at 4 s) until a final
    /// response to it arrives or `patience` runs out.
    fn transact(&self, call_id: &str, cseq: u32, auth: Option<&str>) -> Option<Response> {
        let msg = self.request(self.local, call_id, cseq, auth);
        let deadline = Instant::now() + self.patience;
        let (mut gap, mut resend) = (Duration::from_millis(500), Instant::now());
        let mut buf = vec![0u8; 65536];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if now >= resend {
                self.sock.send_to(msg.as_bytes(), self.server).expect("send REGISTER");
                resend = now + gap;
                gap = (gap * 2).min(Duration::from_secs(4));
            }
            let wait = resend.min(deadline).saturating_duration_since(now).max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else { continue };
            let r = Response::parse(&String::from_utf8_lossy(&buf[..n]));
            if let Some(r) = r.filter(|r| r.status >= 200 && r.is_for(call_id, cseq)) {
                return Some(r);
            }
        }
    }
}

/// A challenge a phone got: its Call-ID, and the `Authorization` value answering it.
pub struct Challenge {
    pub call_id: String,
    pub authorization: String,
}

/// A SIP response: its status and header lines.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Response {
    fn parse(text: &str) -> Option<Response> {
        let mut lines = text.split("\r\n");
        let status = lines.next()?.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Response { status, headers })
    }

    fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn is_for(&self, call_id: &str, cseq: u32) -> bool {
        self.header("call-id").any(|c| c == call_id) && self.header("cseq").any(|c| c == format!("{cseq} REGISTER"))
    }

    /// The `Authorization` value answering this response's MD5 digest challenge.
    fn authorization(&self, user: &str, password: &str, uri: &str) -> Option<String> {
        let challenge =
            self.header("www-authenticate").filter_map(|v| v.strip_prefix("Digest ")).map(params).find(|p| {
                p.iter().all(|(k, v)| !k.eq_ignore_ascii_case("algorithm") || v.eq_ignore_ascii_case("MD5"))
            })?;
        let get = |key: &str| challenge.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str());
        let (realm, nonce) = (get("realm")?, get("nonce")?);
        let ha1 = md5_hex(format!("{user}:{realm}:{password}").as_bytes());
        let ha2 = md5_hex(format!("REGISTER:{uri}").as_bytes());
        let mut a =
            format!("Digest username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",uri=\"{uri}\",algorithm=MD5");
        if get("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")) {
            let cnonce = format!("{:08x}", std::process::id());
            let response = md5_hex(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes());
            a += &format!(",qop=auth,nc=00000001,cnonce=\"{cnonce}\",response=\"{response}\"");
        } else {
            a += &format!(",response=\"{}\"", md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes()));
        }
        if let Some(o) = get("opaque") {
            a += &format!(",opaque=\"{o}\"");
        }
        Some(a)
    }
}

/// `k=v, k="v, w"` pairs of a challenge.
fn params(s: &str) -> Vec<(String, String)> {
    let (mut out, mut rest) = (Vec::new(), s.trim());
    while let Some((k, r)) = rest.split_once('=') {
        let r = r.trim_start();
        let (v, r) = match r.strip_prefix('"') {
            Some(q) => q.split_once('"').unwrap_or((q, "")),
            None => r.split_once(',').map_or((r, ""), |(v, r)| (v, r)),
        };
        out.push((k.trim().to_owned(), v.trim().to_owned()));
        rest = r.trim_start_matches([',', ' ']);
    }
    out
}

/// MD5 (RFC 1321), which SIP digest authentication needs.
pub fn md5_hex(data: &[u8]) -> String {
    const SHIFT: [[u32; 4]; 4] = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];
    let k: Vec<u32> = (1..=64).map(|i| (f64::from(i).sin().abs() * 4_294_967_296.0) as u32).collect();
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64).wrapping_mul(8).to_le_bytes());
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for block in msg.chunks(64) {
        let m: Vec<u32> = block.chunks(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let t = a.wrapping_add(f).wrapping_add(k[i]).wrapping_add(m[g]).rotate_left(SHIFT[i / 16][i % 4]);
            (a, d, c) = (d, c, b);
            b = b.wrapping_add(t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().flat_map(|w| w.to_le_bytes()).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::{md5_hex, params, Response};

    #[test]
    fn md5_of_rfc_1321s_test_suite() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5_hex(b"message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
        let long = "1234567890".repeat(8);
        assert_eq!(md5_hex(long.as_bytes()), "57edf4a22be3c955ac49da2e2107b67a");
    }

    #[test]
    fn digest_answer_of_rfc_2617s_example() {
        // RFC 2617 §3.5, with the method and URI our REGISTER uses in place of GET /dir/index.html
        let ch = "SIP/2.0 401 Unauthorized\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest \
                  realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
                  opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\r\n";
        let r = Response::parse(ch).unwrap();
        assert!(r.is_for("c", 1) && !r.is_for("c", 2));
        let a = r.authorization("Mufasa", "Circle Of Life", "sip:10.0.0.1:5080").unwrap();
        let ha1 = md5_hex(b"Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex(b"REGISTER:sip:10.0.0.1:5080");
        let cnonce = format!("{:08x}", std::process::id());
        let want = md5_hex(format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:{cnonce}:auth:{ha2}").as_bytes());
        assert!(a.contains(&format!("response=\"{want}\"")), "{a}");
        assert!(a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"") && a.contains("qop=auth,"), "{a}");
        // RFC 2617's own response for GET /dir/index.html
        let ha2 = md5_hex(b"GET:/dir/index.html");
        let rfc = md5_hex(format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}").as_bytes());
        assert_eq!(rfc, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn challenge_parameters() {
        let p = params(r#"realm="asterisk",nonce="1/ab,c",algorithm=MD5, qop="auth""#);
        let want = [("realm", "asterisk"), ("nonce", "1/ab,c"), ("algorithm", "MD5"), ("qop", "auth")];
        assert_eq!(p, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }
}
