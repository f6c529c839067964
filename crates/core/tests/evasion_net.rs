//! Evasion review, group `net`: a remote client must not keep its own failures from being
//! counted by shaping a field it controls, nor by padding a line past the transport-cut
//! threshold (crates/core/src/filter/cut.rs) where only the program's own text stands before
//! the address. Every line here is built from the program's real format (the source named at
//! each helper) with hostile-but-real values in each client field; the line must be counted
//! (a rule of weight > 0) for the real address, in 203.0.113.0/24 or 2001:db8::/32, and never
//! for the address the client wrote into its own text (198.51.100.7).
//!
//! Filters: strongswan, named-refused, squid, samba, slapd, asterisk (cut check), krb5kdc,
//! dante, pam-generic, libreswan, ocserv, tcpwrappers.

use portcullis_core::filter::cut::{cut_threshold, DEFAULT_TRANSPORT_CUT};
use portcullis_core::filter::{builtin, Filter};
use portcullis_core::time::TimeContext;
use proptest::prelude::*;

mod common;
use common::{canon, compile, json_str, sender, FORGED};

/// (address, rule id, weight) the built-in filter reports for each of `lines`, read in
/// order with one scratch (so that a correlated session sees its earlier lines), with the
/// default transport limit (1024). The client's own address must never be one of them.
fn run(name: &str, lines: &[String]) -> Vec<Option<(String, String, u32)>> {
    let set = compile(name, None);
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let mut scratch = set.scratch();
    let mut out = Vec::new();
    for line in lines {
        let got = set
            .match_line(line.as_bytes(), &ctx, &mut scratch)
            .map(|h| {
                let rule = &set.filters()[h.filter].rules()[h.rule];
                (canon(&h.addr.to_string()), rule.id.clone(), rule.weight)
            });
        if let Some((host, _, _)) = &got {
            assert_ne!(
                host, FORGED,
                "{name}: the client's text chose the address: {line}"
            );
        }
        out.push(got);
    }
    out
}

/// The last of `lines` is counted by `filter` (rule `rule`, weight > 0) for `addr`.
#[track_caller]
fn counted_after(filter: &str, lines: &[String], addr: &str, rule: &str) {
    let last = lines.last().unwrap();
    match run(filter, lines).pop().unwrap() {
        Some((a, r, w)) => {
            assert!(w > 0, "{filter}: weight 0 rule {r}: {last}");
            assert_eq!((a, r.as_str()), (canon(addr), rule), "{filter}: {last}");
        }
        None => panic!("{filter}: not counted: {last}"),
    }
}

#[track_caller]
fn counted(filter: &str, line: &str, addr: &str, rule: &str) {
    counted_after(filter, &[line.to_string()], addr, rule)
}

#[track_caller]
fn not_counted(filter: &str, line: &str) {
    assert_eq!(
        run(filter, &[line.to_string()]).pop().unwrap(),
        None,
        "{line}"
    );
}

/// The rules of `filter` named in `ids` (each must exist, so that a renamed rule fails here
/// rather than passing unchecked) let only bounded text stand before the address, so the
/// transport-cut guard never refuses them.
#[track_caller]
fn bounded(filter: &str, ids: &[&str]) {
    let b = builtin::get(filter).unwrap();
    let f = Filter::from_toml(b.source, b.name).unwrap();
    let at = cut_threshold(DEFAULT_TRANSPORT_CUT);
    for id in ids {
        assert!(
            f.rules().iter().any(|r| r.id == *id),
            "{filter} has no rule {id}"
        );
    }
    for r in f.rules() {
        if ids.contains(&r.id.as_str()) {
            assert!(
                r.host_end_max() < at,
                "{filter}/{}: the address can end {} bytes in ({})",
                r.id,
                r.host_end_max(),
                r.pattern().as_str()
            );
        }
    }
}

