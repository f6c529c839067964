//! Evasion review, group `infra`: a remote client must not keep its own failures from being
//! counted by shaping a field it controls. Every line here is built from the program's real
//! format (the source named at each helper) with hostile-but-real values in each client
//! field; the line must be counted (a rule of weight > 0) for the real address, in
//! 203.0.113.0/24 or 2001:db8::/32, and never for the address the client wrote into its own
//! text (198.51.100.7).
//!
//! Filters: keycloak, kube-apiserver-audit, postgresql, apache-modsecurity.

use portcullis_core::filter::{builtin, Filter};
use proptest::prelude::*;

mod common;
use common::*;

/// Client text: pieces that imitate the structure of the lines below, and single
/// characters (quotes, backslashes, brackets, control bytes, non-ASCII).
fn client_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\\\"".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\u{1}".to_string()),
        Just("\u{7f}".to_string()),
        Just("\u{a0}".to_string()),
        Just("\u{2028}".to_string()),
        Just("é€😀".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("'".to_string()),
        Just("<>&".to_string()),
        Just("%".to_string()),
        Just("\", ipAddress=\"198.51.100.7\", error=\"user_not_found".to_string()),
        Just("\",\"sourceIPs\":[\"198.51.100.7\"],\"responseStatus\":{\"code\":401}}".to_string()),
        Just("\",\"remote_host\":\"198.51.100.7\",\"remote_port\":1,".to_string()),
        Just("[client 198.51.100.7:1] [client 198.51.100.7] ModSecurity: ".to_string()),
        Just("\"] Access denied with code 403 (phase 2). [uri \"".to_string()),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------- Keycloak

/// org.keycloak.utils.StringUtil.sanitizeSpacesAndQuotes(str, '"') (keycloak/keycloak
/// common): every Character.isWhitespace() char but ' ', and U+00A0, becomes ' '; '"'
/// becomes \"; a backslash is left as it is.
fn kc_sanitize(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        let java_ws = matches!(
            c,
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{1c}'..='\u{1f}'
        ) || (c.is_whitespace()
            && !matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}' | '\u{85}'));
        if (java_ws && c != ' ') || c == '\u{a0}' {
            o.push(' ');
        } else if c == '"' {
            o.push_str("\\\"");
        } else {
            o.push(c);
        }
    }
    o
}

/// JBossLoggingEventListenerProvider.logEvent() (services/.../events/log/): the event as
/// `type="T", realmId="R", [realmName="N", ]clientId="C", userId="U", [sessionId="S", ]
/// ipAddress="A", error="E", KEY="VALUE"..., authSessionParentId=..., authSessionTabId=...`,
/// each value sanitised; then the JSON record of Quarkus' formatter, default or ECS keys.
fn kc_line(
    ecs: bool,
    realm_name: bool,
    session: bool,
    addr: &str,
    details: &[(&str, &str)],
) -> String {
    let mut m =
        String::from("type=\"LOGIN_ERROR\", realmId=\"5c3a4b2e-7d1f-4e8a-9b6c-0d2e4f6a8b1c\", ");
    if realm_name {
        m.push_str("realmName=\"acme\", ");
    }
    m.push_str("clientId=\"account-console\", userId=\"null\", ");
    if session {
        m.push_str("sessionId=\"0da7ee4f-239b-4b18-bd93-c8874cb7a54e\", ");
    }
    m.push_str(&format!("ipAddress=\"{addr}\", error=\"user_not_found\""));
    for (k, v) in details {
        m.push_str(&format!(", {k}=\"{}\"", kc_sanitize(v)));
    }
    m.push_str(", authSessionParentId=\"0da7ee4f-239b-4b18-bd93-c8874cb7a54e\", authSessionTabId=\"KExLqvKR4co\"");
    let msg = json_str(&m);
    if ecs {
        format!("{{\"@timestamp\":\"2026-11-18T11:06:47.539484211+01:00\",\"event.sequence\":9608,\"log.logger\":\"org.keycloak.events\",\"log.level\":\"WARN\",\"message\":{msg},\"process.thread.name\":\"executor-thread-1\",\"process.thread.id\":88,\"mdc\":{{}},\"ndc\":\"\",\"host.hostname\":\"sso\",\"process.name\":\"java\",\"process.pid\":1,\"service.name\":\"Keycloak\",\"service.version\":\"26.3.1\"}}")
    } else {
        format!("{{\"timestamp\":\"2026-11-18T11:06:40.123456789Z\",\"sequence\":9101,\"loggerClassName\":\"org.jboss.logging.Logger\",\"loggerName\":\"org.keycloak.events\",\"level\":\"WARN\",\"message\":{msg},\"threadName\":\"executor-thread-3\",\"threadId\":143,\"mdc\":{{}},\"ndc\":\"\",\"hostName\":\"sso\",\"processName\":\"/usr/lib/jvm/jre-21/bin/java\",\"processId\":1}}")
    }
}

