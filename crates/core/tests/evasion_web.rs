//! Evasion review, group `web`: a remote client must not keep its own failures from being
//! counted by shaping a field it controls. Every line here is built from the program's
//! real format (the source named at each test) with hostile-but-real values in each
//! client field; the line must be counted (a rule of weight > 0) for the real address, in
//! 203.0.113.0/24 or 2001:db8::/32, and never for the address the client wrote into its
//! own text (198.51.100.7).

use proptest::prelude::*;

mod common;
use common::{counted_by_any, go_json, go_quote, json_min, py_json, FORGED};

/// The line is counted for `addr` (by any rule of weight > 0).
#[track_caller]
fn counted(name: &'static str, line: &str, addr: &str) {
    counted_by_any(name, line.as_bytes(), addr)
}

/// Client text: pieces that imitate JSON structure and log syntax, and single characters.
fn client_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just(" ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("'".to_string()),
        Just("\n".to_string()),
        Just("é€".to_string()),
        Just("\"remote_address\":\"198.51.100.7\"".to_string()),
        Just("\",\"remote_addr\":\"198.51.100.7".to_string()),
        Just("from 198.51.100.7".to_string()),
        Just("198.51.100.7".to_string()),
        "[ -~]{0,6}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// A JSON value a client can send in a body, nested to `depth` levels, with hostile text
/// in keys and strings (as Go's encoder writes it back).
fn json_value(depth: u32) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        client_text().prop_map(|t| go_json(&t)),
        Just("1".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
    ];
    leaf.prop_recursive(depth, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((client_text(), inner), 0..4).prop_map(|v| {
                let m: Vec<String> = v
                    .into_iter()
                    .map(|(k, v)| format!("{}:{}", go_json(&k), v))
                    .collect();
                format!("{{{}}}", m.join(","))
            }),
        ]
    })
}

/// A JSON value nested exactly `n` objects deep around `inner`.
fn nest(n: usize, inner: &str) -> String {
    let mut s = inner.to_string();
    for i in 0..n {
        s = format!("{{\"k{i}\":{s},\"remote_address\":\"{FORGED}\"}}");
    }
    s
}

