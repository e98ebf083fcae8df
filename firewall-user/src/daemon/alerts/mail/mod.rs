//! `[mail]`: alert mails over SMTP (lettre, rustls with the ring provider), one per event or a
//! digest per interval, from a queue of their own with retries like the webhook's.

pub mod message;
pub mod whois;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
        extension::ClientId,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use prometheus::IntCounterVec;
use tokio::sync::mpsc;

use self::message::Text;
use super::{chain, pauses, Alert, Queue, QUEUE};
use crate::rules::alerts::{EventKind, Mail, MailMode, MailTls};

/// Whois look-ups per digest at most.
pub const DIGEST_WHOIS: usize = 10;
/// Events a digest keeps, as the queue of a mail per event does; those past it are counted.
pub const DIGEST_EVENTS: usize = QUEUE;

/// The events of one digest: the first [`DIGEST_EVENTS`], and the events past them by kind.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Arc<Alert>>,
    pub more: message::Tally,
}

impl Batch {
    fn add(&mut self, a: Arc<Alert>) {
        if self.events.len() < DIGEST_EVENTS {
            self.events.push(a);
        } else {
            self.more.count(a.kind);
        }
    }
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Builds the SMTP transport and starts the sender task; its queue.
pub fn start(mail: Mail, counter: IntCounterVec) -> Result<Queue, String> {
    let transport = transport(&mail, &hostname())?;
    let (queue, rx) = Queue::new(mail.events, counter.clone());
    tokio::spawn(run(transport, Arc::new(mail), rx, counter));
    Ok(queue)
}

/// This host's name, for subjects and the SMTP greeting.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn transport(mail: &Mail, host: &str) -> Result<Transport, String> {
    let fail = |e: String| format!("[mail] server {}:{}: {e}", mail.host, mail.port);
    let mut b = Transport::builder_dangerous(&mail.host).port(mail.port).timeout(Some(mail.timeout));
    if mail.tls != MailTls::None {
        let mut params = TlsParameters::builder(mail.host.clone());
        if let Some(ca) = &mail.ca_file {
            let cert =
                Certificate::from_pem(&ca.pem).map_err(|e| fail(format!("ca_file {}: {e}", ca.path.display())))?;
            params = params.add_root_certificate(cert);
        }
        let params = params.build_rustls().map_err(|e| fail(chain(&e)))?;
        b = b.tls(if mail.tls == MailTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) });
    }
    if let Some((user, secret)) = &mail.auth {
        b = b.credentials(Credentials::new(user.clone(), secret.0.clone()));
    }
    Ok(b.hello_name(ClientId::Domain(host.to_owned())).build())
}

/// The message of `text` from `mail.from` to `mail.to`.
pub fn build(mail: &Mail, text: Text) -> Result<Message, String> {
    // the addresses were checked when the rules were read
    let parse = |s: &str| s.parse::<Mailbox>().map_err(|e| format!("`{s}`: {e}"));
    let mut m = Message::builder().from(parse(&mail.from)?).subject(text.subject).header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        m = m.to(parse(to)?);
    }
    m.body(text.body).map_err(|e| e.to_string())
}

async fn run(transport: Transport, mail: Arc<Mail>, mut rx: mpsc::Receiver<Arc<Alert>>, counter: IntCounterVec) {
    let host = hostname();
    match mail.mode {
        MailMode::Each => {
            while let Some(a) = rx.recv().await {
                let whois = match (mail.whois, a.kind) {
                    (true, EventKind::Ban | EventKind::Reban) => Some(whois::whois(a.target.addr()).await),
                    _ => None,
                };
                let text = message::each(&a, &host, mail.lines, whois.as_deref());
                deliver(&transport, &mail, text, &counter).await;
            }
        }
        MailMode::Digest(interval) => digest(&transport, &mail, &host, interval, &mut rx, &counter).await,
    }
}

/// The events of the next digest: the first one to come and all that follow within `interval`
/// of it, so an interval without events sends nothing; past [`DIGEST_EVENTS`] only counted, so a
/// storm of bans costs neither the memory nor a mail the server refuses for its size. When the
/// queue closes (a reload with a changed `[mail]`), what was collected is returned at once, with
/// `false`; `None` once it is closed and empty.
pub async fn collect(rx: &mut mpsc::Receiver<Arc<Alert>>, interval: Duration) -> Option<(Batch, bool)> {
    let mut batch = Batch::default();
    batch.add(rx.recv().await?);
    let until = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            a = rx.recv() => match a {
                Some(a) => batch.add(a),
                None => return Some((batch, false)),
            },
            _ = tokio::time::sleep_until(until) => return Some((batch, true)),
        }
    }
}

/// Mails a digest of each batch [`collect`] returns.
async fn digest(
    transport: &Transport,
    mail: &Mail,
    host: &str,
    interval: Duration,
    rx: &mut mpsc::Receiver<Arc<Alert>>,
    counter: &IntCounterVec,
) {
    while let Some((batch, open)) = collect(rx, interval).await {
        let mut whois = Vec::new();
        if mail.whois {
            let banned: BTreeSet<_> = batch
                .events
                .iter()
                .filter(|a| matches!(a.kind, EventKind::Ban | EventKind::Reban))
                .map(|a| a.target)
                .collect();
            for t in banned.into_iter().take(DIGEST_WHOIS) {
                whois.push((t, whois::whois(t.addr()).await));
            }
        }
        let text = message::digest(&batch.events, &batch.more, host, interval, mail.lines, &whois);
        deliver(transport, mail, text, counter).await;
        if !open {
            return;
        }
    }
}

/// Sends one mail, retrying with growing pauses; counts the outcome.
async fn deliver(transport: &Transport, mail: &Mail, text: Text, counter: &IntCounterVec) {
    let subject = text.subject.clone();
    let msg = match build(mail, text) {
        Ok(m) => m,
        Err(e) => {
            log::error!("[mail] cannot write the mail `{subject}`: {e}");
            counter.with_label_values(&["failed"]).inc();
            return;
        }
    };
    let mut pause = pauses();
    for attempt in 0..=mail.retries {
        // lettre's own timeout covers each SMTP step; this one the whole attempt
        let limit = mail.timeout * 4;
        let why = match tokio::time::timeout(limit, transport.send(msg.clone())).await {
            Ok(Ok(_)) => {
                counter.with_label_values(&["delivered"]).inc();
                return;
            }
            Ok(Err(e)) => chain(&e),
            Err(_) => format!("no delivery within {}s", limit.as_secs_f64()),
        };
        if attempt == mail.retries {
            log::warn!("[mail] {}:{}: {why}; giving up on the mail `{subject}`", mail.host, mail.port);
            counter.with_label_values(&["failed"]).inc();
        } else {
            log::debug!("[mail] {}:{}: {why}; trying again", mail.host, mail.port);
            counter.with_label_values(&["retried"]).inc();
            tokio::time::sleep(pause.next().unwrap_or_default()).await;
        }
    }
}

#[cfg(test)]
mod tests;