/// Java's InetAddress text of an IPv6 address: eight groups, no compression.
fn java_ip(a: &str) -> String {
    match a.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
        _ => a.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// The user name and redirect_uri a client types (after the address) never keep the
    /// record from counting, in either JSON layout, with or without realmName/sessionId.
    #[test]
    fn keycloak_client_details_counted(
        user in client_text(),
        uri in client_text(),
        addr in sender(),
        ecs in any::<bool>(),
        realm_name in any::<bool>(),
        session in any::<bool>(),
    ) {
        let line = kc_line(ecs, realm_name, session, &java_ip(&addr), &[
            ("auth_method", "openid-connect"),
            ("redirect_uri", &format!("https://app.example.org/cb?{uri}")),
            ("username", &user),
        ]);
        counted("keycloak", line.as_bytes(), &addr, "password");
    }
}

/// A 2 KiB user name (Quarkus' max-form-attribute-size) of control bytes, each written as
/// \u00XX by the JSON generator: a record of 13 KiB in the file, counted.
#[test]
fn keycloak_long_user_name_counted() {
    let user = "\u{1}".repeat(2048);
    let line = kc_line(false, true, false, "203.0.113.5", &[("username", &user)]);
    assert!(line.len() > 12_000);
    counted("keycloak", line.as_bytes(), "203.0.113.5", "password");
}

/// Through syslog (`--log-syslog-output=json`) a record is refused at the default
/// transport_cut (1024) once its message reaches 768 bytes, because clientId, of no
/// written bound, stands before ipAddress; the header asks for `transport_cut = 65536`
/// with `--log-syslog-max-length=64k`, and then a padded record counts.
#[test]
fn keycloak_syslog_padded_counted_with_the_documented_transport_cut() {
    let rec = kc_line(
        false,
        true,
        true,
        "203.0.113.6",
        &[
            (
                "redirect_uri",
                &format!("https://app.example.org/cb?{}", "a".repeat(1500)),
            ),
            ("username", &"b".repeat(1000)),
        ],
    );
    let line = format!("Nov 18 11:06:49 sso keycloak[2211]: {rec}");
    counted_cut(
        "keycloak",
        Some(65536),
        line.as_bytes(),
        "203.0.113.6",
        "password",
    );
    // the documented default behaviour: refused, never another address
    assert_eq!(report_cut("keycloak", None, line.as_bytes()), None);
}

// ---------------------------------------------------------------- kube-apiserver

/// The audit.k8s.io/v1 Event of a failed authentication (apiserver pkg/audit/request.go
/// LogRequestMetadata(), endpoints/filters/authn_audit.go): requestURI, verb, empty user,
/// sourceIPs (X-Forwarded-For entries, X-Real-Ip, then the peer), userAgent (cut at 1024
/// bytes + "...TRUNCATED"), objectRef for a resource request (namespace and name from the
/// client's path), responseStatus with code 401; at level RequestResponse the response
/// Status object too; annotations.
fn kube_line(
    level: &str,
    uri: &str,
    ua: &str,
    object: Option<(&str, &str)>,
    xff: &[&str],
    peer: &str,
) -> String {
    let mut ua = ua.to_string();
    if ua.len() > 1024 {
        let mut cut = 1024;
        while !ua.is_char_boundary(cut) {
            cut -= 1;
        }
        ua.truncate(cut);
        ua.push_str("...TRUNCATED");
    }
    let mut ips: Vec<String> = xff.iter().map(|s| s.to_string()).collect();
    if ips.last().map(String::as_str) != Some(peer) {
        ips.push(peer.to_string());
    }
    let ips = ips
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(",");
    let mut l = format!(
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"{level}\",\"auditID\":\"6f3c1c0e-3d7b-4f3e-9b0a-2c1d5e6f7a8b\",\"stage\":\"ResponseStarted\",\"requestURI\":{},\"verb\":\"get\",\"user\":{{}},\"sourceIPs\":[{ips}]",
        go_json(uri)
    );
    if !ua.is_empty() {
        l.push_str(&format!(",\"userAgent\":{}", go_json(&ua)));
    }
    if let Some((ns, name)) = object {
        l.push_str(&format!(
            ",\"objectRef\":{{\"resource\":\"pods\",\"namespace\":{},\"name\":{},\"apiVersion\":\"v1\"}}",
            go_json(ns),
            go_json(name)
        ));
    }
    l.push_str(",\"responseStatus\":{\"metadata\":{},\"message\":\"Authentication failed, attempted: bearer\",\"code\":401}");
    if level == "RequestResponse" {
        l.push_str(",\"responseObject\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}");
    }
    l.push_str(",\"requestReceivedTimestamp\":\"2026-11-18T11:06:40.123456Z\",\"stageTimestamp\":\"2026-11-18T11:06:40.124001Z\",\"annotations\":{\"authorization.k8s.io/decision\":\"forbid\"}}");
    l
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// requestURI, userAgent, the object's namespace and name and X-Forwarded-For are the
    /// client's; the last sourceIPs element (the peer) is counted whatever they hold.
    #[test]
    fn kube_client_fields_counted(
        path in client_text(),
        query in client_text(),
        ua in client_text(),
        ns in client_text(),
        name in client_text(),
        xff in prop::collection::vec(prop_oneof![Just("198.51.100.7"), Just("192.0.2.1"), Just("2001:db8::bad")], 0..4),
        level in prop_oneof![Just("Metadata"), Just("Request"), Just("RequestResponse")],
        resource in any::<bool>(),
        peer in sender(),
    ) {
        let uri = format!("/api/v1/namespaces/{ns}/pods/{name}{path}?{query}");
        let object = resource.then_some((ns.as_str(), name.as_str()));
        let line = kube_line(level, &uri, &ua, object, &xff, &peer);
        counted("kube-apiserver-audit", line.as_bytes(), &peer, "unauthorized");
    }
}

