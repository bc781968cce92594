#[tokio::test]
async fn dump() {
    let _ = std::fs::remove_file("/tmp/errand_scratch.db");
    let store = store::Store::connect("sqlite:///tmp/errand_scratch.db").await.unwrap();
    drop(store);
}
