//! Evasion review, group `rest`: a remote client must not keep its own failures from being
//! counted by shaping a field it controls. Every line here is built from the program's real
//! format (the source named at each helper) or copied from a real run, with hostile-but-real
//! values in each client field; the line must be counted (a rule of weight > 0) for the real
//! address, in 203.0.113.0/24 or 2001:db8::/32, and never for the address the client wrote
//! into its own text (198.51.100.7, [`common::FORGED`]).
//!
//! Filters: 389-ds, cowrie, haproxy-http-auth, stunnel, tinyproxy, xinetd-fail.

use portcullis_core::filter::MatchSet;
use portcullis_core::time::TimeContext;
use proptest::prelude::*;

mod common;
use common::*;

/// (address, rule, weight) of each line of `lines`, read in order by one set (a filter with
/// `correlate` needs the lines before).
fn read_in_order(set: &MatchSet, lines: &[Vec<u8>]) -> Vec<Option<(String, String, u32)>> {
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let mut scratch = set.scratch();
    lines
        .iter()
        .map(|l| {
            set.match_line(l, &ctx, &mut scratch).map(|h| {
                let r = &set.filters()[h.filter].rules()[h.rule];
                (canon(&h.addr.to_string()), r.id.clone(), r.weight)
            })
        })
        .collect()
}

// ---------------------------------------------------------------- 389-ds

/// json-c's json_escape_str() (json-c/json-c json_object.c, default flags as
/// json_object_to_json_string() uses them): `"` `\` `/` and \b \n \r \t \f escaped, other
/// bytes below 0x20 as \u00xx (lower-case hex), every other byte (DEL, >= 0x80, invalid
/// UTF-8 too) written as it is.
fn json_c(raw: &[u8]) -> Vec<u8> {
    let mut o = b"\"".to_vec();
    for &c in raw {
        match c {
            b'"' => o.extend_from_slice(b"\\\""),
            b'\\' => o.extend_from_slice(b"\\\\"),
            b'/' => o.extend_from_slice(b"\\/"),
            0x08 => o.extend_from_slice(b"\\b"),
            b'\n' => o.extend_from_slice(b"\\n"),
            b'\r' => o.extend_from_slice(b"\\r"),
            b'\t' => o.extend_from_slice(b"\\t"),
            0x0c => o.extend_from_slice(b"\\f"),
            c if c < 0x20 => o.extend_from_slice(format!("\\u00{c:02x}").as_bytes()),
            c => o.push(c),
        }
    }
    o.push(b'"');
    o
}

/// log.c slapi_log_security() (389ds/389-ds-base main of 2026-08): the bind DN cut to
/// "%.512s..." when longer, then one json-c object (spaced format, keys in the order added).
fn ds_security(
    dn: &[u8],
    method: &str,
    root: bool,
    addr: &str,
    conn: u64,
    op: i32,
    msg: &str,
) -> Vec<u8> {
    let mut dn = dn.to_vec();
    if dn.len() > 512 {
        dn.truncate(512);
        dn.extend_from_slice(b"...");
    }
    let mut o = b"{ \"date\": \"[05\\/Dec\\/2026:02:53:38.040026760 +0000] \", \"utc_time\": \"1796439218.040026760\", \"event\": \"BIND_FAILED\", \"dn\": ".to_vec();
    o.extend_from_slice(&json_c(&dn));
    o.extend_from_slice(
        format!(
            ", \"bind_method\": {}, \"root_dn\": {root}, \"client_ip\": \"{addr}\", \"server_ip\": \"192.0.2.1\", \"ldap_version\": 3, \"conn_id\": {conn}, \"op_id\": {op}, \"msg\": \"{msg}\" }}",
            String::from_utf8(json_c(method.as_bytes())).unwrap()
        )
        .as_bytes(),
    );
    o
}

/// log.c vslapd_log_security(): "%s\n" into a 2048-byte buffer; an object over 2047 bytes
/// loses its end and line feed, and the next object is written on its line.
fn ds_security_file(objects: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut lines = vec![];
    let mut cur = vec![];
    for o in objects {
        if o.len() > 2047 {
            cur.extend_from_slice(&o[..2047]);
        } else {
            cur.extend_from_slice(o);
            lines.push(std::mem::take(&mut cur));
        }
    }
    lines
}