/// A user agent over 1024 bytes (cut and marked by maybeTruncateUserAgent) and a long
/// path whose name is also in objectRef: counted while the line stays under max_line.
#[test]
fn kube_long_fields_counted() {
    let name = "<".repeat(50_000);
    let uri = format!("/api/v1/namespaces/default/pods/{name}");
    let ua = "\"".repeat(3000);
    let line = kube_line(
        "Metadata",
        &uri,
        &ua,
        Some(("default", &name)),
        &["198.51.100.7"],
        "203.0.113.7",
    );
    counted(
        "kube-apiserver-audit",
        line.as_bytes(),
        "203.0.113.7",
        "unauthorized",
    );
}

// ---------------------------------------------------------------- PostgreSQL

/// src/backend/utils/adt/json.c escape_json(): '"' and '\' escaped, \b \f \n \r \t, the
/// other bytes below 0x20 as \u00XX; every other byte raw (no encoding check: a startup
/// packet's name may hold invalid UTF-8).
fn pg_json(raw: &[u8]) -> Vec<u8> {
    let mut o = vec![b'"'];
    for &c in raw {
        match c {
            b'"' => o.extend_from_slice(b"\\\""),
            b'\\' => o.extend_from_slice(b"\\\\"),
            0x08 => o.extend_from_slice(b"\\b"),
            0x0c => o.extend_from_slice(b"\\f"),
            b'\n' => o.extend_from_slice(b"\\n"),
            b'\r' => o.extend_from_slice(b"\\r"),
            b'\t' => o.extend_from_slice(b"\\t"),
            c if c < 0x20 => o.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => o.push(c),
        }
    }
    o.push(b'"');
    o
}

/// A name of the startup packet: any byte but NUL, cut to NAMEDATALEN - 1 = 63 bytes.
fn pg_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        client_text().prop_map(|s| s.into_bytes()),
        prop::collection::vec(1u8..=255, 0..70),
        Just(b"\xff\xfe\x80".to_vec()),
    ]
    .prop_map(|mut v| {
        v.truncate(63);
        v
    })
}

