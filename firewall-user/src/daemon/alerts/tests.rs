//! Alerts: the JSON shape, and the webhook against a local https server with a test CA.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{body::Incoming, service::service_fn, Request, Response};
use prometheus::{IntCounterVec, Opts};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;
use crate::{
    detection::detect::Proof,
    rules::alerts::{CaFile, Events, Webhook},
};

pub(crate) fn ban() -> Ban {
    Ban {
        target: "192.0.2.66/32".parse().unwrap(),
        expires_unix_ms: Some(1_795_000_000_000),
        created_unix_ms: 1_794_999_000_000,
        reason: "asterisk: 3 failures within 10m".into(),
        source: "asterisk".into(),
    }
}

pub(crate) fn order() -> BanOrder {
    BanOrder {
        jail: "asterisk".into(),
        target: "192.0.2.66/32".parse().unwrap(),
        bantime: Some(Duration::from_secs(6 * 3600)),
        failures: 3,
        earlier: 0,
        lines: vec![
            "[2026-12-06 10:00:01] NOTICE[123] chan_sip.c: Registration from '<sip:100@h>' failed for '192.0.2.66:5060' - Wrong password".into(),
        ],
        users: vec!["100".into()],
        reason: "asterisk: 3 failures within 10m".into(),
        evidence: Proof::Proven,
    }
}

#[test]
fn a_jail_ban_is_one_json_object_and_lines_only_on_request() {
    let a = Alert::new(EventKind::Ban, &ban(), Some(&order()), 1_794_999_000_000);
    let v = a.json(false);
    assert_eq!(v["event"], "ban");
    assert_eq!(v["target"], "192.0.2.66/32");
    assert_eq!(v["expires"], "2026-11-18T11:06:40Z");
    assert_eq!((v["jail"].as_str(), v["source"].as_str()), (Some("asterisk"), Some("asterisk")));
    assert_eq!((v["failures"].as_u64(), v["earlier_bans"].as_u64()), (Some(3), Some(0)));
    assert_eq!((v["bantime"].as_str(), v["evidence"].as_str()), (Some("6h"), Some("proven")));
    assert_eq!(v["users"], serde_json::json!(["100"]));
    assert!(v.get("lines").is_none(), "{v}");
    let v = a.json(true);
    assert!(v["lines"][0].as_str().unwrap().contains("Wrong password"), "{v}");
}

#[test]
fn unbans_and_expiries_have_the_same_shape() {
    let mut b = ban();
    b.source = "manual".into();
    b.expires_unix_ms = None;
    for kind in [EventKind::Unban, EventKind::Expire] {
        let v = Alert::new(kind, &b, None, 1).json(true);
        assert_eq!(v["event"], kind.name());
        assert_eq!((v["target"].as_str(), v["source"].as_str()), (Some("192.0.2.66/32"), Some("manual")));
        assert!(v["expires"].is_null() && v.get("jail").is_none() && v.get("lines").is_none(), "{v}");
    }
}

#[test]
fn pauses_double_up_to_a_minute() {
    let p: Vec<u64> = pauses().take(9).map(|d| d.as_millis() as u64).collect();
    assert_eq!(p, [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
}

/// A certificate authority of the test's own, and a certificate it signed for 127.0.0.1.
pub struct TestCa {
    pub ca_pem: String,
    pub cert: CertificateDer<'static>,
    pub key: Vec<u8>,
}

pub fn test_ca() -> TestCa {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "sipwall test CA");
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap().signed_by(&key, &ca).unwrap();
    TestCa { ca_pem: ca.pem(), cert: cert.der().clone(), key: key.serialize_der() }
}

/// TLS for a test server on 127.0.0.1 with the certificate of `ca`.
pub fn acceptor(ca: &TestCa) -> tokio_rustls::TlsAcceptor {
    let cfg = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ca.cert.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ca.key.clone())))
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// Requests an https server saw: headers and body.
type Seen = Arc<Mutex<Vec<(hyper::HeaderMap, String)>>>;

