//! `sipwall ban`, `sipwall unban` and `sipwall list`: requests to the running daemon.

use std::{path::Path, time::SystemTime};

use clap::Args;

use crate::{
    control::{
        client,
        protocol::{BanView, Request},
    },
    datapath::clock,
    duration,
};

#[derive(Debug, Args)]
pub struct BanArgs {
    /// Address or CIDR network (IPv6 addresses ban their whole `[bans] ipv6_prefix`).
    pub target: String,
    /// How long: 600, 10m, 1h30m, 1d, 1w or forever.
    #[arg(long = "for", default_value = "forever")]
    pub duration: String,
    /// Why, for `sipwall list` and the logs.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// The banned address or CIDR network.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn send(socket: &Path, req: Request) -> Result<crate::control::protocol::Response, i32> {
    match client::call(socket, &req) {
        Ok(r) if r.ok => Ok(r),
        Ok(r) => {
            eprintln!("sipwall: {}", r.message);
            Err(1)
        }
        Err(e) => {
            eprintln!("sipwall: {e}");
            Err(1)
        }
    }
}

pub fn ban(socket: &Path, a: &BanArgs) -> i32 {
    if let Err(e) = duration::parse(&a.duration) {
        eprintln!("sipwall: --for {e}");
        return 2;
    }
    let duration = (a.duration != "forever").then(|| a.duration.clone());
    match send(socket, Request::Ban { target: a.target.clone(), duration, reason: a.reason.clone() }) {
        Ok(r) => {
            println!("{}", r.message);
            0
        }
        Err(code) => code,
    }
}

pub fn unban(socket: &Path, a: &UnbanArgs) -> i32 {
    match send(socket, Request::Unban { target: a.target.clone() }) {
        Ok(r) => {
            println!("{}", r.message);
            0
        }
        Err(code) => code,
    }
}

pub fn list(socket: &Path, a: &ListArgs) -> i32 {
    match send(socket, Request::List) {
        Ok(r) if a.json => {
            println!("{}", serde_json::to_string_pretty(&r.bans).expect("json"));
            0
        }
        Ok(r) => {
            print!("{}", table(&r.bans));
            0
        }
        Err(code) => code,
    }
}

fn table(bans: &[BanView]) -> String {
    if bans.is_empty() {
        return "no bans\n".to_owned();
    }
    let now = clock::unix_ms(SystemTime::now());
    let rows: Vec<[String; 4]> = bans
        .iter()
        .map(|b| {
            let left = match b.expires_unix_ms {
                Some(e) => duration::format(Some(std::time::Duration::from_secs(e.saturating_sub(now).div_ceil(1000)))),
                None => "forever".to_owned(),
            };
            [b.target.clone(), left, b.source.clone(), b.reason.clone()]
        })
        .collect();
    let head = ["TARGET", "EXPIRES IN", "SOURCE", "REASON"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line =
        |c: [&str; 4]| format!("{:<a$}  {:<b$}  {:<c$}  {}\n", c[0], c[1], c[2], c[3], a = w[0], b = w[1], c = w[2]);
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let bans = vec![
            BanView {
                target: "198.51.100.7/32".into(),
                expires_unix_ms: None,
                remaining_secs: None,
                created_unix_ms: 0,
                reason: "scanner".into(),
                source: "manual".into(),
            },
            BanView {
                target: "2001:db8::/64".into(),
                expires_unix_ms: None,
                remaining_secs: None,
                created_unix_ms: 0,
                reason: "x".into(),
                source: "asterisk".into(),
            },
        ];
        let t = table(&bans);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "TARGET           EXPIRES IN  SOURCE    REASON");
        assert_eq!(lines[1], "198.51.100.7/32  forever     manual    scanner");
        assert_eq!(table(&[]), "no bans\n");
    }
}