/// write_jsonlog() (src/backend/utils/error/jsonlog.c) of auth.c auth_failed() /
/// ClientAuthentication()'s FATAL, keys in its order.
fn pg_line(
    user: &[u8],
    db: &[u8],
    addr: &str,
    message: &[u8],
    state: &str,
    detail: Option<&[u8]>,
) -> Vec<u8> {
    let mut ps = b"authentication".to_vec();
    ps.extend_from_slice(b" ");
    ps.extend_from_slice(user);
    let mut l = b"{\"timestamp\":\"2026-12-03 09:19:08.149 UTC\",\"user\":".to_vec();
    l.extend(pg_json(user));
    l.extend_from_slice(b",\"dbname\":");
    l.extend(pg_json(db));
    l.extend_from_slice(
        format!(",\"pid\":22356,\"remote_host\":\"{addr}\",\"remote_port\":37564,\"session_id\":\"6b11340c.5754\",\"line_num\":1,\"ps\":").as_bytes(),
    );
    l.extend(pg_json(&ps));
    l.extend_from_slice(
        format!(",\"session_start\":\"2026-12-03 09:19:08 UTC\",\"vxid\":\"3/2\",\"txid\":0,\"error_severity\":\"FATAL\",\"state_code\":\"{state}\",\"message\":").as_bytes(),
    );
    l.extend(pg_json(message));
    if let Some(d) = detail {
        l.extend_from_slice(b",\"detail\":");
        l.extend(pg_json(d));
    }
    l.extend_from_slice(b",\"backend_type\":\"client backend\",\"query_id\":0}");
    l
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// The user and database names of the startup packet (any bytes) in "user", "dbname",
    /// "ps", the message and the detail: both rules count for remote_host / the pg_hba host.
    #[test]
    fn postgresql_names_counted(user in pg_name(), db in pg_name(), addr in sender(), which in 0u8..3) {
        match which {
            0 => {
                let mut m = b"password authentication failed for user \"".to_vec();
                m.extend_from_slice(&user);
                m.push(b'"');
                let mut d = b"Role \"".to_vec();
                d.extend_from_slice(&user);
                d.extend_from_slice(b"\" does not exist.\nConnection matched file \"/etc/postgresql/17/main/pg_hba.conf\" line 2: \"host all all 0.0.0.0/0 scram-sha-256\"");
                counted("postgresql", &pg_line(&user, &db, &addr, &m, "28P01", Some(&d)), &addr, "auth-failed");
            }
            1 => {
                let mut m = format!("no pg_hba.conf entry for host \"{addr}\", user \"").into_bytes();
                m.extend_from_slice(&user);
                m.extend_from_slice(b"\", database \"");
                m.extend_from_slice(&db);
                m.extend_from_slice(b"\", no encryption");
                counted("postgresql", &pg_line(&user, &db, &addr, &m, "28000", None), &addr, "no-hba");
            }
            _ => {
                let mut m = format!("no pg_hba.conf entry for replication connection from host \"{addr}\", user \"").into_bytes();
                m.extend_from_slice(&user);
                m.extend_from_slice(b"\", SSL encryption");
                counted("postgresql", &pg_line(&user, b"", &addr, &m, "28000", None), &addr, "no-hba");
            }
        }
    }
}

// ---------------------------------------------------------------- ModSecurity 2.x

/// ModSecurity 2.x msc_util.c log_escape(): '"' as \", '\' as \\, \b \n \r \t \v, the
/// other bytes below 0x20 and from 0x7f as \xHH.
fn msc_log_escape(raw: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    for &c in raw {
        match c {
            b'"' => o.extend_from_slice(b"\\\""),
            b'\\' => o.extend_from_slice(b"\\\\"),
            0x08 => o.extend_from_slice(b"\\b"),
            b'\n' => o.extend_from_slice(b"\\n"),
            b'\r' => o.extend_from_slice(b"\\r"),
            b'\t' => o.extend_from_slice(b"\\t"),
            0x0b => o.extend_from_slice(b"\\v"),
            c if !(0x20..0x7f).contains(&c) => {
                o.extend_from_slice(format!("\\x{:02x}", c).as_bytes())
            }
            c => o.push(c),
        }
    }
    o
}

/// The 2.9 message (apache2_util.c / mod_security2.c): "Access denied with code 403
/// (phase 2). Pattern match ... [file ..] [line ..] [id ..] [msg ..] [data ..] [hostname ..]
/// [uri ..] [unique_id ..]", metadata values through log_escape; or the metadata-first
/// form of some 2.x builds. msg and data carry client text (macro expansion, logdata),
/// hostname is the Host header, uri the request's.
fn msc_message(first: bool, msg: &[u8], data: &[u8], host: &[u8], uri: &[u8]) -> Vec<u8> {
    let meta = |k: &str, v: &[u8]| {
        let mut o = format!("[{k} \"").into_bytes();
        o.extend(msc_log_escape(v));
        o.extend_from_slice(b"\"]");
        o
    };
    let mut head = Vec::new();
    head.extend(meta("file", b"/etc/modsecurity/local.conf"));
    head.push(b' ');
    head.extend(meta("line", b"10"));
    head.push(b' ');
    head.extend(meta("id", b"100001"));
    head.push(b' ');
    head.extend(meta("msg", msg));
    head.push(b' ');
    head.extend(meta("data", data));
    let denied = b"Access denied with code 403 (phase 2). Pattern match \"x\" at ARGS:q.".to_vec();
    let mut tail = Vec::new();
    tail.extend_from_slice(b" ");
    tail.extend(meta("hostname", host));
    tail.push(b' ');
    tail.extend(meta("uri", uri));
    tail.push(b' ');
    tail.extend(meta("unique_id", b"ZzsxAAoAAQcAAAcUYBkAAAAA"));
    let mut m = b"ModSecurity: ".to_vec();
    if first {
        m.push(b' ');
        m.extend(head);
        m.push(b' ');
        m.extend(denied);
    } else {
        m.extend(denied);
        m.push(b' ');
        m.extend(head);
    }
    m.extend(tail);
    m
}

