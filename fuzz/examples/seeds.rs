//! Writes the seed corpus of every fuzz target into `corpus/TARGET/` (run from `fuzz/`:
//! `cargo run --example seeds`). Seeds are meaningful inputs: the documents and tokens the
//! harness's provider and the crate's FakeIdp really produce, real callback query shapes, and
//! the known-bad variants the crate's tests refuse. Rerunning rewrites the same files (the
//! stored-record seeds carry random state, so they change).

use std::fs;
use std::path::Path;

use cx_sso::testing::FakeIdp;
use cx_sso::{HttpClient, VisitorAudience, VisitorClaims};
use cx_sso_fuzz::records::snapshot;
use cx_sso_fuzz::{
    DEFAULT_CLAIMS, DEFAULT_HEADER, DEFAULT_REFRESH, DEFAULT_TOKEN, DEFAULT_USERINFO,
    VISITOR_AUDIENCE, World, block_on, default_discovery, default_jwks,
};

const SEP: &str = "\n--8<--\n";

/// A pending login in format 1 (JSON), as the broker wrote it before format 2.
const PENDING_LOGIN_FORMAT_1: &[u8] = br#"{"tenant":"acme","provider":"idp","intent":"SignIn","pkce_verifier":"-GoslLOh7UKgxTPcOoSbQ6JwjxZNNfw1arpPp99u6KE","nonce":"mO69OVbgfg4fAj6NMs_3yG5cuAq3RO_zls7ysnW_n24","return_to":"/inbox","redirect_uri":"https://cx.fuzz.test/sso/callback/idp","expires_at":[2026,61,9,10,0,0,0,0,0],"policy_epoch":0}"#;

fn join(parts: &[&str]) -> Vec<u8> {
    parts.join(SEP).into_bytes()
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), data).expect("seed");
}

fn get(idp: &FakeIdp, url: &str) -> String {
    let req = http::Request::get(url).body(Vec::new()).expect("request");
    let resp = block_on(idp.call(req)).expect("FakeIdp answers");
    String::from_utf8(resp.into_body()).expect("JSON")
}

/// A FakeIdp document with its own host replaced by the harness provider's, so that the
/// harness answers the endpoints it names.
fn rehost(doc: &str, host: &str) -> String {
    doc.replace(host, "idp.fuzz.test")
}

