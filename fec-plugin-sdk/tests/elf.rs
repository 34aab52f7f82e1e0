//! The ELF loader on objects clang built (committed, so no clang is needed).

use fec_plugin_sdk::abi::{Anchor, Operation, ScheduleContext, SourceContext};
use fec_plugin_sdk::elf;
use fec_plugin_sdk::package::{Manifest, Package, PlugletEntry};
use fec_plugin_sdk::runtime::{HostOffer, HostView, Plugin};
use fec_plugin_sdk::verify::helpers_called;

#[test]
fn clang_object_loads_and_runs() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/good.o")).unwrap();
    let pluglets = elf::load(&bytes).unwrap();
    let names: Vec<&str> = pluglets.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["replace/on_source", "replace/schedule_repair"]);
    assert_eq!(pluglets[0].operation, Operation::OnSource);
    assert_eq!(pluglets[1].anchor, Anchor::Replace);
    assert_eq!(pluglets[0].code.len(), 7 * 8);

    let helpers: Vec<u32> = pluglets
        .iter()
        .flat_map(|p| helpers_called(&p.code))
        .collect();
    let package = Package::new(Manifest {
        name: "good".into(),
        version: "1".into(),
        memory_size: 256,
        helpers,
        pluglets: pluglets.into_iter().map(PlugletEntry::from).collect(),
    })
    .unwrap();
    let plugin = Plugin::load(&package, &HostOffer::all()).unwrap();
    let mut instance = plugin.instantiate();
    let view = HostView::default();
    for seq in 0..3 {
        let d = instance
            .on_source(
                &SourceContext {
                    seq,
                    flow: 9,
                    len: 100,
                    now_us: 0,
                },
                &view,
            )
            .unwrap();
        assert_eq!(d.protect, Some(9));
    }
    // The C code counts calls in its state (offset 128).
    assert_eq!(instance.memory()[128], 3);
    let schedule = |n| ScheduleContext {
        sources_since_repair: n,
        ..Default::default()
    };
    assert_eq!(
        instance
            .schedule_repair(&schedule(3), &view)
            .unwrap()
            .repair,
        0
    );
    assert_eq!(
        instance
            .schedule_repair(&schedule(4), &view)
            .unwrap()
            .repair,
        1
    );
}
