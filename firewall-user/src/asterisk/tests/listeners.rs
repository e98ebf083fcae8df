//! Listeners and their defaults: pjsip transports (udp, tcp, tls, IPv6, ws/wss on the HTTP
//! server), chan_sip's UDP, TCP and TLS, chan_iax2, the RTP range, and modules.conf.

use super::*;

#[test]
fn pjsip_transports_and_their_default_ports() {
    let dir = Dir::new(
        "pjsip-transports",
        &[(
            "pjsip.conf",
            "[t-udp]\ntype=transport\nbind=0.0.0.0\n\
             [t-tcp]\ntype=transport\nprotocol=tcp\nbind=192.0.2.1:5070\n\
             [t-tls]\ntype=transport\nprotocol=TLS\nbind=0.0.0.0\n\
             [t-v6](t-udp)\nbind=[::]:5062\n\
             [t-name]\ntype=transport\nbind=pbx.lan.example:5090\n\
             [t-nobind]\ntype=transport\nprotocol=udp\n\
             [t-flow]\ntype=transport\nprotocol=flow\n\
             [t-bad]\ntype=transport\nprotocol=sctp\nbind=0.0.0.0\n",
        )],
    );
    let d = dir.discover();
    assert_eq!(
        listeners(&d),
        [
            "udp 5060/udp 0.0.0.0 pjsip.conf:3",
            "tcp 5070/tcp 192.0.2.1 pjsip.conf:7",
            "tls 5061/tcp 0.0.0.0 pjsip.conf:11",
            "udp 5062/udp :: pjsip.conf:13",
            "udp 5090/udp 192.0.2.10 pjsip.conf:16",
        ]
    );
    assert_eq!(d.listeners[2].source, "pjsip tls transport t-tls");
    let errors = notes(&d.notes, Level::Error);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("pjsip.conf:17: error: transport t-nobind has no bind="));
    assert!(errors[1].starts_with("pjsip.conf:25: error: Asterisk rejects transport t-bad: protocol `sctp`"));
    assert!(notes(&d.notes, Level::Info).iter().any(|n| n.contains("t-flow is a flow transport")));
}

#[test]
fn websocket_transports_ride_on_the_http_server() {
    let files = [
        ("pjsip.conf", "[ws]\ntype=transport\nprotocol=ws\n[wss]\ntype=transport\nprotocol=wss\nbind=0.0.0.0\n"),
        ("http.conf", "[general]\nenabled=yes\nbindaddr=0.0.0.0\nbindport=8080\ntlsenable=yes\n"),
    ];
    let dir = Dir::new("websocket", &files);
    let d = dir.discover();
    assert_eq!(listeners(&d), ["ws 8080/tcp 0.0.0.0 http.conf:3", "wss 8089/tcp 0.0.0.0 http.conf:5"]);
    assert!(d.notes.iter().all(|n| n.level == Level::Info), "{:?}", d.notes);

    // Without the websocket module, or without an HTTP server, there is nothing to listen.
    let modules = "[modules]\nautoload=yes\nnoload => res_pjsip_transport_websocket.so\n";
    let dir = Dir::new("websocket-noload", &[files[0], files[1], ("modules.conf", modules)]);
    let d = dir.discover();
    assert!(d.listeners.is_empty());
    assert!(notes(&d.notes, Level::Info)[0].contains("keeps res_pjsip_transport_websocket from loading"));
    let dir = Dir::new("websocket-nohttp", &[files[0], ("http.conf", "[general]\nbindaddr=127.0.0.1\n")]);
    let d = dir.discover();
    assert!(d.listeners.is_empty());
    let warnings = notes(&d.notes, Level::Warning);
    assert!(warnings[0].contains("ws transport ws rides on Asterisk's HTTP server"), "{warnings:?}");
    assert!(warnings[1].contains("wss transport wss rides on Asterisk's HTTPS server"), "{warnings:?}");
}

#[test]
fn chan_sip_defaults() {
    let dir = Dir::new("sip-defaults", &[("sip.conf", "; chan_sip\n[general]\ncontext=public\n")]);
    let d = dir.discover();
    assert_eq!(listeners(&d), ["udp 5060/udp 0.0.0.0 sip.conf:2"]);
    assert_eq!(d.describe()[0], "sip: 5060/udp on 0.0.0.0 (chan_sip udp, sip.conf:2)");
    // Even without [general], a sip.conf means chan_sip listens.
    let dir = Dir::new("sip-empty", &[("sip.conf", "")]);
    assert_eq!(listeners(&dir.discover()), ["udp 5060/udp 0.0.0.0 sip.conf"]);
}