/// Printable ASCII text a client types, with pieces that imitate the lines below.
fn printable(extra: &'static [&'static str]) -> impl Strategy<Value = String> {
    let mut pieces: Vec<BoxedStrategy<String>> = [
        "'",
        "\"",
        "\\",
        " ",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "<",
        ">",
        "|",
        ":",
        ",",
        "=",
        "%",
        "@",
        "#",
        "/",
        "-",
        "198.51.100.7",
    ]
    .iter()
    .chain(extra.iter())
    .map(|s| Just(s.to_string()).boxed())
    .collect();
    pieces.push("[ -~]{0,8}".boxed());
    prop::collection::vec(prop::strategy::Union::new(pieces), 0..10).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------- strongSwan

/// identification.c identity_to_string(): chunk_printable() turns every non-printable byte
/// into '?', and the text is cut at BUF_LEN (512) - 1 bytes.
fn sw_identity(s: &str) -> String {
    let mut o: String = s
        .bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    o.truncate(511);
    o
}

/// sys_logger.c: "%.2d[%s]%s %s" with " <NAME|ID>" (a peer_cfg chosen) or " <ID>", namestr
/// cut at 127 bytes; ike_init.c / psk_authenticator.c / xauth.c / eap_authenticator.c /
/// eap_radius.c messages.
fn sw_lines(addr: &str, id: &str, which: usize) -> Vec<String> {
    let p = "Dec  3 12:00:00 vpn1 charon[812]: ";
    let init = format!("{p}09[IKE] <42> {addr} is initiating an IKE_SA");
    let id = sw_identity(id);
    let fail = match which {
        0 => format!(
            "{p}10[IKE] <roadwarrior|42> tried 1 shared key for 'vpn.example.com' - '{id}', but MAC mismatched"
        ),
        1 => format!("{p}10[IKE] <roadwarrior|42> no shared key found for '%any' - '{id}'"),
        2 => format!("{p}10[IKE] <roadwarrior|42> EAP method EAP_MD5 failed for peer {id}"),
        _ => format!("{p}10[IKE] <roadwarrior|42> XAuth authentication of '{id}' failed"),
    };
    vec![init, fail]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// The peer's identity (IDi, EAP identity, XAuth user), any printable text up to 511
    /// bytes, never keeps the failure from counting for the address of its IKE_SA.
    #[test]
    fn strongswan_identities_counted(
        id in printable(&["', but MAC mismatched", " - '", " failed", " is initiating an IKE_SA", "<7>"]),
        addr in sender(),
        which in 0usize..4,
    ) {
        let rule = ["psk-mismatch", "psk-unknown", "eap-failed", "xauth-failed"][which];
        counted_after("strongswan", &sw_lines(&addr, &id, which), &addr, rule);
    }
}

#[test]
fn strongswan_longest_identity_and_name_counted() {
    let id = "x".repeat(600);
    for which in 0..4 {
        let rule = ["psk-mismatch", "psk-unknown", "eap-failed", "xauth-failed"][which];
        counted_after(
            "strongswan",
            &sw_lines("203.0.113.5", &id, which),
            "203.0.113.5",
            rule,
        );
    }
    // the longest config name namestr holds (" <" + 124 + "|42>": the 127 bytes of its
    // buffer, cut by snprintf) still gives the IKE_SA's line
    let name = "n".repeat(121);
    let line = format!(
        "Dec  3 12:00:00 vpn1 charon[812]: 4294967295[IKE] <{name}|42> 203.0.113.6 is initiating IKE_SA {name}[42]"
    );
    counted("strongswan", &line, "203.0.113.6", "initiating");
    bounded("strongswan", &["initiating"]);
}

// ---------------------------------------------------------------- BIND named

/// dns_name_format()'s presentation form of one label (lib/dns/name.c totext: the special
/// characters `"().;\@$` escaped with a backslash, bytes outside 0x21..0x7e as \DDD).
fn dns_label(raw: &[u8]) -> String {
    let mut o = String::new();
    for &b in raw {
        match b {
            b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => {
                o.push('\\');
                o.push(b as char)
            }
            0x21..=0x7e => o.push(b as char),
            _ => o.push_str(&format!("\\{b:03}")),
        }
    }
    o
}

fn dns_name(labels: &[Vec<u8>]) -> String {
    let mut o: String = labels
        .iter()
        .map(|l| dns_label(l))
        .collect::<Vec<_>>()
        .join(".");
    if o.is_empty() {
        o.push('.');
    }
    o
}

/// lib/ns/client.c ns_client_logv(): "client @%p %s%s%s%s%s%s%s%s: %s" (peer, "/key "
/// signer, " (" qname ")", ": view " name), ns_client_aclmsg() "%s '%s/%s/%s'".
fn named_line(syslog: bool, addr: &str, qname: &str, view: bool, key: bool, msg: &str) -> String {
    let head = if syslog {
        "Nov 21 10:00:01 ns1 named[812]: ".to_string()
    } else {
        "21-Nov-2026 10:00:05.123 security: info: ".to_string()
    };
    format!(
        "{head}client @0x7f3a1c0b2d50 {addr}#53211{} ({qname}){}: {msg}",
        if key { "/key dhcp-key" } else { "" },
        if view { ": view external" } else { "" },
    )
}

fn label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..20),
        Just(b"198.51.100.7#53".to_vec()),
        Just(b"x) (y".to_vec()),
        Just(b"a'b: query 'z/A/IN' denied".to_vec()),
        Just(b"client @0x1 198.51.100.7#1".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any query / zone name (any bytes, as named prints them) never keeps a refusal from
    /// counting, in named's own file and through syslog.
    #[test]
    fn named_names_counted(
        labels in prop::collection::vec(label(), 0..6),
        addr in sender(),
        syslog in any::<bool>(),
        view in any::<bool>(),
        key in any::<bool>(),
        which in 0usize..4,
    ) {
        let q = dns_name(&labels);
        let (msg, rule) = match which {
            0 => (format!("query (cache) '{q}/A/IN' denied"), "query-denied"),
            1 => (format!("query '{q}/TYPE65280/IN' denied (allow-query-cache-on did not match)"), "query-denied"),
            2 => (format!("zone transfer '{q}/AXFR/IN' denied"), "xfer-denied"),
            _ => (format!("update '{q}/IN' denied"), "update-denied"),
        };
        counted("named-refused", &named_line(syslog, &addr, &q, view, key, &msg), &addr, rule);
    }
}

