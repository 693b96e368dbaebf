//! Fuzzes the inventory reader: any JSON either is an inventory of the shapes read or is not;
//! every instance read has an id; nothing panics.
#![no_main]

use imdsguard_parse::inventory::parse_inventory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Some(r) = parse_inventory("fuzz", &v) {
        for i in &r.instances {
            assert!(!i.id.is_empty());
        }
        let inv = imdsguard_event::Inventory::new(r.instances);
        for i in inv.instances() {
            assert!(inv.by_id(&i.id).is_some());
        }
    }
});
