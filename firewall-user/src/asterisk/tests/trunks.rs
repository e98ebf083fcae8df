//! Trunks of every kind: pjsip identify, registration and static aor contacts, the pjsip
//! wizard, chan_sip peers and `register =>`, chan_iax2 peers and `register =>`; names that
//! resolve to two addresses or to none; what Asterisk would reject.

use super::*;

#[test]
fn identify_matches_of_every_form() {
    let dir = Dir::new(
        "identify",
        &[(
            "pjsip.conf",
            "[itsp]\ntype=identify\nendpoint=itsp\n\
             match=sip.provider.example\n\
             match = 198.51.100.7/24, 192.0.2.0/255.255.255.128,203.0.113.9:5060\n\
             match=[2001:db8::1]:5060,2001:db8:1::/48\n\
             match=gone.provider.example,empty.example\n",
        )],
    );
    let d = dir.discover();
    assert_eq!(
        trunks(&d),
        [
            "itsp [pjsip identify] sip.provider.example → 203.0.113.5/32 203.0.113.6/32 @ pjsip.conf:4",
            "itsp [pjsip identify] 198.51.100.7/24 → 198.51.100.0/24 @ pjsip.conf:5",
            "itsp [pjsip identify] 192.0.2.0/255.255.255.128 → 192.0.2.0/25 @ pjsip.conf:5",
            "itsp [pjsip identify] 203.0.113.9:5060 → 203.0.113.9/32 @ pjsip.conf:5",
            "itsp [pjsip identify] [2001:db8::1]:5060 → 2001:db8::1/128 @ pjsip.conf:6",
            "itsp [pjsip identify] 2001:db8:1::/48 → 2001:db8:1::/48 @ pjsip.conf:6",
            "itsp [pjsip identify] gone.provider.example →  @ pjsip.conf:7",
            "itsp [pjsip identify] empty.example →  @ pjsip.conf:7",
        ]
    );
    let warnings = notes(&d.notes, Level::Warning);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with(
        "pjsip.conf:7: warning: trunk itsp (pjsip identify): `gone.provider.example` does not resolve (NXDOMAIN)"
    ));
    assert!(warnings[0].contains("never a guess"));
    assert!(warnings[1].contains("`empty.example` does not resolve (no address)"));
    let described = d.describe();
    assert!(described.contains(
        &"trunk itsp (pjsip identify, pjsip.conf:4): sip.provider.example → 203.0.113.5, 203.0.113.6".to_owned()
    ));
    assert!(
        described.contains(&"trunk itsp (pjsip identify, pjsip.conf:7): gone.provider.example → no address".to_owned())
    );
}

#[test]
fn an_identify_asterisk_rejects_gives_no_trunk() {
    let dir = Dir::new(
        "identify-bad",
        &[(
            "pjsip.conf",
            "[no-endpoint]\ntype=identify\nmatch=192.0.2.1\n\
             [bad-mask]\ntype=identify\nendpoint=x\nmatch=192.0.2.1,192.0.2.0/255.0.255.0\n\
             [dup]\ntype=identify\nendpoint=x\nmatch=192.0.2.50\n[dup]\ntype=identify\nendpoint=y\nmatch=192.0.2.51\n\
             [Typed]\ntype=Identify\nendpoint=x\nmatch=192.0.2.60\n\
             [anyone]\ntype=identify\nendpoint=x\nmatch=0.0.0.0/0\n",
        )],
    );
    let d = dir.discover();
    let warnings = notes(&d.notes, Level::Warning);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("pjsip.conf:23: warning: trunk anyone (pjsip identify) covers 0.0.0.0/0"));
    let errors = notes(&d.notes, Level::Error);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("pjsip.conf:12: error: a second identify named dup (the first is at pjsip.conf:8)"));
    assert!(errors[1].starts_with("pjsip.conf:1: error: Asterisk rejects identify no-endpoint: it has no endpoint="));
    assert!(errors[2].starts_with("pjsip.conf:7: error: Asterisk rejects identify bad-mask:"));
    // Duplicates are reported and still listed: they are what the file means.
    let nets: Vec<String> = d.trunk_nets().iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["0.0.0.0/0", "192.0.2.50/32", "192.0.2.51/32"]);
}

#[test]
fn registrations_and_static_contacts() {
    let dir = Dir::new(
        "registration",
        &[(
            "pjsip.conf",
            "[itsp-reg]\ntype=registration\nserver_uri=sip:sip.provider.example:5060\n\
             client_uri=sip:1234@sip.provider.example\noutbound_proxy=sip:proxy.provider.example\\;lr\n\
             [v6-reg]\ntype=registration\nserver_uri=sips:[2001:db8:5::1]:5061\\;transport=tls\n\
             [broken-reg]\ntype=registration\nclient_uri=sip:x@y\n\
             [itsp]\ntype=aor\ncontact=sip:trunk@198.51.100.9:5060, sip:v6.provider.example\nqualify_frequency=60\n\
             [alice]\ntype=aor\nmax_contacts=1\n",
        )],
    );
    let d = dir.discover();
    assert_eq!(
        trunks(&d),
        [
            "itsp-reg [pjsip registration] sip:sip.provider.example:5060 → 203.0.113.5/32 203.0.113.6/32 @ pjsip.conf:3",
            "itsp-reg [pjsip registration] sip:proxy.provider.example;lr → 203.0.113.20/32 @ pjsip.conf:5",
            "v6-reg [pjsip registration] sips:[2001:db8:5::1]:5061;transport=tls → 2001:db8:5::1/128 @ pjsip.conf:8",
            "itsp [pjsip aor contact] sip:198.51.100.9:5060 → 198.51.100.9/32 @ pjsip.conf:14",
            "itsp [pjsip aor contact] sip:v6.provider.example → 2001:db8:5::20/128 @ pjsip.conf:14",
        ]
    );
    let errors = notes(&d.notes, Level::Error);
    assert_eq!(errors, ["pjsip.conf:9: error: Asterisk rejects registration broken-reg: it has no server_uri="]);
}