#[test]
fn named_longest_name_counted_through_syslog() {
    // 4 labels of 63 bytes, every byte \DDD: about 1000 bytes of name, twice on the line
    let labels: Vec<Vec<u8>> = (0..4).map(|_| vec![0xffu8; 62]).collect();
    let q = dns_name(&labels);
    let line = named_line(
        true,
        "203.0.113.5",
        &q,
        true,
        false,
        &format!("query (cache) '{q}/ANY/IN' denied (allow-recursion did not match)"),
    );
    assert!(line.len() > 1500);
    counted("named-refused", &line, "203.0.113.5", "query-denied");
    bounded(
        "named-refused",
        &["query-denied", "xfer-denied", "update-denied"],
    );
    // a request signed with a key named does not know is answered before any access list
    // is read (ns_client_request(): ns_client_error() unless it is an UPDATE): no rule
    // reads it (the filter's header says why)
    not_counted(
        "named-refused",
        &named_line(
            true,
            "203.0.113.5",
            "example.com",
            false,
            false,
            "request has invalid signature: TSIG x.: tsig verify failure (BADKEY)",
        ),
    );
}

// ---------------------------------------------------------------- Squid

/// The native "squid" logformat (src/log/FormatSquidNative.cc, cf.data.pre):
/// "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt", through syslog
/// (access_log syslog:..., program squid).
fn squid_native(
    elapsed: u64,
    addr: &str,
    code: &str,
    method: &str,
    url: &str,
    user: &str,
) -> String {
    format!(
        "Dec  5 02:41:25 proxy squid[812]: 1795000000.123 {elapsed:>6} {addr} {code} 3948 {method} {url} {user} HIER_NONE/- text/html"
    )
}