/// A bind DN as a client sends it (an LDAP octet string, normalized by 389 but not
/// validated as UTF-8; bind.c): any byte but NUL, with pieces that imitate the object.
fn ldap_dn() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"uid=alice,dc=example,dc=net".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\\\"".to_vec()),
        Just(b"/".to_vec()),
        Just(b"\n\r\t\x08\x0c\x01\x1f\x7f".to_vec()),
        Just(b"\xff\xfe\xc3".to_vec()),
        Just("é€😀".as_bytes().to_vec()),
        Just(b"{}[]:,= ".to_vec()),
        Just(b"\", \"client_ip\": \"198.51.100.7\", \"msg\": \"INVALID_PASSWORD\" }".to_vec()),
        Just(
            b"{ \"date\": \"x\", \"event\": \"BIND_FAILED\", \"client_ip\": \"198.51.100.7"
                .to_vec()
        ),
        Just(vec![1u8; 300]),
        Just(vec![b'a'; 600]),
        prop::collection::vec(1u8..=255, 0..40),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever the DN (quotes, escapes, control and non-UTF-8 bytes, forged objects, any
    /// length), the failed bind's object counts for its own client_ip; when 389's 2048-byte
    /// buffer cuts it, the next client's object on the same line still counts.
    #[test]
    fn ds389_security_bind_failed_counted(
        dn in ldap_dn(),
        method in prop_oneof![Just("SIMPLE"), Just("SIMPLE/MFA"), Just(""), Just("SASL/GSSAPI"), Just("TLSCLIENTAUTH")],
        root in any::<bool>(),
        addr in sender(),
        conn in any::<u64>(),
        op in -1i32..100000,
        msg in prop_oneof![Just("INVALID_PASSWORD"), Just("NO_SUCH_ENTRY"), Just("ACCOUNT_LOCKED"), Just("CERT_MAP_FAILED")],
    ) {
        let first = ds_security(&dn, method, root, &addr, conn, op, msg);
        let next = ds_security(b"uid=bob,dc=example,dc=net", "SIMPLE", false, "203.0.113.250", 1, 0, "INVALID_PASSWORD");
        let lines = ds_security_file(&[first.clone(), next]);
        if first.len() <= 2047 {
            prop_assert_eq!(lines.len(), 2);
            counted("389-ds", &lines[0], &addr, "security-bind-failed");
            counted("389-ds", &lines[1], "203.0.113.250", "security-bind-failed");
        } else {
            // the documented loss: the cut object's own failure; the next one counts
            prop_assert_eq!(lines.len(), 1);
            counted("389-ds", &lines[0], "203.0.113.250", "security-bind-failed");
        }
    }

    /// Through syslog: a BIND line with any DN (rsyslog's escaping), of any length, then
    /// the connection's RESULT err=49: counted for the connection's address.
    #[test]
    fn ds389_syslog_bind_failed_counted(dn in ldap_dn(), addr in sender(), conn in 1u64..u64::MAX) {
        let set = compile("389-ds", None);
        let mut bind = format!("conn={conn} op=0 BIND dn=\"").into_bytes();
        bind.extend_from_slice(&rsyslog_escape(&dn));
        bind.extend_from_slice(b"\" method=128 version=3");
        let lines = vec![
            syslog("ns-slapd", format!("conn={conn} fd=64 slot=64 connection from {addr} to 192.0.2.1").as_bytes()),
            syslog("ns-slapd", &bind),
            syslog("ns-slapd", format!("conn={conn} op=0 RESULT err=49 tag=97 nentries=0 wtime=0.000045137 optime=0.000488768 etime=0.000533164 - Invalid credentials").as_bytes()),
        ];
        let got = read_in_order(&set, &lines);
        prop_assert_eq!(got[2].clone(), Some((canon(&addr), "bind-failed".to_string(), 1)));
    }
}