#[test]
fn wizard_remote_hosts() {
    let dir = Dir::new(
        "wizard",
        &[(
            "pjsip_wizard.conf",
            "[trunk-tmpl](!)\ntype=wizard\nsends_auth=yes\nsends_registrations=yes\n\
             [itsp](trunk-tmpl)\nremote_hosts=sip.provider.example:5060, 198.51.100.20\n\
             [phone]\ntype=wizard\naccepts_registrations=yes\naccepts_auth=yes\n\
             [fixed]\ntype=wizard\nremote_hosts=192.0.2.30\nidentify/match=192.0.2.0/28\n",
        )],
    );
    let d = dir.discover();
    assert_eq!(
        trunks(&d),
        [
            "itsp [pjsip wizard] sip.provider.example:5060 → 203.0.113.5/32 203.0.113.6/32 @ pjsip_wizard.conf:6",
            "itsp [pjsip wizard] 198.51.100.20 → 198.51.100.20/32 @ pjsip_wizard.conf:6",
            "fixed [pjsip wizard] 192.0.2.0/28 → 192.0.2.0/28 @ pjsip_wizard.conf:14",
            "fixed [pjsip wizard] 192.0.2.30 → 192.0.2.30/32 @ pjsip_wizard.conf:13",
        ]
    );
}

#[test]
fn chan_sip_peers_and_register_lines() {
    let dir = Dir::new(
        "sip-trunks",
        &[(
            "sip.conf",
            "[general]\nregister => tcp://1234@provider.example:p@ss:w0rd@:x:auth@sip.provider.example:5060/1234~120\n\
             register => nohost\n\
             [itsp]\ntype=peer\nhost=203.0.113.40\n\
             [carrier]\ntype=friend\nhost=dynamic\nhost=sip.provider.example\n\
             [alice]\ntype=friend\nhost=dynamic\n\
             [old-user]\ntype=user\nhost=203.0.113.41\n\
             [untyped]\nhost=203.0.113.42\n\
             [v6]\ntype=peer\nhost=[2001:db8::42]:5070\n\
             [unknown]\ntype=phone\nhost=203.0.113.43\n\
             [authentication]\nauth=u:p@realm\n",
        )],
    );
    let d = dir.discover();
    assert_eq!(
        trunks(&d),
        [
            "general [sip register] sip.provider.example:5060 → 203.0.113.5/32 203.0.113.6/32 @ sip.conf:2",
            "itsp [sip peer] 203.0.113.40 → 203.0.113.40/32 @ sip.conf:6",
            "carrier [sip peer] sip.provider.example → 203.0.113.5/32 203.0.113.6/32 @ sip.conf:10",
            "v6 [sip peer] [2001:db8::42]:5070 → 2001:db8::42/128 @ sip.conf:21",
        ]
    );
    let warnings = notes(&d.notes, Level::Warning);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[0].starts_with("sip.conf:3: warning: register => needs user@host"));
    assert!(warnings[1].starts_with("sip.conf:17: warning: [untyped] has no type=; chan_sip skips it"));
    assert!(warnings[2].starts_with("sip.conf:23: warning: [unknown] has type `phone`"));
    // The secret of a register line is never shown.
    assert!(d.describe().iter().all(|l| !l.contains("w0rd") && !l.contains("p@ss")));
}

#[test]
fn iax_peers_and_register_lines() {
    let dir = Dir::new(
        "iax-trunks",
        &[(
            "iax.conf",
            "[general]\nregister => user:secret@sip.provider.example:4569\n\
             [remote]\ntype=peer\nhost=198.51.100.50\n\
             [roaming]\ntype=friend\nhost=dynamic\n\
             [callnumberlimits]\n192.0.2.0/24 = 10\n",
        )],
    );
    let d = dir.discover();
    assert_eq!(
        trunks(&d),
        [
            "general [iax register] sip.provider.example:4569 → 203.0.113.5/32 203.0.113.6/32 @ iax.conf:2",
            "remote [iax peer] 198.51.100.50 → 198.51.100.50/32 @ iax.conf:5",
        ]
    );
    assert!(notes(&d.notes, Level::Warning).is_empty());
}

#[test]
fn a_uris_user_and_password_are_never_shown() {
    use crate::asterisk::discover::without_userinfo;
    assert_eq!(without_userinfo("sip:itsp-user:s3cret@sip.itsp.example:5060"), "sip:sip.itsp.example:5060");
    assert_eq!(without_userinfo("SIPS:u:p@h"), "SIPS:h");
    assert_eq!(without_userinfo("u:p@203.0.113.5"), "203.0.113.5");
    assert_eq!(without_userinfo("sip:203.0.113.5"), "sip:203.0.113.5");
    assert_eq!(without_userinfo("é@x"), "x");
}