/// Format.cc's LOG_QUOTE_MIMEBLOB (%[un): control bytes, '[', ']', '%' and bytes above
/// 0x7e as %XX; space and '"' kept.
fn squid_user(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if !(0x20..=0x7e).contains(&b) || b == b'[' || b == b']' || b == b'%' {
            o.push_str(&format!("%{b:02X}"));
        } else {
            o.push(b as char);
        }
    }
    if o.is_empty() {
        o.push('-');
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// A refused proxy login's user name, any text, counts for the address Squid wrote,
    /// whatever the elapsed time.
    #[test]
    fn squid_user_names_counted(
        user in printable(&["TCP_DENIED/407 1 GET http://x/ y", " HIER_NONE/- text/html", "\u{1b}é"]),
        addr in sender(),
        elapsed in prop_oneof![Just(0u64), Just(150), Just(123_456_789), Just(u64::MAX / 1000)],
    ) {
        let u = squid_user(&format!("a{user}"));
        let line = squid_native(elapsed, &addr, "TCP_DENIED/407", "GET", "http://192.0.2.80/", &u);
        counted("squid", &line, &addr, "auth-failed");
    }
}

/// A client's long URL (Squid's limit is MAX_URL, 8 KiB) after the address made the native
/// line long enough for the transport-cut guard, which refused it while the elapsed time
/// before the address was read without a bound: every squid rule of the native format was
/// escaped by padding the URL. Now counted.
#[test]
fn squid_native_padded_counted_through_syslog() {
    let url = format!("http://192.0.2.80/{}", "a".repeat(900));
    let line = squid_native(7, "203.0.113.5", "TCP_DENIED/403", "GET", &url, "-");
    assert!(line.len() > 900);
    counted("squid", &line, "203.0.113.5", "denied");
    let line = squid_native(
        86_400_000,
        "2001:db8::5",
        "NONE_NONE/400",
        "-",
        &format!("/{}", "b".repeat(2000)),
        "-",
    );
    counted("squid", &line, "2001:db8::5", "bad-request");
    let line = squid_native(
        12,
        "203.0.113.6",
        "TCP_DENIED/407",
        "CONNECT",
        &format!("{}.example:443", "c".repeat(300)),
        &"d".repeat(600),
    );
    counted("squid", &line, "203.0.113.6", "auth-failed");
    bounded("squid", &["denied", "bad-request", "auth-failed"]);
}

// ---------------------------------------------------------------- Samba

