//! `lago-sync salesforce-metadata`: the deployable copy of the Salesforce DX project
//! (contract §8). The repository's outbound message `Lago_Customer` holds a placeholder
//! endpoint and integration user, so that no URL or token is ever committed; this copies
//! the project and puts in the copy the deployment's `POST /salesforce/accounts/{token}`
//! URL, with the token from the functions' secret, and the org's integration user.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

use crate::setup::Operator;

/// What the repository's workflow holds in place of the deployment's values.
const ENDPOINT_PLACEHOLDER: &str =
    "https://lago-sync.invalid/salesforce/accounts/RENDERED-BY-lago-sync";
const USER_PLACEHOLDER: &str = "integration-user@lago-sync.invalid";
/// The outbound message's file, inside the package directory.
const WORKFLOW: &str = "main/default/workflows/Account.workflow-meta.xml";
/// `sf` deploys source only from inside a DX project: the copy gets the project's file.
const PROJECT_FILE: &str = "sfdx-project.json";
/// With the org id check, the token is all that keeps others off the endpoint: short
/// ones could be guessed.
const MIN_TOKEN_LEN: usize = 32;

#[derive(clap::Args)]
pub struct Args {
    /// The HTTP API's URL (the stack's outputs show it), e.g.
    /// https://abc123.execute-api.eu-west-1.amazonaws.com
    #[arg(long)]
    base_url: String,
    /// The username Salesforce sends the outbound message as (the integration user, which
    /// must exist in the org), e.g. integration@acme.com
    #[arg(long)]
    integration_user: String,
    /// A new or empty directory for the rendered project. It holds the token: never
    /// commit it.
    #[arg(long)]
    out: PathBuf,
    /// The DX package directory to render [default: salesforce/force-app of the
    /// repository around the current directory, else of the one lago-sync was built from]
    #[arg(long)]
    source: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<ExitCode, String> {
    let base = https_base(&args.base_url)?;
    let user = args.integration_user.trim();
    if user.is_empty() || user.contains(char::is_whitespace) {
        return Err(format!(
            "--integration-user must be a Salesforce username, got {user:?}"
        ));
    }
    let source = match args.source {
        Some(source) => source,
        None => default_source()?,
    };
    let source = source
        .canonicalize()
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let (Some(project), Some(package_name)) = (source.parent(), source.file_name()) else {
        return Err(format!("{} is not a package directory", source.display()));
    };
    let project_file = project.join(PROJECT_FILE);
    if !project_file.is_file() {
        return Err(format!(
            "{} is not a package directory of a DX project: no {PROJECT_FILE} beside it",
            source.display()
        ));
    }
    let workflow = fs::read_to_string(source.join(WORKFLOW))
        .map_err(|e| format!("{}: {e}", source.join(WORKFLOW).display()))?;
    if fs::read_dir(&args.out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!(
            "{} is not empty: render into a new directory",
            args.out.display()
        ));
    }

    // Read before anything is written, so that a refusal leaves nothing behind.
    let operator = Operator::connect()
        .await
        .map_err(|e| format!("configuration: {e}"))?;
    let secret_id = &operator.config.secret_id;
    let secrets = operator
        .app
        .secrets
        .current()
        .await
        .map_err(|e| format!("secret {secret_id}: {e}"))?;
    let token = secrets
        .salesforce_outbound_token
        .as_deref()
        .ok_or_else(|| missing_token(secret_id))?;
    check_token(token, secret_id)?;
    let rendered = render(
        &workflow,
        &format!("{base}/salesforce/accounts/{token}"),
        user,
    )?;

    // Only the operator may read the token.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.out)
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    let out = args
        .out
        .canonicalize()
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    if out.starts_with(&source) {
        // Created by this run, or checked empty above.
        let _ = fs::remove_dir(&out);
        return Err(format!(
            "--out {} is inside the package directory {}: render elsewhere",
            out.display(),
            source.display()
        ));
    }
    let package = out.join(package_name);
    let files = write(&source, &package, &project_file, &rendered)
        .map_err(|e| format!("writing {}: {e}", out.display()))?;