fn main() {
    // ---- xoauth2 --------------------------------------------------------------------------
    for (name, s) in [
        // Gmail's documented challenge.
        (
            "gmail",
            "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==",
        ),
        // The same, as an IMAP continuation line would carry it.
        (
            "gmail-continuation",
            "+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==",
        ),
        // {"status":"400","schemes":"Bearer"} unpadded.
        (
            "status-400",
            "eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIn0",
        ),
        // {"status":401} (a number).
        ("status-number", "eyJzdGF0dXMiOjQwMX0="),
        ("not-base64", "not base64 at all!"),
        ("sasl-frame", "user@example.com\u{1}ya29.a0AfB_token"),
    ] {
        write("xoauth2", name, s.as_bytes());
    }

    // ---- callback -------------------------------------------------------------------------
    let bad_grant = "400\n{\"error\":\"invalid_grant\",\"error_description\":\"Bad Request\"}";
    for (name, parts) in [
        (
            "signin",
            ["code=fuzz-code&state={state}", "{binding}", "", "", "\0"],
        ),
        (
            "link",
            ["code=fuzz-code&state={state}", "{binding}", "", "", "\u{1}"],
        ),
        (
            "connect",
            ["code=fuzz-code&state={state}", "{binding}", "", "", "\u{2}"],
        ),
        (
            "google-shape",
            [
                "state={state}&code=4%2F0AanRRrtExampleCode&scope=email+profile+openid+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email&authuser=0&hd=acme.example&prompt=consent",
                "{binding}",
                "",
                "",
                "\0",
            ],
        ),
        (
            "entra-shape",
            [
                "?code=0.AXoAExampleCode&state={state}&session_state=6b4f1c2e-0000-4000-8000-000000000000",
                "{binding}",
                "",
                "",
                "\0",
            ],
        ),
        (
            "iss-parameter",
            [
                "code=c&state={state}&iss={issuer}",
                "{binding}",
                "",
                "",
                "\0",
            ],
        ),
        (
            "iss-mismatch",
            [
                "code=c&state={state}&iss=https%3A%2F%2Fevil.example",
                "{binding}",
                "",
                "",
                "\0",
            ],
        ),
        (
            "denied",
            [
                "error=access_denied&error_description=The+user+declined&state={state}",
                "{binding}",
                "",
                "",
                "\0",
            ],
        ),
        (
            "two-codes",
            ["code=a&code=b&state={state}", "{binding}", "", "", "\0"],
        ),
        (
            "other-cookie",
            ["code=c&state={state}", "x{binding}", "", "", "\0"],
        ),
        ("no-state", ["code=c", "{binding}", "", "", "\0"]),
        (
            "invalid-grant",
            ["code=c&state={state}", "{binding}", bad_grant, "", "\0"],
        ),
        (
            "userinfo-other-sub",
            [
                "code=c&state={state}",
                "{binding}",
                r#"{"access_token":"{access_token}","token_type":"Bearer","expires_in":3600,"id_token":"{id_token}"}"#,
                r#"{"sub":"someone-else","email":"x@fuzz.test","name":"X"}"#,
                "\0",
            ],
        ),
        (
            "userinfo-default",
            [
                "code=c&state={state}",
                "{binding}",
                "",
                DEFAULT_USERINFO,
                "\0",
            ],
        ),
    ] {
        write("callback", name, &join(&parts));
    }

    // ---- id_token -------------------------------------------------------------------------
    let google_claims = r#"{"iss":"{issuer}","azp":"{client_id}","aud":"{client_id}","sub":"110169484474386276334","hd":"acme.example","email":"alice@acme.example","email_verified":true,"at_hash":"{at_hash}","nonce":"{nonce}","name":"Alice Example","picture":"https://lh3.googleusercontent.com/a/x","given_name":"Alice","family_name":"Example","iat":{now},"exp":{exp}}"#;
    let entra_claims = r#"{"ver":"2.0","iss":"{issuer}","sub":"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ","aud":"{client_id}","exp":{exp},"iat":{now},"nbf":{now},"name":"Carol","preferred_username":"carol@contoso.example","oid":"00000000-0000-0000-66f3-3332eca7ea81","email":"carol@contoso.example","tid":"9188040d-6c67-4c5b-b112-36a304b66dad","nonce":"{nonce}","aio":"Df2UVXL1ix!lMCWMSOJBcFatzcGfvFGhjKv8q5g0x732dR5MB5BisvGQO7YWByjd8iQDLq!eGbIDakyp5mnOrcdqHeYSnltepQmRp6AIZ8jY"}"#;
    for (name, parts) in [
        ("default", [DEFAULT_HEADER, DEFAULT_CLAIMS, "", "\0"]),
        ("google-claims", [DEFAULT_HEADER, google_claims, "", "\0"]),
        ("entra-claims", [DEFAULT_HEADER, entra_claims, "", "\0"]),
        ("connect", [DEFAULT_HEADER, DEFAULT_CLAIMS, "", "\u{2}"]),
        (
            "aud-array-azp",
            [
                DEFAULT_HEADER,
                r#"{"iss":"{issuer}","sub":"s","aud":["{client_id}","other"],"azp":"{client_id}","exp":{exp},"iat":{now},"nonce":"{nonce}"}"#,
                "",
                "\0",
            ],
        ),
        ("alg-none", [r#"{"alg":"none"}"#, DEFAULT_CLAIMS, "", "\0"]),
        (
            "alg-rs256",
            [r#"{"alg":"RS256","kid":"{kid}"}"#, DEFAULT_CLAIMS, "", "\0"],
        ),
        ("no-kid", [r#"{"alg":"EdDSA"}"#, DEFAULT_CLAIMS, "", "\0"]),
        (
            "unknown-kid",
            [r#"{"alg":"EdDSA","kid":"k9"}"#, DEFAULT_CLAIMS, "", "\0"],
        ),
        (
            "forged-signature",
            [
                DEFAULT_HEADER,
                DEFAULT_CLAIMS,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "\0",
            ],
        ),
        (
            "exp-string",
            [
                DEFAULT_HEADER,
                r#"{"iss":"{issuer}","sub":"s","aud":"{client_id}","exp":"{exp}","iat":{now},"nonce":"{nonce}"}"#,
                "",
                "\0",
            ],
        ),
        (
            "no-nonce",
            [
                DEFAULT_HEADER,
                r#"{"iss":"{issuer}","sub":"s","aud":"{client_id}","exp":{exp},"iat":{now}}"#,
                "",
                "\0",
            ],
        ),
        (
            "duplicate-sub",
            [
                DEFAULT_HEADER,
                r#"{"iss":"{issuer}","sub":"a","sub":"b","aud":"{client_id}","exp":{exp},"iat":{now},"nonce":"{nonce}"}"#,
                "",
                "\0",
            ],
        ),
    ] {
        write("id_token", name, &join(&parts));
    }

    // ---- discovery_jwks -------------------------------------------------------------------
    let google = FakeIdp::google();
    let google_doc = get(&google, &google.discovery_url());
    let google_jwks = get(&google, "https://www.googleapis.com/oauth2/v3/certs");
    let entra = FakeIdp::entra();
    let entra_doc = get(&entra, &entra.discovery_url());
    let oidc = FakeIdp::oidc("https://idp.example.test");
    let oidc_doc = get(&oidc, &oidc.discovery_url());
    let ours = default_jwks();
    // Our key beside FakeIdp's RSA keys, so that the login still verifies.
    let both = {
        let mut g: serde_json::Value = serde_json::from_str(&google_jwks).expect("JWKS");
        let o: serde_json::Value = serde_json::from_str(&ours).expect("JWKS");
        if let (Some(keys), Some(mine)) = (g["keys"].as_array_mut(), o["keys"].as_array()) {
            keys.extend(mine.iter().cloned());
        }
        g.to_string()
    };
    let discovery = default_discovery();
    for (name, parts) in [
        ("default", [discovery.as_str(), ours.as_str(), "\0"]),
        (
            "default-connect",
            [discovery.as_str(), ours.as_str(), "\u{1}"],
        ),
        (
            "fakeidp-google-doc",
            [
                &rehost(&google_doc, "accounts.google.com"),
                ours.as_str(),
                "\0",
            ],
        ),
        (
            "fakeidp-google-jwks",
            [discovery.as_str(), google_jwks.as_str(), "\0"],
        ),
        (
            "fakeidp-google-jwks-and-ours",
            [discovery.as_str(), both.as_str(), "\0"],
        ),
        (
            "fakeidp-entra-doc",
            [
                &rehost(&entra_doc, "login.microsoftonline.com"),
                ours.as_str(),
                "\0",
            ],
        ),
        (
            "fakeidp-oidc-doc",
            [&rehost(&oidc_doc, "idp.example.test"), ours.as_str(), "\0"],
        ),
        ("redirect", ["302\n{}", ours.as_str(), "\0"]),
        ("jwks-500", [discovery.as_str(), "500\n", "\0"]),
        ("jwks-empty", [discovery.as_str(), r#"{"keys":[]}"#, "\0"]),
        (
            "jwks-unparseable-key",
            [
                discovery.as_str(),
                r#"{"keys":[{"kty":"RSA","kid":"bad","n":"!!","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","x":"2B3Dk1_9hW_ksV34yuYMBjIWvFaKvp91o14Qis5QiMA","kid":"k1"}]}"#,
                "\0",
            ],
        ),
        (
            "issuer-mismatch",
            [
                &discovery.replace(
                    "\"issuer\":\"https://idp.fuzz.test\"",
                    "\"issuer\":\"https://evil.example\"",
                ),
                ours.as_str(),
                "\0",
            ],
        ),
    ] {
        write("discovery_jwks", name, &join(&parts));
    }

    // ---- token_response -------------------------------------------------------------------
    let google_token = r#"{"access_token":"{access_token}","expires_in":3599,"refresh_token":"1//0gExampleRefresh","scope":"openid https://mail.google.com/ https://www.googleapis.com/auth/userinfo.email","token_type":"Bearer","id_token":"{id_token}"}"#;
    let entra_token = r#"{"token_type":"Bearer","scope":"openid profile email offline_access https://outlook.office.com/IMAP.AccessAsUser.All","expires_in":4743,"ext_expires_in":4743,"access_token":"{access_token}","refresh_token":"0.AXoA-example","id_token":"{id_token}"}"#;
    let refresh_with_id = r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"id_token":"{id_token}"}"#;
    for (name, parts) in [
        ("default", [DEFAULT_TOKEN, DEFAULT_REFRESH, "\0"]),
        ("default-connect", [DEFAULT_TOKEN, DEFAULT_REFRESH, "\u{2}"]),
        ("google", [google_token, DEFAULT_REFRESH, "\u{2}"]),
        ("entra", [entra_token, DEFAULT_REFRESH, "\u{2}"]),
        (
            "refresh-with-id-token",
            [DEFAULT_TOKEN, refresh_with_id, "\0"],
        ),
        ("invalid-grant", [bad_grant, bad_grant, "\0"]),
        ("server-error", ["500\n", "503\n<html>busy</html>", "\0"]),
        (
            "expires-in-string",
            [
                r#"{"access_token":"{access_token}","token_type":"Bearer","expires_in":"3600","id_token":"{id_token}"}"#,
                r#"{"access_token":"at-2","token_type":"Bearer","expires_in":"3600"}"#,
                "\u{2}",
            ],
        ),
        (
            "token-type-mac",
            [
                r#"{"access_token":"{access_token}","token_type":"mac","id_token":"{id_token}"}"#,
                r#"{"access_token":"at-2","token_type":"mac"}"#,
                "\0",
            ],
        ),
        ("not-json", ["<html>hello</html>", "{", "\0"]),
    ] {
        write("token_response", name, &join(&parts));
    }

    // ---- visitor tokens -------------------------------------------------------------------
    let minted = block_on(async {
        let w = World::new(None);
        w.visitor_rings().await.expect("rings");
        let chat = VisitorAudience::new(VISITOR_AUDIENCE).expect("audience");
        let mut out = Vec::new();
        for claims in [
            VisitorClaims::new("c-42"),
            VisitorClaims::new("c-43")
                .name("Ada")
                .email("ada@example.com", true),
        ] {
            out.push(
                w.broker
                    .mint_visitor_token(&w.tenant, &chat, &claims, None)
                    .await
                    .expect("mint"),
            );
        }
        out
    });
    for (i, t) in minted.iter().enumerate() {
        write("visitor_token", &format!("minted-{i}"), t.as_bytes());
        write(
            "visitor_differential",
            &format!("raw-minted-{i}"),
            format!("raw:{t}").as_bytes(),
        );
    }
    let hs = r#"{"alg":"HS256","typ":"JWT","kid":"{kid}"}"#;
    let claims = r#"{"scope":"user","external_id":"c-42","name":"Ada","email":"ada@example.com","email_verified":true,"iat":{now},"exp":{exp},"jti":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#;
    for (name, parts) in [
        ("default", [hs, claims, ""]),
        (
            "verify-only-key",
            [r#"{"alg":"HS256","kid":"vk2"}"#, claims, "2"],
        ),
        (
            "retired-key",
            [r#"{"alg":"HS256","kid":"vk0"}"#, claims, "0"],
        ),
        ("wrong-key", [hs, claims, "2"]),
        ("alg-none", [r#"{"alg":"none","kid":"{kid}"}"#, claims, ""]),
        (
            "crit",
            [
                r#"{"alg":"HS256","kid":"{kid}","crit":["exp"]}"#,
                claims,
                "",
            ],
        ),
        (
            "typ-other",
            [
                r#"{"alg":"HS256","kid":"{kid}","typ":"at+jwt"}"#,
                claims,
                "",
            ],
        ),
        (
            "duplicate-kid",
            [r#"{"alg":"HS256","kid":"vk2","kid":"{kid}"}"#, claims, ""],
        ),
        (
            "duplicate-claim",
            [
                hs,
                r#"{"scope":"user","external_id":"a","external_id":"b","exp":{exp}}"#,
                "",
            ],
        ),
        (
            "exp-string",
            [
                hs,
                r#"{"scope":"user","external_id":"a","exp":"{exp}"}"#,
                "",
            ],
        ),
        (
            "exp-float",
            [
                hs,
                r#"{"scope":"user","external_id":"a","exp":{exp}.5}"#,
                "",
            ],
        ),
        (
            "expired",
            [hs, r#"{"scope":"user","external_id":"a","exp":{now}}"#, ""],
        ),
        (
            "nbf-future",
            [
                hs,
                r#"{"scope":"user","external_id":"a","exp":{exp},"nbf":{exp}}"#,
                "",
            ],
        ),
        (
            "too-long",
            [
                hs,
                r#"{"scope":"user","external_id":"a","exp":9999999999}"#,
                "",
            ],
        ),
        (
            "scope-admin",
            [hs, r#"{"scope":"admin","external_id":"a","exp":{exp}}"#, ""],
        ),
        ("truncated-signature", [hs, claims, "AAAA"]),
    ] {
        write("visitor_differential", name, &join(&parts));
    }
    for (name, t) in [
        ("empty", ""),
        ("dots", "..."),
        (
            "alg-none",
            "eyJhbGciOiJub25lIiwia2lkIjoidmsxIn0.eyJzY29wZSI6InVzZXIiLCJleHRlcm5hbF9pZCI6ImEiLCJleHAiOjk5OTk5OTk5OTl9.",
        ),
    ] {
        write("visitor_token", name, t.as_bytes());
    }

    // ---- ids_return_to --------------------------------------------------------------------
    for (name, s) in [
        ("tenant", "acme"),
        ("path", "/inbox?folder=unread#top"),
        ("scheme-relative", "//evil.example/"),
        ("encoded-slashes", "/%2F%2Fevil.example"),
        ("double-encoded", "/%252F%252Fevil.example"),
        ("backslash", "/\\evil.example"),
        ("encoded-backslash", "/%5Cevil.example"),
        ("absolute", "https://evil.example/"),
        ("tab", "/\t/evil.example"),
        ("user-id", "alice@example.com"),
        ("visitor-kid", "vk_Abc-123_xyz"),
        ("binding-id", "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"),
    ] {
        write("ids_return_to", name, s.as_bytes());
    }

    // ---- stored_records -------------------------------------------------------------------
    let snap = snapshot();
    for (i, (ns, _, record)) in snap.records.iter().chain(&snap.gone).enumerate() {
        let mut data = vec![u8::try_from(i).expect("under 256 records")];
        data.extend_from_slice(&record.value);
        write("stored_records", &format!("{i:02}-{ns}"), &data);
    }
    // A pending login as format 1 (JSON) wrote it, before the compact format 2 the broker
    // writes now: old records still decode, so both readers stay fuzzed.
    let pending = snap
        .records
        .iter()
        .chain(&snap.gone)
        .position(|(ns, _, _)| ns == "pending_login")
        .expect("a pending login in the snapshot");
    let mut data = vec![u8::try_from(pending).expect("under 256 records")];
    data.extend_from_slice(PENDING_LOGIN_FORMAT_1);
    write(
        "stored_records",
        &format!("{pending:02}-pending_login-format1"),
        &data,
    );
    println!(
        "{} stored records, {} written and deleted again",
        snap.records.len(),
        snap.gone.len()
    );
}