/// auth/auth_log.c log_authentication_event_json(), version 1.2, through syslog.
fn samba_json(addr: &str, domain: &str, account: &str, ws: &str) -> String {
    let fam = if addr.contains(':') { "ipv6" } else { "ipv4" };
    format!(
        "Dec  4 20:55:11 fs1 smbd[98]:   {{\"timestamp\": \"2026-12-04T20:55:11.450025+0000\", \"type\": \"Authentication\", \"Authentication\": {{\"version\": {{\"major\": 1, \"minor\": 2}}, \"eventId\": 4625, \"logonId\": \"0\", \"logonType\": 3, \"status\": \"NT_STATUS_WRONG_PASSWORD\", \"localAddress\": \"ipv4:192.0.2.1:445\", \"remoteAddress\": \"{fam}:{addr}:33656\", \"serviceDescription\": \"SMB2\", \"authDescription\": null, \"clientDomain\": {d}, \"clientAccount\": {a}, \"workstation\": {w}, \"becameAccount\": null, \"becameDomain\": null, \"becameSid\": null, \"mappedAccount\": {a}, \"mappedDomain\": {d}, \"netlogonComputer\": null, \"netlogonTrustAccount\": null, \"netlogonNegotiateFlags\": \"0x00000000\", \"netlogonSecureChannelType\": 0, \"netlogonTrustAccountSid\": null, \"passwordType\": \"NTLMv2\", \"duration\": 522}}}}",
        d = json_str(domain),
        a = json_str(account),
        w = json_str(ws),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// The client's domain, account and workstation names (any UTF-8) never keep the JSON
    /// event from counting.
    #[test]
    fn samba_json_names_counted(
        d in printable(&["\", \"remoteAddress\": \"ipv4:198.51.100.7:1", "\n", "\u{1}", "é€😀", "}}"]),
        a in printable(&["\", \"remoteAddress\": \"ipv4:198.51.100.7:1", "\t", "\u{7f}", "{\"x\": [1]}"]),
        w in printable(&["] remote host [ipv4:198.51.100.7:1]"]),
        addr in sender(),
    ) {
        counted("samba", &samba_json(&addr, &d, &a, &w), &addr, "json-failed");
    }
}

#[test]
fn samba_long_json_and_denied_counted_through_syslog() {
    let line = samba_json(
        "203.0.113.5",
        &"D".repeat(300),
        &"a\"\\".repeat(200),
        &"W".repeat(300),
    );
    assert!(line.len() > 1500);
    counted("samba", &line, "203.0.113.5", "json-failed");
    // lib/util/access.c: "Denied connection from %s (%s)", the name at most 255 bytes
    let line = format!(
        "Dec  4 20:55:11 fs1 smbd[141]:   Denied connection from {} (203.0.113.9)",
        "h".repeat(255)
    );
    counted("samba", &line, "203.0.113.9", "denied");
    bounded("samba", &["json-failed", "denied"]);
}

// ---------------------------------------------------------------- OpenLDAP slapd

/// servers/slapd/connection.c "conn=%ld fd=%ld ACCEPT from %s (%s)", bind.c
/// "conn=%lu op=%lu BIND dn=\"%s\" method=%ld", result.c "conn=%lu op=%lu RESULT tag=%lu
/// err=%d qtime=%s etime=%s text=%s", through syslog.
fn slapd_lines(addr: &str, dn: &str) -> Vec<String> {
    let p = "Nov 21 10:00:02 ldap1 slapd[1101]: ";
    let peer = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    vec![
        format!("{p}conn=1000 fd=12 ACCEPT from IP={peer}:51234 (IP=0.0.0.0:389)"),
        format!("{p}conn=1000 op=0 BIND dn=\"{dn}\" method=128"),
        format!("{p}conn=1000 op=0 RESULT tag=97 err=49 qtime=0.000011 etime=0.000163 text="),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// A failed simple bind counts for the connection's address whatever the bind DN.
    #[test]
    fn slapd_bind_dns_counted(
        dn in printable(&["\" method=128", "conn=7 fd=9 ACCEPT from IP=198.51.100.7:1 (IP=0.0.0.0:389)", "\\22", "\\3D"]),
        addr in sender(),
    ) {
        counted_after("slapd", &slapd_lines(&addr, &dn), &addr, "bind-failed");
    }
}

#[test]
fn slapd_long_lines_counted() {
    counted_after(
        "slapd",
        &slapd_lines("203.0.113.5", &"cn=x,".repeat(300)),
        "203.0.113.5",
        "bind-failed",
    );
    // daemon.c "fd=%ld DENIED from %s (%s)": a reverse name of 253 bytes
    let name = format!("{}.example", "a.".repeat(122));
    let line = format!(
        "Nov 21 10:00:01 ldap1 slapd[1101]: fd=14 DENIED from {name} (IP=203.0.113.9:40000)"
    );
    counted("slapd", &line, "203.0.113.9", "denied");
    bounded("slapd", &["denied", "accept"]);
}

// ---------------------------------------------------------------- Asterisk (cut check)

/// The rules whose address follows only Asterisk's own text are never refused: the
/// no-extension form of res_pjsip_session.c 16+ ("%s: Call (%s:%s) to extension ...": the
/// session's channel or endpoint name, the transport type) and FreePBX's dialplan Log()
/// line (app_verbose.c: "Ext. %s" from an 80-byte buffer, "@ %s" the context).
#[test]
fn asterisk_program_prefixes_bounded() {
    let b = builtin::get("asterisk").unwrap();
    let f = Filter::from_toml(b.source, b.name).unwrap();
    let at = cut_threshold(1024);
    let ext: Vec<_> = f
        .rules()
        .iter()
        .filter(|r| r.id == "no-extension")
        .collect();
    assert_eq!(ext.len(), 2);
    assert!(ext[1].host_end_max() < at, "{}", ext[1].pattern().as_str());
    bounded("asterisk", &["dialplan-reject", "manager"]);
    // the longest such lines (79-byte extension and context, 80-byte channel name)
    let exten = "9".repeat(79);
    let ctx = "c".repeat(79);
    let chan = format!("PJSIP/{}-0000002a", "e".repeat(64));
    let line = format!(
        "Dec  5 10:00:00 pbx asterisk[900]: NOTICE[12345][C-0000002a]: res_pjsip_session.c:4011 in new_invite: {chan}: Call (UDP:203.0.113.5:5060) to extension '{exten}' rejected because extension not found in context '{ctx}'."
    );
    counted("asterisk", &line, "203.0.113.5", "no-extension");
    let line = format!(
        "Dec  5 10:00:00 pbx asterisk[900]: NOTICE[12345][C-0000002a]: Ext. {exten}:1 in @ {ctx}: Rejecting unknown SIP connection from 203.0.113.6"
    );
    counted("asterisk", &line, "203.0.113.6", "dialplan-reject");
}

// ---------------------------------------------------------------- MIT krb5kdc

/// src/lib/krb5/krb/unparse.c: '\n' '\t' '\b' '\0' '/' '@' '\\' quoted with a backslash
/// (the realm separator and component separators of the name itself are not); the KDC
/// cuts the result at 127 bytes (kdc_util.c limit_string(): 124 + "...").
fn krb_component(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\u{8}' => o.push_str("\\b"),
            '\0' => o.push_str("\\0"),
            '/' | '@' | '\\' => {
                o.push('\\');
                o.push(c)
            }
            c => o.push(c),
        }
    }
    o
}