    println!(
        "rendered {} into {} ({files} files) with the project's {PROJECT_FILE}",
        source.display(),
        package.display()
    );
    println!(
        "outbound message Lago_Customer: endpoint \
         {base}/salesforce/accounts/<salesforce_outbound_token of {secret_id}>, sent as {user}"
    );
    println!("deploy it with:");
    println!(
        "  cd {} && sf project deploy start --source-dir {} --target-org <alias>",
        shell_quote(&out.display().to_string()),
        shell_quote(&package_name.to_string_lossy())
    );
    let repository = out
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(|repo| format!(" (it is inside the git work tree {})", repo.display()))
        .unwrap_or_default();
    eprintln!(
        "WARNING: {} holds the outbound token{repository}: never commit it, and delete it \
         after the deploy",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Copies the package directory and the project file, then writes the rendered workflow
/// over its copy. Answers how many files the package directory has.
fn write(
    source: &Path,
    package: &Path,
    project_file: &Path,
    workflow: &str,
) -> std::io::Result<usize> {
    let files = copy_tree(source, package)?;
    fs::copy(project_file, package.with_file_name(PROJECT_FILE))?;
    fs::write(package.join(WORKFLOW), workflow)?;
    Ok(files)
}

/// The token travels in the URL: plain http would show it to anyone on the way.
fn https_base(base_url: &str) -> Result<&str, String> {
    let base = base_url.trim().trim_end_matches('/');
    let rest = base.strip_prefix("https://").unwrap_or_default();
    if rest.is_empty() || rest.contains(|c: char| c.is_whitespace() || "?#".contains(c)) {
        return Err(format!(
            "--base-url must be the API's https URL, got {base_url:?}"
        ));
    }
    Ok(base)
}

/// `salesforce/force-app` of the repository around the current directory (`salesforce/`
/// included), else of the repository lago-sync was built from.
fn default_source() -> Result<PathBuf, String> {
    let cwd = env::current_dir().map_err(|e| format!("the current directory: {e}"))?;
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../salesforce/force-app");
    cwd.ancestors()
        .flat_map(|dir| [dir.join("salesforce/force-app"), dir.join("force-app")])
        .chain([built_from])
        .find(|dir| dir.join(WORKFLOW).is_file())
        .ok_or_else(|| {
            "no salesforce/force-app here or in the repository lago-sync was built from: \
             give --source"
                .to_owned()
        })
}

fn missing_token(secret_id: &str) -> String {
    format!(
        "the secret {secret_id} has no salesforce_outbound_token, the last path segment of \
         the endpoint Salesforce sends Accounts to. Add a long random one to it (the functions \
         read it within 5 minutes), e.g.:\n  \
         aws secretsmanager get-secret-value --secret-id {secret_id} --query SecretString --output text \\\n  \
         | jq --arg token \"$(openssl rand -hex 32)\" '. + {{salesforce_outbound_token: $token}}' \\\n  \
         | aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string file:///dev/stdin\n\
         then run this command again"
    )
}

/// Names what is wrong with the token, never the token.
fn check_token(token: &str, secret_id: &str) -> Result<(), String> {
    let url_safe = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if token.len() < MIN_TOKEN_LEN || !url_safe {
        return Err(format!(
            "the salesforce_outbound_token of {secret_id} must be at least {MIN_TOKEN_LEN} \
             letters, digits, '-', '_', '.' or '~' (it is a URL path segment), e.g. \
             `openssl rand -hex 32`"
        ));
    }
    Ok(())
}

/// The workflow with its two placeholders replaced, each found exactly once in its element.
fn render(workflow: &str, endpoint: &str, user: &str) -> Result<String, String> {
    let mut rendered = workflow.to_owned();
    for (tag, placeholder, value) in [
        ("endpointUrl", ENDPOINT_PLACEHOLDER, endpoint),
        ("integrationUser", USER_PLACEHOLDER, user),
    ] {
        let element = format!("<{tag}>{placeholder}</{tag}>");
        if rendered.matches(&element).count() != 1 {
            return Err(format!(
                "{WORKFLOW} must hold {element} exactly once: render from the repository's \
                 source, not from a rendered copy"
            ));
        }
        rendered = rendered.replacen(
            &element,
            &format!("<{tag}>{}</{tag}>", xml_escape(value)),
            1,
        );
    }
    Ok(rendered)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Files copied.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<usize> {
    fs::create_dir_all(to)?;
    let mut files = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            files += copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
            files += 1;
        }
    }
    Ok(files)
}

/// A path as one shell word, for the command to paste.
fn shell_quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