/// A JSON value nested `n` objects deep around `inner`, with no key of an address.
fn deep(n: usize, inner: &str) -> String {
    let mut s = inner.to_string();
    for i in 0..n {
        s = format!("{{\"k{i}\":{s},\"s\":\"}}]\\\"\"}}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// vault: audit/types.go (entry: time, auth, error, forwarded, forwarded_from, request,
// response, type; request members in struct order), written with Go's encoding/json.
// Client fields: request.data (the JSON body, nesting kept, strings HMAC'd unless
// configured clear), request.headers (map[string][]string), path, request_uri; auth.metadata
// and auth.authorization_details (map[string]any / []any in types.go).

fn vault_line(auth: &str, data: &str, path: &str, addr: &str) -> String {
    format!(
        "{{\"time\":\"2026-11-18T11:06:40.123456Z\",\"auth\":{auth},\"error\":\"invalid username or password\",\"request\":{{\"data\":{data},\"headers\":{{\"x-forwarded-for\":[\"{FORGED}\"]}},\"id\":\"0f5f3bd2\",\"mount_accessor\":\"auth_userpass_1a2b3c4d\",\"mount_class\":\"auth\",\"mount_point\":\"auth/userpass/\",\"mount_type\":\"userpass\",\"namespace\":{{\"id\":\"root\"}},\"operation\":\"update\",\"path\":{},\"remote_address\":\"{addr}\",\"remote_port\":41234,\"request_uri\":{}}},\"response\":{{\"data\":{{\"error\":\"hmac-sha256:cd34\"}},\"mount_type\":\"userpass\"}},\"type\":\"response\"}}",
        go_json(path),
        go_json(&format!("/v1/{path}"))
    )
}

#[test]
fn vault_auth_nested_any_depth_is_counted() {
    // auth.metadata is map[string]any and auth.authorization_details []any in types.go:
    // nested deeper than the four levels the pattern read before.
    let deep = nest(6, "[[[{\"a\":\"}]]\"}]]]");
    let auth = format!(
        "{{\"authorization_details\":[{deep}],\"metadata\":{deep},\"policy_results\":{{\"allowed\":false}},\"token_type\":\"default\"}}"
    );
    counted(
        "vault",
        &vault_line(
            &auth,
            "{\"password\":\"hmac-sha256:1\"}",
            "auth/userpass/login/alice",
            "203.0.113.5",
        ),
        "203.0.113.5",
    );
    // nested forged remote_address keys in the body never move the address
    counted(
        "vault",
        &vault_line(
            "{\"token_type\":\"default\"}",
            &nest(5, "{}"),
            "auth/userpass/login/\"},\"remote_address\":\"198.51.100.7\"",
            "2001:db8::6",
        ),
        "2001:db8::6",
    );
}

#[test]
fn vault_deep_response_is_counted_and_body_cannot_pose_as_it() {
    // a response nested deeper than the four levels read before (response.auth's
    // policy_results.granting_policies is five; supplemental_audit_data is map[string]any):
    // eight levels are read now
    let resp = format!(
        "{{\"auth\":{{\"policy_results\":{{\"allowed\":false,\"granting_policies\":[{{\"name\":\"default\",\"type\":\"acl\"}}]}}}},\"data\":{{\"error\":\"hmac-sha256:cd34\"}},\"supplemental_audit_data\":{}}}",
        deep(4, "[{}]")
    );
    let line = vault_line(
        "{\"token_type\":\"default\"}",
        "{\"password\":\"hmac-sha256:1\"}",
        "auth/userpass/login/alice",
        "203.0.113.9",
    )
    .replace(
        "{\"data\":{\"error\":\"hmac-sha256:cd34\"},\"mount_type\":\"userpass\"}",
        &resp,
    );
    assert!(line.contains("granting_policies"));
    counted("vault", &line, "203.0.113.9");
    // a body that imitates the end of the request and a response around a nested key
    // (values in clear: audit_non_hmac_request_keys) never moves the address
    for data in [
        format!("{{\"a\":{{\"remote_address\":\"{FORGED}\"}},\"response\":{{\"z\":{{}}}},\"type\":\"response\"}}"),
        format!("{{\"a\":{{\"b\":{{\"remote_address\":\"{FORGED}\"}}}},\"response\":{{}},\"type\":\"response\"}}"),
        format!("{{\"a\":[{{\"remote_address\":\"{FORGED}\"}}],\"response\":[],\"error\":\"permission denied\",\"forwarded\":true}}"),
    ] {
        counted(
            "vault",
            &vault_line("{\"token_type\":\"default\"}", &data, "auth/userpass/login/alice", "203.0.113.10"),
            "203.0.113.10",
        );
        let legacy = format!(
            "{{\"time\":\"2026-11-18T11:06:40.5Z\",\"type\":\"response\",\"auth\":{{\"metadata\":{}}},\"request\":{{\"data\":{data},\"id\":\"x\",\"path\":\"auth/userpass/login/bob\",\"remote_address\":\"2001:db8::a\",\"remote_port\":1}},\"response\":{{\"data\":{}}},\"error\":\"invalid username or password\",\"forwarded\":false}}",
            nest(5, "{}"),
            deep(5, "{}")
        );
        counted("vault", &legacy, "2001:db8::a");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn vault_hostile_body_path_and_auth(data in json_value(6), meta in json_value(6), path in client_text(), h in 1u8..255) {
        let data = format!("{{\"password\":{data}}}");
        let auth = format!("{{\"metadata\":{{\"m\":{meta}}},\"token_type\":\"default\"}}");
        let addr = format!("203.0.113.{h}");
        counted("vault", &vault_line(&auth, &data, &format!("auth/userpass/login/{path}"), &addr), &addr);
    }
}

/// go-logfmt's value: bare when it holds no space, control character, `=` or `"`; else
/// quoted with `\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX`.
fn logfmt(s: &str) -> String {
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c == '\u{7f}')
    {
        return s.to_string();
    }
    json_min(s)
}

// ---------------------------------------------------------------------------------------
// teleport: events.proto UserLogin (Metadata, UserMetadata, Status, method, attributes
// (the identity provider's claims, nesting kept), ClientMetadata, ConnectionMetadata),
// written with Go's JSON encoding. Client: user, error, user_agent, attributes.

fn teleport_line(user: &str, error: &str, attrs: &str, ua: &str, addr: &str) -> String {
    format!(
        "{{\"ei\":0,\"event\":\"user.login\",\"uid\":\"2a6a5c2e\",\"code\":\"T1001W\",\"time\":\"2026-11-18T11:06:40.123Z\",\"cluster_name\":\"example\",\"user\":{},\"success\":false,\"error\":{},\"method\":\"oidc\",\"attributes\":{attrs},\"user_agent\":{},\"addr.remote\":\"{addr}\",\"connector_id\":\"keycloak\"}}",
        go_json(user),
        go_json(error),
        go_json(ua)
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn teleport_hostile_user_error_claims(user in client_text(), error in client_text(), claims in json_value(6), ua in client_text(), h in 1u8..255, v6 in any::<bool>()) {
        let attrs = format!("{{\"realm_access\":{claims},\"addr.remote\":\"{FORGED}:1\"}}");
        let (addr, shown) = if v6 {
            (format!("2001:db8::{h:x}"), format!("[2001:db8::{h:x}]:41234"))
        } else {
            (format!("203.0.113.{h}"), format!("203.0.113.{h}:41234"))
        };
        counted("teleport", &teleport_line(&user, &error, &attrs, &ua, &shown), &addr);
    }
}

// ---------------------------------------------------------------------------------------
// elasticsearch-audit: x-pack's log4j2.properties audit layout (fixed key order,
// `, "key":"%enc{...}{JSON}"`). Client: user.name (Authorization header), url.path,
// url.query, request.body, x_forwarded_for, opaque_id.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn elasticsearch_hostile_request(user in client_text(), path in client_text(), query in client_text(), body in client_text(), xff in client_text(), h in 1u8..255) {
        let line = format!(
            "{{\"type\":\"audit\", \"timestamp\":\"2026-11-18T11:06:40,123+0000\", \"node.id\":\"AbCdEfGhIj\", \"event.type\":\"rest\", \"event.action\":\"authentication_failed\", \"user.name\":{}, \"origin.type\":\"rest\", \"origin.address\":\"203.0.113.{h}:41234\", \"url.path\":{}, \"url.query\":{}, \"request.method\":\"POST\", \"request.body\":{}, \"request.id\":\"Xy1-AbC\", \"opaque_id\":{}, \"x_forwarded_for\":{}}}",
            json_min(&user), json_min(&format!("/{path}")), json_min(&query), json_min(&body), json_min(&xff), json_min(&xff)
        );
        counted("elasticsearch-audit", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// opensearch-audit: AuditMessage (security plugin): a HashMap written with Jackson; the
// body is a string (XContentHelper.convertToJson), headers Map<String,List<String>>,
// params Map<String,String>. Client: body, header values, param names and values, the
// effective user, the path.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn opensearch_hostile_request(user in client_text(), body in client_text(), pk in client_text(), pv in client_text(), hv in client_text(), path in client_text(), h in 1u8..255) {
        let line = format!(
            "{{\"audit_cluster_name\":\"c1\",\"audit_rest_request_params\":{{{}:{}}},\"audit_category\":\"FAILED_LOGIN\",\"audit_request_body\":{},\"audit_rest_request_path\":{},\"@timestamp\":\"2026-11-18T11:06:40.123+00:00\",\"audit_request_effective_user\":{},\"audit_request_remote_address\":\"203.0.113.{h}\",\"audit_rest_request_headers\":{{\"User-Agent\":[{}],\"X-Forwarded-For\":[\"{FORGED}\"]}},\"audit_node_host_name\":\"192.0.2.10\"}}",
            json_min(&pk), json_min(&pv), json_min(&body), json_min(&format!("/{path}")), json_min(&user), json_min(&hv)
        );
        counted("opensearch-audit", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// gitlab: application_json.log, "Failed Login: username=#{login} ip=#{remote_ip}" (the
// login as typed), written with Rails' to_json (HTML characters as \u003c...).

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn gitlab_hostile_login(login in client_text(), h in 1u8..255) {
        let msg = format!("Failed Login: username={login} ip=203.0.113.{h}");
        let line = format!(
            "{{\"severity\":\"INFO\",\"time\":\"2026-11-18T11:06:40.123Z\",\"correlation_id\":\"01HXAMPLE\",\"meta.caller_id\":\"SessionsController#create\",\"meta.remote_ip\":\"203.0.113.{h}\",\"meta.feature_category\":\"system_access\",\"meta.client_id\":\"ip/203.0.113.{h}\",\"message\":{}}}",
            go_json(&msg)
        );
        counted("gitlab", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// mongodb-auth: logv2 id 20249 (5.0+ and 4.4 attribute order), escapeForJSON. Client:
// mechanism, principalName, authenticationDatabase, the error text.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn mongodb_hostile_principal(mech in client_text(), user in client_text(), db in client_text(), h in 1u8..255) {
        let err = format!("UserNotFound: Could not find user \"{user}\" for db \"{db}\"");
        let line = format!(
            "{{\"t\":{{\"$date\":\"2026-11-21T10:00:01.123+00:00\"}},\"s\":\"I\",  \"c\":\"ACCESS\",   \"id\":20249,   \"ctx\":\"conn12\",\"msg\":\"Authentication failed\",\"attr\":{{\"mechanism\":{},\"speculative\":false,\"principalName\":{},\"authenticationDatabase\":{},\"remote\":\"203.0.113.{h}:51234\",\"extraInfo\":{{}},\"error\":{}}}}}",
            json_min(&mech), json_min(&user), json_min(&db), json_min(&err)
        );
        counted("mongodb-auth", &line, &format!("203.0.113.{h}"));
        let line44 = format!(
            "{{\"t\":{{\"$date\":\"2026-11-21T10:00:01.123+00:00\"}},\"s\":\"I\",  \"c\":\"ACCESS\",   \"id\":20249,   \"ctx\":\"conn12\",\"msg\":\"Authentication failed\",\"attr\":{{\"mechanism\":{},\"principalName\":{},\"authenticationDatabase\":{},\"client\":\"[2001:db8::{h:x}]:51234\",\"result\":{}}}}}",
            json_min(&mech), json_min(&user), json_min(&db), json_min(&err)
        );
        counted("mongodb-auth", &line44, &format!("2001:db8::{h:x}"));
    }
}

// ---------------------------------------------------------------------------------------
// authelia: logrus, JSON (keys sorted) and text (values %q-quoted when they need it).
// Client: the user name in msg, the path.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn authelia_hostile_user_and_path(user in client_text(), path in client_text(), h in 1u8..255) {
        // an empty name never reaches these lines as typed (ParseBody: `valid:"required"`);
        // 4.39.6+'s mark `by user ''` is weight 0 by design, its next line counts
        prop_assume!(!user.is_empty());
        for msg in [
            format!("Unsuccessful 1FA authentication attempt by user '{user}'"),
            format!("Unsuccessful 1FA authentication attempt by user '{user}': invalid credentials"),
            format!("Unsuccessful TOTP authentication attempt by user '{user}'"),
            format!("Error occurred getting details for user with username input '{user}' which usually indicates they do not exist"),
            format!("Unsuccessful 1FA authentication attempt by user '{user}' and they are banned until 2026-11-18 11:16:40 +0000 UTC"),
        ] {
            let p = format!("/api/firstfactor{path}");
            let json = format!(
                "{{\"error\":{},\"level\":\"error\",\"method\":\"POST\",\"msg\":{},\"path\":{},\"remote_ip\":\"203.0.113.{h}\",\"stack\":[{{\"File\":\"x.go\",\"Line\":1,\"Name\":\"f\"}}],\"time\":\"2026-11-18T11:07:21Z\"}}",
                go_json(&user), go_json(&msg), go_json(&p)
            );
            counted("authelia", &json, &format!("203.0.113.{h}"));
            let text = format!(
                "time=\"2026-11-18T11:06:40Z\" level=error msg={} error={} method=POST path={} remote_ip=2001:db8::{h:x}",
                go_quote(&msg), go_quote(&user), go_quote(&p)
            );
            counted("authelia", &text, &format!("2001:db8::{h:x}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// authentik: structlog JSON (json.dumps, sort_keys, ", " and ": "), login_failed event.
// Client: the context (credentials, http_request path and query args, nested).

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn authentik_hostile_context(user in client_text(), q in client_text(), path in client_text(), h in 1u8..255) {
        let line = format!(
            "{{\"action\": \"login_failed\", \"auth_via\": \"unauthenticated\", \"client_ip\": \"203.0.113.{h}\", \"context\": {{\"http_request\": {{\"args\": {{{}: {}}}, \"method\": \"POST\", \"path\": {}}}, \"password\": \"********\", \"stage\": {{\"app\": \"authentik_stages_password\", \"pk\": \"abc\"}}, \"username\": {}}}, \"event\": \"Created Event\", \"host\": \"sso.example.org\", \"level\": \"info\", \"logger\": \"authentik.events.models\", \"pid\": 7, \"timestamp\": \"2026-10-17T17:39:46.598288\", \"user\": {{\"email\": \"\", \"pk\": 2, \"username\": \"AnonymousUser\"}}}}",
            py_json(&q), py_json(&q), py_json(&format!("/{path}")), py_json(&user)
        );
        counted("authentik", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// caddy: the access log (zap JSON, LoggableHTTPRequest: remote_ip, remote_port, client_ip,
// proto, method, host, uri, headers, tls). Client: uri, host, header names and values,
// the SNI.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn caddy_hostile_request(uri in client_text(), host in client_text(), hn in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}", hv in client_text(), sni in client_text(), h in 1u8..255) {
        let line = format!(
            "{{\"level\":\"info\",\"ts\":1795000000.1234567,\"logger\":\"http.log.access.log0\",\"msg\":\"handled request\",\"request\":{{\"remote_ip\":\"203.0.113.{h}\",\"remote_port\":\"54321\",\"client_ip\":\"203.0.113.{h}\",\"proto\":\"HTTP/2.0\",\"method\":\"GET\",\"host\":{},\"uri\":{},\"headers\":{{{}:[{},\"{{}}\"],\"Authorization\":[\"REDACTED\"],\"User-Agent\":[{}]}},\"tls\":{{\"resumed\":false,\"version\":772,\"cipher_suite\":4865,\"proto\":\"h2\",\"server_name\":{}}}}},\"bytes_read\":0,\"user_id\":\"\",\"duration\":0.001153,\"size\":0,\"status\":401,\"resp_headers\":{{\"Server\":[\"Caddy\"]}}}}",
            json_min(&host), json_min(&format!("/{uri}")), json_min(&hn), json_min(&hv), json_min(&hv), json_min(&sni)
        );
        counted("caddy", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// traefik-auth: the JSON access log (logrus, keys sorted). Client: ClientUsername, the
// request path, Referer and User-Agent headers (request_* keys, headers kept).

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn traefik_hostile_user_and_headers(user in client_text(), path in client_text(), ua in client_text(), h in 1u8..255) {
        prop_assume!(user != "-" && !user.is_empty());
        let line = format!(
            "{{\"ClientAddr\":\"203.0.113.{h}:54321\",\"ClientHost\":\"203.0.113.{h}\",\"ClientPort\":\"54321\",\"ClientUsername\":{},\"DownstreamContentSize\":17,\"DownstreamStatus\":401,\"Duration\":182331,\"RequestPath\":{},\"RouterName\":\"private@docker\",\"ServiceURL\":{{\"Scheme\":\"http\",\"Opaque\":\"\",\"User\":null,\"Host\":\"10.0.0.2\",\"Path\":\"\"}},\"StartUTC\":\"2026-11-18T11:06:45.123456789Z\",\"entryPointName\":\"websecure\",\"level\":\"info\",\"msg\":\"\",\"request_Referer\":{},\"request_User-Agent\":{},\"time\":\"2026-11-18T11:06:45Z\"}}",
            go_json(&user), go_json(&format!("/{path}")), go_json(&ua), go_json(&ua)
        );
        counted("traefik-auth", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// grafana: go-logfmt (and [log] format = json). Client: uname, the error text, the path.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn grafana_hostile_fields(uname in client_text(), err in client_text(), path in client_text(), h in 1u8..255) {
        let e = format!("invalid username or password {err}");
        let line = format!(
            "logger=context userId=0 orgId=0 uname={} t=2026-11-18T11:06:40.123456789Z level=error msg=\"Invalid username or password\" error={} path={} remote_addr=203.0.113.{h} traceID=",
            logfmt(&uname), logfmt(&e), logfmt(&format!("/{path}"))
        );
        counted("grafana", &line, &format!("203.0.113.{h}"));
        let e10 = format!("[password-auth.failed] failed to authenticate identity: {err}");
        let line10 = format!(
            "logger=context userId=0 orgId=0 uname={} t=2026-11-18T11:06:40.123456789Z level=info msg=Unauthorized error={} path={} remote_addr=203.0.113.{h} traceID=",
            logfmt(&uname), logfmt(&e10), logfmt(&format!("/{path}"))
        );
        counted("grafana", &line10, &format!("203.0.113.{h}"));
        let json = format!(
            "{{\"error\":{},\"level\":\"error\",\"logger\":\"context\",\"msg\":\"Invalid username or password\",\"orgId\":0,\"path\":{},\"remote_addr\":\"2001:db8::{h:x}\",\"t\":\"2026-11-18T11:08:02.0353436+02:00\",\"traceID\":\"\",\"uname\":{},\"userId\":0}}",
            go_json(&e), go_json(&path), go_json(&uname)
        );
        counted("grafana", &json, &format!("2001:db8::{h:x}"));
    }
}

// ---------------------------------------------------------------------------------------
// sftpgo: zerolog connection_failed (logger.ConnectionFailedLog). Client: username, error.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn sftpgo_hostile_user(user in client_text(), h in 1u8..255) {
        let line = format!(
            "{{\"level\":\"debug\",\"time\":\"2026-11-18T11:06:40.123\",\"sender\":\"connection_failed\",\"client_ip\":\"203.0.113.{h}\",\"username\":{},\"login_type\":\"password\",\"protocol\":\"SSH\",\"error\":{}}}",
            json_min(&user), json_min(&format!("could not validate password credentials for user {user:?}: invalid credentials"))
        );
        counted("sftpgo", &line, &format!("203.0.113.{h}"));
    }
}

// ---------------------------------------------------------------------------------------
// stalwart: the tracing line (auth.failed); strings quoted, `"` not escaped. Client:
// accountName, reason.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn stalwart_hostile_account(user in client_text(), h in 1u8..255) {
        let esc = user.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t");
        let line = format!(
            "2026-11-18T11:06:40Z INFO Authentication failed (auth.failed) listenerId = \"imaptls\", localPort = 993, remoteIp = 2001:db8::{h:x}, remotePort = 41234, accountName = \"{esc}\", remoteIp = {FORGED}"
        );
        counted("stalwart", &line, &format!("2001:db8::{h:x}"));
    }
}

// ---------------------------------------------------------------------------------------
// synapse: TerseJsonFormatter (json, ensure_ascii off; ensure_ascii on checked too).
// Client: the user id in the message, url, user_agent.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn synapse_hostile_user(user in client_text(), ua in client_text(), ascii in any::<bool>(), h in 1u8..255) {
        let enc = |s: &str| if ascii { py_json(s) } else { json_min(s) };
        for msg in [
            format!("Failed password login for user {user}"),
            format!("Attempted to login as {user} but they do not exist"),
            format!("unknown 3pid identifier medium email, address {user}"),
        ] {
            let line = format!(
                "{{\"log\":{},\"namespace\":\"synapse.handlers.auth\",\"level\":\"WARNING\",\"time\":1795000000.12,\"server_name\":\"example.org\",\"request\":\"POST-17\",\"ip_address\":\"203.0.113.{h}\",\"site_tag\":\"8008\",\"requester\":null,\"authenticated_entity\":null,\"method\":\"POST\",\"url\":{},\"protocol\":\"HTTP/1.1\",\"user_agent\":{}}}",
                enc(&msg), enc(&format!("/_matrix/client/v3/login?{ua}")), enc(&ua)
            );
            counted("synapse", &line, &format!("203.0.113.{h}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// freshrss: the web server's access log (combined). Minz_Url::build() takes the controller
// and action from $_GET c and a: PHP decodes names and values, takes them in any order and
// among other parameters; loginAction forwards to formLoginAction, which a client can also
// name itself; PHP method names are case-insensitive. The Google Reader login reads
// PATH_INFO, which the web server decodes.

/// `s` with each letter written as itself or as a %XX escape (upper or lower hex), by `mask`.
fn pct(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if c.is_ascii_alphabetic() && mask >> (i % 64) & 1 == 1 {
                if i % 2 == 0 {
                    format!("%{:02x}", c as u32)
                } else {
                    format!("%{:02X}", c as u32)
                }
            } else {
                c.to_string()
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn freshrss_login_in_any_shape_php_accepts(
        swap in any::<bool>(),
        form in any::<bool>(),
        upper in any::<bool>(),
        mask in any::<u64>(),
        before in prop::collection::vec("[a-z]{1,4}=(?:[A-Za-z0-9%]|\\\\\"|\\\\\\\\){0,6}", 0..3),
        between in prop::collection::vec("[a-z]{1,4}=(?:[A-Za-z0-9%]|\\\\\"|\\\\\\\\){0,6}", 0..3),
        path in prop_oneof![Just("/i/"), Just("/i/index.php"), Just("/freshrss/p/i/"), Just("/i/./"), Just("/i//")],
        ua in client_text(),
        h in 1u8..255,
    ) {
        let action = match (form, upper) {
            (true, true) => "FORMLOGIN",
            (true, false) => "formLogin",
            (false, true) => "Login",
            (false, false) => "login",
        };
        let c = format!("{}={}", pct("c", mask), pct("auth", mask >> 1));
        let a = format!("{}={}", pct("a", mask >> 5), pct(action, mask >> 6));
        let (x, y) = if swap { (a, c) } else { (c, a) };
        let mut q: Vec<String> = before.clone();
        q.push(x);
        q.extend(between.clone());
        q.push(y);
        let line = format!(
            "203.0.113.{h} - - [05/Dec/2026:12:00:00 +0000] \"POST {path}?{} HTTP/1.1\" 403 3954 \"-\" \"{}\"",
            q.join("&"),
            ua.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
        );
        counted("freshrss", &line, &format!("203.0.113.{h}"));
    }

    #[test]
    fn freshrss_clientlogin_path_variants(mask in any::<u64>(), slash in any::<bool>(), h in 1u8..255) {
        let line = format!(
            "2001:db8::{h:x} - - [05/Dec/2026:12:00:03 +0000] \"POST /api/greader.php/accounts/{}{} HTTP/1.1\" 401 12 \"-\" \"FeedMe/3.1\"",
            pct("ClientLogin", mask),
            if slash { "/" } else { "" }
        );
        counted("freshrss", &line, &format!("2001:db8::{h:x}"));
    }
}

/// An access log sent through syslog (a piped logger, nginx's `access_log syslog:`) whose
/// request a client padded past the transport-cut threshold, with and without Apache's
/// leading "%v:%p " / "%v ": still counted, for %h, by each filter that reads the access log
/// with that optional prefix (the prefix is a DNS name of at most 253 bytes: nothing of no
/// bound stands before the address; until 2026-12-05 these lines were refused).
#[test]
fn access_log_padded_through_syslog_is_counted() {
    let pad = "a".repeat(900);
    let cases: [(&str, &str, String, &str); 4] = [
        (
            "apache-botsearch",
            "probe-404",
            format!("GET /{pad}/wp-login.php HTTP/1.1\" 404 196"),
            "198.51.100.4",
        ),
        (
            "apache-nohome",
            "home-404",
            format!("GET /~{pad} HTTP/1.1\" 404 196"),
            "2001:db8::4",
        ),
        (
            "apache-shellshock",
            "access",
            format!("GET /cgi-bin/x?{pad} HTTP/1.1\" 200 12 \"-\" \"() {{ :; }}; /bin/id"),
            "203.0.113.4",
        ),
        (
            "freshrss",
            "login-403",
            format!("POST /i/?c=auth&a=login&x={pad} HTTP/1.1\" 403 3954"),
            "198.51.100.5",
        ),
    ];
    for (filter, rule, req, addr) in cases {
        for vhost in ["", "www.example.com:443 ", "www.example.com "] {
            let msg = format!("{vhost}{addr} - - [05/Dec/2026:12:00:00 +0000] \"{req}\" \"-\"");
            let line = common::syslog("apache2", msg.as_bytes());
            common::counted_long(filter, &line, addr, rule);
        }
    }
}