fn limit(mut s: String) -> String {
    if s.len() >= 128 {
        let mut i = 124;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
        s.push_str("...");
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// kdc_log.c log_as_req(): "AS_REQ (%s) %s: %s: %s for %s%s%s"; the client principal
    /// (any text) never keeps the failure from counting.
    #[test]
    fn krb5kdc_principals_counted(
        name in printable(&[" for krbtgt/X@X", ": PREAUTH_FAILED: ", "\n", "\t", "é"]),
        addr in sender(),
        which in 0usize..3,
    ) {
        let cname = limit(format!("{}@EXAMPLE.COM", krb_component(&name)));
        let (status, rule) = [
            ("PREAUTH_FAILED", "preauth-failed"),
            ("CLIENT_NOT_FOUND", "client-not-found"),
            ("LOCKED_OUT", "locked-out"),
        ][which];
        let line = format!(
            "Dec  4 21:27:54 vm krb5kdc[41]: AS_REQ (8 etypes {{aes256-cts-hmac-sha1-96(18), aes128-cts-hmac-sha1-96(17), aes256-cts-hmac-sha384-192(20), aes128-cts-hmac-sha256-128(19), DEPRECATED:des3-cbc-sha1(16), DEPRECATED:arcfour-hmac(23), camellia128-cts-cmac(25), camellia256-cts-cmac(26)}}) {addr}: {status}: {cname} for krbtgt/EXAMPLE.COM@EXAMPLE.COM, Preauthentication failed"
        );
        counted("krb5kdc", &line, &addr, rule);
    }
}

// ---------------------------------------------------------------- Dante

/// Dante 1.4 (real runs, see the filter): the user name written by str2vis() (a LF as
/// `\n`), quotes raw; the text after "LOCAL.PORT: " cut at 255 bytes. `which`: 0 the system
/// password file's wrong password (an existing account: at most 32 bytes, useradd's
/// limit), 1 PAM's refusal (any name), 2 a name the system does not know (any name).
fn dante_line(addr: &str, user: &str, which: usize) -> String {
    let mut vis: String = user
        .chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c => c.to_string(),
        })
        .collect();
    if which == 0 {
        while vis.len() > 32 {
            vis.pop();
        }
    }
    let mut tail = match which {
        0 => format!("error after reading 3 bytes in 0 seconds: system password authentication failed for user \"{vis}\""),
        1 => format!("error after reading 3 bytes in 0 seconds: pam_authenticate() for user \"{vis}\" failed: Authentication failure"),
        _ => format!("error after reading 3 bytes in 0 seconds: could not access user \"{vis}\"'s records in the system password file: no system error"),
    };
    if tail.len() > 255 {
        let mut i = 255;
        while !tail.is_char_boundary(i) {
            i -= 1;
        }
        tail.truncate(i);
    }
    format!("Dec  3 12:00:00 proxy danted[3101]: info: block(1): tcp/accept ]: {addr}.40000 192.0.2.1.1080: {tail}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any SOCKS5 user name (up to 255 bytes) keeps its failure counted.
    #[test]
    fn dante_user_names_counted(
        user in printable(&["\" failed: x", "\n", "\"'s records in the system password file", "info: block(1): tcp/accept ]: 198.51.100.7.1 "]),
        pad in 0usize..255,
        addr in sender(),
        which in 0usize..3,
    ) {
        let mut u = format!("{user}{}", "u".repeat(pad));
        while u.len() > 255 {
            u.pop();
        }
        let rule = ["auth-failed", "auth-failed", "unknown-user"][which];
        counted("dante", &dante_line(&addr, &u, which), &addr, rule);
    }
}

