//! Loading components: runs that start together on an uncached component share one
//! compile, and a disk-cached component is not compiled again by a new sandbox.

use medic_sandbox::{Sandbox, SandboxConfig};
use std::sync::Arc;

#[test]
fn concurrent_first_loads_of_one_component_compile_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    let sandbox = Arc::new(Sandbox::new(config()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let sb = sandbox.clone();
            std::thread::spawn(move || sb.warm(medic_test_programs::HTTP_PROBE).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sandbox.compiles(), 1);

    // A new sandbox (a restarted medic) reads the compiled code from the disk cache.
    let restarted = Sandbox::new(config()).unwrap();
    restarted.warm(medic_test_programs::HTTP_PROBE).unwrap();
    assert_eq!(restarted.compiles(), 0);
}
