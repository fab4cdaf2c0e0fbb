//! The presence store on PostgreSQL: the same schema and the same checks
//! as on SQLite, against a private server.

mod common;

#[test]
fn the_store_behaves_the_same_on_postgresql() {
    if !common::kernel_available("presence_postgres") {
        return;
    }
    let pg = testlab::pg_lab::PgLab::start("store").expect("private PostgreSQL server");
    let mut store = control::presence::Store::open_url(&pg.url()).expect("connect");
    control::presence::check_store(&mut store).unwrap();
    // Reopening finds the same rows (the schema is created only once).
    drop(store);
    let mut again = control::presence::Store::open_url(&pg.url()).unwrap();
    assert_eq!(again.history("alice@example.com").unwrap().len(), 5);
}