#[test]
fn dante_bounded() {
    bounded("dante", &["auth-failed", "unknown-user", "no-method"]);
}

/// `line` is refused by the transport-cut guard, and by nothing else: with the default
/// limit the guard counts a refusal and nothing matches; with no transport limit (0) the
/// filter matches it for `addr` (review 53: a test of a refused line must show that the
/// guard is what refuses it).
#[track_caller]
fn refused_by_cut_guard(filter: &str, line: &str, addr: &str) {
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let set = compile(filter, None);
    let mut scratch = set.scratch();
    assert!(
        set.match_line(line.as_bytes(), &ctx, &mut scratch)
            .is_none(),
        "{filter}: matched: {line}"
    );
    // (one refusal per pattern that would have matched)
    assert!(scratch.cut_refused() > 0, "{filter}: not the guard: {line}");
    let set = compile(filter, Some(0));
    let mut scratch = set.scratch();
    let got = set.match_line(line.as_bytes(), &ctx, &mut scratch);
    assert_eq!(
        got.map(|h| canon(&h.addr.to_string())),
        Some(canon(addr)),
        "{filter}, no transport limit: {line}"
    );
}

// ---------------------------------------------------------------- PAM (pam-generic)

/// Linux-PAM modules/pam_unix/support.c: "authentication failure; logname=%s uid=%d
/// euid=%d tty=%s ruser=%s rhost=%s %s%s" (" user=" and the user when there is one).
fn pam_line(ruser: &str, addr: &str, user: &str) -> String {
    format!(
        "Nov 21 10:00:04 srv webapp[3104]: pam_unix(webapp:auth): authentication failure; logname= uid=0 euid=0 tty=webapp ruser={ruser} rhost={addr}  user={user}"
    )
}

/// A service that passes no ruser (sshd, a web application) and a client that pads its
/// user name (after the address) past the transport-cut threshold: not counted. An
/// empty-looking ruser may be a client's text that starts with a space, and a line cut by
/// the transport before the real ` rhost=` would read as a whole line with the address
/// the client typed there (review 51): the guard refuses every such long line, the forged
/// one as the padded one. A short line counts.
#[test]
fn pam_generic_long_lines_refused_through_syslog() {
    let line = pam_line("", "203.0.113.5", &"root ".repeat(200));
    assert!(line.len() > 1000);
    refused_by_cut_guard("pam-generic", &line, "203.0.113.5");
    let line = pam_line("", "2001:db8::5", &"x".repeat(900));
    refused_by_cut_guard("pam-generic", &line, "2001:db8::5");
    // what a cut forged line looks like: ruser " rhost=198.51.100.99  user=x" + padding,
    // cut before the real rhost= (built as rsyslog leaves it: the line as the service
    // wrote it, cut at the transport's 8 KiB)
    let forged = format!(" rhost=198.51.100.99  user=x{}", "y".repeat(9000));
    let whole = pam_line(&forged, "203.0.113.5", "x");
    let cut = &whole[..8192];
    assert!(!cut[cut.find("ruser=").unwrap() + 30..].contains("rhost="));
    refused_by_cut_guard("pam-generic", cut, "198.51.100.99");
    counted(
        "pam-generic",
        &pam_line("", "203.0.113.5", "root"),
        "203.0.113.5",
        "pam-auth",
    );
    // the documented gaps (header): a ruser (vsftpd, dovecot: the login name) is read as one
    // word, and one of any length stands before the address
    not_counted("pam-generic", &pam_line("a b", "203.0.113.5", "a b"));
    let long = "r".repeat(900);
    not_counted("pam-generic", &pam_line(&long, "203.0.113.5", &long));
}

