//! Feeds against a local https server with a test CA: each format, ETag and 304, APIBAN's
//! paging by ID, and a feed that fails and comes back while its last good copy stays in force.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};

use super::*;
use crate::{
    daemon::alerts::tests::{acceptor, test_ca, TestCa},
    rules::{
        alerts::CaFile,
        feeds::{tests::feed, Format},
    },
};

/// What the server answers for a path.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    etag: Option<&'static str>,
    /// A `Content-Length` larger than the body: the connection ends early.
    cut: bool,
}

fn ok(body: &str) -> Answer {
    Answer { status: 200, body: body.as_bytes().to_vec(), etag: None, cut: false }
}

#[derive(Default)]
struct Site {
    answers: HashMap<String, Answer>,
    /// Each request: its path and its If-None-Match and If-Modified-Since headers.
    seen: Vec<(String, Option<String>, Option<String>)>,
}

type Shared = Arc<Mutex<Site>>;

fn answer(site: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let path = req.uri().path().to_owned();
    let mut s = site.lock().unwrap();
    s.seen.push((path.clone(), h("if-none-match"), h("if-modified-since")));
    let Some(a) = s.answers.get(&path).cloned() else {
        return Response::builder().status(404).body(Full::new(Bytes::from_static(b"not here"))).unwrap();
    };
    let mut b = Response::builder().status(a.status);
    if let Some(tag) = a.etag {
        if h("if-none-match").as_deref() == Some(tag) {
            return b.status(304).body(Full::new(Bytes::new())).unwrap();
        }
        b = b.header("etag", tag).header("last-modified", "Sun, 06 Dec 2026 10:00:00 GMT");
    }
    if a.cut {
        b = b.header("content-length", a.body.len() + 1000);
    }
    b.body(Full::new(Bytes::from(a.body))).unwrap()
}

/// An https server on 127.0.0.1 answering from `site`; its base URL.
async fn server(ca: &TestCa, site: Shared) -> String {
    let acceptor = acceptor(ca);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, site) = (acceptor.clone(), site.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let a = answer(&site, &req);
                    async move { Ok::<_, hyper::Error>(a) }
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    base
}

struct Lab {
    site: Shared,
    base: String,
    ca: TestCa,
    dir: PathBuf,
}

