pub mod finish;

pub fn y() {}
