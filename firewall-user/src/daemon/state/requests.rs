//! The control requests (`sipwall ban`, `unban`, `list`, `why`, `status`, …) the daemon answers.

use std::time::SystemTime;

use super::Daemon;
use crate::{
    control::protocol::{BanView, Request, Response},
    datapath::clock,
    datapath::enforcer::BanChange,
    duration,
    rules::cidr,
};

impl Daemon {
    pub fn handle(&mut self, req: Request) -> Response {
        self.batch(|d| d.answer(req))
    }

    fn answer(&mut self, req: Request) -> Response {
        match req {
            Request::Ban { target, duration, reason } => {
                self.ban_request(&target, duration.as_deref(), reason.as_deref())
            }
            Request::Unban { target } => self.unban_request(&target),
            Request::List => {
                let now = clock::unix_ms(SystemTime::now());
                let mut bans: Vec<BanView> = self.enforcer.bans().map(|b| BanView::of(&b, now)).collect();
                bans.sort_by(|a, b| a.target.cmp(&b.target));
                let n = bans.len();
                let mut r = Response::ok(format!("{n} ban{}", if n == 1 { "" } else { "s" }));
                r.bans = bans;
                if n > 10_000 {
                    // the listing's buffers go back to the system once sent
                    crate::daemon::schedule_trim();
                }
                r
            }
            Request::Why { target } => self.why(&target),
            Request::Status => self.status(),
        }
    }

    fn ban_request(&mut self, target: &str, dur: Option<&str>, reason: Option<&str>) -> Response {
        let net = match cidr::parse(target) {
            Ok((n, _)) => n,
            Err(e) => return Response::error(e),
        };
        let expires = match dur.map(duration::parse).transpose() {
            Ok(Some(Some(d))) => Some(clock::unix_ms(SystemTime::now()).saturating_add(d.as_millis() as u64)),
            Ok(_) => None,
            Err(e) => return Response::error(e),
        };
        match self.ban(net, expires, reason.unwrap_or("manual ban"), crate::detection::jail::MANUAL) {
            Ok((b, change)) => {
                let what = if change == BanChange::Added { "banned" } else { "ban updated:" };
                let until = match b.expires_unix_ms {
                    Some(ms) => format!("until {}", humantime::format_rfc3339_seconds(clock::from_unix_ms(ms))),
                    None => "until unbanned".to_owned(),
                };
                let mut r = Response::ok(format!("{what} {} {until}", b.target));
                r.bans.push(BanView::of(&b, clock::unix_ms(SystemTime::now())));
                r
            }
            Err(e) => Response::error(e.to_string()),
        }
    }

    fn unban_request(&mut self, target: &str) -> Response {
        let net = match cidr::parse(target) {
            Ok((n, _)) => n,
            Err(e) => return Response::error(e),
        };
        match self.unban(net) {
            Ok(Some(b)) if b.source == crate::crowdsec::SOURCE => Response::ok(format!(
                "unbanned {} here; the CrowdSec decision ({}) stays in the Local API, and the next full pull (a \
                 restart, or the first pull after a failed one) puts it in force again: `cscli decisions delete --ip {}` \
                 lifts it for every bouncer",
                b.target,
                b.reason,
                b.target.addr()
            )),
            Ok(Some(b)) => Response::ok(format!("unbanned {}", b.target)),
            Ok(None) => {
                let covering: Vec<String> =
                    self.enforcer.bans_covering(&net).iter().map(|b| b.target.to_string()).collect();
                if covering.is_empty() {
                    Response::error(format!("{net} is not banned"))
                } else {
                    Response::error(format!(
                        "{net} is not banned itself but is covered by: {}; unban that",
                        covering.join(", ")
                    ))
                }
            }
            Err(e) => Response::error(e.to_string()),
        }
    }
}