// ---------------------------------------------------------------- Libreswan

/// pluto's prefix ("CONN"[N] ADDR #SERIAL: , connections.c jam_connection(), state
/// logger) before a message with the peer's identity; pluto cuts a line at LOG_WIDTH (1024).
#[test]
fn libreswan_long_identity_counted_through_syslog() {
    let id = "x".repeat(700);
    let line = format!(
        "Dec  3 13:20:00 vpn1 pluto[900]: \"roadwarrior\"[3] 203.0.113.5 #5: authentication failed: computed hash does not match hash received from peer ID_FQDN '@{id}'"
    );
    assert!(line.len() > 800);
    counted("libreswan", &line, "203.0.113.5", "auth-failed");
    let line = format!(
        "Dec  3 13:20:00 vpn1 pluto[900]: \"roadwarrior\"[3] 2001:db8::5 #7: Peer ID '@{id}' mismatched on first found connection and no better connection found"
    );
    counted("libreswan", &line, "2001:db8::5", "id-mismatch");
    bounded(
        "libreswan",
        &["auth-failed", "id-mismatch", "auth-refused", "xauth-failed"],
    );
}

// ---------------------------------------------------------------- ocserv, tcpwrappers

#[test]
fn ocserv_and_tcpwrappers_bounded() {
    // src/log.c _oclog(): "worker%s: %s %s", the name "[VHOST:USER]" at most 130 bytes
    let user = "u".repeat(63);
    let line = format!(
        "Dec  3 12:00:00 vpn1 ocserv[2101]: worker[vhost:{}:{user}]: 203.0.113.5 worker-auth.c:1724: failed authentication for '{user}'",
        "v".repeat(63)
    );
    counted("ocserv", &line, "203.0.113.5", "auth-failed");
    bounded("ocserv", &["auth-failed"]);
    // refuse.c: eval_client() is "USER@HOST" of two 128-byte buffers
    let line = format!(
        "Dec  3 13:04:06 vm in.telnetd[12515]: refused connect from {}@{} (203.0.113.7)",
        "u".repeat(127),
        "h".repeat(127)
    );
    counted("tcpwrappers", &line, "203.0.113.7", "refused");
    bounded("tcpwrappers", &["refused"]);
}

// ---------------------------------------------------------------- Linux audit (selinux-ssh)

/// audit-userspace lib/audit_logging.c audit_log_acct_message(): "op=%s acct=%s exe=%s
/// hostname=%s addr=%s terminal=%s res=%s", the account quoted, or hex-encoded when
/// audit_value_needs_encoding() (a '"', a byte below 0x21 or above 0x7e): a `'` stays.
fn audit_acct(user: &str) -> String {
    if user
        .bytes()
        .any(|b| b == b'"' || !(0x21..=0x7e).contains(&b))
    {
        user.bytes().map(|b| format!("{b:02X}")).collect()
    } else {
        format!("\"{user}\"")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any sshd user name keeps the PAM failure record counted (a `'` in it was not read).
    #[test]
    fn selinux_ssh_accounts_counted(
        user in printable(&["'", "' addr=198.51.100.7 terminal=ssh res=failed'", "é", "\n"]),
        addr in sender(),
    ) {
        let line = format!(
            "type=USER_AUTH msg=audit(1795000000.123:456): pid=2401 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:authentication grantors=? acct={} exe=\"/usr/sbin/sshd\" hostname={addr} addr={addr} terminal=ssh res=failed'",
            audit_acct(&format!("{user}x"))
        );
        counted("selinux-ssh", &line, &addr, "user-auth");
    }
}

#[test]
fn selinux_ssh_quote_in_account_counted() {
    let line = "Nov 21 10:00:01 web1 audit[2401]: USER_AUTH pid=2401 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:authentication grantors=? acct=\"root'\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.5 addr=203.0.113.5 terminal=ssh res=failed'";
    counted("selinux-ssh", line, "203.0.113.5", "user-auth");
}
