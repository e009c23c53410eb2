//! The files `medic step new` writes, embedded in the binary: the newest released
//! `medic:step` WIT (so a project builds against exactly what this medic speaks best),
//! one template set per language, and for Rust the step SDK `medic-step`
//! (`guests/lib/medic-step`), which every Rust step in the repository uses too.
//!
//! Why the SDK is copied into each project rather than named by path or from a registry:
//! a scaffolded step lives outside the repository (a path would tie it to where this
//! medic was built) and medic-step is not published. The copy builds offline once its
//! crates (wit-bindgen, wstd, serde) are in cargo's cache, against exactly the bindings of
//! the `wit/` written beside it.

use medic_sandbox::WitVersion;

/// The WIT version embedded below: always the newest this medic supports (a unit test
/// checks that the embedded files are `wit/<newest>/` byte for byte).
pub const WIT: WitVersion = WitVersion::NEWEST;

/// `wit/` of a new project: (path inside `wit/`, contents).
pub const WIT_FILES: &[(&str, &str)] = &[
    ("step.wit", include_str!("../../../../wit/0.2.0/step.wit")),
    (
        "deps/cli/cli.wit",
        include_str!("../../../../wit/0.2.0/deps/cli/cli.wit"),
    ),
    (
        "deps/clocks/clocks.wit",
        include_str!("../../../../wit/0.2.0/deps/clocks/clocks.wit"),
    ),
    (
        "deps/filesystem/filesystem.wit",
        include_str!("../../../../wit/0.2.0/deps/filesystem/filesystem.wit"),
    ),
    (
        "deps/http/http.wit",
        include_str!("../../../../wit/0.2.0/deps/http/http.wit"),
    ),
    (
        "deps/io/io.wit",
        include_str!("../../../../wit/0.2.0/deps/io/io.wit"),
    ),
    (
        "deps/random/random.wit",
        include_str!("../../../../wit/0.2.0/deps/random/random.wit"),
    ),
    (
        "deps/sockets/sockets.wit",
        include_str!("../../../../wit/0.2.0/deps/sockets/sockets.wit"),
    ),
];

/// `medic-step/` of a new Rust project: (path inside it, contents). Its `lib.rs` is
/// written with [`SDK_WIT_PATH`] pointing at the project's `wit/` (see [`sdk_files`]).
const SDK_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../guests/lib/medic-step/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../guests/lib/medic-step/src/lib.rs"),
    ),
    (
        "src/failure.rs",
        include_str!("../../../../guests/lib/medic-step/src/failure.rs"),
    ),
    (
        "src/host.rs",
        include_str!("../../../../guests/lib/medic-step/src/host.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../../guests/lib/medic-step/src/http.rs"),
    ),
    (
        "src/http/tests.rs",
        include_str!("../../../../guests/lib/medic-step/src/http/tests.rs"),
    ),
    (
        "src/params.rs",
        include_str!("../../../../guests/lib/medic-step/src/params.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../../guests/lib/medic-step/src/testing.rs"),
    ),
    (
        "src/url.rs",
        include_str!("../../../../guests/lib/medic-step/src/url.rs"),
    ),
];

/// The WIT path in the repository's `medic-step/src/lib.rs`, and what it becomes in a
/// project, where `medic-step/` sits next to `wit/`.
const SDK_WIT_PATH: (&str, &str) = ("path: \"../../../wit/0.2.0\",", "path: \"../wit\",");