#[test]
fn chan_sip_udp_tcp_and_tls() {
    let dir = Dir::new(
        "sip-all",
        &[(
            "sip.conf",
            "[general]\nudpbindaddr=192.0.2.1:5080\nbindport=5070\ntcpenable=yes\ntcpenable=no\n\
             tlsenable=yes\ntlsbindaddr=[2001:db8::1]\nbindaddr=not-an-address\n",
        )],
    );
    let d = dir.discover();
    // bindport wins over the address's port; TCP takes the UDP address and port (a later
    // tcpenable=no does not turn it off); TLS on its own address, port 5061 by default.
    assert_eq!(
        listeners(&d),
        [
            "udp 5070/udp 192.0.2.1 sip.conf:3",
            "tcp 5070/tcp 192.0.2.1 sip.conf:4",
            "tls 5061/tcp 2001:db8::1 sip.conf:7"
        ]
    );
    let warnings = notes(&d.notes, Level::Warning);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("sip.conf:8: warning: bindaddr: `not-an-address` is not an IP address"));

    let dir = Dir::new(
        "sip-legacy",
        &[(
            "sip.conf",
            "[general]\nbindaddr=0.0.0.0\nbindport=5065\ntcpbindaddr=192.0.2.2\ntcpenable=on\ntlsenable=yes\n",
        )],
    );
    assert_eq!(
        listeners(&dir.discover()),
        ["udp 5065/udp 0.0.0.0 sip.conf:3", "tcp 5060/tcp 192.0.2.2 sip.conf:4", "tls 5061/tcp 0.0.0.0 sip.conf:6"]
    );
}

#[test]
fn modules_conf_decides_which_files_count() {
    let sip = ("sip.conf", "[general]\n");
    let iax = ("iax.conf", "[general]\n");
    let noload = ("modules.conf", "[modules]\nautoload=yes\nnoload => chan_sip.so\n");
    let dir = Dir::new("modules-noload", &[sip, iax, noload]);
    let d = dir.discover();
    assert_eq!(listeners(&d), ["iax2 4569/udp 0.0.0.0 iax.conf:1"]);
    assert!(notes(&d.notes, Level::Info)[0].contains("sip.conf is not read: modules.conf keeps chan_sip from loading"));
    // Without autoload only what is named loads (rtp included).
    let named = ("modules.conf", "[modules]\nautoload=no\nload = CHAN_SIP\n");
    let dir = Dir::new("modules-named", &[sip, iax, named]);
    let d = dir.discover();
    assert_eq!(listeners(&d), ["udp 5060/udp 0.0.0.0 sip.conf:1"]);
    assert_eq!(d.rtp, None);
}

#[test]
fn iax_port_and_addresses() {
    let dir = Dir::new("iax-default", &[("iax.conf", "[general]\nbandwidth=high\n")]);
    assert_eq!(listeners(&dir.discover()), ["iax2 4569/udp 0.0.0.0 iax.conf:1"]);
    let dir = Dir::new(
        "iax-binds",
        &[("iax.conf", "[general]\nbindport=4570\nbindaddr=192.0.2.1\nbindaddr=[2001:db8::1]:4571\nbindport=80\n")],
    );
    let d = dir.discover();
    assert_eq!(listeners(&d), ["iax2 4570/udp 192.0.2.1 iax.conf:2", "iax2 4571/udp 2001:db8::1 iax.conf:4"]);
    assert!(notes(&d.notes, Level::Warning)[0].contains("bindport `80` is not 1024 to 65535"));
}

#[test]
fn rtp_range_and_asterisk_defaults() {
    let dir = Dir::new("rtp-none", &[]);
    let d = dir.discover();
    assert_eq!(d.rtp, Some(RtpRange { first: 5000, last: 31000, origin: None }));
    assert_eq!(d.describe()[0], "rtp: 5000-31000/udp (Asterisk's default)");

    let dir = Dir::new("rtp-set", &[("rtp.conf", "[general]\n; media\nrtpstart=10001\nrtpend=20000\nrtpend=30000\n")]);
    let d = dir.discover();
    // An odd start is rounded up; the first rtpend counts.
    assert_eq!(d.rtp, Some(RtpRange { first: 10002, last: 20000, origin: Some(Origin::new("rtp.conf", 3)) }));

    let dir = Dir::new("rtp-bad", &[("rtp.conf", "[general]\nrtpstart=40000\nrtpend=100\n")]);
    let d = dir.discover();
    assert_eq!(d.rtp, Some(RtpRange { first: 5000, last: 31000, origin: None }));
    assert!(notes(&d.notes, Level::Warning)[0].contains("rtpstart 40000 is not below rtpend 1024"));

    let dir = Dir::new("rtp-half", &[("rtp.conf", "[general]\nrtpend=12000\n")]);
    assert_eq!(dir.discover().describe()[0], "rtp: 5000-12000/udp (rtp.conf:2)");
}

#[test]
fn two_listeners_on_one_port_are_a_warning() {
    let dir = Dir::new(
        "clash",
        &[
            ("pjsip.conf", "[t]\ntype=transport\nbind=0.0.0.0:5060\n"),
            ("sip.conf", "[general]\nudpbindaddr=192.0.2.1\n"),
        ],
    );
    let d = dir.discover();
    assert_eq!(d.listeners.len(), 2);
    let warnings = notes(&d.notes, Level::Warning);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("pjsip udp transport t and chan_sip udp both listen on 5060/udp"));
}
