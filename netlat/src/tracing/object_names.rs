//! The embedded eBPF object holds every name userspace looks up in it.
//!
//! The names live in netlat-common; the eBPF side spells maps in
//! `#[map(name = "...")]` literals and programs and globals as item names,
//! which no constant can reach. Parsing the object (aya-obj, no root) is
//! what keeps the two sides equal: a name changed on one side only fails
//! here, not at a user's load.

#[cfg(test)]
mod tests {
    use netlat_common::{MAPS, globals, names::programs};

    use crate::tracing::backend::attach::OBJECT;

    fn object() -> aya_obj::Object {
        aya_obj::Object::parse(OBJECT).expect("the embedded object parses")
    }

    #[test]
    fn the_object_has_every_map_userspace_opens() {
        let object = object();
        for map in MAPS {
            assert!(object.maps.contains_key(*map), "no map {map} in the object");
        }
    }

    /// Each global with the size userspace writes: aya refuses a global
    /// of another size at load, so a size mismatch fails here too.
    #[test]
    fn the_object_has_every_global_userspace_sets() {
        let mut object = object();
        let zeros = [0u8; 256];
        for &(name, size) in globals::ALL {
            let one = std::collections::HashMap::from([(name, (&zeros[..size], true))]);
            object
                .patch_map_data(one)
                .unwrap_or_else(|e| panic!("global {name} ({size} bytes): {e}"));
        }
    }

    #[test]
    fn the_object_has_every_program_userspace_attaches() {
        let object = object();
        for program in programs::ALL {
            assert!(
                object.programs.contains_key(*program),
                "no program {program} in the object"
            );
        }
    }
}
