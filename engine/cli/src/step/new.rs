//! `medic step new NAME --lang rust|python|js [--dir DIR]`.

use super::scaffold::Lang;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(name: &str, lang: &str, dir: Option<PathBuf>) -> Result<ExitCode> {
    let Some(lang) = Lang::parse(lang) else {
        bail!("--lang {lang}: expected rust, python or js");
    };
    check_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty: choose another --dir",
            dir.display()
        );
    }
    for (path, text, exec) in lang.files(name) {
        write(&dir.join(&path), &text, exec)?;
    }
    let shown = dir.display();
    println!("created {} step `{name}` in {shown}", lang.name());
    println!("  cd {shown} && ./test.sh      # build, run the sample invocation, check it");
    println!("  medic step test dist/{name}.wasm --params params.json --incident incident.json");
    Ok(ExitCode::SUCCESS)
}

/// The name becomes a crate, package and file name and the describe() name.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "step name {name:?}: use lowercase letters, digits and `-`, starting with a letter (e.g. `flag-toggle`)"
        );
    }
    Ok(())
}

fn write(path: &Path, text: &str, exec: bool) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if exec {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names() {
        assert!(check_name("flag-toggle").is_ok());
        assert!(check_name("probe2").is_ok());
        for bad in ["", "Flag", "2probe", "a_b", "trailing-", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
