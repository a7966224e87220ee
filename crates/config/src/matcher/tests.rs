#[test]
fn probe() {
    let v: Option<u8> = Some(1);
    let _ = v.unwrap();
    if v.is_none() { panic!("x"); }
}
