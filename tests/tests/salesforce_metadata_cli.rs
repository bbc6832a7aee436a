//! `lago-sync salesforce-metadata` (contract §8): the built binary reads the outbound token
//! from the functions' secret in moto and renders a deployable copy of the DX project.
//! Build it first: `cargo build -p lago-sync-cli`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sync_testkit::events::{secret_json, HMAC_KEY};
use sync_testkit::lambda::binary_path;
use sync_testkit::moto::{unique_name, Moto};

const TOKEN: &str = "3f9c0e7a5b1d4c2e8f6a0b9d7c5e3a1f2b4d6c8e0a9f7b5d3c1e2a4b6d8f0c9e";
const WORKFLOW: &str = "main/default/workflows/Account.workflow-meta.xml";
const ENDPOINT_PLACEHOLDER: &str =
    "https://lago-sync.invalid/salesforce/accounts/RENDERED-BY-lago-sync";
const USER_PLACEHOLDER: &str = "integration-user@lago-sync.invalid";

fn salesforce_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../salesforce")
}

/// The functions' secret with `token` as its salesforce_outbound_token (none: left out).
fn secret(token: Option<&str>) -> String {
    let mut secret: serde_json::Map<String, Value> =
        serde_json::from_str(&secret_json(HMAC_KEY)).unwrap();
    secret.remove("salesforce_outbound_token");
    if let Some(token) = token {
        secret.insert("salesforce_outbound_token".into(), token.into());
    }
    Value::Object(secret).to_string()
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the command in `cwd` with the functions' settings and a secret holding `secret`.
async fn render(moto: &Moto, secret: &str, cwd: &Path, args: &[&str]) -> Run {
    let name = unique_name("sf-metadata-secret");
    moto.create_secret(&name, secret).await;
    let output = Command::new(binary_path("lago-sync"))
        .arg("salesforce-metadata")
        .args(args)
        .current_dir(cwd)
        .envs(moto.env())
        .env("SECRET_ID", &name)
        .env("IDEMPOTENCY_TABLE", unique_name("unused"))
        .env("SALESFORCE_URL", "http://127.0.0.1:9")
        .output()
        .expect("lago-sync runs");
    let run = Run {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    let secret: BTreeMap<String, String> = serde_json::from_str(secret).unwrap();
    for value in secret.values() {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(value.as_str()),
                "a secret value on {stream}:\n{text}"
            );
        }
    }
    run
}

/// Every file under `root`, by its path relative to `root`.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_path_buf();
                found.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[tokio::test]
async fn renders_the_outbound_message_with_the_deployment_url_and_user() {
    let moto = Moto::shared().await;
    let out = std::env::temp_dir().join(unique_name("sf-metadata"));
    let out_arg = out.to_str().unwrap();
    // An apostrophe, as usernames may have: the XML must escape it.
    let user = "o'brien+lago@acme.example";
    let args = [
        "--base-url",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/",
        "--integration-user",
        user,
        "--out",
        out_arg,
    ];
    // From salesforce/, where `sf` runs: the package directory is found there.
    let run = render(moto, &secret(Some(TOKEN)), &salesforce_dir(), &args).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);

    let endpoint =
        format!("https://abc123.execute-api.eu-west-1.amazonaws.com/salesforce/accounts/{TOKEN}");
    let rendered = fs::read_to_string(out.join("force-app").join(WORKFLOW)).unwrap();
    let document = roxmltree::Document::parse(&rendered).unwrap();
    let text = |tag: &str| {
        let found: Vec<&str> = document
            .descendants()
            .filter(|n| n.has_tag_name(tag))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(found.len(), 1, "one <{tag}>");
        found[0]
    };
    assert_eq!(text("endpointUrl"), endpoint);
    assert_eq!(text("integrationUser"), user);
    assert!(rendered.contains("<integrationUser>o&apos;brien+lago@acme.example</integrationUser>"));

    // Nothing else differs from the repository's source, and the copy is a DX project.
    let source = tree(&salesforce_dir().join("force-app"));
    let mut copy = tree(&out.join("force-app"));
    let placeholders = fs::read_to_string(salesforce_dir().join("force-app").join(WORKFLOW))
        .unwrap()
        .replace(
            &format!("<endpointUrl>{ENDPOINT_PLACEHOLDER}</endpointUrl>"),
            &format!("<endpointUrl>{endpoint}</endpointUrl>"),
        )
        .replace(
            &format!("<integrationUser>{USER_PLACEHOLDER}</integrationUser>"),
            "<integrationUser>o&apos;brien+lago@acme.example</integrationUser>",
        );
    assert_eq!(rendered, placeholders, "only the two placeholders change");
    copy.insert(PathBuf::from(WORKFLOW), source[Path::new(WORKFLOW)].clone());
    assert_eq!(
        copy.keys().collect::<Vec<_>>(),
        source.keys().collect::<Vec<_>>()
    );
    assert!(copy == source, "a file other than the workflow differs");
    assert_eq!(
        fs::read(out.join("sfdx-project.json")).unwrap(),
        fs::read(salesforce_dir().join("sfdx-project.json")).unwrap()
    );
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        2,
        "force-app and sfdx-project.json"
    );
    let mode = fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "only the operator reads the token: {mode:o}"
    );

    // What to run next, and the warning; the token itself is never shown (checked by
    // `render`).
    let deploy = format!(
        "cd {out_arg} && sf project deploy start --source-dir force-app --target-org <alias>"
    );
    assert!(run.stdout.contains(&deploy), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "https://abc123.execute-api.eu-west-1.amazonaws.com/salesforce/accounts/<salesforce_outbound_token of"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("holds the outbound token") && run.stderr.contains("never commit"),
        "{}",
        run.stderr
    );

    // A second render never mixes with the first.
    let again = render(moto, &secret(Some(TOKEN)), &salesforce_dir(), &args).await;
    assert!(
        !again.ok && again.stderr.contains("is not empty"),
        "{}",
        again.stderr
    );
    fs::remove_dir_all(&out).unwrap();
}

#[tokio::test]
async fn refuses_a_secret_without_a_usable_token_and_writes_nothing() {
    let moto = Moto::shared().await;
    let out = std::env::temp_dir().join(unique_name("sf-metadata"));
    let args = [
        "--base-url",
        "https://abc123.execute-api.eu-west-1.amazonaws.com",
        "--integration-user",
        "integration@acme.example",
        "--out",
        out.to_str().unwrap(),
    ];
    // Outside any repository: the package directory of the one lago-sync was built from.
    let elsewhere = std::env::temp_dir();

    let run = render(moto, &secret(None), &elsewhere, &args).await;
    assert!(!run.ok, "{}", run.stdout);
    for expected in [
        "has no salesforce_outbound_token",
        "openssl rand -hex 32",
        "put-secret-value",
    ] {
        assert!(run.stderr.contains(expected), "{expected}?\n{}", run.stderr);
    }
    assert!(!out.exists(), "nothing is written");

    let short = "too-short-a-token";
    let run = render(moto, &secret(Some(short)), &elsewhere, &args).await;
    assert!(
        !run.ok && run.stderr.contains("must be at least 32"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing is written");

    let plain_http = ["--base-url", "http://abc123.example.com"];
    let run = render(
        moto,
        &secret(Some(TOKEN)),
        &elsewhere,
        &[&plain_http[..], &args[2..]].concat(),
    )
    .await;
    assert!(
        !run.ok && run.stderr.contains("must be the API's https URL"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing is written");
}