async fn lab(name: &str) -> Lab {
    let ca = test_ca();
    let site: Shared = Default::default();
    let base = server(&ca, site.clone()).await;
    let dir = std::env::temp_dir().join(format!("sipwall-feeds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Lab { site, base, ca, dir }
}

impl Lab {
    fn serve(&self, path: &str, a: Answer) {
        self.site.lock().unwrap().answers.insert(path.to_owned(), a);
    }

    fn feed(&self, path: &str, format: Format) -> Feed {
        let mut f = feed(&format!("{}{path}", self.base), format);
        f.ca_file = Some(CaFile { path: "test-ca.pem".into(), pem: self.ca.ca_pem.clone().into_bytes() });
        f.timeout = std::time::Duration::from_secs(30);
        f
    }

    fn seen(&self) -> Vec<(String, Option<String>, Option<String>)> {
        std::mem::take(&mut self.site.lock().unwrap().seen)
    }
}

fn shown(copy: &Copy) -> Vec<String> {
    copy.nets().iter().map(ToString::to_string).collect()
}

const T0: u64 = 1_800_000_000;

#[tokio::test]
async fn each_format_over_https() {
    let l = lab("formats").await;
    l.serve("/drop.txt", ok("; Spamhaus DROP\n1.10.16.0/20 ; SBL256894\n223.254.0.0/16\nbogus\n"));
    l.serve("/update/", ok("# VoIPBL.org\r\n5.8.18.7/32\r\n2.56.0.0/22\r\n"));
    l.serve("/ips.json", ok(r#"{"ips": ["198.51.100.7", "2001:db8:bad::/48", 7]}"#));
    l.serve("/list.json", ok(r#"["203.0.113.0/24"]"#));
    let cases = [
        ("/drop.txt", Format::Plain, vec!["1.10.16.0/20", "223.254.0.0/16"], 1),
        ("/update/", Format::Voipbl, vec!["2.56.0.0/22", "5.8.18.7/32"], 0),
        ("/ips.json", Format::Json, vec!["198.51.100.7/32", "2001:db8:bad::/48"], 1),
        ("/list.json", Format::Json, vec!["203.0.113.0/24"], 0),
    ];
    for (path, format, want, skipped) in cases {
        let (st, err) = FeedState::open(l.feed(path, format), &l.dir).unwrap();
        assert!(err.is_none());
        let (copy, n) = st.refresh(T0).await.unwrap_or_else(|e| panic!("{path}: {e}")).expect("a new copy");
        assert_eq!((shown(&copy), n), (want.iter().map(|s| s.to_string()).collect(), skipped), "{path}");
    }
}

#[tokio::test]
async fn an_unchanged_list_answers_304_to_the_saved_etag_also_after_a_restart() {
    let l = lab("etag").await;
    l.serve("/drop.txt", Answer { etag: Some("\"v1\""), ..ok("192.0.2.0/24\n") });
    let f = l.feed("/drop.txt", Format::Plain);
    let (mut st, _) = FeedState::open(f.clone(), &l.dir).unwrap();
    let (copy, _) = st.refresh(T0).await.unwrap().unwrap();
    assert_eq!(copy.etag.as_deref(), Some("\"v1\""));
    st.commit(copy).unwrap();
    assert_eq!(st.refresh(T0 + 3600).await.unwrap(), None, "304: the copy is current");
    // a new daemon reads the saved copy and its validators
    let (st2, err) = FeedState::open(f, &l.dir).unwrap();
    assert!(err.is_none());
    assert_eq!(shown(&st2.copy), ["192.0.2.0/24"]);
    assert_eq!(st2.refresh(T0 + 7200).await.unwrap(), None);
    let seen = l.seen();
    let cond: Vec<(Option<&str>, Option<&str>)> = seen.iter().map(|s| (s.1.as_deref(), s.2.as_deref())).collect();
    let lm = Some("Sun, 06 Dec 2026 10:00:00 GMT");
    assert_eq!(cond, [(None, None), (Some("\"v1\""), lm), (Some("\"v1\""), lm)]);
    // a changed list comes whole
    l.serve("/drop.txt", Answer { etag: Some("\"v2\""), ..ok("192.0.2.0/24\n198.51.100.0/24\n") });
    let (copy, _) = st2.refresh(T0 + 10_800).await.unwrap().unwrap();
    assert_eq!(
        (shown(&copy), copy.etag.as_deref()),
        (vec!["192.0.2.0/24".into(), "198.51.100.0/24".into()], Some("\"v2\""))
    );
}

fn page(ips: &[&str], id: &str) -> Answer {
    ok(&serde_json::json!({ "ipaddress": ips, "ID": id }).to_string())
}

fn no_new_bans(status: u16) -> Answer {
    Answer { status, ..ok(r#"{"ipaddress":["no new bans"], "ID":"none"}"#) }
}

#[tokio::test]
async fn apiban_pages_by_id_from_the_saved_one_on() {
    let l = lab("apiban").await;
    let mut f = l.feed("/api/{key}/banned", Format::Apiban);
    f.key_file = Some(l.dir.join("apiban.key"));
    std::fs::write(l.dir.join("apiban.key"), "k3y\n").unwrap();
    l.serve("/api/k3y/banned/100", page(&["192.0.2.1", "192.0.2.2"], "1700000001"));
    l.serve("/api/k3y/banned/1700000001", page(&["192.0.2.3", "not-an-ip"], "1700000002"));
    l.serve("/api/k3y/banned/1700000002", page(&["2001:db8::3"], "1700000003"));
    l.serve("/api/k3y/banned/1700000003", no_new_bans(404));
    let (mut st, _) = FeedState::open(f.clone(), &l.dir).unwrap();
    let (copy, skipped) = st.refresh(T0).await.unwrap().unwrap();
    assert_eq!(shown(&copy), ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "2001:db8::3/128"]);
    assert_eq!((skipped, copy.apiban_id.as_deref()), (1, Some("1700000003")));
    let paths: Vec<String> = l.seen().into_iter().map(|s| s.0).collect();
    assert_eq!(
        paths,
        [
            "/api/k3y/banned/100",
            "/api/k3y/banned/1700000001",
            "/api/k3y/banned/1700000002",
            "/api/k3y/banned/1700000003"
        ]
    );
    st.commit(copy).unwrap();

    // a restart asks only for what is newer than the saved ID
    l.serve("/api/k3y/banned/1700000003", page(&["192.0.2.2", "192.0.2.9"], "1700000004"));
    l.serve("/api/k3y/banned/1700000004", no_new_bans(200));
    let (mut st, _) = FeedState::open(f.clone(), &l.dir).unwrap();
    let day = 86_400;
    let (copy, _) = st.refresh(T0 + 6 * day).await.unwrap().unwrap();
    let paths: Vec<String> = l.seen().into_iter().map(|s| s.0).collect();
    assert_eq!(paths, ["/api/k3y/banned/1700000003", "/api/k3y/banned/1700000004"]);
    assert_eq!(copy.entries.len(), 5);
    st.commit(copy).unwrap();

    // eight days after the first pages, only what was seen since stays (max_age 7d)
    let (copy, _) = st.refresh(T0 + 8 * day).await.unwrap().unwrap();
    assert_eq!(shown(&copy), ["192.0.2.2/32", "192.0.2.9/32"]);

    // a wrong key is a failed fetch
    std::fs::write(l.dir.join("apiban.key"), "wrong\n").unwrap();
    let e = st.refresh(T0 + 8 * day).await.unwrap_err();
    assert_eq!(e.reason(), "status", "{e}");
}

#[tokio::test]
async fn a_failing_feed_keeps_its_last_good_copy_until_it_comes_back() {
    let l = lab("failing").await;
    l.serve("/ips.json", ok(r#"["192.0.2.1", "192.0.2.2"]"#));
    let mut f = l.feed("/ips.json", Format::Json);
    f.max_bytes = 1024;
    let (mut st, _) = FeedState::open(f.clone(), &l.dir).unwrap();
    let (copy, _) = st.refresh(T0).await.unwrap().unwrap();
    st.commit(copy).unwrap();
    let good = vec!["192.0.2.1/32".to_owned(), "192.0.2.2/32".to_owned()];

    let big = format!("[{}\"192.0.2.3\"]", "\"192.0.2.4\", ".repeat(200));
    let failures = [
        (Answer { status: 500, ..ok("oops") }, "status"),
        (Answer { cut: true, ..ok(r#"["192.0.2.1", "192.0.2.2", "192.0.2.3"]"#) }, "network"),
        (ok(r#"["192.0.2.1", "192.0"#), "format"),
        (ok("<html>Service Unavailable</html>"), "format"),
        (ok(&big), "too_large"),
    ];
    for (a, reason) in failures {
        l.serve("/ips.json", a);
        let e = st.refresh(T0 + 60).await.unwrap_err();
        assert_eq!(e.reason(), reason, "{e}");
        assert_eq!(shown(&st.copy), good, "the last good copy stays in force");
        // and a restart during the failure starts from it
        let (st2, _) = FeedState::open(f.clone(), &l.dir).unwrap();
        assert_eq!(shown(&st2.copy), good);
    }
    // an unreachable server
    let mut gone = f.clone();
    gone.url = "https://127.0.0.1:1/ips.json".into();
    let (st3, _) = FeedState::open(gone, &l.dir).unwrap();
    assert_eq!(st3.refresh(T0).await.unwrap_err().reason(), "network");

    l.serve("/ips.json", ok(r#"["192.0.2.2", "192.0.2.3"]"#));
    let (copy, _) = st.refresh(T0 + 120).await.unwrap().unwrap();
    st.commit(copy).unwrap();
    assert_eq!(shown(&st.copy), ["192.0.2.2/32", "192.0.2.3/32"]);
    std::fs::remove_dir_all(&l.dir).unwrap();
}
