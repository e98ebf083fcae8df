//! rtp.conf as res_rtp_asterisk's `rtp_reload` reads it: the UDP port range for media.

use super::{
    conf::{atoi, Entry, Level, Origin},
    discover::Ctx,
    found::RtpRange,
};

/// res_rtp_asterisk's `DEFAULT_RTP_START`, `DEFAULT_RTP_END`, `MINIMUM_RTP_PORT` and
/// `MAXIMUM_RTP_PORT`.
const DEFAULT_START: i64 = 5000;
const DEFAULT_END: i64 = 31000;
const MIN_PORT: i64 = 1024;
const MAX_PORT: i64 = 65535;

pub(super) fn read(ctx: &mut Ctx) {
    if !ctx.modules.loads("res_rtp_asterisk") {
        let msg = "modules.conf keeps res_rtp_asterisk from loading: no RTP range".to_owned();
        ctx.note(Level::Info, Some(&Origin::new("modules.conf", 0)), msg);
        return;
    }
    // Without rtp.conf Asterisk keeps its defaults.
    let cfg = ctx.load("rtp.conf");
    let general = cfg.as_ref().and_then(|c| c.section("general"));
    // ast_variable_retrieve: the first of each key counts.
    let start = general.and_then(|g| g.first("rtpstart"));
    let end = general.and_then(|g| g.first("rtpend"));
    let (mut first, mut last) = (port(start, DEFAULT_START), port(end, DEFAULT_END));
    let mut origin = start.or(end).map(|e| e.origin.clone());
    if first % 2 == 1 {
        first += 1;
        let msg = format!("rtpstart is odd; Asterisk rounds it up to {first}");
        ctx.note(Level::Info, origin.as_ref(), msg);
    }
    if first >= last {
        let msg = format!(
            "rtpstart {first} is not below rtpend {last}; Asterisk uses its default {DEFAULT_START}-{DEFAULT_END}"
        );
        ctx.note(Level::Warning, origin.as_ref(), msg);
        (first, last, origin) = (DEFAULT_START, DEFAULT_END, None);
    }
    let to_port = |p: i64| u16::try_from(p).expect("clamped to a port");
    ctx.out.rtp = Some(RtpRange { first: to_port(first), last: to_port(last), origin });
}

/// `atoi` clamped to 1024-65535, as rtp_reload does; the default when the key is absent.
fn port(e: Option<&Entry>, default: i64) -> i64 {
    e.map_or(default, |e| atoi(&e.value).unwrap_or(0).clamp(MIN_PORT, MAX_PORT))
}