/// A client's SASL PLAIN / SCRAM wrong passwords, as Debian 13's 3.1.2 wrote them through
/// syslog in a real run (the security log had no line for them: the header's WHICH ONE),
/// and a connection line padded past the transport-cut threshold would not be one: its
/// numbers are bounded, so even the longest one is never refused.
#[test]
fn ds389_sasl_failures_through_syslog_counted() {
    let set = compile("389-ds", None);
    let lines: Vec<Vec<u8>> = [
        "Dec  5 14:28:27 vm ns-slapd: conn=2 fd=65 slot=65 connection from 203.0.113.5 to 192.0.2.1",
        "Dec  5 14:28:27 vm ns-slapd: conn=2 op=0 BIND dn=\"\" method=sasl version=3 mech=PLAIN",
        "Dec  5 14:28:27 vm ns-slapd: conn=2 op=0 RESULT err=49 tag=97 nentries=0 wtime=0.000031928 optime=0.032911156 etime=0.032942774 - SASL(-13): user not found: Password verification failed",
        "Dec  5 14:28:27 vm ns-slapd: conn=5 fd=64 slot=64 connection from 2001:db8::5 to 192.0.2.1",
        "Dec  5 14:28:27 vm ns-slapd: conn=5 op=0 BIND dn=\"\" method=sasl version=3 mech=SCRAM-SHA-256",
        "Dec  5 14:28:27 vm ns-slapd: conn=5 op=0 RESULT err=49 tag=97 nentries=0 wtime=0.000092408 optime=0.000607546 etime=0.000699714 - SASL(-13): user not found: no secret in database",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    let got = read_in_order(&set, &lines);
    assert_eq!(
        got[2],
        Some(("203.0.113.5".into(), "bind-failed".into(), 1))
    );
    assert_eq!(
        got[5],
        Some(("2001:db8::5".into(), "bind-failed".into(), 1))
    );
    // the connection rules: address after bounded numbers only
    bounded_except("389-ds", |id, _| {
        id.starts_with("security-") || id == "bind-failed"
    });
}

// ---------------------------------------------------------------- cowrie

/// Cowrie's connect event as output/jsonlog.py writes it: json.dumps(separators=(",",
/// ":")), ensure_ascii (common::py_json). 3.x key order (events.py transport_events(),
/// EventDispatcher.dispatch()) or 2.x's (eventid first); `late` and `epoch` when present.
fn cowrie_connect(addr: &str, sensor: &str, v3: bool, late: bool, epoch: bool) -> String {
    let msg = format!("New connection: {addr}:41000 (192.0.2.1:2222) [session: 1a2b3c4d5e6f]");
    let mut s = if v3 {
        format!(
            "{{\"session\":\"1a2b3c4d5e6f\",\"protocol\":\"ssh\",\"src_ip\":\"{addr}\",\"src_port\":41000,\"dst_ip\":\"192.0.2.1\",\"dst_port\":2222,\"eventid\":\"cowrie.session.connect\"{},\"sensor\":{},\"uuid\":\"5f0c6e2a-c4a1-11f1-9b1e-0242ac120002\",\"timestamp\":\"2026-11-18T11:06:40.123456Z\",\"message\":{}",
            if late { ",\"late\":true" } else { "" },
            py_json(sensor),
            py_json(&msg)
        )
    } else {
        format!(
            "{{\"eventid\":\"cowrie.session.connect\",\"src_ip\":\"{addr}\",\"src_port\":41000,\"dst_ip\":\"192.0.2.1\",\"dst_port\":2222,\"session\":\"1a2b3c4d5e6f\",\"protocol\":\"telnet\",\"message\":{},\"sensor\":{},\"timestamp\":\"2026-11-18T12:06:40.123456+0100\"",
            py_json(&msg),
            py_json(sensor)
        )
    };
    if epoch {
        s.push_str(",\"epoch\":1795000000123");
    }
    s.push('}');
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The connect event holds no client text; whatever the configuration's sensor name
    /// (escaped by json.dumps) and the optional keys, it counts for src_ip.
    #[test]
    fn cowrie_connect_counted(
        addr in sender(),
        sensor in "[ -~\u{e9}\u{4e2d}\n\"\\\\]{0,20}",
        v3 in any::<bool>(), late in any::<bool>(), epoch in any::<bool>(),
    ) {
        counted("cowrie", cowrie_connect(&addr, &sensor, v3, late, epoch).as_bytes(), &addr, "connect");
    }
}

// ---------------------------------------------------------------- haproxy-http-auth

/// HAProxy's log encoding (src/log.c: bytes < 32 and >= 127 and the map's extra
/// characters as '#' and two upper-case hex digits): the request line's map has `"` `#`,
/// the captured headers' also `{` `|` `}`.
fn haproxy_enc(raw: &[u8], hdr: bool) -> String {
    let mut o = String::new();
    for &c in raw {
        let special = !(32..127).contains(&c)
            || c == b'"'
            || c == b'#'
            || (hdr && matches!(c, b'{' | b'|' | b'}'));
        if special {
            o.push_str(&format!("#{c:02X}"));
        } else {
            o.push(c as char);
        }
    }
    o
}

fn http_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"/admin/".to_vec()),
        Just(
            b" 198.51.100.7:1 [18/Nov/2026:11:07:10.000] www a/<NOSRV> 0/-1/-1/-1/0 401 ".to_vec()
        ),
        Just(b"\"{|}#".to_vec()),
        Just(b"\r\n\x00\x7f\xff".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(vec![b'A'; 700]),
        prop::collection::vec(1u8..=255, 0..30),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// default_http_log_format (src/log.c), `option httplog`: hostile captured headers and
    /// request lines of any length (HAProxy's own `len` cut at 1024 included), through
    /// syslog or raw: the 401 counts for %ci.
    #[test]
    fn haproxy_auth_counted(
        addr in sender(),
        port in 1u16..=65535,
        hdr in http_text(),
        url in http_text(),
        via_syslog in any::<bool>(),
        stats in any::<bool>(),
    ) {
        let (srv, timers, st, rule) = if stats {
            ("stats/<STATS>", "0/0/0/-1/0", "400", "stats-auth")
        } else {
            ("admin-be/<NOSRV>", "0/-1/-1/-1/0", "401", "auth")
        };
        let mut msg = format!(
            "{addr}:{port} [05/Dec/2026:02:44:19.320] www~ {srv} {timers} {st} 252 - - LR-- 1/1/0/0/0 0/0 {{{}}} \"GET {} HTTP/1.1\"",
            haproxy_enc(&hdr, true),
            haproxy_enc(&url, false)
        );
        msg.truncate(1023);
        let line = if via_syslog { syslog("haproxy[38]", msg.as_bytes()) } else { msg.into_bytes() };
        counted("haproxy-http-auth", &line, &addr, rule);
    }
}