/// An https server on 127.0.0.1 answering with `statuses` in turn, then 204.
async fn https_server(ca: &TestCa, statuses: &[u16]) -> (String, Seen) {
    let acceptor = acceptor(ca);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Default::default();
    let script = Arc::new(Mutex::new(statuses.iter().copied().collect::<VecDeque<u16>>()));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, seen, script) = (acceptor.clone(), s.clone(), script.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (seen, script) = (seen.clone(), script.clone());
                    async move {
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await?.to_bytes();
                        seen.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
                        let status = script.lock().unwrap().pop_front().unwrap_or(204);
                        let answer = Response::builder().status(status).body(Empty::<Bytes>::new());
                        Ok::<_, hyper::Error>(answer.expect("a valid status"))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    (url, seen)
}

fn counter() -> IntCounterVec {
    IntCounterVec::new(Opts::new("t", "t"), &["result"]).unwrap()
}

fn hook(url: String, ca: Option<&TestCa>) -> Webhook {
    Webhook {
        url,
        timeout: Duration::from_secs(10),
        retries: 3,
        headers: vec![("Authorization".into(), "Bearer t0ken".into())],
        ca_file: ca.map(|c| CaFile { path: "test-ca.pem".into(), pem: c.ca_pem.clone().into_bytes() }),
        events: Events::all(),
        lines: false,
    }
}

/// Waits, up to a generous limit, for `f`.
async fn until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_ban_reaches_an_https_webhook_with_its_header_after_a_503() {
    let ca = test_ca();
    let (url, seen) = https_server(&ca, &[503]).await;
    let c = counter();
    let n = webhook::start(hook(url, Some(&ca)), c.clone()).unwrap();
    n.send(&Arc::new(Alert::new(EventKind::Ban, &ban(), Some(&order()), 1)));
    assert!(until(|| c.with_label_values(&["delivered"]).get() == 1).await, "not delivered: {:?}", seen.lock());
    assert_eq!(c.with_label_values(&["retried"]).get(), 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "the 503 and the retry");
    for (headers, body) in seen.iter() {
        assert_eq!(headers["authorization"], "Bearer t0ken");
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers["user-agent"].to_str().unwrap().starts_with("sipwall/"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!((v["event"].as_str(), v["target"].as_str()), (Some("ban"), Some("192.0.2.66/32")));
    }
}

#[tokio::test]
async fn only_the_chosen_events_are_sent() {
    let ca = test_ca();
    let (url, seen) = https_server(&ca, &[]).await;
    let c = counter();
    let mut h = hook(url, Some(&ca));
    h.events = Events::of(&[EventKind::Unban, EventKind::Expire]);
    h.lines = true;
    let n = webhook::start(h, c.clone()).unwrap();
    for kind in [EventKind::Ban, EventKind::Unban, EventKind::Reban, EventKind::Expire] {
        n.send(&Arc::new(Alert::new(kind, &ban(), None, 1)));
    }
    assert!(until(|| c.with_label_values(&["delivered"]).get() == 2).await);
    // the queue is in order: after the expiry, nothing else is coming
    let events: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap()["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["unban", "expire"]);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_and_is_counted() {
    let ca = test_ca();
    let (url, seen) = https_server(&ca, &[]).await;
    let c = counter();
    let mut h = hook(url, None);
    h.retries = 1;
    let n = webhook::start(h, c.clone()).unwrap();
    n.send(&Arc::new(Alert::new(EventKind::Ban, &ban(), None, 1)));
    assert!(until(|| c.with_label_values(&["failed"]).get() == 1).await);
    assert_eq!((c.with_label_values(&["retried"]).get(), c.with_label_values(&["delivered"]).get()), (1, 0));
    assert!(seen.lock().unwrap().is_empty(), "no request may pass an untrusted certificate");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    // a receiver that never answers: the first notification waits, the queue fills up
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let c = counter();
    let mut h = hook(url, None);
    h.timeout = Duration::from_secs(60);
    let n = webhook::start(h, c.clone()).unwrap();
    let a = Arc::new(Alert::new(EventKind::Ban, &ban(), None, 1));
    for _ in 0..QUEUE + 10 {
        n.send(&a);
    }
    assert!((9..=10).contains(&c.with_label_values(&["dropped"]).get()), "{}", c.with_label_values(&["dropped"]).get());
    drop(listener);
}