/// The error-log line: 2.4 file, 2.4 through `ErrorLog syslog:` (Debian 13's 2.9.11
/// writes only Apache's "[client A:P]"), or 2.2 with ModSecurity's own "[client A]".
fn msc_line(form: u8, addr: &str, message: &[u8]) -> Vec<u8> {
    // Apache writes an IPv6 peer without brackets: [client 2001:db8::7:54416]
    let client = format!("{addr}:51234");
    // (Apache's error-log escaping over the whole message, log.c log_error_core(); ModSecurity's
    // text is printable ASCII by then, so only '\' changes)
    let body = apache_errorlog_escape(message);
    let mut line = match form {
        0 => format!("[Sat Dec 05 03:18:09.933952 2026] [security2:error] [pid 61:tid 75] [client {client}] {body}"),
        1 => format!("Dec  5 03:18:10 vm apache2[97]: [security2:error] [pid 97:tid 129] [client {client}] {body}"),
        _ => format!("[Thu Dec 03 11:58:00 2026] [error] [client {addr}] {body}"),
    }
    .into_bytes();
    // log.c: the line is cut at MAX_STRING_LEN - sizeof(APR_EOL_STR)
    line.truncate(8190);
    line
}

fn msc_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        client_text().prop_map(|s| s.into_bytes()),
        prop::collection::vec(1u8..=255, 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    /// Quotes, backslashes and look-alike text in msg, data, Host and URI, in both message
    /// orders and the three line forms: counted for Apache's address.
    #[test]
    fn modsecurity_client_text_counted(
        msg in msc_bytes(),
        data in msc_bytes(),
        host in msc_bytes(),
        uri in msc_bytes(),
        first in any::<bool>(),
        form in 0u8..3,
        addr in sender(),
    ) {
        let line = msc_line(form, &addr, &msc_message(first, &msg, &data, &host, &uri));
        counted("apache-modsecurity", &line, &addr, "denied");
    }
}

/// Through `ErrorLog syslog:` a long request URI made every denial of 768 bytes or more
/// uncounted at the default transport_cut: the fields before "[client A:P]" were read
/// without bound ([^\[\]]*, [0-9]+ ...). They are Apache's own and now read bounded.
#[test]
fn modsecurity_syslog_long_uri_counted() {
    let uri = format!("/w00tw00t/{}", "a".repeat(3000));
    let m = msc_message(false, b"probe", b"x", b"192.0.2.1", uri.as_bytes());
    let line = msc_line(1, "203.0.113.9", &m);
    assert!(line.len() > 3000);
    counted("apache-modsecurity", &line, "203.0.113.9", "denied");
}

/// A client quote in a metadata value of the metadata-first form: log_escape writes \",
/// Apache doubles the backslash (\\"), and the value used to end there.
#[test]
fn modsecurity_metadata_first_quote_counted() {
    let m = msc_message(true, b"bad UA nikto\"x", b"a\\\"b", b"h", b"/");
    let line = msc_line(2, "203.0.113.10", &m);
    assert!(String::from_utf8_lossy(&line).contains("[msg \"bad UA nikto\\\\\"x\"]"));
    counted("apache-modsecurity", &line, "203.0.113.10", "denied");
}

/// Every address-reading pattern of the error log has its address within the first
/// bytes of any transport cut (nothing of no bound comes before it).
#[test]
fn modsecurity_address_before_any_transport_cut() {
    let at = portcullis_core::filter::cut::cut_threshold(
        portcullis_core::filter::cut::DEFAULT_TRANSPORT_CUT,
    );
    let b = builtin::get("apache-modsecurity").unwrap();
    let f = Filter::from_toml(b.source, b.name).unwrap();
    for r in f.rules() {
        assert!(
            r.host_end_max() < at,
            "rule {}: the address may end {} bytes in",
            r.id,
            r.host_end_max()
        );
    }
}