#[test]
fn haproxy_long_line_through_syslog_counted() {
    let url = "/x".repeat(450);
    let msg = format!("203.0.113.77:55218 [05/Dec/2026:02:44:19.440] www app/app1 0/0/0/4/5 401 161 - - ---- 1/1/0/0/0 0/0 {{curl/7.88.1}} \"GET {url} HTTP/1.1\"");
    counted_long(
        "haproxy-http-auth",
        &syslog("haproxy[38]", msg.as_bytes()),
        "203.0.113.77",
        "backend-401",
    );
}

// ---------------------------------------------------------------- stunnel

/// libwrap.c "Service [%s] REFUSED by libwrap from %s" (s_ntop "%s:%s"), log.c log_raw():
/// the file "%s %s: %s" (stamp, "LOG%d[%s]" id, text), syslog "%s: %s"; the id by
/// log_id() for each `logId` (sequential, unique: 22 of [0-9a-zA-Z], thread, process).
#[test]
fn stunnel_every_log_id_counted() {
    for id in [
        "12",
        "Zk3q9XbT0aL7mPw2RcY5ue",
        "140234567890123",
        "4242",
        "1502:140234567890",
    ] {
        for addr in ["203.0.113.30", "2001:db8::30", "::ffff:203.0.113.30"] {
            let text = format!("LOG4[{id}]: Service [tls] REFUSED by libwrap from {addr}:40100");
            let want = addr.trim_start_matches("::ffff:");
            counted(
                "stunnel",
                format!("2026.12.05 10:00:01 {text}").as_bytes(),
                want,
                "libwrap",
            );
            counted(
                "stunnel",
                &syslog("stunnel", text.as_bytes()),
                want,
                "libwrap",
            );
        }
    }
}

