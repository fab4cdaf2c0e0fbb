fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("dataplane-ebpf");
    let root = root.to_str().expect("utf-8 path");
    println!("cargo:rerun-if-changed={root}/src");
    println!("cargo:rerun-if-changed={root}/../dataplane-common/src");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "dataplane-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