/// The SDK's files as a project gets them: (path in the project, contents).
fn sdk_files() -> Vec<(String, String)> {
    SDK_FILES
        .iter()
        .map(|(path, text)| {
            let text = if *path == "src/lib.rs" {
                text.replacen(SDK_WIT_PATH.0, SDK_WIT_PATH.1, 1)
            } else {
                (*text).to_owned()
            };
            (format!("medic-step/{path}"), text)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "rust" => Some(Lang::Rust),
            "python" | "py" => Some(Lang::Python),
            "js" | "javascript" => Some(Lang::Js),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// The file that marks a project of this language (`medic step build` looks for it).
    pub fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }

    fn install(self) -> &'static str {
        match self {
            Lang::Rust => "rustup target add wasm32-wasip2   # once",
            Lang::Python => {
                "# once: componentize-py 0.25.1 (medic's scripts/toolchain-polyglot installs it)"
            }
            Lang::Js => {
                "# once: componentize-js 0.23.0 (medic's scripts/toolchain-polyglot installs it)"
            }
        }
    }

    fn build_cmd(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Python => {
                "componentize-py -d wit -w step-component componentize app -p . -o dist/NAME.wasm"
            }
            Lang::Js => {
                "componentize-js app.js --wit wit --world-name step-component -o dist/NAME.wasm"
            }
        }
    }

    /// Template files: (path in the project, contents, executable).
    fn templates(self) -> Vec<(&'static str, &'static str, bool)> {
        let mut files = vec![
            (
                "README.md",
                include_str!("../../templates/common/README.md"),
                false,
            ),
            (
                "params.json",
                include_str!("../../templates/common/params.json"),
                false,
            ),
            (
                "incident.json",
                include_str!("../../templates/common/incident.json"),
                false,
            ),
            (
                "build.sh",
                include_str!("../../templates/common/build.sh"),
                true,
            ),
            (
                "test.sh",
                include_str!("../../templates/common/test.sh"),
                true,
            ),
        ];
        files.extend(match self {
            Lang::Rust => [
                (
                    "Cargo.toml",
                    include_str!("../../templates/rust/Cargo.toml"),
                    false,
                ),
                (
                    "src/lib.rs",
                    include_str!("../../templates/rust/src/lib.rs"),
                    false,
                ),
                (
                    ".gitignore",
                    include_str!("../../templates/rust/gitignore"),
                    false,
                ),
            ],
            Lang::Python => [
                (
                    "app.py",
                    include_str!("../../templates/python/app.py"),
                    false,
                ),
                (
                    "pyproject.toml",
                    include_str!("../../templates/python/pyproject.toml"),
                    false,
                ),
                (
                    ".gitignore",
                    include_str!("../../templates/python/gitignore"),
                    false,
                ),
            ],
            Lang::Js => [
                ("app.js", include_str!("../../templates/js/app.js"), false),
                (
                    "package.json",
                    include_str!("../../templates/js/package.json"),
                    false,
                ),
                (
                    ".gitignore",
                    include_str!("../../templates/js/gitignore"),
                    false,
                ),
            ],
        });
        files
    }

    /// Every file of a new project named `name`: (path, contents, executable).
    pub fn files(self, name: &str) -> Vec<(String, String, bool)> {
        let fill = |text: &str| {
            text.replace("{{name}}", name)
                .replace("{{wit}}", WIT.as_str())
                .replace("{{lang_name}}", self.name())
                .replace("{{source}}", self.source())
                .replace("{{install}}", self.install())
                .replace("{{build_cmd}}", &self.build_cmd().replace("NAME", name))
        };
        let mut out: Vec<(String, String, bool)> = self
            .templates()
            .into_iter()
            .map(|(path, text, exec)| (path.to_string(), fill(text), exec))
            .collect();
        out.extend(
            WIT_FILES
                .iter()
                .map(|(path, text)| (format!("wit/{path}"), text.to_string(), false)),
        );
        if self == Lang::Rust {
            out.extend(
                sdk_files()
                    .into_iter()
                    .map(|(path, text)| (path, text, false)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_wit_is_the_newest_released_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../wit")
            .join(WIT.as_str());
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p);
                }
            }
        }
        assert_eq!(on_disk.len(), WIT_FILES.len(), "files in {}", dir.display());
        for (path, text) in WIT_FILES {
            let disk = std::fs::read_to_string(dir.join(path)).unwrap();
            assert_eq!(&disk, text, "wit/{}/{path}", WIT.as_str());
        }
        // The newest folder on disk is the one embedded.
        let newest = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| {
                v.split('.')
                    .map(|n| n.parse::<u32>().unwrap_or(0))
                    .collect::<Vec<_>>()
            })
            .unwrap();
        assert_eq!(newest, WIT.as_str());
    }

    #[test]
    fn the_embedded_sdk_is_every_file_of_guests_lib_medic_step() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/lib/medic-step");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p.strip_prefix(&dir).unwrap().to_str().unwrap().to_owned());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = SDK_FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add new medic-step files to SDK_FILES");
        // The vendored lib.rs generates its bindings from the project's own wit/, the
        // version this medic scaffolds.
        let lib = SDK_FILES
            .iter()
            .find(|(p, _)| *p == "src/lib.rs")
            .unwrap()
            .1;
        assert_eq!(lib.matches(SDK_WIT_PATH.0).count(), 1);
        assert!(SDK_WIT_PATH.0.contains(WIT.as_str()));
        let written = sdk_files();
        let lib = &written
            .iter()
            .find(|(p, _)| p == "medic-step/src/lib.rs")
            .unwrap()
            .1;
        assert!(lib.contains(SDK_WIT_PATH.1) && !lib.contains(SDK_WIT_PATH.0));
        // Self-contained: no workspace inheritance, which a project could not resolve.
        let manifest = SDK_FILES
            .iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .unwrap()
            .1;
        let inherits = manifest
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| l.contains("workspace"));
        assert!(!inherits, "{manifest}");
    }

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for (path, text, _) in lang.files("my-step") {
                for p in [
                    "{{name}}",
                    "{{wit}}",
                    "{{lang_name}}",
                    "{{source}}",
                    "{{install}}",
                    "{{build_cmd}}",
                ] {
                    assert!(!text.contains(p), "{path} ({lang:?}) still has {p}");
                }
            }
        }
    }
}