// ---------------------------------------------------------------- tinyproxy

/// A PTR name as glibc's resolver gives it to getnameinfo(): ns_name_ntop() text (special
/// characters `\`-escaped, others `\DDD`), no space; any printable ASCII but space.
fn ptr_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("scanner.example.net".to_string()),
        Just("198.51.100.7".to_string()),
        Just("\"[198.51.100.7].".to_string()),
        Just("\\\"\\032\\(\\)\\;".to_string()),
        Just("]\"[".to_string()),
        "[!-~]{0,30}",
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// 1.8 to 1.10: check_acl() "Unauthorized connection from \"%s\" [%s].", host, ip;
    /// log.c's file head "%-9s %s [%ld]: " (no milliseconds) or syslog.
    #[test]
    fn tinyproxy_110_unauthorized_counted(name in ptr_name(), addr in sender(), file in any::<bool>()) {
        let msg = format!("Unauthorized connection from \"{name}\" [{addr}].");
        let line = if file {
            format!("NOTICE    Dec 05 12:00:00 [2201]: {msg}").into_bytes()
        } else {
            syslog("tinyproxy[2201]", msg.as_bytes())
        };
        counted("tinyproxy", &line, &addr, "unauthorized");
    }
}

#[test]
fn tinyproxy_lines_counted() {
    // 1.11 (reqs.c auth_error(), acl.c check_acl(); log.c "%-9s %s.%03lu [%ld]: ")
    for (line, addr, rule) in [
        ("INFO      Dec 05 03:03:13.563 [92]: Failed auth attempt (file descriptor: 6), ip 192.0.2.11", "192.0.2.11", "auth-failed"),
        ("NOTICE    Dec 05 03:03:13.444 [92]: Unauthorized connection from \"2001:db8:88::8\".", "2001:db8:88::8", "unauthorized"),
        ("CRITICAL  Dec 05 03:03:13.444 [4294967295]: Unauthorized connection from \"203.0.113.9\".", "203.0.113.9", "unauthorized"),
        // 1.10 without a PTR record: the address twice
        ("NOTICE    Dec 05 12:00:00 [2201]: Unauthorized connection from \"203.0.113.20\" [203.0.113.20].", "203.0.113.20", "unauthorized"),
    ] {
        counted("tinyproxy", line.as_bytes(), addr, rule);
    }
    // the documented trade-off: a PTR name of about 700 bytes before the address, through
    // syslog, is refused at the default transport cut (and counted with a larger one)
    let long = format!(
        "Unauthorized connection from \"{}\" [203.0.113.21].",
        "a\\\"".repeat(250)
    );
    refused_then_counted_with_larger_cut(
        "tinyproxy",
        &syslog("tinyproxy[2201]", long.as_bytes()),
        "203.0.113.21",
        "unauthorized",
    );
    // 1.11's lines and heads: the address after bounded fields only
    bounded_except("tinyproxy", |id, p| {
        id == "unauthorized" && p.contains("{0,1024}")
    });
}

// ---------------------------------------------------------------- xinetd-fail

/// log.c svc_log_failure() "FAIL: %s %s" + log_common() " from=%s" (numeric), access.c
/// "libwrap refused connection to %s (libwrap=%s) from %s": nothing of the client's.
#[test]
fn xinetd_lines_counted() {
    for addr in ["203.0.113.40", "2001:db8::40", "::ffff:203.0.113.40"] {
        let want = addr.trim_start_matches("::ffff:");
        for (msg, rule) in [
            (format!("FAIL: telnet address from={addr}"), "address"),
            (format!("FAIL: tftp libwrap from={addr}"), "libwrap"),
            (
                format!("libwrap refused connection to tftp (libwrap=in.tftpd) from {addr}"),
                "libwrap-refused",
            ),
            (
                format!("FAIL: nrpe per_source_limit from={addr}"),
                "per-source",
            ),
        ] {
            counted(
                "xinetd-fail",
                &syslog("xinetd[1422]", msg.as_bytes()),
                want,
                rule,
            );
        }
    }
}
