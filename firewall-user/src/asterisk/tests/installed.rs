//! Content modelled on the lab's installed Asterisk (/opt/sipwall-asterisk/etc/asterisk):
//! pjsip on 5080/udp, chan_sip on 5060/udp, IAX2 on its default port, RTP 10000-20000, and two
//! phones that register (`host=dynamic`, aors without contacts), so no trunk at all.

use super::*;

const SIP: &str = "\
; chan_sip, for the lab's older phones
[general]
context=default
allowguest=no
alwaysauthreject=yes
udpbindaddr=0.0.0.0:5060
tcpenable=no
transport=udp
srvlookup=no
disallow=all
allow=ulaw
allow=alaw

[alice]
type=friend
secret=lab-secret-one
host=dynamic
context=internal

[bob]
type=friend
secret=lab-secret-two
host=dynamic
context=internal
";

const PJSIP: &str = "\
; pjsip beside chan_sip, on its own port
[transport-udp]
type=transport
protocol=udp
bind=0.0.0.0:5080

[alice]
type=endpoint
transport=transport-udp
context=internal
auth=alice-auth
aors=alice

[alice-auth]
type=auth
auth_type=userpass
username=alice
password=lab-secret-one

[alice]
type=aor
max_contacts=2

[bob]
type=endpoint
transport=transport-udp
context=internal
auth=bob-auth
aors=bob

[bob-auth]
type=auth
auth_type=userpass
username=bob
password=lab-secret-two

[bob]
type=aor
max_contacts=2
";

const RTP: &str = "\
;
; RTP Configuration
;
[general]
;
; Defaults are rtpstart=5000 and rtpend=31000
;
;-- the lab keeps media in a narrow range --;
;
rtpstart=10000
rtpend=20000
;rtpchecksums=no

[ice_host_candidates]
";

const IAX: &str = "\
; Inter-Asterisk eXchange v2: defaults only
[general]
bandwidth=high
disallow=lpc10
jitterbuffer=no
encryption=yes
autokill=yes

[guest]
type=user
context=public
callerid=\"Guest IAX User\"
";

const MODULES: &str = "\
[modules]
autoload=yes
require = chan_sip.so
require = res_pjsip.so
require = chan_pjsip.so
noload = chan_alsa.so
noload = res_pjsip_transport_websocket.so
";

#[test]
fn the_installed_lab_configuration() {
    let files =
        [("sip.conf", SIP), ("pjsip.conf", PJSIP), ("rtp.conf", RTP), ("iax.conf", IAX), ("modules.conf", MODULES)];
    let dir = Dir::new("installed", &files);
    let d = dir.discover();
    assert_eq!(
        listeners(&d),
        ["udp 5080/udp 0.0.0.0 pjsip.conf:5", "udp 5060/udp 0.0.0.0 sip.conf:6", "iax2 4569/udp 0.0.0.0 iax.conf:2"]
    );
    assert_eq!(d.rtp, Some(RtpRange { first: 10000, last: 20000, origin: Some(Origin::new("rtp.conf", 10)) }));
    assert!(d.trunks.is_empty(), "{:?}", d.trunks);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
    let read: Vec<&str> = d.files.iter().map(|f| f.to_str().unwrap()).collect();
    assert_eq!(read, ["modules.conf", "pjsip.conf", "sip.conf", "iax.conf", "rtp.conf"]);
    assert_eq!(
        d.describe(),
        [
            "sip: 5080/udp on 0.0.0.0 (pjsip udp transport transport-udp, pjsip.conf:5)",
            "sip: 5060/udp on 0.0.0.0 (chan_sip udp, sip.conf:6)",
            "iax: 4569/udp on 0.0.0.0 (chan_iax2, iax.conf:2)",
            "rtp: 10000-20000/udp (rtp.conf:10)",
        ]
    );
}
